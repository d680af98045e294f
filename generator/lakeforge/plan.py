"""Plans: what bootstrap or destroy would change in one target, computed by reading the workspace and changing
nothing. A `Plan` is inert data; `apply` carries it out and `render` shows it.

Planning reads in this order, each step through its own module (see lakeforge.resources for their one
contract): identity (an auth failure stops here, before anything else), cluster, libraries, workspace code,
secrets, MLflow, jobs, serving endpoints, data profiling monitors. Everything that can be checked
locally (the config, the secrets' environment variables, the wheel build) is checked before the first call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databricks.sdk import WorkspaceClient

from lakeforge import cluster, jobs, libraries, monitors, secrets, serving, tracking, workspace_files
from lakeforge import manifest as manifests
from lakeforge.changes import Action, Change, Delete, Desired, Unchanged, failing_as, workspace_url
from lakeforge.config import Config
from lakeforge.connection import whoami
from lakeforge.manifest import Manifest
from lakeforge.resources import Owned, Resource, merged
from lakeforge.wheel import build_wheel

# The resources in the order bootstrap plans and applies them (each may use the outputs of those before it),
# and in the order destroy removes them: jobs before the cluster they run on, the manifest after all.
BOOTSTRAP: tuple[Resource, ...] = (
    cluster,
    libraries,
    workspace_files,
    secrets,
    tracking,
    jobs,
    serving,
    monitors,
)
DESTROY: tuple[Resource, ...] = (
    jobs,
    serving,
    monitors,
    cluster,
    workspace_files,
    libraries,
    secrets,
    tracking,
)


@dataclass(frozen=True)
class Plan:
    command: str  # "bootstrap" or "destroy"
    desired: Desired
    manifest: Manifest  # as read from the workspace
    changes: tuple[Change, ...]
    include_mlflow: bool = False
    owns: tuple[Owned, ...] = ()  # what the resources may make: the intent manifest adds it

    @property
    def intent(self) -> Manifest:
        """The manifest written before the first change: what was owned, plus what this run may make."""
        return merged(self.manifest, self.owns)

    @property
    def config(self) -> Config:
        return self.desired.config

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.UNCHANGED for c in self.changes)

    def of(self, step: str) -> list[Change]:
        return [c for c in self.changes if c.step == step]


def check_local(config: Config) -> None:
    """What bootstrap needs locally besides the config (the secrets' environment variables): checked before
    the client is even built, so that a missing variable makes no call at all."""
    secrets.check_environment(config)


def plan_bootstrap(
    w: WorkspaceClient,
    config: Config,
    *,
    rotate_secrets: bool = False,
    wait: bool = False,
    wait_minutes: int = 20,
) -> Plan:
    """Read the target's workspace and return what bootstrap would change there."""
    check_local(config)
    user = whoami(w, config.target)
    wheel = build_wheel(config.project_dir)
    desired = Desired(
        config=config,
        host=_host(w),
        user=user,
        wheel=wheel,
        files=workspace_files.local_files(config),
        rotate_secrets=rotate_secrets,
        wait=wait,
        wait_minutes=wait_minutes,
    )
    with failing_as("workspace", manifests.path_of(desired.root)):
        manifest = manifests.read(w, desired.root)
    changes: list[Change] = [_identity(desired)]
    known: dict[str, Any] = {}
    owns: list[Owned] = []
    for resource in BOOTSTRAP:
        outcome = resource.plan(w, desired, manifest, known)
        changes += outcome.changes
        known.update(outcome.outputs)
        owns.append(outcome.owns)
    return Plan("bootstrap", desired, manifest, tuple(changes), owns=tuple(owns))


def plan_destroy(w: WorkspaceClient, config: Config, *, include_mlflow: bool = False) -> Plan:
    """What destroy would remove: only what carries this project's tags or is listed in its manifest."""
    user = whoami(w, config.target)
    desired = Desired(config=config, host=_host(w), user=user, wheel=None)
    host, root = desired.host, desired.root
    with failing_as("workspace", manifests.path_of(root)):
        manifest = manifests.read(w, root)
    changes: list[Change] = [_identity(desired)]
    for resource in DESTROY:
        changes += resource.plan_destroy(w, desired, manifest, include_mlflow).changes
    if manifest.exists:
        path = manifests.path_of(root)
        changes.append(Delete("workspace", "manifest", path, "", workspace_url(host, path), {"path": path}))
    return Plan("destroy", desired, manifest, tuple(changes), include_mlflow=include_mlflow)


def _identity(desired: Desired) -> Change:
    return Unchanged("identity", "user", desired.user, desired.host, desired.host, {})


def _host(w: WorkspaceClient) -> str:
    return (w.config.host or "").rstrip("/")
