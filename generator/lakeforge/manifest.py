"""What lakeforge owns in one target's workspace folder: `<workspace_root>/.lakeforge/manifest.json`.

The manifest is the record that lets bootstrap skip unchanged files and remove only what it uploaded, and lets
destroy remove only what bootstrap made. It holds no secret and no timestamp, and is written with sorted keys,
so an unchanged project writes nothing. Paths are relative to the workspace root.

    {"format": 1, "project": "churn-model", "target": "dev",
     "files": {"notebooks/01_feature_pipeline": {"sha256": "…", "type": "notebook"},
               "src/churn_model/config.py": {"sha256": null, "type": "file"}},
     "wheels": ["dist/3f1c…/churn_model-0.1.0+3f1c…-py3-none-any.whl"],
     "pypi": ["lightgbm==4.5.0"],
     "jobs": {"[dev] churn-model training": 123},
     "created": ["secret_scope:churn-model-dev"]}

A file whose sha256 is null was being uploaded when a run stopped: the next run uploads it again. Bootstrap
writes the manifest twice when something changes: before its first change (the union of what it owned and
what it is about to own, new files as null), and at the end (the new state). A crash in between leaves a
manifest that still names everything lakeforge may have made.

What bootstrap made in MLflow is not recorded here but on the objects themselves (tracking.py): destroy
deletes the manifest and keeps the experiment and the model unless asked. Markers "experiment", "model" and
"schema" that older versions wrote are kept as they are and read by nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.workspace import ExportFormat, ImportFormat

from lakeforge.errors import StepError

FORMAT = 1
FOLDER = ".lakeforge"
NAME = "manifest.json"


@dataclass(frozen=True)
class FileEntry:
    sha256: str | None  # None: an upload was started but not confirmed
    type: str  # "notebook" or "file"


@dataclass(frozen=True)
class Manifest:
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    wheels: tuple[str, ...] = ()
    pypi: tuple[str, ...] = ()
    jobs: Mapping[str, int] = field(default_factory=dict)
    created: frozenset[str] = frozenset()
    exists: bool = field(default=False, compare=False)

    def to_json(self, project: str, target: str) -> str:
        data: dict[str, Any] = {
            "format": FORMAT,
            "project": project,
            "target": target,
            "files": {p: {"sha256": e.sha256, "type": e.type} for p, e in sorted(self.files.items())},
            "wheels": sorted(self.wheels),
            "pypi": sorted(self.pypi),
            "jobs": dict(sorted(self.jobs.items())),
            "created": sorted(self.created),
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a lakeforge manifest of format {FORMAT}")
        return cls(
            files={
                p: FileEntry(e.get("sha256"), e.get("type", "file")) for p, e in data.get("files", {}).items()
            },
            wheels=tuple(data.get("wheels", [])),
            pypi=tuple(data.get("pypi", [])),
            jobs={name: int(job_id) for name, job_id in data.get("jobs", {}).items()},
            created=frozenset(data.get("created", [])),
            exists=True,
        )

    def same_as(self, other: Manifest) -> bool:
        return self.to_json("", "") == other.to_json("", "")


def path_of(workspace_root: str) -> str:
    return f"{workspace_root}/{FOLDER}/{NAME}"


def read(w: WorkspaceClient, workspace_root: str) -> Manifest:
    """The manifest of this target, or an empty one when bootstrap never ran there."""
    path = path_of(workspace_root)
    try:
        exported = w.workspace.export(path, format=ExportFormat.SOURCE)
    except NotFound:
        return Manifest()
    try:
        return Manifest.from_json(base64.b64decode(exported.content or "").decode("utf-8"))
    except (ValueError, AttributeError) as exc:
        raise StepError(
            "manifest", path, f"cannot be read ({exc}); if it was edited by hand, restore or delete it"
        ) from None


def write(w: WorkspaceClient, workspace_root: str, manifest: Manifest, project: str, target: str) -> None:
    path = path_of(workspace_root)
    if not manifest.exists:
        w.workspace.mkdirs(f"{workspace_root}/{FOLDER}")
    content = base64.b64encode(manifest.to_json(project, target).encode("utf-8")).decode("ascii")
    w.workspace.import_(path, content=content, format=ImportFormat.AUTO, overwrite=True)
