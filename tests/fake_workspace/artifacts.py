"""Where MLflow's Databricks clients put and get artifact bytes: signed URLs, handed out by the workspace.

Run and logged-model artifacts (tracking URI `databricks`; artifact URIs under
`dbfs:/databricks/mlflow-tracking/<experiment id>/...`, see mlflow_backend.py): MLflow 3 first goes through
databricks-sdk's Files API at `/WorkspaceInternal/Mlflow/Artifacts/<experiment id>/Runs/<run id>/artifacts/..`
and `.../LoggedModels/<model id>/artifacts/..` (mlflow/store/artifact/databricks_tracking_artifact_repo.py,
databricks_sdk_artifact_repo.py; the SDK's calls are in databricks/sdk/mixins/files.py and service/files.py):

- `PUT /api/2.0/fs/files/<path>?overwrite=true` (the bytes; 204), `GET` / `HEAD` of the same (404 NOT_FOUND)
- `HEAD` / `GET /api/2.0/fs/directories/<path>` (`{contents: [{path, is_directory, file_size, last_modified,
  name}]}`; 404 NOT_FOUND "The directory being accessed is not found."), `PUT` to make one
- `POST /api/2.0/fs/create-download-url?path&expire_time` -> `{url, headers}`: a presigned GET (storage.py)

On any error there MLflow falls back to DatabricksArtifactRepository (databricks_artifact_repo.py,
databricks_artifact_repo_resources.py); a test turns the Files API off (`files_api: false` in the fake's
config: 404 ENDPOINT_NOT_FOUND, as a workspace without it answers) to take that path, whose calls are (from
mlflow/protos/databricks_artifacts.proto and service.proto):

- `POST /api/2.0/mlflow/artifacts/credentials-for-write` / `credentials-for-read` `{run_id, path: [..]}` ->
  `{credential_infos: [{run_id, path, signed_uri, type: AWS_PRESIGNED_URL, headers}]}`
- `GET /api/2.0/mlflow/artifacts/list?run_id&path` -> `{root_uri, files: [{path, is_dir, file_size}]}`
- `POST /api/2.0/mlflow/logged-models/{id}/artifacts/credentials-for-upload` / `credentials-for-download`
  `{paths}` -> `{credentials: [{model_id, credential_info}]}`;
  `GET .../logged-models/{id}/artifacts/directories?artifact_directory_path` -> `{files}`

Unity Catalog model versions in default storage (`generate-temporary-credentials` answers
`storage_mode: DEFAULT_STORAGE`, see uc_registry.py) go through PresignedUrlArtifactRepository
(presigned_url_artifact_repo.py) and the Files API's presigned-URL calls
(mlflow/protos/databricks_filesystem_service.proto):

- `POST /api/2.0/fs/create-upload-url` / `create-download-url`
  `{path: /Models/<catalog>/<schema>/<model>/<version>/..}` -> `{url, headers}`
- `GET /api/2.0/fs/directories/Models/...` -> `{contents: [{path, is_directory, file_size, last_modified,
  name}]}`, 404 `NOT_FOUND` for a folder that does not exist (the client reads that as "empty").

Objects live in the fake's BlobStore (storage.py) under `runs/<run id>/`, `logged_models/<model id>/` and
`Models/...`; the Files API's WorkspaceInternal paths name the same objects, so either route reads what the
other wrote.
"""

from __future__ import annotations

import email.utils
import posixpath
import re
from collections.abc import Callable
from typing import Any

from .common import Context, Raw, Request
from .errors import ApiError, invalid, missing_field
from .storage import BlobStore

CREDENTIAL_TYPE = "AWS_PRESIGNED_URL"
LOGGED_MODEL_ARTIFACTS = re.compile(
    r"^/api/2\.0/mlflow/logged-models/(?P<model_id>[^/]+)/artifacts/"
    r"(?P<what>credentials-for-upload|credentials-for-download|directories)$"
)
DIRECTORIES = "/api/2.0/fs/directories/"
FILES = "/api/2.0/fs/files/"
_TRACKING_PATH = re.compile(
    r"^WorkspaceInternal/Mlflow/Artifacts/[^/]+/(?P<kind>Runs|LoggedModels)/(?P<id>[^/]+)/artifacts(?P<rest>/.*)?$"
)


