"""`lakeforge doctor`: check what bootstrap needs, locally and from the workspace, without changing anything.

Checks, in order: the config and the files it points to, the secrets' environment variables, uv (to build the
wheel), and auth (one read call: who am I, on which host and, when the target's host wins over a different
DATABRICKS_HOST, saying so). A check that cannot run because an earlier one failed is skipped.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from lakeforge import secrets, workspace_files
from lakeforge.config import Config, load_config
from lakeforge.connection import connect, host_override, whoami
from lakeforge.errors import LakeforgeError
from lakeforge.wheel import find_uv


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str


def run_checks(project_dir: Path, target: str | None) -> list[Check]:
    checks: list[Check] = []
    config: Config | None = None
    try:
        config = load_config(project_dir, target)
        checks.append(
            Check(
                "config",
                True,
                f"[tool.lakeforge] of {config.project_dir / 'pyproject.toml'}, "
                f"target '{config.target.name}' of {', '.join(config.target_names)}",
            )
        )
    except LakeforgeError as exc:
        checks.append(Check("config", False, str(exc)))
    if config is not None:
        files = workspace_files.local_files(config)
        notebooks = sum(1 for f in files if f.type == "notebook")
        checks.append(
            Check(
                "files",
                True,
                f"{config.cluster_path.relative_to(config.project_dir)}, "
                f"{len(config.jobs)} job files, {notebooks} notebooks, "
                f"{len(files) - notebooks} package files",
            )
        )
        try:
            secrets.check_environment(config)
            checks.append(Check("secrets", True, f"{len(config.secrets.keys)} environment variables set"))
        except LakeforgeError as exc:
            checks.append(Check("secrets", False, str(exc)))
    else:
        checks += [
            Check("files", None, "skipped: the config is not valid"),
            Check("secrets", None, "skipped: the config is not valid"),
        ]
    uv = find_uv()
    if uv is None:
        checks.append(Check("uv", False, "not found: pip install uv (bootstrap builds the wheel with it)"))
    else:
        version = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
        checks.append(Check("uv", True, version or uv))
    if config is None:
        checks.append(Check("auth", None, "skipped: the config is not valid"))
        return checks
    try:
        w = connect(config.target)
        user = whoami(w, config.target)
        override = host_override(config.target)
        how = f"{w.config.auth_type}; {override}" if override else w.config.auth_type
        checks.append(Check("auth", True, f"{user} on {(w.config.host or '').rstrip('/')} ({how})"))
    except LakeforgeError as exc:
        checks.append(Check("auth", False, str(exc)))
    return checks
