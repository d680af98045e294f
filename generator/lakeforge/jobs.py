"""The project's jobs, one per `databricks/jobs/*.json`: found by name and tags, created, or reset to the
file's settings when they differ; deleted when an earlier bootstrap made them and their file is gone.

Whether a job needs a reset is decided against the spec lakeforge last applied, whose digest is in the job's
`lakeforge-spec` tag, not against what the workspace echoes: the Jobs API does not return every field it
accepts, so comparing answers would reset the job on every run. A field the workspace does show with another
value is drift (someone edited the job) and is reset too, reported as such. A job naming another's id
(`${jobs.training.id}`) is planned and made after that one.

Two jobs of one name with this project's tags exist only when a create was retried after its answer was lost,
or two runs raced: the oldest is kept and the others deleted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
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
from lakeforge.config import JobFile, order_by_references
from lakeforge.manifest import Manifest
from lakeforge.payloads import PLACEHOLDER, differences, digest, fill, top_fields
from lakeforge.resources import Outcome, Owned, Progress, keep_oldest

STEP = "jobs"


def url(host: str, job_id: int | str) -> str:
    return f"{host}/#job/{job_id}"


def desired_settings(
    desired: Desired, job: JobFile, cluster_id: str | None, job_ids: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """The job file, placeholders filled and lakeforge's tags added, the spec tag last: the digest of all
    the rest. A value not known yet (`${cluster_id}` before the cluster exists) stays a placeholder."""
    payload = {k: v for k, v in job.payload.items() if k != "access_control_list"}
    settings = fill(payload, desired.values(cluster_id, job_ids))
    settings["tags"] = {**settings.get("tags", {}), **desired.tags}
    settings["tags"][TAG_SPEC] = digest(settings)
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


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    host = desired.host
    cluster_id = known.get("cluster_id")
    files = {job.key: job for job in desired.config.jobs}
    changes: list[Change] = []
    names = set()
    ids: dict[str, int] = {}
    for key in order_by_references(desired.config.jobs):
        settings = desired_settings(desired, files[key], cluster_id, ids)
        name = settings["name"]
        names.add(name)
        spec = {"key": key}
        with failing_as(STEP, name):
            found = find(w, desired, name)
        schedule = _schedule(settings)
        if not found:
            changes.append(Create(STEP, "job", name, schedule, None, spec))
            continue
        keep, *duplicates = found
        ids[key] = keep.job_id
        spec = {**spec, "job_id": keep.job_id}
        link = url(host, keep.job_id)
        detail = _reset_detail(settings, keep.settings.as_dict())
        if detail:
            changes.append(Update(STEP, "job", name, detail, link, spec))
        else:
            changes.append(Unchanged(STEP, "job", name, schedule, link, spec))
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
    return Outcome(tuple(changes))


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    """Every job of this project and target, whatever its name."""
    config = desired.config
    with failing_as(STEP, f"jobs tagged {config.project}/{config.target.name}"):
        found = find_all(w, desired)
    return Outcome(
        tuple(
            Delete(
                STEP,
                "job",
                job.settings.name or str(job.job_id),
                "",
                url(desired.host, job.job_id),
                {"job_id": job.job_id},
            )
            for job in sorted(found, key=lambda j: j.job_id or 0)
        )
    )


def _reset_detail(settings: dict[str, Any], actual: dict[str, Any]) -> str:
    """Why the job needs a reset, or "" when it does not: its file changed since the last bootstrap (the
    spec tag differs), or a field the workspace shows differs from the file (drift)."""
    changed = top_fields(differences(settings, actual, JobSettings, echoed_only=True))
    if (actual.get("tags") or {}).get(TAG_SPEC) != settings["tags"][TAG_SPEC]:
        changed = [f for f in changed if f != "tags"]
        pending = sorted(set(PLACEHOLDER.findall(json.dumps(settings))))
        unknown = f" ({', '.join(pending)} {UNKNOWN[1:-1]})" if pending else ""
        return f"reset {', '.join(changed) or 'settings changed since the last bootstrap'}{unknown}"
    if changed:
        return f"drift: reset {', '.join(changed)}, changed in the workspace"
    return ""


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
) -> Outcome:
    """Create, reset and delete, in the plan's order (a job after those whose ids it names); the changes
    come back with URLs, and the manifest owns the jobs now in place, by name."""
    cluster_id = known.get("cluster_id")
    files = {job.key: job for job in desired.config.jobs}
    done: list[Change] = []
    ids: dict[str, int] = {}
    by_key: dict[str, int] = {}
    for change in changes:
        with failing_as(STEP, change.name):
            if isinstance(change, Delete):
                progress(f"jobs: deleting {change.name} ({change.spec['job_id']})")
                _delete(w, change.spec["job_id"])
                done.append(change)
                continue
            job = files[change.spec["key"]]
            settings = desired_settings(desired, job, cluster_id, by_key)
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
            by_key[job.key] = job_id
            done.append(replace(change, url=url(desired.host, job_id)))
    return Outcome(tuple(done), {"job_ids": by_key}, Owned(jobs=ids))


def _adopt_one(w: WorkspaceClient, desired: Desired, name: str, created: int, progress: Progress) -> int:
    found = find(w, desired, name)
    return keep_oldest(found, lambda j: j.job_id, lambda i: _delete(w, i), progress, STEP, name) or created


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
