"""`lakeforge run`: start one of the project's jobs in a target, follow it to its end, report the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from databricks.sdk import WorkspaceClient
from databricks.sdk.service.jobs import Run

from lakeforge import jobs
from lakeforge.changes import Desired, failing_as
from lakeforge.config import Config, fill
from lakeforge.connection import whoami
from lakeforge.errors import LakeforgeError


@dataclass(frozen=True)
class RunResult:
    job: str
    job_id: int
    run_id: int
    url: str
    life_cycle_state: str
    result_state: str | None
    message: str

    @property
    def succeeded(self) -> bool:
        return self.result_state == "SUCCESS"


def job_name(config: Config, job: str) -> str:
    """The job's name in the target, from a job file's stem (`training`) or the job's name itself."""
    for file in config.jobs:
        name = fill(file.payload["name"], config.values())
        if job in (file.key, name):
            return name
    keys = ", ".join(f.key for f in config.jobs)
    raise LakeforgeError(f"no job '{job}' in {config.jobs_dir.name}/; the jobs are: {keys}")


def run_job(
    w: WorkspaceClient,
    config: Config,
    job: str,
    progress: Callable[[str], None] | None = None,
    timeout_minutes: int = 120,
) -> RunResult:
    """Run the job now and wait for its end (at most `timeout_minutes`); the result says how it ended."""
    progress = progress or (lambda message: None)
    name = job_name(config, job)
    user = whoami(w, config.target)
    desired = Desired(config=config, host=(w.config.host or "").rstrip("/"), user=user, wheel=None)
    with failing_as("run", name):
        found = jobs.find(w, desired, name)
        if not found:
            raise LakeforgeError(
                f"run: job '{name}' is not in target '{config.target.name}'; "
                f"run `lakeforge bootstrap --target {config.target.name}` first"
            )
        job_id = found[0].job_id
        waiter = w.jobs.run_now(job_id)
        run_id = waiter.run_id
        progress(f"{name}: run {run_id} started")
        last: dict[str, str] = {}

        def follow(run: Run) -> None:
            state = run.state.life_cycle_state.value if run.state and run.state.life_cycle_state else "?"
            if last.get("state") != state:
                last["state"] = state
                progress(f"{name}: run {run_id} {state}")

        run = waiter.result(timeout=timedelta(minutes=timeout_minutes), callback=follow)
    state = run.state
    return RunResult(
        job=name,
        job_id=job_id,
        run_id=run_id,
        url=run.run_page_url or f"{desired.host}/#job/{job_id}/run/{run_id}",
        life_cycle_state=state.life_cycle_state.value if state and state.life_cycle_state else "?",
        result_state=state.result_state.value if state and state.result_state else None,
        message=(state.state_message or "") if state else "",
    )
