"""Data profiling (Lakehouse Monitoring) monitors, one per `databricks/monitors/*.json`, through the data
quality API (`/api/data-quality/v1/monitors`; the docs' "Create a data profile using the API" page, which
calls the older `quality_monitors` API deprecated).

A monitor is made on a table that exists: until the project's first run has written it (the labelled
predictions appear once labels for a scored batch arrive), the plan shows the monitor waiting for its table.
The API takes ids, not names: bootstrap looks up the table's `table_id` and the output schema's `schema_id`.
A monitor carries no tags, so what bootstrap created is recorded in the manifest (`monitor:<table>`), and
destroy deletes only those. An existing monitor is left as it is: a changed file is not applied to it
(delete the monitor, and the next bootstrap creates it from the file).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceConflict
from databricks.sdk.service.dataquality import DataProfilingConfig, Monitor

from lakeforge.changes import Change, Create, Delete, Desired, Unchanged, failing_as
from lakeforge.config import MonitorFile
from lakeforge.manifest import Manifest
from lakeforge.payloads import fill
from lakeforge.resources import Outcome, Owned, Progress

STEP = "monitors"
KIND = "data profiling monitor"


def created_marker(table: str) -> str:
    return f"monitor:{table}"


def url(host: str, table: str) -> str:
    return f"{host}/explore/data/{table.replace('.', '/')}?o=quality"


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    changes: list[Change] = []
    for file in desired.config.monitors:
        spec = _filled(desired, file)
        table = spec["table"]
        with failing_as(STEP, table):
            table_id = _table_id(w, table)
            monitor = _monitor(w, table_id) if table_id else None
        link = url(desired.host, table)
        if table_id is None:
            changes.append(
                Unchanged(STEP, KIND, table, "waits for its table (written by the first run)", None, {})
            )
        elif monitor is None:
            changes.append(Create(STEP, KIND, table, "InferenceLog profile", link, {"key": file.key}))
        else:
            changes.append(Unchanged(STEP, KIND, table, _status(monitor), link, {}))
    made = {created_marker(c.name) for c in changes if isinstance(c, Create)}
    return Outcome(tuple(changes), owns=Owned(created=frozenset(made)))


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    changes: list[Change] = []
    for file in desired.config.monitors:
        table = _filled(desired, file)["table"]
        if created_marker(table) not in manifest.created:
            continue
        with failing_as(STEP, table):
            table_id = _table_id(w, table)
            monitor = _monitor(w, table_id) if table_id else None
        if monitor is not None:
            detail = "its metric tables and dashboard stay"
            spec = {"table_id": table_id}
            changes.append(Delete(STEP, KIND, table, detail, url(desired.host, table), spec))
    return Outcome(tuple(changes))


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
) -> Outcome:
    files = {file.key: file for file in desired.config.monitors}
    made: set[str] = set()
    for change in changes:
        with failing_as(STEP, change.name):
            if isinstance(change, Create):
                spec = _filled(desired, files[change.spec["key"]])
                progress(f"monitors: creating the data profiling monitor of {change.name}")
                table_id = w.tables.get(spec["table"]).table_id
                schema_id = w.schemas.get(spec["output_schema"]).schema_id
                config = DataProfilingConfig.from_dict(
                    {**spec["data_profiling_config"], "output_schema_id": schema_id}
                )
                monitor = Monitor(object_type="table", object_id=table_id, data_profiling_config=config)
                with contextlib.suppress(ResourceConflict):  # made by a create whose answer was lost
                    w.data_quality.create_monitor(monitor)
                made.add(created_marker(change.name))
            elif isinstance(change, Delete):
                progress(f"monitors: deleting the data profiling monitor of {change.name}")
                with contextlib.suppress(NotFound):
                    w.data_quality.delete_monitor("table", change.spec["table_id"])
    return Outcome(tuple(changes), owns=Owned(created=frozenset(made)))


def _filled(desired: Desired, file: MonitorFile) -> dict[str, Any]:
    return fill(dict(file.payload), desired.config.values())


def _table_id(w: WorkspaceClient, table: str) -> str | None:
    if not w.tables.exists(table).table_exists:
        return None
    return w.tables.get(table).table_id


def _monitor(w: WorkspaceClient, table_id: str) -> Monitor | None:
    try:
        return w.data_quality.get_monitor("table", table_id)
    except NotFound:
        return None


def _status(monitor: Monitor) -> str:
    profiling = monitor.data_profiling_config
    status = profiling.status.value if profiling and profiling.status else ""
    return f"exists ({status})" if status else "exists"
