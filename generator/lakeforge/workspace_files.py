"""The project's code in the workspace: `src/<package>/**` as workspace files and `notebooks/*.py` as Python
notebooks, under the target's workspace root; and the serving endpoints' templates the deploy task reads
(`serving/<file>.json`, see lakeforge.serving).

Unchanged files (same sha256 as in the manifest, and still there) are skipped; changed and new ones are
imported
concurrently; files an earlier bootstrap uploaded and that are gone locally are deleted. Nothing the manifest
does not list is touched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import posixpath
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.workspace import ImportFormat, Language

from lakeforge import serving
from lakeforge.changes import (
    Change,
    Create,
    Delete,
    Desired,
    LocalFile,
    Unchanged,
    Update,
    failing_as,
    workspace_url,
)
from lakeforge.config import Config
from lakeforge.manifest import FileEntry, Manifest
from lakeforge.resources import Outcome, Owned, Progress

STEP = "workspace"
MAX_WORKERS = 10  # the SDK keeps 10 connections per host: more threads would only queue
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def local_files(config: Config) -> tuple[LocalFile, ...]:
    """The files bootstrap imports, in a stable order."""
    found: list[LocalFile] = []
    for path in sorted(config.notebooks_dir.glob("*.py")):
        found.append(LocalFile(f"notebooks/{path.stem}", path, _sha256(path), "notebook"))
    package_dir = config.package_dir
    for path in sorted(package_dir.rglob("*")):
        parts = path.relative_to(package_dir).parts
        if (
            not path.is_file()
            or path.suffix in _SKIP_SUFFIXES
            or any(p in _SKIP_DIRS or p.startswith(".") for p in parts)
        ):
            continue
        rel = "/".join(("src", config.package, *parts))
        found.append(LocalFile(rel, path, _sha256(path), "file"))
    for endpoint in config.serving:
        rel, content = serving.template_file(config, endpoint)
        found.append(LocalFile(rel, endpoint.path, hashlib.sha256(content).hexdigest(), "file", content))
    return tuple(found)


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    root, host = desired.root, desired.host
    present = present_files(w, root, manifest.files) if manifest.files else set()
    changes: list[Change] = []
    local = {f.rel: f for f in desired.files}
    for rel, file in local.items():
        full = f"{root}/{rel}"
        entry = manifest.files.get(rel)
        spec = {"rel": rel, "sha256": file.sha256, "type": file.type}
        there = rel in present
        if there and entry is not None and entry.sha256 == file.sha256 and entry.type == file.type:
            changes.append(Unchanged(STEP, file.type, full, "", workspace_url(host, full), spec))
        elif there:
            changes.append(Update(STEP, file.type, full, "content changed", workspace_url(host, full), spec))
        else:
            changes.append(Create(STEP, file.type, full, "", workspace_url(host, full), spec))
    for rel, entry in sorted(manifest.files.items()):
        if rel not in local and rel in present:
            full = f"{root}/{rel}"
            changes.append(
                Delete(STEP, entry.type, full, "gone locally", None, {"rel": rel, "type": entry.type})
            )
    # New and changed files are owned from the intent manifest on, as not yet uploaded (no sha256).
    pending = {
        c.spec["rel"]: FileEntry(None, c.spec["type"]) for c in changes if isinstance(c, Create | Update)
    }
    return Outcome(tuple(changes), owns=Owned(files=pending))


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    """The files the manifest lists that are still there."""
    root = desired.root
    present = present_files(w, root, dict(manifest.files)) if manifest.files else set()
    changes = []
    for rel, entry in sorted(manifest.files.items()):
        if rel in present:
            path = f"{root}/{rel}"
            spec = {"rel": rel, "type": entry.type}
            changes.append(Delete(STEP, entry.type, path, "", workspace_url(desired.host, path), spec))
    return Outcome(tuple(changes))


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
    *,
    max_workers: int = MAX_WORKERS,
) -> Outcome:
    """Import and delete concurrently (`max_workers` at a time); owns the manifest entries of every file now
    in place.

    On a failure the first error is raised once every started call has ended; the intent manifest that apply
    wrote before lists the files of this run as pending, so the next run imports them again.
    """
    local = {f.rel: f for f in desired.files}
    uploads = [c for c in changes if isinstance(c, Create | Update)]
    deletes = [c for c in changes if isinstance(c, Delete)]
    entries = {
        c.spec["rel"]: FileEntry(c.spec["sha256"], c.spec["type"])
        for c in changes
        if isinstance(c, Unchanged)
    }
    folders = _leaf_folders(posixpath.dirname(c.name) for c in uploads)
    for folder in folders:
        with failing_as(STEP, folder):
            w.workspace.mkdirs(folder)

    total = len(uploads) + len(deletes)
    counter = {"done": 0}
    lock = threading.Lock()

    def tick(verb: str) -> None:
        with lock:
            counter["done"] += 1
            progress(f"workspace: {verb} {counter['done']}/{total} files")

    def upload(change: Change) -> tuple[str, FileEntry]:
        file = local[change.spec["rel"]]
        content = base64.b64encode(file.read()).decode("ascii")
        with failing_as(STEP, change.name):
            if file.type == "notebook":
                w.workspace.import_(
                    change.name,
                    content=content,
                    format=ImportFormat.SOURCE,
                    language=Language.PYTHON,
                    overwrite=True,
                )
            else:
                w.workspace.import_(change.name, content=content, format=ImportFormat.AUTO, overwrite=True)
        tick("imported")
        return file.rel, FileEntry(file.sha256, file.type)

    def delete(change: Change) -> None:
        with failing_as(STEP, change.name), contextlib.suppress(NotFound):
            w.workspace.delete(change.name)
        tick("deleted")

    if total:
        with ThreadPoolExecutor(
            max_workers=max(1, max_workers), thread_name_prefix="lakeforge-import"
        ) as pool:
            upload_futures = [pool.submit(upload, c) for c in uploads]
            delete_futures = [pool.submit(delete, c) for c in deletes]
            error: BaseException | None = None
            for future in upload_futures:
                try:
                    rel, entry = future.result()
                    entries[rel] = entry
                except BaseException as exc:  # noqa: BLE001 - the first one is raised below
                    error = error or exc
            for future in delete_futures:
                try:
                    future.result()
                except BaseException as exc:  # noqa: BLE001
                    error = error or exc
            if error is not None:
                raise error
    return Outcome(tuple(changes), owns=Owned(files=entries))


def owned_folders(root: str, rels: Iterable[str]) -> list[str]:
    """Folders under `root` that hold files of `rels`, deepest first (destroy removes them when empty)."""
    folders: set[str] = set()
    for rel in rels:
        parent = posixpath.dirname(rel)
        while parent:
            folders.add(f"{root}/{parent}")
            parent = posixpath.dirname(parent)
    return sorted(folders, key=lambda f: (-f.count("/"), f))


def present_files(w: WorkspaceClient, root: str, files: dict[str, FileEntry]) -> set[str]:
    """Which manifest files are still in the workspace: one list call per folder that holds some."""
    by_folder: dict[str, set[str]] = {}
    for rel in files:
        by_folder.setdefault(posixpath.dirname(rel), set()).add(posixpath.basename(rel))
    present: set[str] = set()
    for folder, names in sorted(by_folder.items()):
        path = f"{root}/{folder}" if folder else root
        with failing_as(STEP, path):
            try:
                listed = {posixpath.basename(o.path or "") for o in w.workspace.list(path)}
            except NotFound:
                continue
        present |= {f"{folder}/{n}" if folder else n for n in names & listed}
    return present


def _leaf_folders(folders: Iterable[str]) -> list[str]:
    unique = sorted(set(folders))
    return [f for f in unique if not any(other.startswith(f + "/") for other in unique)]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
