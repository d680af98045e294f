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

ORDER = [
    "[dev] churn-model feature pipeline",
    "[dev] churn-model training",
    "[dev] churn-model promotion",
    "[dev] churn-model batch inference",
    "[dev] churn-model monitoring",
]


def started(ws: FakeWorkspace) -> list[str]:
    """The jobs whose run-now reached the workspace, in order."""
    names = {int(job_id): job["settings"]["name"] for job_id, job in ws.state()["jobs"].items()}
    return [names[c["body"]["job_id"]] for c in ws.calls() if c["path"] == "/api/2.2/jobs/run-now"]


def runs_in_start_order(ws: FakeWorkspace) -> list[dict]:
    return sorted(ws.state()["runs"].values(), key=lambda run: run["start_time"])


def test_run_all_runs_every_job_in_order_each_after_the_last_ended(bootstrapped, tmp_path: Path) -> None:
    ws, project = bootstrapped
    ws.configure(run_pending_seconds=0.05, run_seconds=0.15)
    summary = tmp_path / "summary.md"
    summary.write_text("### Earlier step\n")

    result = lakeforge("run", "all", project, "--target", "dev", "--summary", summary)

    assert result.exit_code == 0, result.stderr
    assert started(ws) == ORDER
    runs = runs_in_start_order(ws)
    assert [run["run_name"] for run in runs] == ORDER
    for before, after in zip(runs, runs[1:], strict=False):
        assert before["state"]["result_state"] == "SUCCESS"
        assert after["start_time"] >= before["end_time"], "a job started before the one before it ended"
    # progress on stderr, one line per job on stdout
    assert "[1/5] [dev] churn-model feature pipeline: run" in result.stderr
    assert "[5/5] [dev] churn-model monitoring" in result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ORDER
    assert all(" SUCCESS http" in line and "/run/" in line for line in lines)

    text = summary.read_text()
    assert text.startswith("### Earlier step\n"), "the summary is appended to, not overwritten"
    assert "### Jobs on dev: all 5 succeeded" in text
    assert "| # | job | result | time | run |" in text
    for i, name in enumerate(ORDER, 1):
        row = next(line for line in text.splitlines() if line.startswith(f"| {i} | {name} |"))
        assert "✅ SUCCESS" in row and f"]({ws.url}/#job/" in row
    assert "{" not in text, "Markdown for a person, not JSON"


def test_the_first_failure_stops_the_run_and_later_jobs_never_start(bootstrapped, tmp_path: Path) -> None:
    ws, project = bootstrapped
    ws.configure(
        run_pending_seconds=0.05, run_seconds=0.1, job_results={"[dev] churn-model training": "FAILED"}
    )
    summary = tmp_path / "summary.md"

    result = lakeforge("run", "all", project, "--target", "dev", "--summary", summary)

    assert result.exit_code == 1
    line = one_line_error(result)
    assert "[dev] churn-model training ended FAILED" in line
    assert "not started: [dev] churn-model promotion, [dev] churn-model batch inference" in line
    assert started(ws) == ORDER[:2]
    assert [run["run_name"] for run in runs_in_start_order(ws)] == ORDER[:2]
    assert [c for c in mutating(ws) if not c.endswith("/jobs/run-now")] == []

    text = summary.read_text()
    assert "### Jobs on dev: [dev] churn-model training ended FAILED, 3 not started" in text
    assert "| 1 | [dev] churn-model feature pipeline | ✅ SUCCESS |" in text
    assert "| 2 | [dev] churn-model training | ❌ FAILED |" in text
    for i, name in enumerate(ORDER[2:], 3):
        assert f"| {i} | {name} | ⏭️ not started |" in text
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
    assert "[dev] churn-model training ended FAILED" in one_line_error(result)
    assert started(ws) == ORDER[:2]


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
