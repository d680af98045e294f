"""`lakeforge run`: start the project's jobs in a target, follow each to its end, task by task, and report
the results.

`run_job` runs one job. `run_all` runs the jobs of `[tool.lakeforge].run_all` one after the other
(features, training, promotion, batch inference, monitoring in a generated project), each started only once
the one before it succeeded, and stops at the first that does not: the deploy pipeline runs it on staging, so
that prod is deployed only after the whole loop has run there. Every job must exist before the first starts.

Bootstrap's library install on a running cluster is asynchronous (the Libraries API installs "in the
background after the completion of this request"), so `run_all` first waits until the project's own libraries
on its running cluster are installed, and stops if one failed: the first run executes the wheel that the last
bootstrap deployed. A cluster that is not running installs its libraries when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import OperationFailed
from databricks.sdk.service.compute import LibraryInstallStatus, State
from databricks.sdk.service.jobs import Run

from lakeforge import cluster, jobs
from lakeforge.changes import Desired, failing_as, library_path
from lakeforge.config import Config
from lakeforge.connection import whoami
from lakeforge.errors import LakeforgeError
from lakeforge.payloads import fill

ALL = "all"  # `lakeforge run all`: every job of run_all, in order
Progress = Callable[[str], None]
_SETTLING = (LibraryInstallStatus.PENDING, LibraryInstallStatus.RESOLVING, LibraryInstallStatus.INSTALLING)
_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class TaskResult:
    """One task of a run, as the run's last poll showed it."""

    key: str
    state: str  # the result state once the task ended (SUCCESS, FAILED, EXCLUDED, ...), else its life cycle
    seconds: float | None = None
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    job: str
    job_id: int
    run_id: int
    url: str
    life_cycle_state: str
    result_state: str | None
    message: str
    seconds: float | None = None  # from start to end, when the workspace says
    tasks: tuple[TaskResult, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.result_state == "SUCCESS"

    @property
    def state(self) -> str:
        return self.result_state or self.life_cycle_state


@dataclass(frozen=True)
class RunAllResult:
    """What `run_all` did: the runs in order (the last one failed unless all succeeded), and the jobs it did
    not start because an earlier one failed."""

    target: str
    host: str
    runs: tuple[RunResult, ...]
    not_started: tuple[str, ...]

    @property
    def succeeded(self) -> bool:
        return not self.not_started and all(run.succeeded for run in self.runs)

    @property
    def failed(self) -> RunResult | None:
        return next((run for run in self.runs if not run.succeeded), None)


def job_name(config: Config, job: str) -> str:
    """The job's name in the target, from a job file's stem (`training`) or the job's name itself."""
    for file in config.jobs:
        name = fill(file.payload["name"], config.values())
        if job in (file.key, name):
            return name
    keys = ", ".join(f.key for f in config.jobs)
    raise LakeforgeError(
        f"no job '{job}' in {config.jobs_dir.name}/; the jobs are: {keys} "
        f"(or `{ALL}`: {', '.join(config.run_all)})"
    )


def run_job(
    w: WorkspaceClient,
    config: Config,
    job: str,
    progress: Progress | None = None,
    timeout_minutes: int = 120,
) -> RunResult:
    """Run the job now and wait for its end (at most `timeout_minutes`); the result says how it ended."""
    progress = progress or (lambda message: None)
    desired = _desired(w, config)
    name = job_name(config, job)
    job_id = _job_id(w, desired, name)
    return _run(w, desired, name, job_id, progress, timeout_minutes)


def run_all(
    w: WorkspaceClient,
    config: Config,
    progress: Progress | None = None,
    timeout_minutes: int = 120,
) -> RunAllResult:
    """Run every job of `config.run_all` in order, each after the one before succeeded; stop at the first
    failure. `timeout_minutes` is per run. Raises `LakeforgeError` before starting anything if a job is
    missing in the target."""
    progress = progress or (lambda message: None)
    desired = _desired(w, config)
    names = [job_name(config, key) for key in config.run_all]
    if not names:
        raise LakeforgeError("run all: tool.lakeforge.run_all names no job")
    ids = [_job_id(w, desired, name) for name in names]
    _wait_for_libraries(w, desired, progress, timeout_minutes)
    done: list[RunResult] = []
    for i, (name, job_id) in enumerate(zip(names, ids, strict=True)):

        def step(message: str, i: int = i) -> None:
            progress(f"[{i + 1}/{len(names)}] {message}")

        result = _run(w, desired, name, job_id, step, timeout_minutes)
        done.append(result)
        if not result.succeeded:
            return RunAllResult(config.target.name, desired.host, tuple(done), tuple(names[i + 1 :]))
    return RunAllResult(config.target.name, desired.host, tuple(done), ())


def _wait_for_libraries(
    w: WorkspaceClient, desired: Desired, progress: Progress, timeout_minutes: int
) -> None:
    """Wait while the project's wheel or PyPI packages are still being installed on its running cluster."""
    config = desired.config
    dist = library_path(f"{desired.root}/dist") + "/"
    with failing_as("run", f"the cluster of {config.project}"):
        found = cluster.find(w, desired)
        if not found or found[0].state is not State.RUNNING:
            return
        cluster_id, name = found[0].cluster_id, found[0].cluster_name
        deadline = time.monotonic() + timeout_minutes * 60
        while True:
            ours = [
                s
                for s in w.libraries.cluster_status(cluster_id)
                if s.library is not None
                and (
                    (s.library.whl or "").startswith(dist)
                    or (s.library.pypi is not None and s.library.pypi.package in config.pypi_packages)
                )
            ]
            failed = [s for s in ours if s.status is LibraryInstallStatus.FAILED]
            if failed:
                what = failed[0].library.whl or failed[0].library.pypi.package  # type: ignore[union-attr]
                why = " ".join(" ".join(failed[0].messages or []).split())[:300]
                raise LakeforgeError(
                    f"run all: {what} failed to install on cluster {name}: {why or 'no message'}"
                )
            settling = [s for s in ours if s.status in _SETTLING]
            if not settling:
                return
            if time.monotonic() > deadline:
                raise LakeforgeError(
                    f"run all: libraries still installing on cluster {name} after {timeout_minutes} minutes"
                )
            progress(f"waiting for {len(settling)} of the project's libraries to install on {name}")
            time.sleep(_POLL_SECONDS)


def _desired(w: WorkspaceClient, config: Config) -> Desired:
    user = whoami(w, config.target)
    return Desired(config=config, host=(w.config.host or "").rstrip("/"), user=user, wheel=None)


def _job_id(w: WorkspaceClient, desired: Desired, name: str) -> int:
    target = desired.config.target.name
    with failing_as("run", name):
        found = jobs.find(w, desired, name)
    if not found:
        raise LakeforgeError(
            f"run: job '{name}' is not in target '{target}'; "
            f"run `lakeforge bootstrap --target {target}` first"
        )
    return found[0].job_id


def _run(
    w: WorkspaceClient, desired: Desired, name: str, job_id: int, progress: Progress, timeout_minutes: int
) -> RunResult:
    with failing_as("run", name):
        waiter = w.jobs.run_now(job_id)
        run_id = waiter.run_id
        progress(f"{name}: run {run_id} started")
        shown: dict[str, str] = {}

        def follow(run: Run) -> None:
            """Say each change of the run's state and of each task's (once it started), as polls see them."""
            tasks = [(t.key, t.state) for t in _tasks(run) if t.state not in _WAITING]
            for key, state in [("", _life_cycle(run)), *tasks]:
                if shown.get(key) != state:
                    shown[key] = state
                    progress(f"{name}: {key or f'run {run_id}'} {state}")

        try:
            run = waiter.result(timeout=timedelta(minutes=timeout_minutes), callback=follow)
        except OperationFailed:  # INTERNAL_ERROR: the run ended, but not as a job that ran
            run = w.jobs.get_run(run_id)
        except TimeoutError:
            run = w.jobs.get_run(run_id)
            waited = f"still {_life_cycle(run)} after {timeout_minutes} minutes; lakeforge stopped waiting"
            return _result(desired, name, job_id, run_id, run, timed_out=waited)
    result = _result(desired, name, job_id, run_id, run)
    for task in result.tasks:
        if shown.get(task.key) != task.state:
            took = f" in {duration(task.seconds)}" if task.seconds is not None else ""
            progress(f"{name}: {task.key} {task.state}{took}")
    took = f" in {duration(result.seconds)}" if result.seconds is not None else ""
    progress(f"{name}: run {run_id} {result.state}{took}")
    return result


def _result(
    desired: Desired, name: str, job_id: int, run_id: int, run: Run, timed_out: str | None = None
) -> RunResult:
    state = run.state
    tasks = _tasks(run)
    message = timed_out or ((state.state_message or "") if state else "")
    failed = next((t for t in tasks if t.state not in _TASK_OK and t.state in _TASK_ENDED), None)
    if failed is not None and not timed_out:
        # The run's own message is generic ("Workload failed"); the first failed task says what failed.
        message = f"task {failed.key} {failed.state}" + (f": {failed.message}" if failed.message else "")
    return RunResult(
        job=name,
        job_id=job_id,
        run_id=run_id,
        url=run.run_page_url or f"{desired.host}/#job/{job_id}/run/{run_id}",
        life_cycle_state=_life_cycle(run),
        result_state="TIMEDOUT"
        if timed_out
        else (state.result_state.value if state and state.result_state else None),
        message=message,
        seconds=_seconds(run.start_time, run.end_time),
        tasks=tasks,
    )


# A task that has not started yet (RunLifeCycleState) is not worth a line of progress.
_WAITING = {"PENDING", "BLOCKED", "QUEUED", "WAITING_FOR_RETRY"}
# Task result states (Jobs API RunResultState): EXCLUDED is a branch a condition did not take, and
# SUCCESS_WITH_FAILURES a success; UPSTREAM_FAILED tasks never ran because one before them failed.
_TASK_OK = {"SUCCESS", "EXCLUDED", "SUCCESS_WITH_FAILURES"}
_TASK_ENDED = _TASK_OK | {"FAILED", "TIMEDOUT", "CANCELED", "MAXIMUM_CONCURRENT_RUNS_REACHED", "DISABLED"}


def _tasks(run: Run) -> tuple[TaskResult, ...]:
    """The run's tasks in the order they started (not started yet: last, in the job's order)."""
    found = []
    for position, task in enumerate(run.tasks or []):
        state = task.state
        result = state.result_state.value if state and state.result_state else None
        life = state.life_cycle_state.value if state and state.life_cycle_state else "PENDING"
        found.append(
            (
                task.start_time or float("inf"),
                position,
                TaskResult(
                    key=task.task_key or "?",
                    state=result or life,
                    seconds=_seconds(task.start_time, task.end_time),
                    message=" ".join(((state.state_message or "") if state else "").split())[:300],
                ),
            )
        )
    return tuple(t for *_, t in sorted(found, key=lambda f: (f[0], f[1])))


def _seconds(start: int | None, end: int | None) -> float | None:
    return (end - start) / 1000 if start and end and end >= start else None


def _life_cycle(run: Run) -> str:
    return run.state.life_cycle_state.value if run.state and run.state.life_cycle_state else "?"


def duration(seconds: float | None) -> str:
    """`42.0 s`, `3 min 5 s`; empty when unknown."""
    if seconds is None:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"
