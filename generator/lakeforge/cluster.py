"""The project's all-purpose cluster: found by name and tags, created, or edited in place; never deleted by
bootstrap (destroy deletes it).

Two clusters of this project and target exist only when a create was retried after its answer was lost (the
SDK retries 429/503 on POST) or two runs raced: the oldest is kept and the others, which lakeforge made, are
deleted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.compute import ClusterDetails, ClusterSource, ClusterSpec, State

from lakeforge.changes import (
    TAG_SPEC,
    Change,
    Create,
    Delete,
    Desired,
    Unchanged,
    Update,
    failing_as,
)
from lakeforge.manifest import Manifest
from lakeforge.payloads import differences, digest, fill, top_fields
from lakeforge.resources import Outcome, Progress, keep_oldest

STEP = "cluster"
_SINGLE_USER = "SINGLE_USER"
_BUSY = (State.PENDING, State.RESTARTING, State.RESIZING)


def url(host: str, cluster_id: str) -> str:
    return f"{host}/#setting/clusters/{cluster_id}/configuration"


def desired_payload(desired: Desired) -> dict[str, Any]:
    """The cluster JSON with placeholders filled and lakeforge's tags added (single_user_name not yet)."""
    payload = fill(dict(desired.config.cluster), desired.config.values())
    payload["custom_tags"] = {**payload.get("custom_tags", {}), **desired.tags}
    payload["custom_tags"][TAG_SPEC] = digest(payload)
    return payload


