"""`lakeforge bootstrap` and the champion's serving endpoint, against the fake workspace over HTTP.

The endpoint waits for the first champion (the service refuses an endpoint whose model version does not
exist), then serves whichever version holds `@champion` when bootstrap runs; a warm bootstrap changes
nothing; a foreign endpoint of the same name is left alone; destroy deletes the project's endpoint.
"""

from __future__ import annotations

import time

from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

from tests import test_bootstrap as tb
from tests.fake_workspace import FakeWorkspace
from tests.test_bootstrap import bootstrap_json, lakeforge, mutating

rendered = tb.rendered
project = tb.project
ws = tb.ws
_build_each_wheel_once = tb._build_each_wheel_once

UC = "/api/2.0/mlflow/unity-catalog"
MODEL = "main.churn_model_dev.churn_model"
ENDPOINT = "churn-model-dev"


def register(ws: FakeWorkspace, champion: bool = True) -> str:
    """A new READY version of the target's model, as MLflow registers it; moved to @champion."""
    w = ws.client()
    created = w.api_client.do(
        "POST", f"{UC}/model-versions/create", body={"name": MODEL, "source": "models:/m"}
    )
    version = created["model_version"]["version"]
    w.api_client.do("POST", f"{UC}/model-versions/finalize", body={"name": MODEL, "version": version})
    if champion:
        w.api_client.do(
            "POST",
            f"{UC}/registered-models/alias",
            body={"name": MODEL, "alias": "champion", "version": version},
        )
    return str(version)


def endpoint(ws: FakeWorkspace) -> dict | None:
    return ws.state()["serving_endpoints"].get(ENDPOINT)


def served(ws: FakeWorkspace) -> list[str]:
    """The versions the endpoint serves once its update settled."""
    deadline = time.monotonic() + 10
    while True:
        found = endpoint(ws)
        assert found is not None
        if found["state"]["config_update"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return [str(e["entity_version"]) for e in (found.get("config") or {}).get("served_entities", [])]
        time.sleep(0.1)


def serving_rows(report: dict) -> list[dict]:
    return [row for row in report["resources"] if row["step"] == "serving"]


def test_the_endpoint_waits_for_the_first_champion_then_follows_it(ws: FakeWorkspace, project) -> None:
    ws.configure(serving_update_seconds=0.2)
    report = bootstrap_json(project)
    [row] = serving_rows(report)
    assert (row["action"], row["name"]) == ("unchanged", ENDPOINT)
    assert "waits for the first champion" in row["detail"]
    assert endpoint(ws) is None

    first = register(ws)
    [row] = serving_rows(bootstrap_json(project))
    assert row["action"] == "create" and f"version {first}" in row["detail"]
    assert served(ws) == [first]
    tags = {t["key"]: t["value"] for t in endpoint(ws)["tags"]}
    assert tags["lakeforge-project"] == "churn-model" and tags["lakeforge-target"] == "dev"

    ws.reset_calls()
    [row] = serving_rows(bootstrap_json(project))
    assert row["action"] == "unchanged"
    assert mutating(ws) == [], "a warm bootstrap changed something"

    second = register(ws)
    [row] = serving_rows(bootstrap_json(project))
    assert row["action"] == "update" and f"serve {second} (was {first})" in row["detail"]
    assert served(ws) == [second]
    ws.reset_calls()
    bootstrap_json(project)
    assert mutating(ws) == []

    result = lakeforge("destroy", project, "--target", "dev", "--yes")
    assert result.exit_code == 0, result.stderr
    assert endpoint(ws) is None


def test_an_endpoint_someone_else_made_is_left_alone(ws: FakeWorkspace, project) -> None:
    bootstrap_json(project)
    version = register(ws)
    w = ws.client()
    w.serving_endpoints.create(
        ENDPOINT,
        config=EndpointCoreConfigInput(
            name=ENDPOINT,
            served_entities=[
                ServedEntityInput(entity_name=MODEL, entity_version=version, workload_size="Small")
            ],
        ),
    )
    ws.reset_calls()
    [row] = serving_rows(bootstrap_json(project))
    assert row["action"] == "unchanged" and "not created by lakeforge" in row["detail"]
    assert not [c for c in mutating(ws) if "serving-endpoints" in c]
    assert lakeforge("destroy", project, "--target", "dev", "--yes").exit_code == 0
    assert endpoint(ws) is not None
