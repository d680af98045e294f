"""The project's jobs, one per `databricks/jobs/*.json`: found by name and tags, created, or reset to the
file's settings when they differ; deleted when an earlier bootstrap made them and their file is gone.

Two jobs of one name with this project's tags exist only when a create was retried after its answer was lost,
or two runs raced: the oldest is kept and the others deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.jobs import BaseJob, Job, JobAccessControlRequest, JobSettings

from lakeforge.changes import (
    TAG_SPEC,
    UNKNOWN,
    Change,
    Create,
    Delete,
    Desired,
    Unchanged,
    Update,
    failing_as,
)
from lakeforge.config import JobFile, fill
from lakeforge.diff import differences
from lakeforge.manifest import Manifest

STEP = "jobs"


def url(host: str, job_id: int | str) -> str:
    return f"{host}/#job/{job_id}"


def desired_settings(desired: Desired, job: JobFile, cluster_id: str | None) -> dict[str, Any]:
    """The job file, placeholders filled and lakeforge's tags added (`${cluster_id}` stays when unknown)."""
    payload = {k: v for k, v in job.payload.items() if k != "access_control_list"}
    # The spec tag hashes the file as filled for the target but without the cluster id: it says "the file
    # changed", and stays the same in every workspace; a different cluster id shows in the comparison.
    digest = hashlib.sha256(json.dumps(fill(payload, desired.values()), sort_keys=True).encode()).hexdigest()[
        :12
    ]
    settings = fill(payload, desired.values(cluster_id))
    settings["tags"] = {**settings.get("tags", {}), **desired.tags, TAG_SPEC: digest}
    return settings


def find(w: WorkspaceClient, desired: Desired, name: str) -> list[Job]:
    """This project's jobs named `name`, oldest first, with their full settings."""
    candidates: list[BaseJob] = list(w.jobs.list(name=name))
    found = []
    for base in candidates:
        if base.settings is None or base.settings.name != name:
            continue
        job = w.jobs.get(base.job_id)
        if job.settings is not None and desired.ours(job.settings.tags):
            found.append(job)
    return sorted(found, key=lambda j: (j.created_time or 0, j.job_id or 0))


def find_all(w: WorkspaceClient, desired: Desired) -> list[BaseJob]:
    """Every job of this project and target, whatever its name (destroy)."""
    return [j for j in w.jobs.list() if j.settings is not None and desired.ours(j.settings.tags)]


def plan(w: WorkspaceClient, desired: Desired, cluster_id: str | None, manifest: Manifest) -> list[Change]:
    host = desired.host
    changes: list[Change] = []
    names = set()
    for job in desired.config.jobs:
        settings = desired_settings(desired, job, cluster_id)
        name = settings["name"]
        names.add(name)
        spec = {"key": job.key}
        with failing_as(STEP, name):
            found = find(w, desired, name)
        schedule = _schedule(settings)
        if not found:
            changes.append(Create(STEP, "job", name, schedule, None, spec))
            continue
        keep, *duplicates = found
        spec = {**spec, "job_id": keep.job_id}
        changed = differences(settings, keep.settings.as_dict(), JobSettings)
        if changed:
            fields = sorted({c.split(".")[0].split("[")[0] for c in changed})
            unknown = cluster_id is None and "${cluster_id}" in json.dumps(settings)
            detail = f"reset {', '.join(fields)}" + (f" (cluster id {UNKNOWN})" if unknown else "")
            changes.append(Update(STEP, "job", name, detail, url(host, keep.job_id), spec))
        else:
            changes.append(Unchanged(STEP, "job", name, schedule, url(host, keep.job_id), spec))
        for extra in duplicates:
            changes.append(
                Delete(
                    STEP,
                    "job",
                    name,
                    f"duplicate of {keep.job_id}",
                    url(host, extra.job_id),
                    {"job_id": extra.job_id},
                )
            )
    for name, job_id in sorted(manifest.jobs.items()):
        if name in names:
            continue
        with failing_as(STEP, name):
            try:
                job = w.jobs.get(job_id)
            except NotFound:
                continue
        if job.settings is not None and desired.ours(job.settings.tags):
            changes.append(
                Delete(
                    STEP,
                    "job",
                    job.settings.name or name,
                    "its file is gone",
                    url(host, job_id),
                    {"job_id": job_id},
                )
            )
    return changes


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    cluster_id: str | None,
    progress: Callable[[str], None],
) -> tuple[list[Change], dict[str, int]]:
    """Create, reset and delete; returns the changes with URLs and the ids of the jobs now in place."""
    files = {job.key: job for job in desired.config.jobs}
    done: list[Change] = []
    ids: dict[str, int] = {}
    for change in changes:
        with failing_as(STEP, change.name):
            if isinstance(change, Delete):
                progress(f"jobs: deleting {change.name} ({change.spec['job_id']})")
                _delete(w, change.spec["job_id"])
                done.append(change)
                continue
            job = files[change.spec["key"]]
            settings = desired_settings(desired, job, cluster_id)
            if isinstance(change, Create):
                progress(f"jobs: creating {change.name}")
                job_id = w.jobs.create(**_arguments(settings, job.payload.get("access_control_list"))).job_id
                job_id = _adopt_one(w, desired, change.name, job_id, progress)
            elif isinstance(change, Update):
                progress(f"jobs: resetting {change.name}")
                job_id = change.spec["job_id"]
                w.jobs.reset(job_id, new_settings=JobSettings.from_dict(settings))
            else:
                job_id = change.spec["job_id"]
            ids[change.name] = job_id
            done.append(replace(change, url=url(desired.host, job_id)))
    return done, ids


def _adopt_one(
    w: WorkspaceClient, desired: Desired, name: str, created: int, progress: Callable[[str], None]
) -> int:
    found = find(w, desired, name)
    if not found:
        return created
    keep, *extra = found
    for duplicate in extra:
        progress(f"jobs: deleting duplicate {duplicate.job_id} of {name}")
        _delete(w, duplicate.job_id)
    return keep.job_id or created


def _delete(w: WorkspaceClient, job_id: int) -> None:
    with contextlib.suppress(NotFound):
        w.jobs.delete(job_id)


def _arguments(settings: dict[str, Any], acl: list[dict[str, Any]] | None) -> dict[str, Any]:
    typed = JobSettings.from_dict(settings)
    arguments = {key: getattr(typed, key) for key in settings if getattr(typed, key) is not None}
    if acl:
        arguments["access_control_list"] = [JobAccessControlRequest.from_dict(a) for a in acl]
    return arguments


def _schedule(settings: dict[str, Any]) -> str:
    schedule = settings.get("schedule")
    if not schedule:
        return ""
    paused = " (paused)" if schedule.get("pause_status") == "PAUSED" else ""
    return f"cron {schedule.get('quartz_cron_expression')} {schedule.get('timezone_id', '')}{paused}".strip()
