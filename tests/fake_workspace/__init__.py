"""A fake Databricks workspace for lakeforge's tests: a real HTTP server in its own process.

`FakeWorkspace.start()` runs `python -m tests.fake_workspace`; `MlflowServer` runs the real `mlflow server` it
proxies MLflow calls to. The pytest fixtures live in tests/conftest.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["FakeWorkspace", "MlflowServer"]

if TYPE_CHECKING:
    from .client import FakeWorkspace
    from .mlflow_backend import MlflowServer


def __getattr__(name: str):
    # Imported on use, so that the server process (`python -m tests.fake_workspace`) does not load the client.
    if name == "FakeWorkspace":
        from .client import FakeWorkspace

        return FakeWorkspace
    if name == "MlflowServer":
        from .mlflow_backend import MlflowServer

        return MlflowServer
    raise AttributeError(name)
