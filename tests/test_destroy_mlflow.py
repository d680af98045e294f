"""`lakeforge destroy --include-mlflow` in both registries, against the fake workspace over HTTP.

Destroy deletes the experiment and the registered model only when bootstrap made them, and it knows that from
marks bootstrap writes on them when it creates them (not from the manifest, which destroy deletes): after a
destroy and a new bootstrap they are still its own; what someone else made under the same names is kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound

from tests import test_bootstrap as tb
from tests.fake_workspace import FakeWorkspace
from tests.test_bootstrap import bootstrap_json, lakeforge, mutating

_build_each_wheel_once = tb._build_each_wheel_once
ws = tb.ws

REGISTRIES = ("unity-catalog", "workspace")
EXPERIMENT = "/Shared/churn-model/dev/experiment"
MODEL = {"unity-catalog": "main.churn_model_dev.churn_model", "workspace": "churn_model_dev"}


@pytest.fixture(params=REGISTRIES)
def registry(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def project(render, registry: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(render({"registry": registry}), tmp_path / "churn-model"))


def destroy(project: Path, *args: str) -> dict[str, Any]:
    result = lakeforge("destroy", project, "--target", "dev", "--yes", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def mlflow_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in report["resources"] if r["step"] == "mlflow"}


def kept_action(report: dict[str, Any]) -> str:
    """The action of a resource left as it is (the identity row always is one)."""
    return next(r["action"] for r in report["resources"] if r["step"] == "identity")


def experiment_live(w: WorkspaceClient) -> bool:
    try:
        return w.experiments.get_by_name(EXPERIMENT).experiment.lifecycle_stage == "active"
    except NotFound:
        return False


def model_exists(w: WorkspaceClient, registry: str) -> bool:
    try:
        if registry == "unity-catalog":
            w.registered_models.get(MODEL[registry])
        else:
            w.model_registry.get_model(MODEL[registry])
        return True
    except NotFound:
        return False


def assert_deleted_both(report: dict[str, Any], w: WorkspaceClient, registry: str) -> None:
    rows = mlflow_rows(report)
    assert rows["experiment"]["action"] != kept_action(report), rows
    assert rows["model"]["action"] == rows["experiment"]["action"], rows
    assert not experiment_live(w) and not model_exists(w, registry)


def test_the_workspace_registry_deletes_a_model_named_in_the_query_or_the_body(ws: FakeWorkspace) -> None:
    """databricks-sdk sends `name` in the query string, MLflow's client in a JSON body: a workspace takes
    both, and refuses a delete that names no model (400) or a model that does not exist (404)."""
    w = ws.client()
    path = "/api/2.0/mlflow/registered-models/delete"
    w.model_registry.create_model("by-sdk")
    w.model_registry.create_model("by-mlflow")
    w.model_registry.delete_model(name="by-sdk")
    w.api_client.do("DELETE", path, body={"name": "by-mlflow"})
    for name in ("by-sdk", "by-mlflow"):
        with pytest.raises(NotFound) as gone:
            w.model_registry.get_model(name=name)
        assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(NotFound) as missing:
        w.model_registry.delete_model(name="by-sdk")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(BadRequest) as unnamed:
        w.api_client.do("DELETE", path)
    assert "'name'" in str(unnamed.value)


def test_include_mlflow_deletes_what_bootstrap_made_again_after_each_bootstrap(
    ws: FakeWorkspace, project: Path, registry: str
) -> None:
    w = ws.client()
    bootstrap_json(project)
    assert experiment_live(w) and model_exists(w, registry)

    assert_deleted_both(destroy(project, "--include-mlflow"), w, registry)

    ws.reset_calls()
    again = destroy(project, "--include-mlflow")
    assert mutating(ws) == []
    assert {r["action"] for r in again["resources"]} == {kept_action(again)}
    assert not [n for action, n in again["summary"].items() if n and action != kept_action(again)]

    bootstrap_json(project)
    assert experiment_live(w) and model_exists(w, registry)
    assert EXPERIMENT in ws.state()["workspace"]  # a restored experiment is back in the workspace tree
    assert_deleted_both(destroy(project, "--include-mlflow"), w, registry)


def test_a_destroy_and_a_new_bootstrap_keep_them_lakeforges(
    ws: FakeWorkspace, project: Path, registry: str
) -> None:
    """The first destroy deletes the manifest and keeps MLflow; the next bootstrap finds both there."""
    w = ws.client()
    bootstrap_json(project)
    kept = destroy(project)
    assert {r["action"] for r in mlflow_rows(kept).values()} == {kept_action(kept)}
    assert experiment_live(w) and model_exists(w, registry)

    bootstrap_json(project)
    report = destroy(project, "--include-mlflow")
    assert_deleted_both(report, w, registry)
    if registry == "unity-catalog":
        assert mlflow_rows(report)["schema"]["detail"] == "kept: it holds the project's tables"
        assert "main.churn_model_dev" in ws.state()["unity_catalog"]["schemas"]


def test_what_lakeforge_did_not_create_is_kept(ws: FakeWorkspace, project: Path, registry: str) -> None:
    seeds: dict[str, Any] = {"experiments": [EXPERIMENT]}
    if registry == "unity-catalog":
        seeds.update(catalogs={"main": ["churn_model_dev"]}, uc_models=[MODEL[registry]])
    else:
        seeds.update(registered_models=[MODEL[registry]])
    ws.seed(**seeds)
    bootstrap_json(project)

    report = destroy(project, "--include-mlflow")
    rows = mlflow_rows(report)
    kinds = ("experiment", "schema", "model") if registry == "unity-catalog" else ("experiment", "model")
    assert tuple(rows) == kinds
    for kind in kinds:
        assert rows[kind]["action"] == kept_action(report), rows
        assert rows[kind]["detail"] == "not created by lakeforge", rows
    w = ws.client()
    assert experiment_live(w) and model_exists(w, registry)
