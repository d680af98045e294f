"""The training workflow's deploy task (a generated project's `deployment.py`) against the fake workspace.

The rendered package's `deployment.deploy` runs in a subprocess (the rendered src on PYTHONPATH, this venv's
databricks-sdk and MLflow) with MLflow in its Databricks modes and unified auth pointed at the fake over HTTP.
It reads the endpoint template as `lakeforge bootstrap` uploads it (`lakeforge.serving.template_file`),
finds the version holding `@champion` through the project's registry module, and creates or updates the
endpoint with the spec digest lakeforge computes, so that a bootstrap afterwards finds it up to date.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput
from lakeforge.changes import Desired
from lakeforge.config import load_config
from lakeforge.serving import desired_spec, template_file

from tests import test_bootstrap as tb
from tests.fake_workspace import FakeWorkspace
from tests.test_bootstrap import bootstrap_json, mutating
from tests.test_serving_endpoint import ENDPOINT, MODEL, UC, endpoint, register, served, serving_rows

rendered = tb.rendered
project = tb.project
ws = tb.ws
_build_each_wheel_once = tb._build_each_wheel_once

DRIVER = """
import sys
from databricks.sdk import WorkspaceClient
from mlflow.tracking import MlflowClient
from churn_model import deployment

client = MlflowClient(tracking_uri="databricks", registry_uri="databricks-uc")
print(deployment.deploy(deployment.load_template(sys.argv[1]), WorkspaceClient(), client, wait_seconds=30))
"""


@pytest.fixture
def template(project: Path, tmp_path: Path) -> Path:
    """The endpoint template of the dev target, written as bootstrap uploads it."""
    config = load_config(project, "dev")
    _, content = template_file(config, config.serving[0])
    path = tmp_path / "champion.json"
    path.write_bytes(content)
    return path


def deploy(project: Path, template: Path) -> subprocess.CompletedProcess[str]:
    """The deploy task's call, in its own process; auth comes from the environment (databricks_env)."""
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(template)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        timeout=120,
    )


