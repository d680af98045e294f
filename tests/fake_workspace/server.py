"""The fake Databricks workspace: a real HTTP server on 127.0.0.1 speaking the REST API that bootstrap uses.

Run it as its own process: `python -m tests.fake_workspace --port 0` prints the bound port as its first line
on stdout and serves until terminated. Paths under `/__fake__/` are the test control plane (faults, call
log, state, seeding, settings) and are never logged; everything else is logged in order of arrival.
"""

from __future__ import annotations

import argparse
import base64
import email.parser
import email.policy
import json
import secrets as _secrets
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .artifacts import Artifacts
from .clusters import Clusters, validated_spec
from .common import OTHER_USER, WORKSPACE_ID, Context, Raw, Request, Settings
from .errors import ApiError, invalid
from .faults import Fault, FaultBook
from .jobs import Jobs
from .mlflow_backend import MlflowBackend, MlflowServer
from .profiling import Profiling
from .secrets import Secrets
from .serving import Serving
from .storage import PREFIX as STORAGE_PREFIX
from .storage import BlobStore
from .uc_registry import UcRegistry
from .unity_catalog import UnityCatalog
from .workspace_files import WorkspaceTree, normalize

# POSTs that change nothing; every other non-GET call counts as mutating.
READ_ONLY_POSTS = frozenset(
    {
        "/api/2.0/mlflow/experiments/search",
        "/api/2.0/mlflow/runs/search",
        "/api/2.0/mlflow/registered-models/get-latest-versions",
        "/api/2.1/clusters/events",
        "/api/2.0/mlflow/artifacts/credentials-for-read",
        "/api/2.0/fs/create-download-url",
        "/oidc/v1/token",
    }
)
_REDACTED = "**REDACTED**"


def is_mutating(method: str, path: str) -> bool:
    if path.startswith("/api/2.0/mlflow/logged-models/") and path.endswith("/credentials-for-download"):
        return False
    return method not in ("GET", "HEAD") and path not in READ_ONLY_POSTS


