"""`lakeforge run all`: the project's jobs run one after the other against the fake workspace, each started
only once the one before it succeeded; the first failure stops it with a non-zero exit and the later jobs are
never started. The deploy pipeline runs it on staging before prod, and its Markdown summary is what a person
reads on the pipeline's page (with bootstrap's, `bootstrap --summary`).
"""

from __future__ import annotations

from pathlib import Path

from tests import test_bootstrap as tb
from tests.fake_workspace import FakeWorkspace
from tests.test_bootstrap import bootstrap_json, lakeforge, mutating, one_line_error

rendered = tb.rendered
project = tb.project
ws = tb.ws
bootstrapped = tb.bootstrapped
_build_each_wheel_once = tb._build_each_wheel_once

TRAINING, SCORING = "[dev] churn-model training", "[dev] churn-model scoring"
ORDER = [TRAINING, SCORING]


def started(ws: FakeWorkspace) -> list[str]:
    """The jobs whose run-now reached the workspace, in order."""
    names = {int(job_id): job["settings"]["name"] for job_id, job in ws.state()["jobs"].items()}
    return [names[c["body"]["job_id"]] for c in ws.calls() if c["path"] == "/api/2.2/jobs/run-now"]


def runs_in_start_order(ws: FakeWorkspace) -> list[dict]:
    return sorted(ws.state()["runs"].values(), key=lambda run: run["start_time"])


def tasks_of(run: dict) -> dict[str, dict]:
    return {task["task_key"]: task for task in run["tasks"]}


def test_run_all_runs_each_workflow_task_by_task_after_the_one_before(bootstrapped, tmp_path: Path) -> None:
    ws, project = bootstrapped
    ws.configure(
        run_pending_seconds=0.05,
        run_seconds=0.1,
        task_values={TRAINING: {"features": {"feature_table_version": 7}}},
    )
    summary = tmp_path / "summary.md"
    summary.write_text("### Earlier step\n")

    result = lakeforge("run", "all", project, "--target", "dev", "--summary", summary)

    assert result.exit_code == 0, result.stderr
    assert started(ws) == ORDER
    training, scoring = runs_in_start_order(ws)
    assert [training["run_name"], scoring["run_name"]] == ORDER
    assert scoring["start_time"] >= training["end_time"], "scoring started before training ended"
    # features -> train -> promote, each after the one before; train got the features task's table version
    steps = tasks_of(training)
    assert [steps[k]["state"]["result_state"] for k in ("features", "train", "promote")] == ["SUCCESS"] * 3
    assert steps["features"]["end_time"] <= steps["train"]["start_time"] <= steps["promote"]["start_time"]
    train_parameters = steps["train"]["resolved_values"]["notebook_task"]["base_parameters"]
    assert train_parameters["feature_table_version"] == "7"
    # no retrain asked for: the condition is false and the retrain branch is skipped, which is a success
    scored = tasks_of(scoring)
    assert scored["retrain_needed"]["condition_task"]["outcome"] == "false"
    assert scored["retrain"]["state"]["result_state"] == "EXCLUDED"

    # progress on stderr, per task; stdout: a line per workflow, then one per task
    progress = result.stderr.splitlines()
    done = [f"[1/2] {TRAINING}: {task} SUCCESS" for task in ("features", "train", "promote")]
    at = [next(i for i, line in enumerate(progress) if line.startswith(d)) for d in done]
    assert at == sorted(at), result.stderr
    assert not [line for line in progress if line.endswith(("features PENDING", "train PENDING"))]
    assert f"[2/2] {SCORING}: retrain EXCLUDED" in result.stderr
    lines = result.stdout.strip().splitlines()
    jobs = [line for line in lines if not line.startswith("  ")]
    assert [line.split(":")[0] for line in jobs] == ORDER
    assert all(" SUCCESS http" in line and "/run/" in line for line in jobs)
    tasks = [line.split()[:2] for line in lines if line.startswith("  ")]
    assert tasks[:3] == [["features:", "SUCCESS"], ["train:", "SUCCESS"], ["promote:", "SUCCESS"]]
    assert ["retrain:", "EXCLUDED"] in tasks

    text = summary.read_text()
    assert text.startswith("### Earlier step\n"), "the summary is appended to, not overwritten"
    assert "### Jobs on dev: all 2 succeeded" in text
    assert "| # | job | result | time | tasks | run |" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| 1 | {TRAINING} |"))
    assert "✅ SUCCESS" in row and "features SUCCESS, train SUCCESS, promote SUCCESS" in row
    assert f"]({ws.url}/#job/" in row
    assert "{" not in text, "Markdown for a person, not JSON"


def test_monitoring_that_asks_for_a_retrain_starts_the_training_workflow(bootstrapped) -> None:
    ws, project = bootstrapped
    ws.configure(
        run_pending_seconds=0.05, run_seconds=0.1, task_values={SCORING: {"monitor": {"retrain": True}}}
    )
    result = lakeforge("run", "scoring", project, "--target", "dev")
    assert result.exit_code == 0, result.stderr
    runs = runs_in_start_order(ws)
    scoring = next(run for run in runs if run["run_name"] == SCORING)
    scored = tasks_of(scoring)
    assert scored["retrain_needed"]["condition_task"]["outcome"] == "true"
    assert scored["retrain"]["state"]["result_state"] == "SUCCESS"
    (retrained,) = [run for run in runs if run["run_name"] == TRAINING]
    assert retrained["trigger"] == "RUN_JOB_TASK", "the retrain task ran the training workflow itself"
    assert retrained["state"]["result_state"] == "SUCCESS"
    job = next(j for j in ws.state()["jobs"].values() if j["settings"]["name"] == SCORING)
    (retrain,) = [t for t in job["settings"]["tasks"] if t["task_key"] == "retrain"]
    assert retrain["email_notifications"]["on_start"] == ["data-science@example.com"], "the owner hears of it"


