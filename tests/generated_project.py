"""Running a generated project's own tools with its own .venv and in its local world, never the outer ones."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

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
INHERITED_PREFIXES = ("DATABRICKS_", "MLFLOW_", "PYTEST_")


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
