"""The project's all-purpose cluster: found by name and tags, created, or edited in place; never deleted by
bootstrap (destroy deletes it).

Two clusters of this project and target exist only when a create was retried after its answer was lost (the
SDK retries 429/503 on POST) or two runs raced: the oldest is kept and the others, which lakeforge made, are
deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.compute import ClusterDetails, ClusterSpec, State

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
from lakeforge.config import fill
from lakeforge.diff import differences

STEP = "cluster"
_SINGLE_USER = "SINGLE_USER"
_BUSY = (State.PENDING, State.RESTARTING, State.RESIZING)


def url(host: str, cluster_id: str) -> str:
    return f"{host}/#setting/clusters/{cluster_id}/configuration"


def desired_payload(desired: Desired) -> dict[str, Any]:
    """The cluster JSON with placeholders filled and lakeforge's tags added (single_user_name not yet)."""
    payload = fill(dict(desired.config.cluster), desired.values())
    payload["custom_tags"] = {**payload.get("custom_tags", {}), **desired.tags}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    payload["custom_tags"][TAG_SPEC] = digest
    return payload


def find(w: WorkspaceClient, desired: Desired, name: str | None = None) -> list[ClusterDetails]:
    """Clusters of this project and target, oldest first; those named `name` only, when there are such."""
    ours = [c for c in w.clusters.list() if desired.ours(c.custom_tags)]
    ours.sort(key=lambda c: (c.start_time or 0, c.cluster_id or ""))
    named = [c for c in ours if c.cluster_name == name]
    return named or ours


def plan(w: WorkspaceClient, desired: Desired) -> list[Change]:
    payload = desired_payload(desired)
    name = payload["cluster_name"]
    host = desired.host
    with failing_as(STEP, name):
        found = find(w, desired, name)
    if not found:
        detail = f"{payload['spark_version']}, {_size(payload)}"
        return [
            Create(STEP, "cluster", name, detail, None, {"payload": _with_user(payload, desired.user, None)})
        ]
    keep, *duplicates = found
    actual = keep.as_dict()
    filled_user = _fills_user(payload)
    compared = {k: v for k, v in payload.items() if not (filled_user and k == "single_user_name")}
    changed = differences(compared, actual, ClusterSpec)
    spec = {
        "cluster_id": keep.cluster_id,
        "state": keep.state.value if keep.state else None,
        "payload": _with_user(payload, desired.user, keep.single_user_name),
    }
    changes: list[Change] = []
    link = url(host, keep.cluster_id)
    if changed:
        fields = sorted({c.split(".")[0].split("[")[0] for c in changed})
        if changed == [f"custom_tags.{TAG_SPEC}"]:
            fields = ["a key removed from the file"]
        restart = ", restarts it (RUNNING)" if keep.state == State.RUNNING else ""
        changes.append(Update(STEP, "cluster", name, f"edit {', '.join(fields)}{restart}", link, spec))
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
    return changes


def apply(
    w: WorkspaceClient, changes: Sequence[Change], desired: Desired, progress: Callable[[str], None]
) -> tuple[str | None, list[Change]]:
    """Carry out the cluster changes; returns the cluster id and the changes as done (ids and URLs filled)."""
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
                progress(f"cluster: deleting {change.name} ({change.spec['cluster_id']})")
                _permanent_delete(w, change.spec["cluster_id"])
            else:
                cluster_id = change.spec.get("cluster_id")
        url_id = change.spec.get("cluster_id") or cluster_id
        done.append(replace(change, url=url(desired.host, url_id) if url_id else change.url))
    return cluster_id, done


def _adopt_one(
    w: WorkspaceClient, desired: Desired, name: str, created: str, progress: Callable[[str], None]
) -> str:
    """After a create: if a retried or racing create made more than one, keep the oldest, delete the rest."""
    keep, *extra = find(w, desired, name) or [ClusterDetails(cluster_id=created)]
    for duplicate in extra:
        progress(f"cluster: deleting duplicate {duplicate.cluster_id} of {name}")
        _permanent_delete(w, duplicate.cluster_id)
    return keep.cluster_id or created


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
