"""Carry out a `Plan`: the only module that changes a workspace.

Bootstrap applies step by step in the plan's order and stops at the first failure with a `StepError` naming
the step and the resource. Every step is safe to run again: creates look for an existing resource (by name and
tag) first, and adopt the oldest when a retried create made two; files are imported with overwrite. Before its
first change to what the manifest records, apply writes an intent manifest (what lakeforge owned plus what
it is about to make), and at the end the new manifest; an unchanged project writes neither.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound

from lakeforge import cluster, jobs, libraries, secrets, tracking, workspace_files
from lakeforge import manifest as manifests
from lakeforge.changes import Change, Create, Delete, Update, failing_as
from lakeforge.manifest import FileEntry, Manifest
from lakeforge.plan import Plan

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

    cluster_id, changed = cluster.apply(w, plan.of("cluster"), desired, progress)
    done += changed

    manifest = plan.manifest
    intent = _intent(plan)
    if not intent.same_as(manifest):
        with failing_as("workspace", manifests.path_of(root)):
            progress("workspace: recording what this run will make in the manifest")
            manifests.write(w, root, intent, config.project, config.target.name)
        manifest = replace(intent, exists=True)

    done += libraries.apply(w, plan.of("libraries"), desired, cluster_id, progress)

    workspace_changes = plan.of("workspace")
    entries = workspace_files.apply(w, workspace_changes, desired, progress)
    done += workspace_changes

    scope_created = secrets.apply(w, plan.of("secrets"), progress)
    done += plan.of("secrets")

    done += tracking.apply(w, plan.of("mlflow"), desired, progress)

    jobs_done, job_ids = jobs.apply(w, plan.of("jobs"), desired, cluster_id, progress)
    done += jobs_done

    wheel_rel = libraries.relative(desired, desired.wheel.workspace_path(root)) if desired.wheel else None
    final = Manifest(
        files=entries,
        wheels=(wheel_rel,) if wheel_rel else (),
        pypi=config.pypi_packages,
        jobs=job_ids,
        created=plan.manifest.created
        | ({secrets.created_marker(config.secrets.scope)} if scope_created else set()),
        exists=manifest.exists,
    )
    if not final.same_as(manifest):
        with failing_as("workspace", manifests.path_of(root)):
            progress("workspace: writing the manifest")
            manifests.write(w, root, final, config.project, config.target.name)
    return Result(plan, tuple(done))


def _intent(plan: Plan) -> Manifest:
    """The manifest written before the first change: what was owned, plus what this run may make."""
    old = plan.manifest
    desired = plan.desired
    files: dict[str, FileEntry] = dict(old.files)
    for change in plan.of("workspace"):
        if isinstance(change, Create | Update):
            files[change.spec["rel"]] = FileEntry(None, change.spec["type"])
    wheels = set(old.wheels)
    if desired.wheel:
        wheels.add(libraries.relative(desired, desired.wheel.workspace_path(desired.root)))
    created = set(old.created)
    for change in plan.of("secrets"):
        if isinstance(change, Create) and change.kind == "secret scope":
            created.add(secrets.created_marker(change.name))
    return Manifest(
        files=files,
        wheels=tuple(sorted(wheels)),
        pypi=tuple(sorted(set(old.pypi) | set(desired.config.pypi_packages))),
        jobs=old.jobs,
        created=frozenset(created),
        exists=old.exists,
    )


def _destroy(w: WorkspaceClient, plan: Plan, progress: Progress) -> Result:
    desired = plan.desired
    root = desired.root
    done: list[Change] = list(plan.of("identity"))
    for change in plan.of("jobs"):
        with failing_as("jobs", change.name):
            progress(f"jobs: deleting {change.name}")
            _ignore_missing(lambda c=change: w.jobs.delete(c.spec["job_id"]))
        done.append(change)
    for change in plan.of("cluster"):
        with failing_as("cluster", change.name):
            progress(f"cluster: permanently deleting {change.name}")
            _ignore_missing(lambda c=change: w.clusters.permanent_delete(c.spec["cluster_id"]))
        done.append(change)

    files = [c for c in plan.of("workspace") if c.kind != "manifest"]
    workspace_files.apply(w, files, desired, progress)
    done += files
    for change in plan.of("libraries"):
        with failing_as("libraries", change.name):
            progress(f"libraries: deleting {change.name}")
            _ignore_missing(
                lambda c=change: w.workspace.delete(posixpath.dirname(c.spec["path"]), recursive=True)
            )
        done.append(change)
    for change in plan.of("secrets"):
        if isinstance(change, Delete):
            with failing_as("secrets", f"scope {change.name}"):
                progress(f"secrets: deleting scope {change.name}")
                _ignore_missing(lambda c=change: w.secrets.delete_scope(c.spec["scope"]))
        done.append(change)
    target = desired.config.target
    for change in plan.of("mlflow"):
        if isinstance(change, Delete):
            with failing_as("mlflow", f"{change.kind} {change.name}"):
                progress(f"mlflow: deleting {change.kind} {change.name}")
                if change.kind == "experiment":
                    _ignore_missing(lambda c=change: w.experiments.delete_experiment(c.spec["id"]))
                elif desired.config.registry == "unity-catalog":
                    _ignore_missing(lambda: w.registered_models.delete(full_name=target.model))
                else:
                    _ignore_missing(lambda: w.model_registry.delete_model(name=target.model))
        done.append(change)

    # The manifest goes last, so that a destroy that stopped half-way still knows what is left; then the
    # folders it leaves empty (only folders that held lakeforge's files, and only when empty).
    for change in plan.of("workspace"):
        if change.kind == "manifest":
            with failing_as("workspace", change.name):
                progress("workspace: deleting the manifest")
                _ignore_missing(lambda c=change: w.workspace.delete(c.spec["path"]))
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


def _ignore_missing(call: Callable[[], object]) -> None:
    with contextlib.suppress(NotFound):
        call()