class App:
    """The state of one fake workspace and the dispatch of requests to it."""

    def __init__(self, token: str, user: str, mlflow_url: str | None, mlflow_workspace: str):
        self.ctx = Context(Settings(token, user))
        self.tree = WorkspaceTree(self.ctx)
        self.clusters = Clusters(self.ctx)
        self.secrets = Secrets(self.ctx)
        self.jobs = Jobs(self.ctx, self.clusters, self.tree)
        self.uc = UnityCatalog(self.ctx)
        self.uc_registry = UcRegistry(self.ctx, self.uc)
        self.blobs = BlobStore(self.ctx)
        self.artifacts = Artifacts(self.ctx, self.blobs, self.uc_registry.check_writable)
        self.mlflow = MlflowBackend(self.ctx, self.tree, mlflow_url, mlflow_workspace, self.blobs)
        self.profiling = Profiling(self.ctx, self.uc)
        self.serving = Serving(self.ctx, self.uc, self.uc_registry, self.mlflow, self.profiling.add_table)
        self.faults = FaultBook()
        self.calls: list[dict] = []
        self._calls_lock = threading.Lock()
        self.routes: dict[tuple[str, str], Any] = {}
        modules = (self.clusters, self.tree, self.secrets, self.jobs, self.uc, self.uc_registry)
        for module in (*modules, self.artifacts, self.serving, self.profiling):
            for method, path, handler in module.routes():
                self.routes[(method, path)] = handler
        self.routes[("GET", "/api/2.0/preview/scim/v2/Me")] = self.me
        # (method or "*", compiled pattern on the whole path, handler(req, match)); all take the state lock
        self.regex_routes = list(self.artifacts.regex_routes())
        # (method or "*", prefix, handler, takes the state lock)
        self.prefix_routes = [(m, p, h, True) for m, p, h in self.uc.prefix_routes()]
        self.prefix_routes += [(m, p, h, True) for m, p, h in self.artifacts.prefix_routes()]
        self.prefix_routes += [(m, p, h, True) for m, p, h in self.serving.prefix_routes()]
        self.prefix_routes += [(m, p, h, True) for m, p, h in self.profiling.prefix_routes()]
        self.prefix_routes += [(m, p, h, False) for m, p, h in self.mlflow.prefix_routes()]

    # ---- the API --------------------------------------------------------------------------------------
    def dispatch(self, req: Request) -> dict | Raw:
        if req.path == "/.well-known/databricks-config":
            return {"oidc_endpoint": f"{self.ctx.base_url}/oidc", "workspace_id": WORKSPACE_ID}
        if req.path == "/oidc/.well-known/oauth-authorization-server":
            base = f"{self.ctx.base_url}/oidc"
            return {
                "issuer": base,
                "authorization_endpoint": f"{base}/v1/authorize",
                "token_endpoint": f"{base}/v1/token",
                "grant_types_supported": ["client_credentials"],
            }
        if req.path == "/oidc/v1/token" and req.method == "POST":
            return self.token(req)
        if req.path.startswith(STORAGE_PREFIX):  # presigned URLs: the signature is the credential
            return self.blobs.handle(req)
        if not req.path.startswith("/api/"):
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")
        self.authenticate(req)
        handler = self.routes.get((req.method, req.path))
        if handler is not None:
            with self.ctx.lock:
                return handler(req)
        for method, pattern, regex_handler in self.regex_routes:
            match = pattern.match(req.path)
            if match and method in ("*", req.method):
                with self.ctx.lock:
                    return regex_handler(req, match)
        for method, prefix, prefix_handler, locked in self.prefix_routes:
            if (
                (method == "*" or method == req.method)
                and req.path.startswith(prefix)
                and len(req.path) > len(prefix)
            ):
                rest = urllib.parse.unquote(req.path[len(prefix) :])
                if not locked:
                    return prefix_handler(req, rest)
                with self.ctx.lock:
                    return prefix_handler(req, rest)
        raise ApiError(
            404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path.removeprefix('/api')}'"
        )

    def authenticate(self, req: Request) -> None:
        header = req.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, 401, "Credential was not sent or was of an unsupported type for this API.")
        if token.strip() != self.ctx.settings.token:
            raise ApiError(403, 403, "Invalid access token.")

    def token(self, req: Request) -> dict:
        """OAuth client credentials (M2M): hands out the workspace token for the configured client."""
        client_id, client_secret = req.body.get("client_id"), req.body.get("client_secret")
        header = req.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode(errors="replace")
            client_id, _, client_secret = decoded.partition(":")
        settings = self.ctx.settings
        if client_id != settings.client_id or client_secret != settings.client_secret:
            raise ApiError(401, "invalid_client", "Client authentication failed")
        return {
            "access_token": settings.token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "all-apis",
        }

    def me(self, req: Request) -> dict:
        user = self.ctx.settings.user
        given, _, family = user.split("@")[0].partition(".")
        return {
            "id": "7777777777777777",
            "userName": user,
            "displayName": f"{given.title()} {family.title()}".strip(),
            "active": True,
            "name": {"givenName": given.title(), "familyName": family.title()},
            "emails": [{"value": user, "type": "work", "primary": True}],
            "groups": [
                {"display": "users", "value": "1111", "$ref": "Groups/1111"},
                {"display": "admins", "value": "2222", "$ref": "Groups/2222"},
            ],
            "entitlements": [{"value": "workspace-access"}, {"value": "allow-cluster-create"}],
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
            ],
        }

    # ---- the control plane ----------------------------------------------------------------------------
    def control(self, req: Request) -> dict | list:
        what = req.path.removeprefix("/__fake__/")
        if req.method == "GET" and what == "health":
            return {"ok": True}
        if req.method == "GET" and what == "calls":
            with self._calls_lock:
                return list(self.calls)
        if req.method == "POST" and what == "reset-calls":
            with self._calls_lock:
                self.calls.clear()
            return {}
        if req.method == "POST" and what == "faults":
            if set(req.body) == {"latency"}:
                with self.ctx.lock:
                    self.ctx.settings.update({"latency": req.body["latency"]})
                return {}
            return {"id": self.faults.add(req.body).id}
        if req.method == "GET" and what == "faults":
            return self.faults.list()
        if req.method in ("DELETE", "POST") and what in ("faults", "clear-faults"):
            self.faults.clear()
            return {}
        if req.method == "GET" and what == "config":
            with self.ctx.lock:
                return self.ctx.settings.as_dict()
        if req.method == "POST" and what == "config":
            with self.ctx.lock:
                self.ctx.settings.update(req.body)
                return self.ctx.settings.as_dict()
        if req.method == "GET" and what == "state":
            return self.state()
        if req.method == "POST" and what == "seed":
            return self.seed(req.body)
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No fake control endpoint '{req.method} {req.path}'")

    def state(self) -> dict:
        with self.ctx.lock:
            return {
                "user": self.ctx.settings.user,
                "clusters": self.clusters.dump(),
                **self.jobs.dump(),
                "workspace": self.tree.dump(),
                "secret_scopes": self.secrets.dump(),
                "unity_catalog": {**self.uc.dump(), "registry": self.uc_registry.dump()},
                "storage": self.blobs.dump(),
                "serving_endpoints": self.serving.dump(),
                "data_profiling": self.profiling.dump(),
                "mlflow_workspace": self.mlflow.workspace if self.mlflow.url else None,
                "settings": self.ctx.settings.as_dict(),
            }

    def seed(self, body: dict) -> dict:
        """Pre-create resources that belong to someone else, without logging calls."""
        known = {
            "clusters",
            "jobs",
            "workspace",
            "secret_scopes",
            "experiments",
            "registered_models",
            "catalogs",
            "uc_models",
            "tables",
        }
        if set(body) - known:
            raise invalid(f"unknown seed keys {sorted(set(body) - known)}; known: {sorted(known)}")
        made: dict[str, list] = {"clusters": [], "jobs": [], "experiments": []}
        with self.ctx.lock:
            for entry in body.get("clusters", []):
                spec = entry.get("spec", entry) if isinstance(entry, dict) else entry

                cluster = self.clusters.add(
                    validated_spec(spec), entry.get("creator", OTHER_USER), entry.get("state", "RUNNING")
                )
                for library in entry.get("libraries", []):
                    self.clusters.install(
                        Request(
                            "POST", "", {}, {}, {"cluster_id": cluster.cluster_id, "libraries": [library]}
                        )
                    )
                made["clusters"].append(cluster.cluster_id)
            for entry in body.get("jobs", []):
                settings = entry.get("settings", entry)
                made["jobs"].append(self.jobs.add(settings, entry.get("creator", OTHER_USER)).job_id)
            for entry in body.get("workspace", []):
                path = normalize(entry["path"])
                kind = entry.get("type", "FILE")
                if kind == "DIRECTORY":
                    self.tree.make_dirs(path)
                    continue
                self.tree.make_dirs(path.rsplit("/", 1)[0] or "/")
                content = entry.get("content", "")
                data = content.encode() if isinstance(content, str) else bytes(content)
                language = entry.get("language", "PYTHON") if kind == "NOTEBOOK" else None
                self.tree.put_object(path, kind, data, language, overwrite=True)
            scopes = body.get("secret_scopes", [])
            if isinstance(scopes, dict):
                scopes = [{"name": k, "secrets": v} for k, v in scopes.items()]
            for scope in scopes:
                self.secrets.add_scope(scope["name"])
                for key, value in (scope.get("secrets") or {}).items():
                    self.secrets.put_value(scope["name"], key, str(value).encode())
            for catalog, schemas in (body.get("catalogs") or {}).items():
                self.uc.add_catalog(catalog)
                for schema in schemas:
                    self.uc.add_schema(catalog, schema)
            for full_name in body.get("uc_models", []):
                catalog, schema, name = full_name.lower().split(".")
                self.uc.add_model(catalog, schema, name)
            for full_name, columns in (body.get("tables") or {}).items():
                self.profiling.add_table(full_name, columns)
        for name in body.get("experiments", []):
            made["experiments"].append(self.mlflow.create_experiment(name))
        for name in body.get("registered_models", []):
            self.mlflow.create_model(name)
        return made

    def log(self, req: Request, status: int | None, fault: Fault | None, dropped: str | None = None) -> None:
        entry: dict[str, Any] = {
            "method": req.method,
            "path": req.path,
            "query": {k: v[0] if len(v) == 1 else v for k, v in req.query.items()},
            "status": status,
            "mutating": is_mutating(req.method, req.path),
            "t": time.time(),
        }
        body = _loggable_body(req)
        if body is not None:
            entry["body"] = body
        if fault is not None:
            entry["fault"] = fault.kind()
        if dropped:
            entry["dropped"] = dropped
        with self._calls_lock:
            entry["seq"] = len(self.calls) + 1
            self.calls.append(entry)


