"""The one `WorkspaceClient` of a command, from databricks-sdk's unified auth, and who it is.

No token is taken on the command line, printed or written: host and profile come from the target (when set),
everything else from the environment or `~/.databrickscfg` as the SDK resolves it (PAT, OAuth M2M, Azure CLI,
GitHub / Azure DevOps OIDC, ...).
"""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, PermissionDenied, Unauthenticated

from lakeforge import __version__
from lakeforge.config import Target
from lakeforge.errors import AuthError, StepError


def connect(target: Target) -> WorkspaceClient:
    """A client for `target`'s workspace; raises `AuthError` with the fix when no credentials are found."""
    try:
        return WorkspaceClient(
            host=target.host, profile=target.profile, product="lakeforge", product_version=__version__
        )
    except ValueError as exc:  # the SDK's "cannot configure default credentials" and friends
        raise AuthError(_hint(target, _reason(exc))) from None


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
    where = f"[tool.lakeforge.targets.{target.name}]"
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
