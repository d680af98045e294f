"""The one `WorkspaceClient` of a command, from databricks-sdk's unified auth, and who it is.

No token is taken on the command line, printed or written: host and profile come from the target (when set),
everything else from the environment or `~/.databrickscfg` as the SDK resolves it (PAT, OAuth M2M, Azure CLI,
GitHub / Azure DevOps OIDC, ...). The host must answer within `REACH_SECONDS` before the SDK is let at it.
"""

from __future__ import annotations

import configparser
import os
import re
import time
from pathlib import Path

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, PermissionDenied, Unauthenticated

from lakeforge import __version__
from lakeforge.config import Target
from lakeforge.errors import AuthError, LakeforgeError, StepError

REACH_SECONDS = 15  # how long a command waits for the host's first answer
_CONNECT_SECONDS = 5  # per attempt to connect: a dropped connection attempt is tried again within the 15 s
_PAUSE_SECONDS = 1  # between attempts after a refused or reset connection


def connect(target: Target) -> WorkspaceClient:
    """A client for `target`'s workspace; raises `LakeforgeError` naming the host and where it came from when
    the host does not answer, `AuthError` with the fix when no credentials are found.

    The host is asked first, with a bound, because the SDK's own first requests are not bounded for this
    (databricks-sdk 0.162): config.py `Config.__init__` resolves the host, then `_resolve_host_metadata` GETs
    /.well-known/databricks-config (oauth.py `get_host_metadata`), then `init_auth` picks the credentials
    (OAuth M2M fetches the OIDC endpoints there through oauth.py `get_endpoints_from_url`'s default
    `_BaseClient()`, whatever the config says; its token request, oauth.py `retrieve_token`, has no timeout).
    Each request is retried on connection errors and timeouts (_base_client.py `_BaseClient._is_retryable`,
    retries.py `retried`) for `retry_timeout_seconds` (default 300) with `http_timeout_seconds` (default 60,
    requests' connect and read timeout at once) per attempt, and the metadata failure is only logged: on a
    silent host the client took 5 minutes to build and `me()` 5 more. Lowering those two settings would also
    cut short slow but real API calls and the waits after a 429 or 503, so the client keeps the SDK's
    defaults and only the host's first answer is bounded.
    """
    found = _host_of(target)
    if found is not None:
        host, source = found
        reason = _no_answer(host)
        if reason is not None:
            raise LakeforgeError(
                f"cannot reach {host} (target '{target.name}', {source}) within {REACH_SECONDS} s "
                f"({reason}): check the host URL, your network/VPN and proxy settings"
            )
    try:
        return WorkspaceClient(
            host=target.host, profile=target.profile, product="lakeforge", product_version=__version__
        )
    except ValueError as exc:  # the SDK's "cannot configure default credentials" and friends
        raise AuthError(_hint(target, _reason(exc))) from None


def host_override(target: Target) -> str | None:
    """Where the host comes from when `target`'s own host wins over a different DATABRICKS_HOST, for a note;
    None otherwise."""
    env = os.environ.get("DATABRICKS_HOST", "").strip().rstrip("/")
    if not target.host or not env or _same(_url(env), _url(target.host)):
        return None
    return f"host from {_table(target)}, not DATABRICKS_HOST={env}"


def _host_of(target: Target) -> tuple[str, str] | None:
    """The host the SDK will use and where it comes from, in unified auth's order: the client's arguments
    (the target), the environment, then a profile of the config file, which does not overwrite what the
    environment set (https://docs.databricks.com/en/dev-tools/auth/unified-auth.html; config.py
    `Config.__init__`, `_known_file_config_loader`). None when none names one: the SDK then fails or finds one
    elsewhere (on a cluster, say)."""
    if target.host:
        return _url(target.host), host_override(target) or f"host from {_table(target)}"
    env = os.environ.get("DATABRICKS_HOST", "").strip()
    if env:
        return _url(env), "host from DATABRICKS_HOST"
    path = os.environ.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg"
    profile = target.profile or os.environ.get("DATABRICKS_CONFIG_PROFILE") or "DEFAULT"
    # DEFAULT as a plain section: the SDK does not merge its values into other profiles (config.py
    # `_known_file_config_loader`), and no section of a file can be named ''
    profiles = configparser.ConfigParser(interpolation=None, default_section="")
    profiles.read(Path(path).expanduser())  # a missing file reads as none
    host = profiles.get(profile, "host", fallback="").strip()
    return (_url(host), f"host from profile {profile} of {path}") if host else None


