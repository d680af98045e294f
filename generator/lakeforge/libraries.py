"""Libraries on the project's cluster: the project's own wheel, uploaded under
`<workspace_root>/dist/<hash>/`, and the declared PyPI packages.

Installed libraries are skipped. A wheel of this project that an earlier bootstrap uploaded (any other path
under `<workspace_root>/dist/`) is uninstalled (it leaves at the next restart) and its file deleted; a PyPI
package that an earlier bootstrap installed and the config no longer declares is uninstalled. Libraries anyone
else installed are left alone.
"""

from __future__ import annotations

import base64
import contextlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.compute import Library, LibraryInstallStatus, PythonPyPiLibrary
from databricks.sdk.service.workspace import ImportFormat

from lakeforge.changes import (
    Change,
    Create,
    Delete,
    Desired,
    Unchanged,
    failing_as,
    library_path,
    workspace_url,
)
from lakeforge.manifest import Manifest
from lakeforge.resources import Outcome, Owned, Progress

STEP = "libraries"
_GONE = (LibraryInstallStatus.UNINSTALL_ON_RESTART,)


def relative(desired: Desired, workspace_path: str) -> str:
    return posixpath.relpath(workspace_path, desired.root)


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    host, root = desired.host, desired.root
    cluster_id = known.get("cluster_id")
    changes: list[Change] = []
    wheel = desired.wheel
    current = wheel.workspace_path(root) if wheel else None
    if wheel and current:
        with failing_as(STEP, current):
            exists = _exists(w, current)
        cls = Unchanged if exists else Create
        changes.append(
            cls(
                STEP,
                "wheel file",
                current,
                wheel.digest[:16],
                workspace_url(host, current),
                {"path": current},
            )
        )

    statuses = {}
    if cluster_id:
        with failing_as(STEP, f"cluster {cluster_id}"):
            for status in w.libraries.cluster_status(cluster_id):
                if status.library is not None:
                    statuses[_key(status.library)] = status
    link = f"{host}/#setting/clusters/{cluster_id}/libraries" if cluster_id else None

    wanted: list[tuple[str, Library]] = []
    if current:
        wanted.append((f"whl {posixpath.basename(current)}", Library(whl=library_path(current))))
    wanted += [
        (f"pypi {p}", Library(pypi=PythonPyPiLibrary(package=p))) for p in desired.config.pypi_packages
    ]
    for name, library in wanted:
        status = statuses.get(_key(library))
        if status is not None and status.status not in _GONE:
            state = status.status.value if status.status else ""
            changes.append(Unchanged(STEP, "library", name, state, link, {"library": library.as_dict()}))
        else:
            changes.append(Create(STEP, "library", name, "install", link, {"library": library.as_dict()}))

    # Earlier wheels of this project that lakeforge uploaded, and PyPI packages it installed and no longer
    # should.
    dist = library_path(f"{root}/dist") + "/"
    prefix = (wheel.filename.split("-")[0] + "-") if wheel else None
    declared = set(desired.config.pypi_packages)
    for _, status in sorted(statuses.items()):
        library = status.library
        if status.status in _GONE or library is None:
            continue
        old_wheel = (
            library.whl is not None
            and library.whl.startswith(dist)
            and library.whl != (library_path(current) if current else None)
            and (prefix is None or posixpath.basename(library.whl).startswith(prefix))
        )
        old_pypi = (
            library.pypi is not None
            and library.pypi.package in manifest.pypi
            and library.pypi.package not in declared
        )
        if old_wheel or old_pypi:
            name = f"whl {posixpath.basename(library.whl)}" if old_wheel else f"pypi {library.pypi.package}"
            changes.append(
                Delete(
                    STEP, "library", name, "uninstall (on next restart)", link, {"library": library.as_dict()}
                )
            )
    for old in sorted(set(manifest.wheels) - ({relative(desired, current)} if current else set())):
        path = f"{root}/{old}"
        changes.append(
            Delete(STEP, "wheel file", path, "an earlier build", workspace_url(host, path), {"path": path})
        )
    return Outcome(tuple(changes), owns=_owns(desired))


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    """The wheel files bootstrap uploaded (their cluster goes with the cluster)."""
    changes = []
    for rel in sorted(manifest.wheels):
        path = f"{desired.root}/{rel}"
        changes.append(
            Delete(STEP, "wheel file", path, "", workspace_url(desired.host, path), {"path": path})
        )
    return Outcome(tuple(changes))


def _owns(desired: Desired) -> Owned:
    """The wheel this run deploys and the declared PyPI packages."""
    wheel = (relative(desired, desired.wheel.workspace_path(desired.root)),) if desired.wheel else ()
    return Owned(wheels=wheel, pypi=desired.config.pypi_packages)


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
) -> Outcome:
    """Upload the wheel, install what is missing in one call, uninstall what is old in one call, then delete
    old wheel files (their folders). The changes come back with the cluster's library URL."""
    cluster_id = known.get("cluster_id")
    link = f"{desired.host}/#setting/clusters/{cluster_id}/libraries" if cluster_id else None
    for change in changes:
        if change.kind == "wheel file" and isinstance(change, Create) and desired.wheel:
            with failing_as(STEP, change.name):
                progress(f"libraries: uploading {desired.wheel.filename}")
                w.workspace.mkdirs(posixpath.dirname(change.name))
                content = base64.b64encode(desired.wheel.content).decode("ascii")
                w.workspace.import_(change.name, content=content, format=ImportFormat.AUTO, overwrite=True)
    installs = [c for c in changes if c.kind == "library" and isinstance(c, Create)]
    removals = [c for c in changes if c.kind == "library" and isinstance(c, Delete)]
    if installs and cluster_id:
        with failing_as(STEP, ", ".join(c.name for c in installs)):
            progress(f"libraries: installing {len(installs)} on the cluster")
            w.libraries.install(cluster_id, [Library.from_dict(c.spec["library"]) for c in installs])
    if removals and cluster_id:
        with failing_as(STEP, ", ".join(c.name for c in removals)):
            progress(f"libraries: uninstalling {len(removals)} from the cluster")
            w.libraries.uninstall(cluster_id, [Library.from_dict(c.spec["library"]) for c in removals])
    for change in changes:
        if change.kind == "wheel file" and isinstance(change, Delete):
            with failing_as(STEP, change.name):
                progress(f"libraries: deleting {change.name}")
                _delete(w, posixpath.dirname(change.name), recursive=True)
    done = tuple(replace(c, url=link) if c.kind == "library" else c for c in changes)
    return Outcome(done, owns=_owns(desired))


def _key(library: Library) -> str:
    if library.whl:
        return f"whl:{library.whl}"
    if library.pypi:
        return f"pypi:{library.pypi.package}:{library.pypi.repo or ''}"
    return f"other:{sorted(library.as_dict().items())}"


def _exists(w: WorkspaceClient, path: str) -> bool:
    try:
        w.workspace.get_status(path)
        return True
    except NotFound:
        return False


def _delete(w: WorkspaceClient, path: str, recursive: bool = False) -> None:
    with contextlib.suppress(NotFound):
        w.workspace.delete(path, recursive=recursive)
