"""The project's secret scope and its secrets, with values from environment variables.

Secret values cannot be read back from a workspace, so bootstrap cannot tell a changed value from an unchanged
one: it puts a secret that is absent, leaves a present one alone, and puts every declared secret again with
`--rotate-secrets`. Values are read from the environment only when put, and are never logged, printed or
written anywhere else. Every variable named in the config must be set, checked before any API call.

Each target has a scope of its own by default (`<project>-<target>`, see `lakeforge.config`). Destroy deletes
a scope only if bootstrap created it (the manifest records its name) and no other target of the project may
use it (same name, and a host that is unset or the same).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceConflict

from lakeforge.changes import Change, Create, Delete, Desired, Unchanged, Update, failing_as
from lakeforge.config import Config
from lakeforge.errors import ConfigError
from lakeforge.manifest import Manifest
from lakeforge.resources import Outcome, Owned, Progress

STEP = "secrets"
_CREATED = "secret_scope"  # manifests before per-target scopes recorded this alone, for the scope `<project>`


def created_marker(scope: str) -> str:
    """What the manifest's `created` holds for a scope that bootstrap created."""
    return f"{_CREATED}:{scope}"


def created_by_lakeforge(manifest: Manifest, scope: str, project: str) -> bool:
    return created_marker(scope) in manifest.created or (_CREATED in manifest.created and scope == project)


def check_environment(config: Config, environ: Mapping[str, str] | None = None) -> None:
    """Raise `ConfigError` naming every secret whose environment variable is not set (before any API call)."""
    environ = os.environ if environ is None else environ
    missing = [(name, env) for name, env in config.secrets.keys.items() if not environ.get(env)]
    if missing:
        listed = ", ".join(f"{env} (for secret '{name}')" for name, env in missing)
        raise ConfigError(
            f"pyproject.toml: tool.lakeforge.secrets.keys names environment variables not set: {listed}; "
            "set them before running bootstrap"
        )


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    scope = desired.config.secrets.scope
    keys = desired.config.secrets.keys
    with failing_as(STEP, f"scope {scope}"):
        exists = any(s.name == scope for s in w.secrets.list_scopes())
        present = {s.key for s in w.secrets.list_secrets(scope)} if exists and keys else set()
    changes: list[Change] = []
    if exists:
        changes.append(Unchanged(STEP, "secret scope", scope, "", None, {"scope": scope}))
    else:
        changes.append(Create(STEP, "secret scope", scope, "", None, {"scope": scope}))
    for name, env in sorted(keys.items()):
        spec = {"scope": scope, "key": name, "env": env}
        label = f"{scope}/{name}"
        if name not in present:
            changes.append(Create(STEP, "secret", label, f"from ${env}", None, spec))
        elif desired.rotate_secrets:
            changes.append(Update(STEP, "secret", label, f"from ${env} (--rotate-secrets)", None, spec))
        else:
            changes.append(Unchanged(STEP, "secret", label, "present (value not compared)", None, spec))
    return Outcome(tuple(changes), owns=_owns(changes))


def _owns(changes: Sequence[Change]) -> Owned:
    """The scope a change creates is the project's from the intent manifest on (destroy may delete it)."""
    made = {created_marker(c.name) for c in changes if isinstance(c, Create) and c.kind == "secret scope"}
    return Owned(created=frozenset(made))


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
) -> Outcome:
    """Create the scope and put the secrets, or delete the scope (destroy)."""
    for change in changes:
        if change.kind == "secret scope" and isinstance(change, Create):
            with failing_as(STEP, f"scope {change.name}"):
                progress(f"secrets: creating scope {change.name}")
                # ResourceConflict: made by a run whose answer was lost, so it is ours
                with contextlib.suppress(ResourceConflict):
                    w.secrets.create_scope(change.name)
        elif change.kind == "secret" and isinstance(change, Create | Update):
            with failing_as(STEP, f"secret {change.name}"):
                progress(f"secrets: putting {change.name}")
                value = os.environ.get(change.spec["env"])
                if not value:
                    raise ConfigError(f"environment variable {change.spec['env']} is not set")
                w.secrets.put_secret(change.spec["scope"], change.spec["key"], string_value=value)
        elif change.kind == "secret scope" and isinstance(change, Delete):
            with failing_as(STEP, f"scope {change.name}"):
                progress(f"secrets: deleting scope {change.name}")
                with contextlib.suppress(NotFound):
                    w.secrets.delete_scope(change.spec["scope"])
    return Outcome(tuple(changes), owns=_owns(changes))


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    """The target's scope goes if bootstrap created it and no other target may share it; else it is kept."""
    config = desired.config
    scope = config.secrets.scope
    if not created_by_lakeforge(manifest, scope, config.project):
        return Outcome()
    with failing_as(STEP, f"scope {scope}"):
        exists = any(s.name == scope for s in w.secrets.list_scopes())
    if not exists:
        return Outcome()
    if config.secrets.shared_with:
        others = ", ".join(config.secrets.shared_with)
        kept = f"kept: also the scope of target {others}"
        return Outcome((Unchanged(STEP, "secret scope", scope, kept, None, {}),))
    return Outcome((Delete(STEP, "secret scope", scope, "created by lakeforge", None, {"scope": scope}),))