def deployed(project: Path, template: Path) -> str:
    result = deploy(project, template)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def failure(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed deploy ends with: the DeploymentError and its message."""
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("churn_model.deployment.DeploymentError: "), result.stderr
    return last


def set_champion(ws: FakeWorkspace, version: str) -> None:
    body = {"name": MODEL, "alias": "champion", "version": version}
    ws.client().api_client.do("POST", f"{UC}/registered-models/alias", body=body)


def serving_calls(ws: FakeWorkspace) -> list[str]:
    return [call for call in mutating(ws) if "/api/2.0/serving-endpoints" in call]


def test_the_endpoint_follows_the_champion_and_bootstrap_agrees(ws: FakeWorkspace, project, template) -> None:
    ws.configure(serving_update_seconds=0.2)
    bootstrap_json(project)  # the schema of the inference table, the uploaded template; no endpoint yet

    assert "waits for the first champion" in deployed(project, template)
    assert endpoint(ws) is None

    first = register(ws)
    assert deployed(project, template) == f"endpoint {ENDPOINT}: created, serves version {first}"
    assert served(ws) == [first]
    found = endpoint(ws)
    assert found["ai_gateway"]["inference_table_config"] == {
        "catalog_name": "main",
        "schema_name": "churn_model_dev",
        "table_name_prefix": "churn_model_champion",
        "enabled": True,
    }
    config = load_config(project, "dev")
    spec = desired_spec(Desired(config=config, host="", user="", wheel=None), config.serving[0], first)
    tags = {t["key"]: t["value"] for t in found["tags"]}
    assert tags == {t["key"]: t["value"] for t in spec["tags"]}, (
        "the deploy task's spec digest is not lakeforge's"
    )

    second = register(ws)
    assert deployed(project, template) == f"endpoint {ENDPOINT}: updated, serves version {second}"
    assert served(ws) == [second]

    set_champion(ws, first)  # what `lakeforge rollback` does to the registry
    assert deployed(project, template) == f"endpoint {ENDPOINT}: updated, serves version {first}"
    assert served(ws) == [first]

    ws.reset_calls()
    assert deployed(project, template) == f"endpoint {ENDPOINT}: unchanged, serves version {first}"
    assert mutating(ws) == [], "a deploy with nothing changed changed something"

    [row] = serving_rows(bootstrap_json(project))
    assert row["action"] == "unchanged", row
    assert serving_calls(ws) == [], "bootstrap updated the endpoint the deploy task had just deployed"


def test_a_failed_update_fails_the_task_with_one_line(ws: FakeWorkspace, project, template) -> None:
    ws.configure(serving_update_seconds=0.2)
    bootstrap_json(project)
    first = register(ws)
    deployed(project, template)
    second = register(ws)
    ws.configure(serving_results={ENDPOINT: "UPDATE_FAILED"})
    line = failure(deploy(project, template))
    assert f"the update ended UPDATE_FAILED; it still serves version {first}" in line
    assert served(ws) == [first]

    ws.configure(serving_results={})  # the next run tries again: the spec tag still holds the old digest
    assert deployed(project, template) == f"endpoint {ENDPOINT}: updated, serves version {second}"


def test_an_endpoint_someone_else_made_is_refused(ws: FakeWorkspace, project, template) -> None:
    bootstrap_json(project)
    version = register(ws)
    entity = ServedEntityInput(entity_name=MODEL, entity_version=version, workload_size="Small")
    ws.client().serving_endpoints.create(
        ENDPOINT, config=EndpointCoreConfigInput(name=ENDPOINT, served_entities=[entity])
    )
    ws.reset_calls()
    line = failure(deploy(project, template))
    assert f"endpoint {ENDPOINT} exists but was not created by lakeforge for churn-model dev" in line
    assert serving_calls(ws) == []


def test_the_uploaded_template_is_the_one_the_task_reads(ws: FakeWorkspace, project, template) -> None:
    bootstrap_json(project)
    uploaded = ws.client().workspace.download(f"{tb.ROOT}/serving/champion.json").read()
    assert json.loads(uploaded) == json.loads(template.read_text())


def test_an_update_in_progress_is_waited_for_not_collided_with(ws: FakeWorkspace, project, template) -> None:
    ws.configure(serving_update_seconds=0.2)
    bootstrap_json(project)
    register(ws)
    deployed(project, template)
    second, third = register(ws, champion=False), register(ws)
    ws.configure(serving_update_seconds=3.0)
    entity = ServedEntityInput(entity_name=MODEL, entity_version=second, workload_size="Small")
    ws.client().serving_endpoints.update_config(ENDPOINT, served_entities=[entity])  # not awaited
    assert endpoint(ws)["state"]["config_update"] == "IN_PROGRESS"
    assert deployed(project, template) == f"endpoint {ENDPOINT}: updated, serves version {third}"
    assert served(ws) == [third]


def test_a_moved_inference_table_is_disabled_then_set_and_the_served_config_left_alone(
    ws: FakeWorkspace, project, template
) -> None:
    ws.configure(serving_update_seconds=0.2)
    bootstrap_json(project)
    version = register(ws)
    deployed(project, template)
    path = project / "databricks" / "serving" / "champion.json"
    path.write_text(path.read_text().replace('"churn_model_champion"', '"churn_model_served"'))
    config = load_config(project, "dev")
    template.write_bytes(template_file(config, config.serving[0])[1])
    ws.reset_calls()
    assert deployed(project, template) == f"endpoint {ENDPOINT}: updated, serves version {version}"
    table = endpoint(ws)["ai_gateway"]["inference_table_config"]
    assert (table["table_name_prefix"], table["enabled"]) == ("churn_model_served", True)
    assert serving_calls(ws) == [
        f"PUT /api/2.0/serving-endpoints/{ENDPOINT}/ai-gateway",
        f"PUT /api/2.0/serving-endpoints/{ENDPOINT}/ai-gateway",
        f"PATCH /api/2.0/serving-endpoints/{ENDPOINT}/tags",
    ]
    [row] = serving_rows(bootstrap_json(project))
    assert row["action"] == "unchanged", row