def _no_answer(host: str) -> str | None:
    """None as soon as `host` answers an HTTP request (any status), else why it did not in REACH_SECONDS."""
    url = f"{host}/.well-known/databricks-config"  # the SDK's own first, unauthenticated, request
    deadline = time.monotonic() + REACH_SECONDS
    while True:
        left = deadline - time.monotonic()
        try:  # stream: the status line is the answer, the body is not waited for
            with requests.get(
                url, timeout=(min(_CONNECT_SECONDS, left), left), stream=True, allow_redirects=False
            ):
                return None
        except requests.ConnectTimeout:
            reason = "no answer to connecting"
        except requests.ReadTimeout:
            reason = "connected, but no answer to a request"
        except requests.ConnectionError as exc:  # refused, reset, name not resolved, TLS failed
            found = re.findall(r"\[(?:Errno -?\d+|SSL: \w+)\] ([^'\"()]+)", str(exc))
            reason = found[-1].strip() if found else type(exc).__name__
        if time.monotonic() + _PAUSE_SECONDS >= deadline:
            return reason
        time.sleep(_PAUSE_SECONDS)


def _url(host: str) -> str:
    """A host as the SDK completes it (_base_client.py `_fix_host_if_needed`): https:// by default, no
    trailing slash."""
    host = host.strip().rstrip("/")
    return host if "://" in host else f"https://{host}"


def _same(a: str, b: str) -> bool:
    return a.lower().removesuffix(":443") == b.lower().removesuffix(":443")


def _table(target: Target) -> str:
    return f"[tool.lakeforge.targets.{target.name}]"


def whoami(w: WorkspaceClient, target: Target) -> str:
    """The user name (or service principal application id) the client acts as; `AuthError` if rejected."""
    try:
        me = w.current_user.me()
    except (Unauthenticated, PermissionDenied) as exc:
        raise AuthError(_hint(target, f"the workspace rejected the credentials ({_reason(exc)})")) from None
    except ValueError as exc:  # credentials resolved lazily (OAuth, CLI) and failed
        raise AuthError(_hint(target, _reason(exc))) from None
    except DatabricksError as exc:
        raise StepError("identity", w.config.host or "workspace", _reason(exc)) from None
    except OSError as exc:  # unreachable host: requests' ConnectionError is an OSError
        raise StepError(
            "identity", w.config.host or "workspace", f"cannot reach the workspace: {exc}"
        ) from None
    return me.user_name or me.id or "?"


def _hint(target: Target, reason: str) -> str:
    where = _table(target)
    login = (
        f"databricks auth login --host {target.host}" if target.host else "databricks auth login --host URL"
    )
    return (
        f"cannot authenticate to Databricks for target '{target.name}': {reason}. Fix: set DATABRICKS_HOST "
        "and DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET for a service principal, "
        f'or DATABRICKS_AUTH_TYPE=github-oidc in CI), or set profile = "NAME" in {where} or '
        f"DATABRICKS_CONFIG_PROFILE, or run `{login}`"
    )


def _reason(exc: Exception) -> str:
    """The first sentence of an SDK message, without the config dump it appends (secrets there are masked,
    but a one-line hint does not need them)."""
    text = " ".join(str(exc).split())
    for cut in (". Config:", " Config:", ". Env:"):
        text = text.split(cut)[0]
    text = text.removeprefix("default auth: ")
    return text[:200].rstrip(".") or type(exc).__name__
