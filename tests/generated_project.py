"""Running a generated project's own tools with its own .venv and in its local world, never the outer ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtimes import runtime_lines, spark_versions

BIN = Path(sys.executable).parent
# What the outer `uv run` and pytest put in the environment, and what would point the generated project at
# another environment, world or store. The inner uv must use the project's own .venv and its local world.
INHERITED = {
    "VIRTUAL_ENV",
    "UV_RUN_RECURSION_DEPTH",
    "UV_PROJECT_ENVIRONMENT",
    "UV_PROJECT",
    "UV_PYTHON",
    "UV_NO_SYNC",
    "UV_FROZEN",
    "UV_LOCKED",
    "UV_NO_PROJECT",
    "UV_SYSTEM_PYTHON",
    "PYTHONPATH",
    "PYTHONHOME",
    "CONDA_PREFIX",
    "LAKEHOUSE_DIR",
    "LAKEFORGE_WORLD",
    "SPARK_REMOTE",
}
INHERITED_PREFIXES = ("DATABRICKS_", "MLFLOW_", "PYTEST_", "LAKEFORGE_")


def uv() -> str:
    found = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed; it is a dependency of lakeforge (uv sync --extra test)")
    return found


def project_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED and not k.startswith(INHERITED_PREFIXES)}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != BIN]
    env["PATH"] = os.pathsep.join(path)
    return env


# The projects the slow tests install for real: the default (the newest LTS ML runtime, Python 3.12) and the
# oldest runtime (15.4 LTS ML, Python 3.11) with every other answer changed.
OLDEST_CPU = spark_versions()[-2]
OLDEST_PYTHON = min((line["python"] for line in runtime_lines()), key=lambda v: tuple(map(int, v.split("."))))
RUNS = {
    "default": {},
    "aws-azure-devops-workspace-fs-15.4": {
        "cloud": "aws",
        "ci": "azure-devops",
        "registry": "workspace",
        "feature_store": True,
        "databricks_runtime": OLDEST_CPU,
    },
}
STEPS = ["features", "train", "promote", "score", "monitor"]


def find_python(version: str, env: dict[str, str]) -> str | None:
    """An interpreter of this minor version already on this machine (uv's, on PATH, or pyenv's)."""

    def works(command: list[str]) -> str | None:
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        except OSError:
            return None
        lines = done.stdout.strip().splitlines()
        return lines[-1] if done.returncode == 0 and lines else None

    found = works([uv(), "python", "find", "--no-project", version])
    if found:
        return found
    probe = "import sys; print(sys.executable)"
    candidates = [f"python{version}"]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    for candidate in candidates:
        found = works([candidate, "-c", probe])
        if found:
            return found
    return None


def uv_run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`uv run` in a generated project, with its own .venv."""
    return subprocess.run(
        [uv(), "run", "--directory", str(project), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def tail(result: subprocess.CompletedProcess[str], chars: int = 6000) -> str:
    return f"exit {result.returncode}\n{(result.stdout + result.stderr)[-chars:]}"
