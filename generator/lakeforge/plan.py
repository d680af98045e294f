"""Plans: what bootstrap or destroy would change in one target, computed by reading the workspace and changing
nothing. A `Plan` is inert data; `apply` carries it out and `render` shows it.

Planning reads in this order, each step through its own module: identity (an auth failure stops here, before
anything else), cluster, libraries, workspace code, secrets, MLflow, jobs. Everything that can be checked
locally (the config, the secrets' environment variables, the wheel build) is checked before the first call.
"""

from __future__ import annotations

from dataclasses import dataclass

from databricks.sdk import WorkspaceClient

from lakeforge import cluster, jobs, libraries, secrets, tracking, workspace_files
from lakeforge import manifest as manifests
from lakeforge.changes import Action, Change, Delete, Desired, Unchanged, failing_as, workspace_url
from lakeforge.config import Config
from lakeforge.connection import whoami
from lakeforge.manifest import Manifest
from lakeforge.wheel import build_wheel

STEPS = ("identity", "cluster", "libraries", "workspace", "secrets", "mlflow", "jobs")


@dataclass(frozen=True)
class Plan:
    command: str  # "bootstrap" or "destroy"
    desired: Desired
    manifest: Manifest  # as read from the workspace
    changes: tuple[Change, ...]
    include_mlflow: bool = False

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
    cluster_changes = cluster.plan(w, desired)
    changes += cluster_changes
    cluster_id = next(
        (c.spec.get("cluster_id") for c in cluster_changes if c.action is not Action.DELETE), None
    )
    changes += libraries.plan(w, desired, cluster_id, manifest)
    changes += workspace_files.plan(w, desired, manifest)
    changes += secrets.plan(w, desired)
    changes += tracking.plan(w, desired)
    changes += jobs.plan(w, desired, cluster_id, manifest)
    return Plan("bootstrap", desired, manifest, tuple(changes))


def plan_destroy(w: WorkspaceClient, config: Config, *, include_mlflow: bool = False) -> Plan:
    """What destroy would remove: only what carries this project's tags or is listed in its manifest."""
    user = whoami(w, config.target)
    desired = Desired(config=config, host=_host(w), user=user, wheel=None)
    host, root = desired.host, desired.root
    with failing_as("workspace", manifests.path_of(root)):
        manifest = manifests.read(w, root)
    changes: list[Change] = [_identity(desired)]

    with failing_as("jobs", f"jobs tagged {config.project}/{config.target.name}"):
        found_jobs = jobs.find_all(w, desired)
    for job in sorted(found_jobs, key=lambda j: j.job_id or 0):
        changes.append(
            Delete(
                "jobs",
                "job",
                job.settings.name or str(job.job_id),
                "",
                jobs.url(host, job.job_id),
                {"job_id": job.job_id},
            )
        )
    with failing_as("cluster", f"clusters tagged {config.project}/{config.target.name}"):
        found_clusters = cluster.find(w, desired)
    for details in found_clusters:
        changes.append(
            Delete(
                "cluster",
                "cluster",
                details.cluster_name or details.cluster_id,
                "permanent delete",
                cluster.url(host, details.cluster_id),
                {"cluster_id": details.cluster_id},
            )
        )

    present = workspace_files.present_files(w, root, dict(manifest.files)) if manifest.files else set()
    for rel, entry in sorted(manifest.files.items()):
        if rel in present:
            path = f"{root}/{rel}"
            changes.append(
                Delete(
                    "workspace",
                    entry.type,
                    path,
                    "",
                    workspace_url(host, path),
                    {"rel": rel, "type": entry.type},
                )
            )
    for rel in sorted(manifest.wheels):
        path = f"{root}/{rel}"
        changes.append(Delete("libraries", "wheel file", path, "", workspace_url(host, path), {"path": path}))
    if manifest.exists:
        path = manifests.path_of(root)
        changes.append(Delete("workspace", "manifest", path, "", workspace_url(host, path), {"path": path}))

    changes += secrets.plan_destroy(w, desired, manifest)
    changes += tracking.plan_destroy(w, desired, include_mlflow)
    return Plan("destroy", desired, manifest, tuple(changes), include_mlflow=include_mlflow)


def _identity(desired: Desired) -> Change:
    return Unchanged("identity", "user", desired.user, desired.host, desired.host, {})


def _host(w: WorkspaceClient) -> str:
    return (w.config.host or "").rstrip("/")
