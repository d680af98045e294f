"""Workspace API 2.0: a tree of directories, notebooks and files under `/`.

Faithful points a client has to get right: the parent folder must exist before an import; an existing path
without `overwrite` is RESOURCE_ALREADY_EXISTS; format SOURCE makes a NOTEBOOK at exactly the given path (the
language is required); format AUTO makes a NOTEBOOK without the extension when the content starts with the
"Databricks notebook source" header (or is .ipynb), else a FILE at the path as given; RAW makes a FILE;
a non-empty folder is deleted only with `recursive`. MLflow experiments created through the fake appear in
the tree as MLFLOW_EXPERIMENT objects, as in a real workspace. A `/Workspace` prefix is accepted and dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .common import Context, Raw, Request, now_ms
from .errors import ApiError, already_exists, does_not_exist, invalid

MAX_SIZE = 10 * 1024 * 1024
_HEADERS = {
    ".py": ("# Databricks notebook source", "PYTHON"),
    ".sql": ("-- Databricks notebook source", "SQL"),
    ".scala": ("// Databricks notebook source", "SCALA"),
    ".r": ("# Databricks notebook source", "R"),
}
_EXTENSIONS = {"PYTHON": "py", "SQL": "sql", "SCALA": "scala", "R": "r"}


@dataclass
class Node:
    path: str
    object_type: str  # DIRECTORY | NOTEBOOK | FILE | MLFLOW_EXPERIMENT
    object_id: int
    created_at: int
    modified_at: int
    language: str | None = None
    content: bytes = b""
    experiment_id: str | None = None

    def info(self) -> dict:
        out: dict[str, Any] = {
            "path": self.path,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "resource_id": self.experiment_id or str(self.object_id),
        }
        if self.object_type == "NOTEBOOK":
            out["language"] = self.language
        if self.object_type == "FILE":
            out.update(size=len(self.content), created_at=self.created_at, modified_at=self.modified_at)
        return out


def normalize(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise invalid(f"Path ({path}) doesn't start with '/'")
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    path = posixpath.normpath(path)
    return "/" if path in ("/", "//") else path


class WorkspaceTree:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.nodes: dict[str, Node] = {}
        self.on_experiment_deleted: Callable[[str], None] | None = None
        for folder in ("/", "/Users", f"/Users/{ctx.settings.user}", "/Shared"):
            self._put(folder, "DIRECTORY")

    def routes(self):
        return [
            ("POST", "/api/2.0/workspace/mkdirs", self.mkdirs),
            ("POST", "/api/2.0/workspace/import", self.import_),
            ("GET", "/api/2.0/workspace/export", self.export),
            ("GET", "/api/2.0/workspace/get-status", self.get_status),
            ("GET", "/api/2.0/workspace/list", self.list),
            ("POST", "/api/2.0/workspace/delete", self.delete),
        ]

    # ---- endpoints ------------------------------------------------------------------------------------
    def mkdirs(self, req: Request) -> dict:
        self.make_dirs(normalize(req.need("path")))
        return {}

    def import_(self, req: Request) -> dict:
        path = normalize(req.need("path"))
        fmt = str(req.body.get("format") or "SOURCE")
        language = req.body.get("language")
        overwrite = str(req.body.get("overwrite", False)).lower() == "true"
        if "content" in req.files:
            content = req.files["content"]
        else:
            try:
                content = base64.b64decode(str(req.body.get("content", "")), validate=True)
            except (binascii.Error, ValueError):
                raise invalid("The content is not valid base64.") from None
        if len(content) > MAX_SIZE:
            raise ApiError(
                400,
                "MAX_NOTEBOOK_SIZE_EXCEEDED",
                f"File size imported is ({len(content)} bytes), exceeded max size ({MAX_SIZE} bytes)",
            )
        object_type, path, language = self._classify(path, fmt, language, content)
        self.put_object(path, object_type, content, language, overwrite)
        return {}

    def export(self, req: Request) -> dict | Raw:
        node = self._get(normalize(req.need("path")))
        fmt = str(req.arg("format") or "SOURCE")
        if node.object_type == "DIRECTORY":
            raise invalid(f"The fake workspace does not export directories ({node.path}).")
        if node.object_type == "MLFLOW_EXPERIMENT":
            raise invalid(f"Cannot export an MLflow experiment ({node.path}).")
        if fmt not in ("SOURCE", "AUTO", "RAW"):
            raise invalid(f"The fake workspace exports only SOURCE, AUTO and RAW, not {fmt}.")
        if node.object_type == "NOTEBOOK":
            content = _with_header(node.content, node.language or "PYTHON")
            file_type = _EXTENSIONS.get(node.language or "PYTHON", "py")
        else:
            content = node.content
            file_type = posixpath.splitext(node.path)[1].lstrip(".")
        if req.flag("direct_download"):
            return Raw(content)
        out = {"content": base64.b64encode(content).decode()}
        if file_type:
            out["file_type"] = file_type
        return out

    def get_status(self, req: Request) -> dict:
        return self._get(normalize(req.need("path"))).info()

    def list(self, req: Request) -> dict:
        node = self._get(normalize(req.need("path")))
        if node.object_type != "DIRECTORY":
            return {"objects": [node.info()]}
        children = [n.info() for n in sorted(self._children(node.path), key=lambda n: n.path)]
        return {"objects": children} if children else {}

    def delete(self, req: Request) -> dict:
        path = normalize(req.need("path"))
        node = self._get(path)
        if path == "/":
            raise invalid("Cannot delete the root folder.")
        recursive = str(req.body.get("recursive", False)).lower() == "true"
        doomed = [n for p, n in self.nodes.items() if p == path or p.startswith(path.rstrip("/") + "/")]
        if node.object_type == "DIRECTORY" and len(doomed) > 1 and not recursive:
            raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty")
        for gone in doomed:
            del self.nodes[gone.path]
            if gone.experiment_id and self.on_experiment_deleted:
                self.on_experiment_deleted(gone.experiment_id)
        return {}

    # ---- used by other modules and by seeding --------------------------------------------------------
    def make_dirs(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        current = ""
        for part in parts:
            current += "/" + part
            node = self.nodes.get(current)
            if node is None:
                self._put(current, "DIRECTORY")
            elif node.object_type != "DIRECTORY":
                raise already_exists(
                    f"Cannot create directory {path} because {current} exists and is not a directory"
                )

    def put_object(
        self, path: str, object_type: str, content: bytes, language: str | None, overwrite: bool
    ) -> Node:
        parent = posixpath.dirname(path)
        parent_node = self.nodes.get(parent)
        if parent_node is None or parent_node.object_type != "DIRECTORY":
            raise does_not_exist(f"The parent folder ({parent}) does not exist.")
        existing = self.nodes.get(path)
        if existing is not None:
            if not overwrite or existing.object_type in ("DIRECTORY", "MLFLOW_EXPERIMENT"):
                raise already_exists(f"Path ({path}) already exists.")
            existing.object_type, existing.content, existing.language = object_type, content, language
            existing.modified_at = now_ms()
            return existing
        return self._put(path, object_type, content, language)

    def add_experiment(self, path: str, experiment_id: str) -> None:
        node = self._put(path, "MLFLOW_EXPERIMENT")
        node.experiment_id = experiment_id

    def check_new_experiment_path(self, path: str) -> None:
        """What a real workspace checks before it creates an experiment at `path`."""
        if not path.startswith("/"):
            raise invalid(
                f"Got an invalid experiment name '{path}'. An experiment name must be an absolute "
                "path within the Databricks workspace, e.g. '/Users/<some-username>/my-experiment'."
            )
        path = normalize(path)
        parent = self.nodes.get(posixpath.dirname(path))
        if parent is None or parent.object_type != "DIRECTORY":
            raise does_not_exist(f"Parent directory {posixpath.dirname(path)} does not exist.")
        existing = self.nodes.get(path)
        if existing is not None and existing.object_type != "MLFLOW_EXPERIMENT":
            raise already_exists(f"Node named '{posixpath.basename(path)}' already exists")

    def dump(self) -> dict:
        out = {}
        for path, node in sorted(self.nodes.items()):
            row = node.info()
            if node.object_type in ("NOTEBOOK", "FILE"):
                row["sha256"] = hashlib.sha256(node.content).hexdigest()
                row["size"] = len(node.content)
                try:
                    row["content"] = node.content.decode()
                except UnicodeDecodeError:
                    row["content_b64"] = base64.b64encode(node.content).decode()
            out[path] = row
        return out

    # ---- helpers --------------------------------------------------------------------------------------
    def _classify(self, path: str, fmt: str, language: Any, content: bytes) -> tuple[str, str, str | None]:
        stem, ext = posixpath.splitext(path)
        if fmt == "SOURCE":
            if not language:
                raise invalid("The language field is required when importing a single file in SOURCE format.")
            if language not in _EXTENSIONS:
                raise invalid(f"Invalid language {language}.")
            return "NOTEBOOK", path, str(language)
        if fmt == "AUTO":
            header = _HEADERS.get(ext.lower())
            if header and content.lstrip().startswith(header[0].encode()):
                return "NOTEBOOK", stem, header[1]
            if ext.lower() == ".ipynb":
                return "NOTEBOOK", stem, "PYTHON"
            return "FILE", path, None
        if fmt == "RAW":
            return "FILE", path, None
        if fmt == "JUPYTER":
            return "NOTEBOOK", path, str(language or "PYTHON")
        raise invalid(f"The fake workspace does not import format {fmt}.")

    def _get(self, path: str) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise does_not_exist(f"Path ({path}) doesn't exist.")
        return node

    def _children(self, path: str) -> list[Node]:
        return [n for p, n in self.nodes.items() if p != "/" and posixpath.dirname(p) == path]

    def _put(self, path: str, object_type: str, content: bytes = b"", language: str | None = None) -> Node:
        now = now_ms()
        node = Node(path, object_type, self.ctx.next_id() * 7919, now, now, language, content)
        self.nodes[path] = node
        return node


def _with_header(content: bytes, language: str) -> bytes:
    header = next(h for h, lang in _HEADERS.values() if lang == language).encode()
    if content.lstrip().startswith(header):
        return content
    return header + b"\n" + content