def find(w: WorkspaceClient, desired: Desired, name: str | None = None) -> list[ClusterDetails]:
    """Clusters of this project and target, oldest first; those named `name` only, when there are such."""
    # Job clusters are listed too (cluster_source JOB); they never carry lakeforge's tags (see
    # Desired.job_cluster), and are skipped here whatever tags a job file gives them.
    ours = [
        c
        for c in w.clusters.list()
        if desired.ours(c.custom_tags) and c.cluster_source is not ClusterSource.JOB
    ]
    ours.sort(key=lambda c: (c.start_time or 0, c.cluster_id or ""))
    named = [c for c in ours if c.cluster_name == name]
    return named or ours


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    payload = desired_payload(desired)
    name = payload["cluster_name"]
    host = desired.host
    with failing_as(STEP, name):
        found = find(w, desired, name)
    if not found:
        detail = f"{payload['spark_version']}, {_size(payload)}"
        spec = {"payload": _with_user(payload, desired.user, None)}
        return Outcome((Create(STEP, "cluster", name, detail, None, spec),), {"cluster_id": None})
    keep, *duplicates = found
    actual = keep.as_dict()
    filled_user = _fills_user(payload)
    compared = {k: v for k, v in payload.items() if not (filled_user and k == "single_user_name")}
    # As for jobs: the file changed when the spec tag differs; otherwise only a field the workspace shows
    # with another value counts (drift), since clusters/get leaves out fields it accepted.
    changed = top_fields(differences(compared, actual, ClusterSpec, echoed_only=True))
    applied = (keep.custom_tags or {}).get(TAG_SPEC) == payload["custom_tags"][TAG_SPEC]
    if applied:
        detail = f"drift: edit {', '.join(changed)}, changed in the workspace" if changed else ""
    else:
        fields = [f for f in changed if f != "custom_tags"] or ["a key removed from the file"]
        detail = f"edit {', '.join(fields)}"
    spec = {
        "cluster_id": keep.cluster_id,
        "state": keep.state.value if keep.state else None,
        "payload": _with_user(payload, desired.user, keep.single_user_name),
    }
    changes: list[Change] = []
    link = url(host, keep.cluster_id)
    if detail:
        restart = ", restarts it (RUNNING)" if keep.state == State.RUNNING else ""
        changes.append(Update(STEP, "cluster", name, f"{detail}{restart}", link, spec))
    else:
        changes.append(Unchanged(STEP, "cluster", name, keep.state.value if keep.state else "", link, spec))
    for extra in duplicates:
        changes.append(
            Delete(
                STEP,
                "cluster",
                name,
                f"duplicate of {keep.cluster_id}",
                url(host, extra.cluster_id),
                {"cluster_id": extra.cluster_id, "duplicate": True},
            )
        )
    return Outcome(tuple(changes), {"cluster_id": keep.cluster_id})


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    """Every cluster of this project and target goes (job clusters are the jobs')."""
    config = desired.config
    with failing_as(STEP, f"clusters tagged {config.project}/{config.target.name}"):
        found = find(w, desired)
    return Outcome(
        tuple(
            Delete(
                STEP,
                "cluster",
                details.cluster_name or details.cluster_id,
                "permanent delete",
                url(desired.host, details.cluster_id),
                {"cluster_id": details.cluster_id},
            )
            for details in found
        )
    )


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
) -> Outcome:
    """Carry out the cluster changes; outputs the cluster id, the changes as done (ids and URLs filled)."""
    cluster_id: str | None = None
    done: list[Change] = []
    timeout = timedelta(minutes=desired.wait_minutes)
    for change in changes:
        with failing_as(STEP, change.name):
            if isinstance(change, Create):
                progress(f"cluster: creating {change.name}")
                created = w.clusters.create(**_arguments(change.spec["payload"]))
                cluster_id = _adopt_one(w, desired, change.name, created.cluster_id, progress)
                if desired.wait:
                    progress(f"cluster: waiting for {change.name} to be RUNNING")
                    w.clusters.wait_get_cluster_running(cluster_id, timeout=timeout)
            elif isinstance(change, Update):
                cluster_id = change.spec["cluster_id"]
                state = change.spec.get("state")
                if state in {s.value for s in _BUSY}:
                    progress(f"cluster: waiting for {change.name} ({state}) before editing it")
                    w.clusters.wait_get_cluster_running(cluster_id, timeout=timeout)
                elif state == State.TERMINATING.value:
                    w.clusters.wait_get_cluster_terminated(cluster_id, timeout=timeout)
                progress(f"cluster: editing {change.name}")
                w.clusters.edit(cluster_id=cluster_id, **_arguments(change.spec["payload"]))
                if desired.wait and state in {s.value for s in (State.RUNNING, *_BUSY)}:
                    progress(f"cluster: waiting for {change.name} to be RUNNING")
                    w.clusters.wait_get_cluster_running(cluster_id, timeout=timeout)
            elif isinstance(change, Delete):
                progress(f"cluster: permanently deleting {change.name} ({change.spec['cluster_id']})")
                _permanent_delete(w, change.spec["cluster_id"])
            else:
                cluster_id = change.spec.get("cluster_id")
        url_id = change.spec.get("cluster_id") or cluster_id
        done.append(replace(change, url=url(desired.host, url_id) if url_id else change.url))
    return Outcome(tuple(done), {"cluster_id": cluster_id})


def _adopt_one(w: WorkspaceClient, desired: Desired, name: str, created: str, progress: Progress) -> str:
    found = find(w, desired, name)
    kept = keep_oldest(found, lambda c: c.cluster_id, lambda i: _permanent_delete(w, i), progress, STEP, name)
    return kept or created


def _permanent_delete(w: WorkspaceClient, cluster_id: str) -> None:
    with contextlib.suppress(NotFound):
        w.clusters.permanent_delete(cluster_id)


def _arguments(payload: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `clusters.create`/`edit`: the payload's fields as the SDK's typed values."""
    spec = ClusterSpec.from_dict(payload)
    return {key: getattr(spec, key) for key in payload if getattr(spec, key) is not None}


def _fills_user(payload: dict[str, Any]) -> bool:
    return payload.get("data_security_mode") == _SINGLE_USER and not payload.get("single_user_name")


def _with_user(payload: dict[str, Any], user: str, current: str | None) -> dict[str, Any]:
    """SINGLE_USER without single_user_name: the current user on create, the cluster's owner after."""
    if not _fills_user(payload):
        return payload
    return {**payload, "single_user_name": current or user}


def _size(payload: dict[str, Any]) -> str:
    if "autoscale" in payload:
        scale = payload["autoscale"]
        return f"{scale.get('min_workers', '?')}-{scale.get('max_workers', '?')} workers"
    return f"{payload.get('num_workers', 0)} workers"
