"""Carry out a `Plan`: the only module that changes a workspace.

Bootstrap applies step by step in the plan's order and stops at the first failure with a `StepError` naming
the step and the resource. Every step is safe to run again: creates look for an existing resource (by name and
tag) first, and adopt the oldest when a retried create made two; files are imported with overwrite. Before its
first change to what the manifest records, apply writes an intent manifest (what lakeforge owned plus what
it is about to make), and at the end the new manifest; an unchanged project writes neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound

from lakeforge import manifest as manifests
from lakeforge import workspace_files
from lakeforge.changes import Change, failing_as
from lakeforge.plan import BOOTSTRAP, DESTROY, Plan
from lakeforge.resources import Owned, merged

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Result:
    """What was done: the plan's changes, with the ids and URLs learnt while applying."""

    plan: Plan
    changes: tuple[Change, ...]


def apply_plan(w: WorkspaceClient, plan: Plan, progress: Progress | None = None) -> Result:
    progress = progress or (lambda message: None)
    if plan.command == "destroy":
        return _destroy(w, plan, progress)
    return _bootstrap(w, plan, progress)


def _bootstrap(w: WorkspaceClient, plan: Plan, progress: Progress) -> Result:
    desired = plan.desired
    config = desired.config
    root = desired.root
    done: list[Change] = list(plan.of("identity"))
    known: dict[str, Any] = {}
    owns: list[Owned] = []
    manifest = plan.manifest
    intent = plan.intent
    for resource, may_make in zip(BOOTSTRAP, plan.owns, strict=True):
        if may_make != Owned() and not intent.same_as(manifest):
            # Before the first resource whose changes the manifest records.
            with failing_as("workspace", manifests.path_of(root)):
                progress("workspace: recording what this run will make in the manifest")
                manifests.write(w, root, intent, config.project, config.target.name)
            manifest = replace(intent, exists=True)
        outcome = resource.apply(w, plan.of(resource.STEP), desired, known, progress)
        done += outcome.changes
        known.update(outcome.outputs)
        owns.append(outcome.owns)
    final = merged(replace(plan.manifest, exists=manifest.exists), owns, replace=True)
    if not final.same_as(manifest):
        with failing_as("workspace", manifests.path_of(root)):
            progress("workspace: writing the manifest")
            manifests.write(w, root, final, config.project, config.target.name)
    return Result(plan, tuple(done))


def _destroy(w: WorkspaceClient, plan: Plan, progress: Progress) -> Result:
    desired = plan.desired
    root = desired.root
    done: list[Change] = list(plan.of("identity"))
    for resource in DESTROY:
        changes = [c for c in plan.of(resource.STEP) if c.kind != "manifest"]
        done += resource.apply(w, changes, desired, {}, progress).changes

    # The manifest goes last, so that a destroy that stopped half-way still knows what is left; then the
    # folders it leaves empty (only folders that held lakeforge's files, and only when empty).
    for change in [c for c in plan.changes if c.kind == "manifest"]:
        with failing_as("workspace", change.name):
            progress("workspace: deleting the manifest")
            with contextlib.suppress(NotFound):
                w.workspace.delete(change.spec["path"])
        done.append(change)
    if plan.manifest.exists:
        owned = [
            *plan.manifest.files,
            *plan.manifest.wheels,
            f"{manifests.FOLDER}/{manifests.NAME}",
            "dist/x",
        ]
        for folder in [*workspace_files.owned_folders(root, owned), root]:
            with failing_as("workspace", folder):
                _remove_if_empty(w, folder)
    return Result(plan, tuple(done))


def _remove_if_empty(w: WorkspaceClient, folder: str) -> None:
    try:
        if next(iter(w.workspace.list(folder)), None) is None:
            w.workspace.delete(folder)
    except NotFound:
        pass
