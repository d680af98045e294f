"""`lakeforge rollback`: give a target's champion role back to the version the current champion replaced,
then point the project's serving endpoints at it.

The decision is the project's own: its `rollback` command moves the role and records why on both versions,
as promotion records its decisions, so a rollback reads in the model's history like a promotion. lakeforge
runs that command in the project's environment (`uv run`, as a developer would) with MLflow pointed at the
target's workspace (the project's world module reads LAKEFORGE_TRACKING_URI and LAKEFORGE_REGISTRY_URI) and
the target's host and profile in the environment, never a token on a command line. Then it plans and applies
the serving step alone, as bootstrap would: the endpoint follows the champion.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from databricks.sdk import WorkspaceClient

from lakeforge import serving
from lakeforge.changes import Change, Desired
from lakeforge.config import Config
from lakeforge.connection import whoami
from lakeforge.errors import LakeforgeError
from lakeforge.manifest import Manifest
from lakeforge.resources import Progress
from lakeforge.wheel import find_uv

_REGISTRY_URI = {"unity-catalog": "databricks-uc", "workspace": "databricks"}


@dataclass(frozen=True)
class RollbackResult:
    target: str
    model: str
    before: str  # the champion version rolled back
    after: str  # the champion version now
    said: str  # what the project's rollback command printed, its last line
    endpoints: tuple[Change, ...]  # the serving endpoints, as updated


def rollback(w: WorkspaceClient, config: Config, progress: Progress) -> RollbackResult:
    target = config.target
    desired = Desired(
        config=config, host=(w.config.host or "").rstrip("/"), user=whoami(w, target), wheel=None
    )
    before = serving.champion_version(w, desired)
    if before is None:
        raise LakeforgeError(
            f"rollback: {target.model} has no champion in target '{target.name}'; nothing to roll back"
        )
    progress(f"rolling back {target.model} from version {before}")
    said = _run_project_rollback(config, desired.host)
    after = serving.champion_version(w, desired)
    if after is None or after == before:
        raise LakeforgeError(f"rollback: the champion of {target.model} is still version {before}")
    planned = serving.plan(w, desired, Manifest(), {})
    done = serving.apply(w, planned.changes, desired, {}, progress)
    return RollbackResult(target.name, target.model, before, after, said, done.changes)


def _run_project_rollback(config: Config, host: str) -> str:
    uv = find_uv()
    if uv is None:
        raise LakeforgeError(
            "rollback: uv is not installed (pip install uv); it runs the project's own rollback"
        )
    target = config.target
    settings = {
        "catalog": target.catalog,
        "schema": target.schema,
        "experiment": target.experiment,
        "model": target.model,
    }
    command = [uv, "run", "--quiet", "--directory", str(config.project_dir), config.project]
    for name, value in settings.items():
        command += ["-p", f"{name}={value}"]
    command.append("rollback")
    env = {
        **os.environ,
        "LAKEFORGE_TRACKING_URI": "databricks",
        "LAKEFORGE_REGISTRY_URI": _REGISTRY_URI[config.registry],
        "DATABRICKS_HOST": host,
    }
    if target.profile:
        env["DATABRICKS_CONFIG_PROFILE"] = target.profile
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if result.returncode != 0:
        raise LakeforgeError(
            f"rollback: {config.project} rollback failed: {lines[-1] if lines else 'no output'}"
        )
    return lines[-1] if lines else ""
