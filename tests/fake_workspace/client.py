"""`FakeWorkspace`: start the fake in its own process, talk to its control plane, stop it.

with FakeWorkspace.start() as ws:
    w = WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat")   # or ws.client()
    ...
    ws.inject(status=429, retry_after=1, match={"method": "POST", "path": "/api/2.1/clusters/create"})
    assert ws.calls(mutating_only=True) == []
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeWorkspace:
    def __init__(
        self,
        url: str,
        token: str = "fake-token",
        user: str = "dev@example.com",
        process: subprocess.Popen | None = None,
    ):
        self.url = url
        self.token = token
        self.user = user
        self.process = process

    @classmethod
    def start(
        cls,
        *,
        token: str = "fake-token",
        user: str = "dev@example.com",
        mlflow_url: str | None = None,
        latency: float = 0.0,
        startup_timeout: float = 30.0,
        verbose: bool = False,
    ) -> FakeWorkspace:
        command = [
            sys.executable,
            "-m",
            "tests.fake_workspace",
            "--port",
            "0",
            "--token",
            token,
            "--user",
            user,
        ]
        if mlflow_url:
            command += ["--mlflow-url", mlflow_url]
        if latency:
            command += ["--latency", str(latency)]
        if verbose:
            command.append("--verbose")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT
        )
        ready, _, _ = select.select([process.stdout], [], [], startup_timeout)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            process.kill()
            process.wait()
            raise RuntimeError(
                f"fake workspace did not start (exit {process.returncode}, first line {line!r})"
            )
        return cls(f"http://127.0.0.1:{line}", token, user, process)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> FakeWorkspace:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- for code under test --------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The variables that make databricks-sdk's unified auth find this workspace."""
        return {"DATABRICKS_HOST": self.url, "DATABRICKS_TOKEN": self.token, "DATABRICKS_AUTH_TYPE": "pat"}

    def client(self, **config: Any):
        """A `WorkspaceClient` for this workspace (PAT); `config` sets other `Config` attributes, such as
        `http_timeout_seconds` or `retry_timeout_seconds`."""
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.core import Config

        return WorkspaceClient(config=Config(host=self.url, token=self.token, auth_type="pat", **config))

    # ---- the control plane ----------------------------------------------------------------------------
    def calls(self, mutating_only: bool = False, path_prefix: str | None = None) -> list[dict]:
        """The API calls received, in order: {seq, method, path, query, status, body?, mutating, fault?}."""
        rows = self._control("GET", "calls")
        if mutating_only:
            rows = [r for r in rows if r["mutating"]]
        if path_prefix:
            rows = [r for r in rows if r["path"].startswith(path_prefix)]
        return rows

    def reset_calls(self) -> None:
        self._control("POST", "reset-calls")

    def inject(self, **fault: Any) -> int | None:
        """Add a fault (see faults.py); `inject(latency=0.05)` sets the latency added to every call."""
        return self._control("POST", "faults", fault).get("id")

    def faults(self) -> list[dict]:
        return self._control("GET", "faults")

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def configure(self, **settings: Any) -> dict:
        """Change the fake's settings: latency, cluster_start_seconds, run_seconds, job_results, ..."""
        return self._control("POST", "config", settings)

    def state(self) -> dict:
        return self._control("GET", "state")

    def seed(self, **resources: Any) -> dict:
        """Pre-create resources owned by someone else: clusters, jobs, workspace, secret_scopes, experiments,
        registered_models, catalogs, uc_models. Returns the ids of what it made."""
        return self._control("POST", "seed", resources)

    def _control(self, method: str, what: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/__fake__/{what}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"fake control {method} {what}: {err.code} {err.read().decode()}") from None