def _loggable_body(req: Request) -> Any:
    if req.path.startswith(STORAGE_PREFIX):
        return f"<{len(req.raw)} bytes>" if req.raw else None
    if req.files:
        return {**req.body, **{name: f"<{len(data)} bytes>" for name, data in req.files.items()}}
    if not req.body:
        return None
    body = dict(req.body)
    if req.path.startswith("/api/2.0/secrets/"):
        for key in ("string_value", "bytes_value"):
            if key in body:
                body[key] = _REDACTED
    if req.path == "/oidc/v1/token" and "client_secret" in body:
        body["client_secret"] = _REDACTED
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "FakeDatabricks/1.0"
    app: App  # set on the subclass made by make_server

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        if getattr(self.server, "verbose", False):
            sys.stderr.write("fake-workspace: " + format % args + "\n")

    def _handle(self) -> None:
        try:
            req = self._read_request()
        except ApiError as err:
            self._send_error(err)
            return
        if req.path.startswith("/__fake__/"):
            try:
                self._send_json(200, self.app.control(req))
            except ApiError as err:
                self._send_error(err)
            return
        app = self.app
        latency = app.ctx.settings.latency
        if latency:
            time.sleep(latency)
        fault = app.faults.pick(req.method, req.path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop == "before":
            app.log(req, None, fault, dropped="before")
            self._drop()
            return
        if fault and fault.status and not fault.apply:
            err = fault.error()
            app.log(req, err.status, fault)
            self._send_error(err)
            return
        try:
            answer: dict | list | Raw | ApiError = app.dispatch(req)
        except ApiError as err:
            answer = err
        except Exception as exc:  # a bug in the fake: answer like the real service does, keep serving
            sys.stderr.write(f"fake-workspace: error handling {req.method} {req.path}: {exc!r}\n")
            answer = ApiError(500, "INTERNAL_ERROR", f"fake workspace error: {exc!r}")
        status = answer.status if isinstance(answer, (ApiError, Raw)) else 200
        if fault and fault.drop == "after":
            app.log(req, status, fault, dropped="after")
            self._drop()
            return
        if fault and fault.status and fault.apply:
            answer = fault.error()
            status = answer.status
        if fault and fault.delay_after:
            time.sleep(fault.delay_after)
        app.log(req, status, fault)
        if isinstance(answer, ApiError):
            self._send_error(answer)
        elif isinstance(answer, Raw):
            self._send(answer.status, answer.content, answer.content_type, answer.headers)
        else:
            self._send_json(200, answer)

    def _read_request(self) -> Request:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raw = self._read_chunked()
        else:
            length = int(headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
        req = Request(self.command, parts.path, query, headers, raw=raw)
        content_type = headers.get("content-type", "")
        if not raw or parts.path.startswith(STORAGE_PREFIX):
            return req
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True) or b""
                if part.get_filename() is not None or name == "content":
                    req.files[name] = data
                else:
                    req.body[name] = data.decode()
        elif content_type.startswith("application/x-www-form-urlencoded"):
            req.body = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(
                    400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request"
                ) from None
            if not isinstance(body, dict):
                raise ApiError(400, "MALFORMED_REQUEST", "The body of the request must be a JSON object")
            req.body = body
        return req

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _drop(self) -> None:
        """Close the connection without a byte of answer."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.status, err.body(), err.headers)

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(
        self, status: int, content: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("X-Databricks-Org-Id", WORKSPACE_ID)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    verbose = False


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str = "fake-token",
    user: str = "dev@example.com",
    mlflow_url: str | None = None,
    mlflow_workspace: str | None = None,
) -> FakeServer:
    app = App(token, user, mlflow_url, mlflow_workspace or f"fake-{_secrets.token_hex(6)}")
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = FakeServer((host, port), handler)
    app.ctx.base_url = f"http://{host}:{server.server_address[1]}"
    server.app = app
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_workspace", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port; the port is printed first")
    parser.add_argument("--token", default="fake-token", help="the one valid bearer token")
    parser.add_argument("--user", default="dev@example.com", help="who the token belongs to")
    parser.add_argument("--mlflow-url", help="proxy /api/2.0/mlflow/* to this running `mlflow server`")
    parser.add_argument("--mlflow", action="store_true", help="start an `mlflow server` of its own")
    parser.add_argument(
        "--mlflow-workspace", help="MLflow workspace name to use on the server (default random)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API call")
    parser.add_argument("--verbose", action="store_true", help="log each request on stderr")
    args = parser.parse_args(argv)

    mlflow_server = None
    mlflow_url = args.mlflow_url
    if args.mlflow and not mlflow_url:
        mlflow_server = MlflowServer(Path(tempfile.mkdtemp(prefix="fake-mlflow-"))).start()
        mlflow_url = mlflow_server.url
    server = make_server(args.host, args.port, args.token, args.user, mlflow_url, args.mlflow_workspace)
    server.verbose = args.verbose
    server.app.ctx.settings.latency = args.latency

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
        if mlflow_server is not None:
            mlflow_server.stop()
    return 0
