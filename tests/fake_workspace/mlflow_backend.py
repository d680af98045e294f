"""MLflow for the fake workspace: a real open-source `mlflow server`, reached through a reverse proxy.

`/api/2.0/mlflow/*` is forwarded to the server as it is, inside an MLflow *workspace* of its own (header
`X-MLFLOW-WORKSPACE`), so one server started once per test session serves every fake workspace without state
leaking between them. What a Databricks workspace does on top, the fake adds: experiment names must be
absolute paths whose parent folder exists, and a created experiment appears in the workspace tree (a deleted
one leaves it, a restored one comes back); the parameters of a call other than a GET are read from its query
string as well as its body (`_body`); `/api/2.0/mlflow/databricks/registered-models/get` (the SDK's
`model_registry.get_model`) is answered from the server's `registered-models/get`.

Artifacts as on Databricks: an experiment created through the fake gets the artifact location
`dbfs:/databricks/mlflow-tracking/<experiment id>`, its runs `.../<experiment id>/<run id>/artifacts` and its
logged models `.../<experiment id>/logged_models/<model id>/artifacts` (the forms MLflow's
databricks_run_artifact_repo.py / databricks_logged_model_artifact_repo.py match). A server with workspaces
refuses an explicit artifact_location, so the fake reads the location the server chose (its logged models
under `models/`) and rewrites it both ways in the JSON it forwards. The bytes never reach the server: MLflow
moves them through signed URLs (artifacts.py, storage.py).

The workspace model registry (registry URI `databricks`; MLflow's client is
mlflow/store/model_registry/databricks_workspace_model_registry_rest_store.py over the OSS RestStore) is the
server's, plus what Databricks does on top: `model-versions/create` copies the source's files into registry
storage and answers PENDING_REGISTRATION (the client then polls `model-versions/get` until READY, as it does
against a workspace); `model-versions/list-artifacts` and `model-versions/get-signed-download-uri` (what
mlflow/store/artifact/databricks_models_artifact_repo.py calls to download `models:/name/1`) answer from that
copy. Stage transitions (`model-versions/transition-stage`, `archive_existing_versions`) are the server's own,
which implement the same rules (mlflow/store/model_registry/sqlalchemy_store.py).

`MlflowServer` starts that server: `mlflow server` on a sqlite store; it takes tens of seconds to come up
(mostly imports), so start it early and wait only when the first call needs it. A call that finds it still
starting waits up to 45 s, then gets 503 TEMPORARILY_UNAVAILABLE with Retry-After (the SDK retries that); a
test that asserts an exact call log with MLflow calls in it calls `mlflow_server.wait_ready()` first.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import posixpath
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from .common import Context, Raw, Request
from .errors import ApiError, does_not_exist, missing_field
from .storage import BlobStore
from .workspace_files import WorkspaceTree, normalize

PREFIX = "/api/2.0/mlflow/"
DATABRICKS_GET = "/api/2.0/mlflow/databricks/registered-models/get"
WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
TRACKING_ROOT = "dbfs:/databricks/mlflow-tracking/"
_DATABRICKS_FORM = re.compile(rb"dbfs:/databricks/mlflow-tracking/(\d+)(?:(/logged_models/)|(?=[/\"]|$))")
REGISTRY_LIST = PREFIX + "model-versions/list-artifacts"
REGISTRY_DOWNLOAD = PREFIX + "model-versions/get-signed-download-uri"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes, str]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "application/json")
    finally:
        conn.close()


class MlflowServer:
    """A real `mlflow server` subprocess on 127.0.0.1 with workspaces enabled, storing under `workdir`."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "mlflow-server.log"
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.ready_after: float | None = None

    def start(self) -> MlflowServer:
        # No telemetry (offline), no job-execution runner (a second process importing mlflow, unused here).
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--default-artifact-root",
            str(self.workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--enable-workspaces",
        ]
        self.started_at = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Block until /health answers; returns the seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}: {self._log_tail()}")
            if wait_for_health(self.url, 5.0):
                self.ready_after = self.ready_after or time.monotonic() - self.started_at
                return self.ready_after
        raise TimeoutError(f"mlflow server not ready after {timeout} s: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the server and the uvicorn process it spawned (its own process group)."""
        if self.process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(2)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def wait_for_health(url: str, timeout: float) -> bool:
    try:
        status, _, _ = _http(url, "GET", "/health", timeout=timeout)
        return status == 200
    except OSError:
        time.sleep(min(timeout, 0.2))
        return False


class MlflowBackend:
    """The `/api/2.0/mlflow/*` routes of one fake workspace."""

    def __init__(
        self,
        ctx: Context,
        tree: WorkspaceTree,
        url: str | None,
        workspace: str,
        blobs: BlobStore | None = None,
        ready_timeout: float = 45.0,
    ):
        self.ctx = ctx
        self.tree = tree
        self.blobs = blobs or BlobStore(ctx)
        # experiment id -> the artifact location the server chose for it, and the regex that finds them all
        self._locations: dict[bytes, bytes] = {}
        self._by_location: dict[bytes, bytes] = {}
        self._server_form: re.Pattern[bytes] | None = None
        self.url = url.rstrip("/") if url else None
        self.workspace = workspace
        self.ready_timeout = ready_timeout
        self._ready = False
        self._use_header = True
        self._ready_lock = threading.Lock()
        tree.on_experiment_deleted = self._experiment_deleted_in_tree

    # Called without the state lock: these handlers do network I/O and take the lock themselves.
    def prefix_routes(self):
        return [("*", PREFIX, self.proxy)]

    def proxy(self, req: Request, rest: str) -> dict | Raw:
        path = PREFIX + rest
        if path == DATABRICKS_GET:
            return self._databricks_get(req)
        if path == PREFIX + "experiments/create" and req.method == "POST":
            return self._create_experiment(req)
        if path == PREFIX + "experiments/get-by-name" and req.query.get("experiment_name"):
            req.query["experiment_name"] = [self._experiment_name(req.query["experiment_name"][0])]
        if path in (REGISTRY_LIST, REGISTRY_DOWNLOAD) and req.method == "GET":
            return self._registry_artifacts(req, path)
        if path == PREFIX + "model-versions/transition-stage" and req.body.get("archive_existing_versions"):
            stage = str(req.body.get("stage", ""))
            if stage.lower() not in ("staging", "production"):
                # The OSS server answers this with 500 INTERNAL_ERROR; a workspace refuses a bad parameter
                # with a 400 (the wording is the OSS store's; the status code is the fake's choice).
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Model version transition cannot archive existing model versions because '{stage}' is "
                    "not an Active stage. Valid stages are ['Staging', 'Production']",
                )
        answer = self.forward(req.method, path, req.query, _body(req))
        if path == PREFIX + "model-versions/create" and answer.status == 200:
            answer = self._registered(answer)
        if path == PREFIX + "experiments/delete" and answer.status == 200:
            with self.ctx.lock:
                for node in list(self.tree.nodes.values()):
                    if node.experiment_id == str(req.body.get("experiment_id")):
                        del self.tree.nodes[node.path]
        if path == PREFIX + "experiments/restore" and answer.status == 200:
            self._restored_in_tree(str(req.body.get("experiment_id")))
        return answer

    def forward(
        self, method: str, path: str, query: dict[str, list[str]] | None = None, body: dict | None = None
    ) -> Raw:
        self._ensure_ready()
        target = path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._use_header:
            headers[WORKSPACE_HEADER] = self.workspace
        payload = self._to_server(json.dumps(body).encode()) if body is not None else None
        status, content, content_type = _http(self.url, method, target, payload, headers)
        if (content_type or "").startswith("application/json"):
            content = self._from_server(content)
        return Raw(content, content_type or "application/json", status)

    def create_experiment(self, name: str) -> str:
        """For seeding: make the parent folders, then create through the server."""
        with self.ctx.lock:
            self.tree.make_dirs(normalize(name).rsplit("/", 1)[0] or "/")
        req = Request("POST", PREFIX + "experiments/create", {}, {}, {"name": name})
        answer = self._create_experiment(req)
        if answer.status != 200:
            raise ApiError(answer.status, "INVALID_PARAMETER_VALUE", answer.content.decode(errors="replace"))
        return json.loads(answer.content)["experiment_id"]

    def create_model(self, name: str) -> None:
        answer = self.forward("POST", PREFIX + "registered-models/create", None, {"name": name})
        if answer.status != 200:
            raise ApiError(answer.status, "INVALID_PARAMETER_VALUE", answer.content.decode(errors="replace"))

    # ---- helpers --------------------------------------------------------------------------------------
    def _create_experiment(self, req: Request) -> Raw:
        name = req.body.get("name")
        if not name:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'.")
        with self.ctx.lock:
            self.tree.check_new_experiment_path(str(name))
        body = {**req.body, "name": self._experiment_name(str(name))}
        answer = self.forward("POST", PREFIX + "experiments/create", None, body)
        if answer.status == 200:
            experiment_id = str(json.loads(answer.content)["experiment_id"])
            if not body.get("artifact_location"):
                self._learn_location(experiment_id)
            with self.ctx.lock:
                if body["name"] not in self.tree.nodes:
                    self.tree.add_experiment(body["name"], experiment_id)
        return answer

    @staticmethod
    def _experiment_name(name: str) -> str:
        try:
            return normalize(name)
        except ApiError:
            return name

    def _databricks_get(self, req: Request) -> dict | Raw:
        answer = self.forward("GET", PREFIX + "registered-models/get", {"name": req.query.get("name", [])})
        if answer.status != 200:
            return answer
        model: dict[str, Any] = json.loads(answer.content).get("registered_model", {})
        digest = hashlib.sha256(f"{self.workspace}/{model.get('name')}".encode()).hexdigest()[:32]
        model.update(id=digest, permission_level="CAN_MANAGE", user_id=self.ctx.settings.user)
        model.pop("aliases", None)
        return {"registered_model_databricks": model}

    # ---- artifact locations: the server's <-> Databricks' form ----------------------------------------
    def _learn_location(self, experiment_id: str) -> None:
        found = self.forward("GET", PREFIX + "experiments/get", {"experiment_id": [experiment_id]})
        if found.status != 200:
            return
        location = json.loads(found.content)["experiment"].get("artifact_location", "")
        if not location or location.startswith(TRACKING_ROOT):
            return
        with self.ctx.lock:
            self._locations[experiment_id.encode()] = location.encode()
            self._by_location[location.encode()] = experiment_id.encode()
            longest_first = sorted(self._by_location, key=len, reverse=True)
            alternatives = b"|".join(re.escape(loc) for loc in longest_first)
            self._server_form = re.compile(b"(" + alternatives + rb")(?:(/models/)|(?=[/\"]|$))")

    def _from_server(self, content: bytes) -> bytes:
        pattern = self._server_form
        if pattern is None:
            return content

        def databricks(m: re.Match) -> bytes:
            form = TRACKING_ROOT.encode() + self._by_location[m.group(1)]
            return form + b"/logged_models/" if m.group(2) else form

        return pattern.sub(databricks, content)

    def _to_server(self, content: bytes) -> bytes:
        if TRACKING_ROOT.encode() not in content:
            return content

        def server(m: re.Match) -> bytes:
            location = self._locations.get(m.group(1))
            if location is None:
                return m.group(0)
            return location + b"/models/" if m.group(2) else location

        return _DATABRICKS_FORM.sub(server, content)

    # ---- the workspace registry's own storage ---------------------------------------------------------
    @staticmethod
    def _registry_root(name: str, version: str) -> str:
        return f"model-registry/{name}/{version}"

    def _registered(self, answer: Raw) -> Raw:
        """A version just created: its source's files copied into registry storage, PENDING_REGISTRATION."""
        body = json.loads(answer.content)
        version = body.get("model_version", {})
        root = source_root(str(version.get("source", "")))
        with self.ctx.lock:
            if root is not None:
                self.blobs.copy_tree(root, self._registry_root(version["name"], str(version["version"])))
        version["status"] = "PENDING_REGISTRATION"
        return Raw(json.dumps(body).encode(), "application/json", 200)

    def _registry_artifacts(self, req: Request, path: str) -> dict | Raw:
        name, version = req.arg("name"), req.arg("version")
        if not name:
            raise missing_field("name")
        if not version:
            raise missing_field("version")
        found = self.forward("GET", PREFIX + "model-versions/get", {"name": [name], "version": [version]})
        if found.status != 200:
            return found
        root = self._registry_root(name, version)
        relative = (req.arg("path") or "").strip("/")
        with self.ctx.lock:
            if path == REGISTRY_LIST:
                return {"files": self.blobs.listing(root, relative)}
            if self.blobs.get(f"{root}/{relative}") is None:
                message = f"File '{relative}' does not exist in model version {version} of '{name}'."
                raise does_not_exist(message)
            return {"signed_uri": self.blobs.sign("GET", f"{root}/{relative}"), "headers": []}

    def _restored_in_tree(self, experiment_id: str) -> None:
        """A restored experiment is back in the workspace tree where it was (its folder made again if it is
        gone: the fake's choice)."""
        found = self.forward("GET", PREFIX + "experiments/get", {"experiment_id": [experiment_id]})
        if found.status != 200:
            return
        name = normalize(json.loads(found.content)["experiment"]["name"])
        with self.ctx.lock:
            self.tree.make_dirs(posixpath.dirname(name))
            if name not in self.tree.nodes:
                self.tree.add_experiment(name, experiment_id)

    def _experiment_deleted_in_tree(self, experiment_id: str) -> None:
        with contextlib.suppress(OSError, ApiError):
            self.forward("POST", PREFIX + "experiments/delete", None, {"experiment_id": experiment_id})

    def _ensure_ready(self) -> None:
        if self.url is None:
            raise ApiError(
                501,
                "NOT_IMPLEMENTED",
                "This fake workspace was started without an MLflow server (--mlflow or --mlflow-url).",
            )
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            # Wait less than the SDK's 60 s read timeout, then answer 503 (which the SDK retries): a request
            # the client gave up on must not go on to change anything.
            deadline = time.monotonic() + self.ready_timeout
            while not wait_for_health(self.url, 1.0):
                if time.monotonic() > deadline:
                    raise ApiError(
                        503,
                        "TEMPORARILY_UNAVAILABLE",
                        f"The MLflow server at {self.url} is still starting. Please try again later.",
                        {"Retry-After": "1"},
                    )
            status, content, _ = _http(
                self.url,
                "POST",
                "/api/3.0/mlflow/workspaces",
                json.dumps({"name": self.workspace}).encode(),
                {"Content-Type": "application/json"},
            )
            if status not in (200, 201) and b"already exists" not in content.lower():
                self._use_header = False  # a server without workspaces: one shared namespace
            self._ready = True


