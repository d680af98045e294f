"""`lakeforge bootstrap` and the data profiling monitor of a project answered `data_profiling=true`, against
the fake workspace's data quality API over HTTP: the monitor waits for its table, is created once the table
exists (with the ids bootstrap looks up), is left alone by a warm bootstrap, and destroy deletes it.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from databricks.sdk.service.workspace import ImportFormat

from tests.fake_workspace import FakeWorkspace
from tests.test_bootstrap import bootstrap_json, lakeforge, mutating

ROOT = "/Shared/churn-model/dev"
TABLE = "main.churn_model_dev.labelled_predictions"
COLUMNS = [
    {"name": "customer_id", "type_name": "LONG"},
    {"name": "batch_id", "type_name": "STRING"},
    {"name": "model_version", "type_name": "STRING"},
    {"name": "scored_at", "type_name": "TIMESTAMP"},
    {"name": "probability", "type_name": "DOUBLE"},
    {"name": "prediction", "type_name": "INT"},
    {"name": "churned", "type_name": "INT"},
]


@pytest.fixture
def project(render, tmp_path: Path) -> Path:
    return Path(shutil.copytree(render({"data_profiling": True}), tmp_path / "churn-model"))


def rows(report: dict) -> list[dict]:
    return [r for r in report["resources"] if r["step"] == "monitors"]


def test_the_monitor_waits_for_its_table_then_is_made_once(
    databricks_env: FakeWorkspace, project: Path
) -> None:
    ws = databricks_env
    [row] = rows(bootstrap_json(project))
    assert (row["action"], row["name"]) == ("unchanged", TABLE) and "waits for its table" in row["detail"]
    assert ws.state()["data_profiling"]["monitors"] == {}

    ws.seed(tables={TABLE: COLUMNS})  # the scoring workflow's first labelled batch wrote it
    [row] = rows(bootstrap_json(project))
    assert row["action"] == "create"
    monitor = ws.state()["data_profiling"]["monitors"][TABLE]
    profile = monitor["data_profiling_config"]
    assert profile["inference_log"]["model_id_column"] == "model_version"
    assert profile["inference_log"]["label_column"] == "churned"
    assert profile["output_schema_id"], "bootstrap looked up the output schema's id"
    manifest = json.loads(ws.state()["workspace"][f"{ROOT}/.lakeforge/manifest.json"]["content"])
    assert f"monitor:{TABLE}" in manifest["created"]

    ws.reset_calls()
    [row] = rows(bootstrap_json(project))
    assert row["action"] == "unchanged" and mutating(ws) == []

    result = lakeforge("destroy", project, "--target", "dev", "--yes")
    assert result.exit_code == 0, result.stderr
    assert ws.state()["data_profiling"]["monitors"] == {}


def test_a_monitor_someone_else_made_is_kept_by_destroy(databricks_env: FakeWorkspace, project: Path) -> None:
    ws = databricks_env
    bootstrap_json(project)  # makes the schema
    ws.seed(tables={TABLE: COLUMNS})
    bootstrap_json(project)  # makes the monitor; now forget that lakeforge did, as for a foreign one
    w = ws.client()
    manifest_path = f"/Workspace{ROOT}/.lakeforge/manifest.json"
    manifest = json.loads(ws.state()["workspace"][f"{ROOT}/.lakeforge/manifest.json"]["content"])
    manifest["created"] = [c for c in manifest["created"] if not c.startswith("monitor:")]
    content = base64.b64encode(json.dumps(manifest).encode()).decode()
    w.workspace.import_(manifest_path, content=content, format=ImportFormat.AUTO, overwrite=True)
    assert lakeforge("destroy", project, "--target", "dev", "--yes").exit_code == 0
    assert TABLE in ws.state()["data_profiling"]["monitors"]
