"""`lakeforge destroy`, `run` and `doctor` against the fake workspace: destroy removes only what bootstrap
made, run follows a job run to its result, doctor checks and changes nothing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests import test_bootstrap as tb
from tests.fake_workspace import FakeWorkspace
from tests.test_bootstrap import (
    ROOT,
    bootstrap_json,
    lakeforge,
    mutating,
    one_line_error,
    our_clusters,
    our_jobs,
    plain_plan,
)

# The fixtures of test_bootstrap.py, shared: the rendered project (copied per test), the fake with auth set
# up,
# and the wheel built once per source tree.
rendered = tb.rendered
project = tb.project
ws = tb.ws
_build_each_wheel_once = tb._build_each_wheel_once


def test_destroy_removes_what_bootstrap_made_and_nothing_else(ws: FakeWorkspace, project: Path) -> None:
    ws.seed(
        clusters=[
            {
                "spec": {
                    "cluster_name": "churn-model-dev",
                    "spark_version": "15.4.x-scala2.12",
                    "node_type_id": "Standard_DS3_v2",
                    "num_workers": 1,
                }
            }
        ],
        jobs=[
            {
                "settings": {
                    "name": "[dev] churn-model training",
                    "tags": {"project": "churn-model"},
                    "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/Shared/x"}}],
                }
            }
        ],
        workspace=[
            {"path": f"/Workspace{ROOT}/notebooks/scratch", "type": "NOTEBOOK", "content": "1"},
            {"path": "/Workspace/Shared/other/keep.py", "content": "x"},
        ],
        secret_scopes={"team-scope": {"k": "v"}},
    )
    bootstrap_json(project)
    before = ws.state()
    assert our_clusters(before) and our_jobs(before)

    result = lakeforge("destroy", project, "--target", "dev", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)

    after = ws.state()
    assert our_clusters(after) == [] and our_jobs(after) == []
    assert len(after["clusters"]) == 1 and len(after["jobs"]) == 1  # the seeded, untagged ones
    assert all(c["path"] != "/api/2.1/clusters/delete" for c in ws.calls(mutating_only=True))
    tree = after["workspace"]
    assert f"{ROOT}/notebooks/scratch" in tree and "/Shared/other/keep.py" in tree
    assert not [p for p in tree if p.startswith(f"{ROOT}/src") or p.endswith(".whl") or "/.lakeforge" in p]
    assert f"{ROOT}/notebooks/01_feature_pipeline" not in tree
    assert "churn-model-dev" not in after["secret_scopes"] and "team-scope" in after["secret_scopes"]
    # MLflow objects and the schema are kept by default
    assert f"{ROOT}/experiment" in tree
    assert "main.churn_model_dev.churn_model" in after["unity_catalog"]["models"]
    assert "main.churn_model_dev" in after["unity_catalog"]["schemas"]
    kept = {r["kind"]: r["detail"] for r in report["resources"] if r["action"] == "unchanged"}
    assert "--include-mlflow" in kept["experiment"] and "--include-mlflow" in kept["model"]

    ws.reset_calls()
    again = lakeforge("destroy", project, "--target", "dev", "--yes", "--json")
    assert again.exit_code == 0, again.stderr
    assert mutating(ws) == []


def test_destroy_dev_leaves_prods_secret_scope_alone_in_a_shared_workspace(
    ws: FakeWorkspace, project: Path, monkeypatch
) -> None:
    """dev and prod in one workspace: each has its own scope, and destroying dev leaves prod's scope alone."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("keys = {}", 'keys = { db-password = "CHURN_DB_PASSWORD" }')
    )
    monkeypatch.setenv("CHURN_DB_PASSWORD", "not-shown-anywhere")
    for target in ("dev", "prod"):
        done = lakeforge("bootstrap", project, "--target", target, "--yes", "--json")
        assert done.exit_code == 0, done.stderr
    assert {"churn-model-dev", "churn-model-prod"} <= set(ws.state()["secret_scopes"])

    result = lakeforge("destroy", project, "--target", "dev", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    scopes = ws.state()["secret_scopes"]
    assert "churn-model-dev" not in scopes
    assert list(scopes["churn-model-prod"]) == ["db-password"]
    calls = ws.calls(mutating_only=True)
    deleted = [c["body"] for c in calls if c["path"] == "/api/2.0/secrets/scopes/delete"]
    assert deleted == [{"scope": "churn-model-dev"}]
    assert our_jobs(ws.state()) == []  # dev's jobs are gone; prod's carry the prod target tag
    assert any(j["settings"]["name"].startswith("[prod]") for j in ws.state()["jobs"].values())


def test_destroy_keeps_a_scope_that_another_target_may_share(ws: FakeWorkspace, project: Path) -> None:
    """A scope named explicitly for every target is shared: destroy keeps it and says why."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("keys = {}", 'keys = {}\nscope = "churn-team"'))
    for target in ("dev", "prod"):
        assert lakeforge("bootstrap", project, "--target", target, "--yes").exit_code == 0
    result = lakeforge("destroy", project, "--target", "dev", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert "churn-team" in ws.state()["secret_scopes"]
    (row,) = [r for r in json.loads(result.stdout)["resources"] if r["kind"] == "secret scope"]
    assert row["action"] == "unchanged" and row["detail"] == "kept: also the scope of target staging, prod"


def test_destroy_with_include_mlflow_removes_the_experiment_and_model(
    ws: FakeWorkspace, project: Path
) -> None:
    bootstrap_json(project)
    result = lakeforge("destroy", project, "--target", "dev", "--yes", "--include-mlflow")
    assert result.exit_code == 0, result.stderr
    state = ws.state()
    assert "main.churn_model_dev.churn_model" not in state["unity_catalog"]["models"]
    assert f"{ROOT}/experiment" not in state["workspace"]
    assert "main.churn_model_dev" in state["unity_catalog"]["schemas"]  # holds tables: never deleted


def test_destroy_needs_a_target_and_a_confirmation(ws: FakeWorkspace, project: Path) -> None:
    bootstrap_json(project)
    ws.reset_calls()
    assert lakeforge("destroy", project).exit_code == 2  # --target is required
    refused = lakeforge("destroy", project, "--target", "dev")
    assert refused.exit_code == 1 and "--yes" in one_line_error(refused)
    declined = lakeforge("destroy", project, "--target", "dev", "--dry-run")
    assert declined.exit_code == 0 and "delete" in declined.stdout
    assert mutating(ws) == []


def test_destroy_dry_run_without_a_terminal_is_one_line_per_resource(
    ws: FakeWorkspace, project: Path
) -> None:
    bootstrap_json(project)
    ws.reset_calls()
    report = json.loads(lakeforge("destroy", project, "--target", "dev", "--dry-run", "--json").stdout)
    result = lakeforge("destroy", project, "--target", "dev", "--dry-run")
    assert result.exit_code == 0, result.stderr
    counts = report["summary"]
    assert counts["delete"] > 0 and counts["create"] == counts["update"] == 0
    summary = plain_plan(result.stdout, report)
    assert summary == f"{counts['delete']} to delete, {counts['unchanged']} unchanged"
    assert mutating(ws) == []


def test_run_follows_the_job_and_exits_with_its_result(ws: FakeWorkspace, project: Path) -> None:
    bootstrap_json(project)
    ws.configure(run_pending_seconds=0.1, run_seconds=0.2)
    result = lakeforge("run", "training", project, "--target", "dev")
    assert result.exit_code == 0, result.stderr
    assert "SUCCESS" in result.stdout and "/run/" in result.stdout or "#job/" in result.stdout

    ws.configure(task_results={"[dev] churn-model scoring": {"monitor": "FAILED"}})
    failed = lakeforge("run", "scoring", project, "--target", "dev")
    assert failed.exit_code == 1
    assert "ended FAILED: task monitor FAILED" in one_line_error(failed)

    unknown = lakeforge("run", "nope", project, "--target", "dev")
    assert unknown.exit_code == 1 and "training" in one_line_error(unknown)


def test_run_before_bootstrap_says_so(ws: FakeWorkspace, project: Path) -> None:
    result = lakeforge("run", "training", project, "--target", "dev")
    assert result.exit_code == 1
    assert "lakeforge bootstrap" in one_line_error(result)
    assert mutating(ws) == []


def test_doctor_checks_and_changes_nothing(ws: FakeWorkspace, project: Path) -> None:
    result = lakeforge("doctor", project, "--target", "dev")
    assert result.exit_code == 0, result.stdout
    for check in ("config", "files", "secrets", "uv", "auth"):
        assert f"✓ {check}:" in result.stdout
    assert "✓ config: [tool.lakeforge] of " in result.stdout, "config text is printed as it is, not as markup"
    assert ws.user in result.stdout
    assert mutating(ws) == []


def test_doctor_reports_bad_config_and_auth(ws: FakeWorkspace, project: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", "wrong")
    result = lakeforge("doctor", project)
    assert result.exit_code == 1
    assert "✗ auth: cannot authenticate" in result.stdout

    broken = project.parent / "broken"
    shutil.copytree(project, broken)
    (broken / "databricks" / "cluster.json").write_text("{")
    result = lakeforge("doctor", broken)
    assert result.exit_code == 1
    assert "✗ config: databricks/cluster.json: invalid JSON" in result.stdout
    assert "- auth: skipped" in result.stdout


@pytest.mark.parametrize("command", ["", "new", "update", "bootstrap", "destroy", "run", "doctor"])
def test_every_command_has_help_with_no_type_after_a_flag(command: str) -> None:
    result = lakeforge(*filter(None, [command, "--help"]))
    assert result.exit_code == 0 and "Usage" in result.stdout
    assert "<bool>" not in result.stdout and "BOOLEAN" not in result.stdout, result.stdout
    assert re.search(r"^  --help +Show this message and exit\.$", result.stdout, re.MULTILINE), result.stdout
    if command in ("bootstrap", "run"):  # help text is printed as it is, not read as markup
        assert "##vso[task.uploadsummary]" in " ".join(result.stdout.split())
