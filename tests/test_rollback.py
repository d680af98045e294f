"""`lakeforge rollback --target dev` against the fake workspace: the project's own `rollback` runs in its
environment with MLflow pointed at the workspace (Unity Catalog aliases and tags through MLflow's Databricks
client, over HTTP), then the serving endpoint follows the champion back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fake_workspace import FakeWorkspace
from tests.test_bootstrap import bootstrap_json, lakeforge, one_line_error

pytestmark = pytest.mark.slow

UC = "/api/2.0/mlflow/unity-catalog"
MODEL = "main.churn_model_dev.churn_model"
ENDPOINT = "churn-model-dev"


def register(ws: FakeWorkspace, tags: dict[str, str] | None = None) -> str:
    w = ws.client()
    created = w.api_client.do(
        "POST", f"{UC}/model-versions/create", body={"name": MODEL, "source": "models:/m"}
    )
    version = str(created["model_version"]["version"])
    w.api_client.do("POST", f"{UC}/model-versions/finalize", body={"name": MODEL, "version": version})
    for key, value in (tags or {}).items():
        body = {"name": MODEL, "version": version, "key": key, "value": value}
        w.api_client.do("POST", f"{UC}/model-versions/set-tag", body=body)
    return version


def champion(ws: FakeWorkspace) -> str:
    return str(ws.state()["unity_catalog"]["registry"][MODEL]["aliases"]["champion"])


def set_champion(ws: FakeWorkspace, version: str) -> None:
    body = {"name": MODEL, "alias": "champion", "version": version}
    ws.client().api_client.do("POST", f"{UC}/registered-models/alias", body=body)


def served(ws: FakeWorkspace) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        endpoint = ws.state()["serving_endpoints"][ENDPOINT]
        if endpoint["state"]["config_update"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return [str(e["entity_version"]) for e in endpoint["config"]["served_entities"]]
        time.sleep(0.1)


@pytest.fixture
def project(installed: Callable, databricks_env: FakeWorkspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default project, installed, bootstrapped on the fake; uv runs it on the interpreter it was
    installed with."""
    path, env = installed("default")
    monkeypatch.setenv("UV_PYTHON", env["UV_PYTHON"])
    databricks_env.configure(serving_update_seconds=0.2)
    bootstrap_json(path)
    return path


def test_rollback_restores_the_previous_champion_and_the_endpoint_follows(
    project: Path, databricks_env: FakeWorkspace
) -> None:
    ws = databricks_env
    first = register(ws)
    second = register(ws, {"promotion_champion_version": first})
    set_champion(ws, second)
    bootstrap_json(project)  # the endpoint now serves the second
    assert served(ws) == [second]

    result = lakeforge("rollback", project, "--target", "dev")

    assert result.exit_code == 0, result.stderr
    assert f"{MODEL} in dev: champion version {second} -> {first}" in result.stdout
    assert champion(ws) == first
    versions = ws.state()["unity_catalog"]["registry"][MODEL]["versions"]
    decided = {
        n: {t["key"]: t["value"] for t in v["tags"]}.get("promotion_decision") for n, v in versions.items()
    }
    assert decided == {first: "restored", second: "rolled_back"}, "recorded like a promotion"
    assert served(ws) == [first], "the endpoint follows the champion"


def test_rollback_without_a_previous_champion_changes_nothing(
    project: Path, databricks_env: FakeWorkspace
) -> None:
    ws = databricks_env
    only = register(ws)
    set_champion(ws, only)
    result = lakeforge("rollback", project, "--target", "dev")
    assert result.exit_code == 1
    assert "nothing to roll back to" in one_line_error(result)
    assert champion(ws) == only