def _body(req: Request) -> dict | None:
    """The JSON body to forward: none for a GET; otherwise the body, with the query's parameters added.

    A workspace reads the parameters of a DELETE from the query string, where the REST reference has them
    (https://docs.databricks.com/api/model-registry/v1/delete-registered-model: DELETE
    /api/2.0/mlflow/registered-models/delete, query parameter `name`) and databricks-sdk sends them
    (databricks/sdk/service/ml.py `ModelRegistryAPI.delete_model`), and from a JSON body, where MLflow's own
    client sends them (mlflow/utils/rest_utils.py `call_endpoint`: `json=` for every method but GET). The
    open-source server reads only the body of anything but a GET (mlflow/server/handlers.py
    `_get_request_message`), so without this it would refuse the SDK's delete with "Missing value for
    required parameter 'name'"."""
    if req.method == "GET":
        return None
    return {**{key: values[-1] for key, values in req.query.items() if values}, **req.body}


def source_root(source: str) -> str | None:
    """The blob folder (storage.py) holding a model version source's files, if it is one the fake stores."""
    patterns = [
        (r"^models:/(m-[0-9a-f]+)(/.*)?$", "logged_models/{0}{1}"),
        (
            r"databricks/mlflow-tracking/[^/]+/(?:logged_models|models)/([^/]+)/artifacts(/.*)?$",
            "logged_models/{0}{1}",
        ),
        (r"databricks/mlflow-tracking/[^/]+/([^/]+)/artifacts(/.*)?$", "runs/{0}{1}"),
        (r"^runs:/([^/]+)(/.*)?$", "runs/{0}{1}"),
    ]
    for pattern, form in patterns:
        match = re.search(pattern, source)
        if match:
            return form.format(match.group(1), (match.group(2) or "").rstrip("/"))
    return None