def storage_key(files_path: str) -> str:
    """The BlobStore key of a Files API path (tracking artifacts are stored by run / logged-model id)."""
    path = _clean(files_path)
    match = _TRACKING_PATH.match(path)
    if not match:
        return path
    kind = "runs" if match.group("kind") == "Runs" else "logged_models"
    return f"{kind}/{match.group('id')}{(match.group('rest') or '').rstrip('/')}"


def _clean(path: str | None) -> str:
    path = posixpath.normpath("/" + (path or "")).lstrip("/")
    return "" if path == "." else path


class Artifacts:
    def __init__(self, ctx: Context, blobs: BlobStore, model_version_writable: Callable[[str], None]):
        self.ctx = ctx
        self.blobs = blobs
        # Raises ApiError unless a /Models/... path belongs to a model version that exists (uc_registry.py).
        self.model_version_writable = model_version_writable

    def routes(self):
        return [
            ("POST", "/api/2.0/mlflow/artifacts/credentials-for-write", self.run_write),
            ("POST", "/api/2.0/mlflow/artifacts/credentials-for-read", self.run_read),
            ("GET", "/api/2.0/mlflow/artifacts/list", self.run_list),
            ("POST", "/api/2.0/fs/create-upload-url", self.upload_url),
            ("POST", "/api/2.0/fs/create-download-url", self.download_url),
        ]

    def regex_routes(self):
        return [("*", LOGGED_MODEL_ARTIFACTS, self.logged_model)]

    def prefix_routes(self):
        return [
            ("GET", DIRECTORIES, self.list_directory),
            ("HEAD", DIRECTORIES, self.head_directory),
            ("PUT", DIRECTORIES, self.make_directory),
            ("PUT", FILES, self.put_file),
            ("GET", FILES, self.get_file),
            ("HEAD", FILES, self.get_file),
            ("DELETE", FILES, self.delete_file),
        ]

    # ---- run artifacts --------------------------------------------------------------------------------
    def run_write(self, req: Request) -> dict:
        return self._run_credentials(req, "PUT")

    def run_read(self, req: Request) -> dict:
        return self._run_credentials(req, "GET")

    def _run_credentials(self, req: Request, method: str) -> dict:
        run_id = str(req.need("run_id"))
        paths = req.body.get("path") or req.args("path")
        if isinstance(paths, str):
            paths = [paths]
        infos = []
        for path in paths:
            key = f"runs/{run_id}/{_clean(path)}"
            infos.append(
                {
                    "run_id": run_id,
                    "path": path,
                    "signed_uri": self.blobs.sign(method, key),
                    "type": CREDENTIAL_TYPE,
                    "headers": [],
                }
            )
        return {"credential_infos": infos}

    def run_list(self, req: Request) -> dict:
        run_id = req.arg("run_id") or req.arg("run_uuid")
        if not run_id:
            raise missing_field("run_id")
        path = _clean(req.arg("path"))
        return {"root_uri": f"runs/{run_id}", "files": self.blobs.listing(f"runs/{run_id}", path)}

    # ---- logged-model artifacts -----------------------------------------------------------------------
    def logged_model(self, req: Request, match: re.Match) -> dict:
        model_id, what = match.group("model_id"), match.group("what")
        root = f"logged_models/{model_id}"
        if what == "directories":
            if req.method != "GET":
                raise ApiError(405, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")
            return {"files": self.blobs.listing(root, _clean(req.arg("artifact_directory_path")))}
        if req.method != "POST":
            raise ApiError(405, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")
        method = "PUT" if what == "credentials-for-upload" else "GET"
        paths = req.body.get("paths") or []
        credentials = [
            {
                "model_id": model_id,
                "credential_info": {
                    "path": path,
                    "signed_uri": self.blobs.sign(method, f"{root}/{_clean(path)}"),
                    "type": CREDENTIAL_TYPE,
                    "headers": [],
                },
            }
            for path in paths
        ]
        return {"credentials": credentials}

    # ---- the Files API's presigned URLs (UC default storage) ------------------------------------------
    def upload_url(self, req: Request) -> dict:
        path = self._files_path(req)
        self._writable(path)
        return {"url": self.blobs.sign("PUT", storage_key(path)), "headers": []}

    def download_url(self, req: Request) -> dict:
        path = self._files_path(req)
        self._files_api_on(req)
        if self.blobs.get(storage_key(path)) is None:
            raise _file_not_found()
        return {"url": self.blobs.sign("GET", storage_key(path)), "headers": []}

    def put_file(self, req: Request, rest: str) -> Raw:
        self._files_api_on(req)
        path = _clean(rest)
        self._writable(path)
        key = storage_key(path)
        if self.blobs.get(key) is not None and req.arg("overwrite", "false").lower() != "true":
            raise ApiError(409, "ALREADY_EXISTS", f"The file being created already exists: /{path}")
        self.blobs.put(key, req.raw)
        return Raw(b"", "application/octet-stream", 204)

    def get_file(self, req: Request, rest: str) -> Raw:
        self._files_api_on(req)
        blob = self.blobs.get(storage_key(rest))
        if blob is None:
            raise _file_not_found()
        modified = email.utils.formatdate(blob.modified_ms / 1000, usegmt=True)
        return Raw(blob.data, "application/octet-stream", 200, {"Last-Modified": modified})

    def delete_file(self, req: Request, rest: str) -> Raw:
        self._files_api_on(req)
        key = storage_key(rest)
        if self.blobs.blobs.pop(key, None) is None:
            raise _file_not_found()
        return Raw(b"", "application/octet-stream", 204)

    def head_directory(self, req: Request, rest: str) -> Raw:
        self._files_api_on(req)
        if self.blobs.children(storage_key(rest)) is None:
            raise ApiError(404, "NOT_FOUND", "The directory being accessed is not found.")
        return Raw(b"", "application/octet-stream", 200)

    def make_directory(self, req: Request, rest: str) -> Raw:
        self._files_api_on(req)  # folders are implied by the objects in them
        return Raw(b"", "application/octet-stream", 204)

    def list_directory(self, req: Request, rest: str) -> dict:
        self._files_api_on(req)
        path = _clean(rest)
        children = self.blobs.children(storage_key(path))
        if children is None:
            raise ApiError(404, "NOT_FOUND", "The directory being accessed is not found.")
        contents = []
        for name, child in sorted(children.items()):
            entry: dict[str, Any] = {"path": f"/{path}/{name}", "is_directory": child is None, "name": name}
            if child is not None:
                entry.update(file_size=len(child.data), last_modified=child.modified_ms)
            contents.append(entry)
        return {"contents": contents}

    def _writable(self, path: str) -> None:
        if path.startswith("Models/"):
            self.model_version_writable(path)
        elif not _TRACKING_PATH.match(path):
            message = f"This fake stores only model and MLflow artifact files: /{path}"
            raise ApiError(403, "PERMISSION_DENIED", message)

    def _files_api_on(self, req: Request) -> None:
        """Model files in default storage always go through the Files API; the rest only while it is on."""
        if req.path == "/api/2.0/fs/create-download-url":
            path = _clean(req.arg("path"))
        else:
            path = _clean(req.path.removeprefix(FILES).removeprefix(DIRECTORIES))
        if not path.startswith("Models/") and not self.ctx.settings.files_api:
            where = req.path.removeprefix("/api")
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {where}'")

    @staticmethod
    def _files_path(req: Request) -> str:
        path = req.arg("path")
        if not path or not str(path).startswith("/"):
            raise invalid(f"Invalid path '{path}': an absolute path (/Models/..., /Volumes/...) is required.")
        return _clean(str(path))


def _file_not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The file being accessed is not found.")