def test_the_first_failure_stops_the_run_and_later_jobs_never_start(bootstrapped, tmp_path: Path) -> None:
    ws, project = bootstrapped
    ws.configure(run_pending_seconds=0.05, run_seconds=0.1, task_results={TRAINING: {"train": "FAILED"}})
    summary = tmp_path / "summary.md"

    result = lakeforge("run", "all", project, "--target", "dev", "--summary", summary)

    assert result.exit_code == 1
    line = one_line_error(result)
    assert f"{TRAINING} ended FAILED: task train FAILED" in line
    assert f"not started: {SCORING}" in line
    assert started(ws) == ORDER[:1]
    (training,) = runs_in_start_order(ws)
    steps = tasks_of(training)
    assert steps["features"]["state"]["result_state"] == "SUCCESS"
    assert steps["promote"]["state"]["result_state"] == "UPSTREAM_FAILED", "no promotion after a failed train"
    assert [c for c in mutating(ws) if not c.endswith("/jobs/run-now")] == []

    text = summary.read_text()
    assert f"### Jobs on dev: {TRAINING} ended FAILED, 1 not started" in text
    assert f"| 1 | {TRAINING} | ❌ FAILED |" in text
    assert "train FAILED, promote UPSTREAM_FAILED" in text
    assert f"| 2 | {SCORING} | ⏭️ not started |" in text
    assert "The jobs after it were not started" in text
    assert "failed**" not in text, "the failed run is reported once, in the table"


def test_an_internal_error_is_a_failure_too(bootstrapped) -> None:
    """A run whose notebook is gone ends INTERNAL_ERROR: the SDK's waiter raises, run all reports it."""
    ws, project = bootstrapped
    ws.configure(run_pending_seconds=0.05, run_seconds=0.1)
    ws.client().workspace.delete("/Workspace/Shared/churn-model/dev/notebooks/02_training")
    ws.reset_calls()
    result = lakeforge("run", "all", project, "--target", "dev")
    assert result.exit_code == 1
    assert f"{TRAINING} ended FAILED: task train" in one_line_error(result)
    assert started(ws) == ORDER[:1]


def test_run_all_waits_for_the_new_wheel_to_be_installed(ws: FakeWorkspace, project: Path) -> None:
    """The Libraries API installs in the background: the first run starts only once the wheel is installed."""
    ws.configure(library_install_seconds=2.0, run_pending_seconds=0.05, run_seconds=0.05)
    bootstrap_json(project, "--wait")  # the cluster is RUNNING; the wheel installs during the next 2 s
    ready = max(c["t"] for c in ws.calls() if c["path"] == "/api/2.1/clusters/get")
    result = lakeforge("run", "all", project, "--target", "dev")
    assert result.exit_code == 0, result.stderr
    assert "waiting for 1 of the project's libraries to install on churn-model-dev" in result.stderr
    (first, *_) = [c for c in ws.calls() if c["path"] == "/api/2.2/jobs/run-now"]
    assert first["t"] - ready >= 1.0
    statuses = [c for c in ws.calls() if c["path"] == "/api/2.0/libraries/cluster-status"]
    assert statuses and statuses[-1]["t"] < first["t"]


def test_run_all_before_bootstrap_starts_nothing(ws: FakeWorkspace, project: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = lakeforge("run", "all", project, "--target", "dev", "--summary", summary)
    assert result.exit_code == 1
    assert "lakeforge bootstrap" in one_line_error(result)
    assert mutating(ws) == []
    assert "**`lakeforge run all --target dev` failed**: run: job" in summary.read_text()


def test_bootstrap_writes_what_changed_as_markdown(ws: FakeWorkspace, project: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    report = bootstrap_json(project, "--summary", str(summary))
    text = summary.read_text()
    assert text.startswith("### Bootstrap of churn-model on dev: ")
    assert f"Workspace {ws.url}, as {ws.user}." in text
    assert "| step | resource | action | detail |" in text
    created = [r for r in report["resources"] if r["action"] == "create"]
    assert created
    for row in created:
        if row["url"]:
            assert f"]({row['url']})" in text
    assert "| cluster | cluster [churn-model-dev](" in text and "| created |" in text

    again = tmp_path / "again.md"
    bootstrap_json(project, "--summary", str(again))
    assert again.read_text().startswith("### Bootstrap of churn-model on dev: nothing to change (")
    assert "Nothing to change: the workspace already matches the project." in again.read_text()


def test_a_job_file_cannot_be_named_all(project: Path) -> None:
    jobs = project / "databricks" / "jobs"
    (jobs / "training.json").rename(jobs / "all.json")
    result = lakeforge("run", "all", project, "--target", "dev")
    assert result.exit_code == 1
    assert "all.json" in one_line_error(result)
