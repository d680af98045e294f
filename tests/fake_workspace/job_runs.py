"""Jobs API 2.2 runs: run-now, runs/get, runs/list, runs/cancel, runs/get-output.

A run moves on with time, computed on every read: QUEUED (only while the job's `max_concurrent_runs` are
active and `queue.enabled`; without a queue the run is SKIPPED at once) -> PENDING (`run_pending_seconds`, its
job clusters starting) -> RUNNING, where the tasks run in dependency order, each for `run_seconds` (a
condition_task at once; a run_job_task as long as the run of the other job it starts) -> a terminal state. The
fake runs no notebook: a task's result comes from the `task_results` setting (SUCCESS by default), its task
values from `task_values`; a notebook task whose notebook is missing fails as on a real workspace. A task is
skipped as UPSTREAM_FAILED or EXCLUDED when its `run_if` or the outcome it depends on does not hold. A failed
task makes the run FAILED with life_cycle_state INTERNAL_ERROR, as the real service reports it
(databricks/cli#6091, its testserver: "one failed task fails the whole run, and the run reports INTERNAL_ERROR
in the deprecated life_cycle_state"). The `job_results` setting instead sets the whole run's result, every
task alike, with life_cycle_state TERMINATED. `idempotency_token` on run-now returns the existing run.
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .clusters import Clusters
from .common import Context, Request, now_ms, page
from .errors import ApiError, invalid
from .workspace_files import WorkspaceTree, normalize

if TYPE_CHECKING:
    from .jobs import Job, Jobs

_FAILED_CODES = {
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "SUCCESS_WITH_FAILURES": ("SUCCESS_WITH_FAILURES", "SUCCESS"),
}
# What a real failed task says; the run wraps it as "Task <key> failed with message: <this>." (databricks/cli
# testserver, taskFailureMessage).
_WORKLOAD_FAILED = "Workload failed, see run output for details"
# databricks-sdk jobs.RunResultState docstrings.
_SKIPPED_MESSAGES = {
    "UPSTREAM_FAILED": "The run was skipped because of an upstream failure.",
    "EXCLUDED": "The run was skipped because the necessary conditions were not met.",
}
_SUCCEEDED = ("SUCCESS", "SUCCESS_WITH_FAILURES")
_REFERENCE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


@dataclass
class TaskRun:
    key: str
    run_id: int
    spec: dict
    phase: str = "BLOCKED"  # BLOCKED, RUNNING, DONE
    life: str | None = None  # when DONE: TERMINATED, SKIPPED, INTERNAL_ERROR
    result: str | None = None
    message: str = ""
    started: float | None = None
    ended: float | None = None
    outcome: str | None = None  # a condition_task's "true" / "false"
    resolved: dict | None = None  # resolved_values
    child_run_id: int | None = None  # the run a run_job_task started
    values: dict[str, Any] = field(default_factory=dict)  # task values set, once it succeeded
    code: str | None = None  # termination code when it is not the result's


@dataclass
class Run:
    run_id: int
    job_id: int
    number_in_job: int
    settings: dict
    creator: str
    created: float  # monotonic
    start_time: int  # wall clock, ms
    job_parameters: list[dict]
    idempotency_token: str | None
    trigger: str
    pending: float
    task_seconds: float
    legacy_result: str | None  # job_results: the whole run's result
    tasks: dict[str, TaskRun]
    phase: str = "QUEUED"  # QUEUED, PENDING, RUNNING, DONE
    started: float | None = None  # when it left the queue
    running_at: float | None = None
    ended: float | None = None
    life: str | None = None
    result: str | None = None
    message: str = ""
    code: tuple[str, str] | None = None
    cancelled: bool = False
    job_clusters: dict[str, str] = field(default_factory=dict)  # job_cluster_key -> cluster id

    def wall(self, at: float) -> int:
        return self.start_time + int((at - self.created) * 1000)


class Runs:
    def __init__(self, ctx: Context, jobs: Jobs, clusters: Clusters, tree: WorkspaceTree):
        self.ctx = ctx
        self.jobs = jobs
        self.clusters = clusters
        self.tree = tree
        self.runs: dict[int, Run] = {}

    def routes(self):
        return [
            ("POST", "/api/2.2/jobs/run-now", self.run_now),
            ("GET", "/api/2.2/jobs/runs/get", self.get_run),
            ("GET", "/api/2.2/jobs/runs/list", self.list_runs),
            ("POST", "/api/2.2/jobs/runs/cancel", self.cancel_run),
            ("GET", "/api/2.2/jobs/runs/get-output", self.get_output),
        ]

    # ---- endpoints ------------------------------------------------------------------------------------
    def run_now(self, req: Request) -> dict:
        job = self.jobs.find(req.need("job_id"))
        self._tick()
        token = req.body.get("idempotency_token")
        if token:
            for run in self.runs.values():
                if run.idempotency_token == token:
                    return {"run_id": run.run_id, "number_in_job": run.number_in_job}
        run = self.start(job, req.body.get("job_parameters") or {}, "ONE_TIME", token)
        return {"run_id": run.run_id, "number_in_job": run.number_in_job}

    def get_run(self, req: Request) -> dict:
        self._tick()
        run = self._find(req.need("run_id"))
        return self._run_json(run, resolved=req.flag("include_resolved_values"))

    def list_runs(self, req: Request) -> dict:
        self._tick()
        job_id = req.arg("job_id")
        rows = list(reversed(self.runs.values()))  # most recent first
        if job_id:
            rows = [r for r in rows if str(r.job_id) == str(job_id)]
        if req.flag("active_only"):
            rows = [r for r in rows if r.phase != "DONE"]
        if req.flag("completed_only"):
            rows = [r for r in rows if r.phase == "DONE"]
        chunk, next_token, _ = page(rows, req.arg("page_token"), req.int_arg("limit", 25))
        answer: dict[str, Any] = {"has_more": next_token is not None}
        if chunk:
            answer["runs"] = [self._run_json(r) for r in chunk]
        if next_token:
            answer["next_page_token"] = next_token
        return answer

    def cancel_run(self, req: Request) -> dict:
        self._tick()
        self._cancel(self._find(req.need("run_id")), time.monotonic())
        return {}

    def get_output(self, req: Request) -> dict:
        self._tick()
        run_id = req.need("run_id")
        for run in self.runs.values():
            for task in run.tasks.values():
                if str(task.run_id) == str(run_id):
                    answer: dict[str, Any] = {"metadata": self._task_json(run, task, resolved=False)}
                    if task.child_run_id is not None:
                        answer["run_job_output"] = {"run_id": task.child_run_id}
                    if task.result not in (None, *_SUCCEEDED) and task.life != "SKIPPED":
                        answer["error"] = task.message
                    return answer
        self._find(run_id)
        # Asked for a job run, even of one task, the service refuses (databricks/databricks-sdk-py#997 and
        # #375, PrefectHQ/prefect#13127 quote it).
        raise invalid(
            "Retrieving the output of runs with multiple tasks is not supported. "
            "Please retrieve the output of each individual task run instead."
        )

    # ---- starting and advancing ------------------------------------------------------------------------
    def start(self, job: Job, overrides: dict, trigger: str, token: str | None = None) -> Run:
        declared = {p["name"]: p.get("default") for p in job.settings.get("parameters", [])}
        unknown = sorted(set(overrides) - set(declared))
        if unknown and declared:
            raise invalid(f"Job parameters {unknown} are not defined in the job.")
        parameters = [
            {"name": n, "default": d, "value": str(overrides.get(n, d))} for n, d in declared.items()
        ]
        settings = self.ctx.settings
        legacy = self.jobs.setting_for(settings.job_results, job)
        now = time.monotonic()
        job.runs += 1
        run = Run(
            self.ctx.big_id(),
            job.job_id,
            job.runs,
            copy.deepcopy(job.settings),
            job.creator,
            now,
            now_ms(),
            parameters,
            token,
            trigger,
            settings.run_pending_seconds,
            settings.run_seconds,
            legacy if legacy not in (None, "SUCCESS") else None,
            {
                t["task_key"]: TaskRun(t["task_key"], self.ctx.big_id(), t)
                for t in job.settings.get("tasks", [])
            },
        )
        earlier = [r for r in self.runs.values() if r.job_id == job.job_id]
        for other in earlier:
            self._advance(other, now)
        active = sum(1 for r in earlier if r.phase in ("PENDING", "RUNNING"))
        limit = int(job.settings.get("max_concurrent_runs", 1))
        queued_before = any(r.phase == "QUEUED" for r in earlier)
        if (active >= limit or queued_before) and not (job.settings.get("queue") or {}).get("enabled"):
            # The message: databricks/cli#257, databrickslabs/cicd-templates#52. The result: the SDK's
            # RunResultState MAXIMUM_CONCURRENT_RUNS_REACHED ("skipped because the maximum concurrent runs
            # were reached"); the code: its TerminationCodeCode MAX_CONCURRENT_RUNS_EXCEEDED.
            run.phase, run.life, run.ended = "DONE", "SKIPPED", now
            run.result = "MAXIMUM_CONCURRENT_RUNS_REACHED"
            run.message = (
                f"Skipping this run because the limit of {limit} maximum concurrent runs has been reached."
            )
            run.code = ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR")
        self.runs[run.run_id] = run
        self._advance(run, now)
        return run

    def _tick(self, now: float | None = None) -> None:
        """Bring every run to monotonic time `now`: any run may start another (a run_job_task's), which the
        runs list of that job shows at once."""
        now = time.monotonic() if now is None else now
        for run in list(self.runs.values()):
            self._advance(run, now)

    def _advance(self, run: Run, now: float | None = None) -> None:
        """Bring the run to where it is at monotonic time `now`."""
        now = time.monotonic() if now is None else now
        if run.phase == "QUEUED":
            earlier = [r for r in self.runs.values() if r.job_id == run.job_id and r.created < run.created]
            for other in earlier:
                self._advance(other, now)
            limit = int(run.settings.get("max_concurrent_runs", 1))
            if any(r.phase == "QUEUED" for r in earlier):
                return
            active = [r for r in earlier if r.phase in ("PENDING", "RUNNING")]
            if len(active) >= limit:
                return
            freed = [r.ended for r in earlier if r.ended is not None and r.ended <= now]
            run.started = max([run.created, *freed])
            run.phase = "PENDING"
            self._start_job_clusters(run)
        if run.phase == "PENDING":
            assert run.started is not None
            if now < run.started + run.pending:
                return
            run.phase, run.running_at = "RUNNING", run.started + run.pending
        if run.phase != "RUNNING":
            return
        assert run.running_at is not None
        moved = True
        while moved:
            moved = False
            for task in run.tasks.values():
                if task.phase == "BLOCKED":
                    upstream = [run.tasks[d["task_key"]] for d in task.spec.get("depends_on", [])]
                    if any(u.phase != "DONE" for u in upstream):
                        continue
                    at = max([run.running_at, *(u.ended or run.running_at for u in upstream)])
                    if at > now:
                        continue
                    skipped = self._skip_verdict(run, task)
                    if skipped:
                        self._finish(task, at, "SKIPPED", skipped, _SKIPPED_MESSAGES[skipped], code="SKIPPED")
                    else:
                        self._start_task(run, task, at)
                    moved = True
                if task.phase == "RUNNING":
                    moved = self._progress_task(run, task, now) or moved
        if all(t.phase == "DONE" for t in run.tasks.values()):
            ends = [t.ended for t in run.tasks.values() if t.ended is not None]
            end = max(ends) if ends else run.running_at + run.task_seconds
            if end <= now:
                self._end_run(run, end)

    def _start_task(self, run: Run, task: TaskRun, at: float) -> None:
        job = self.jobs.jobs.get(run.job_id)
        task.phase, task.started = "RUNNING", at
        task.resolved = self._resolved(run, task)
        condition = task.spec.get("condition_task")
        if condition is not None:
            values = task.resolved["condition_task"]
            task.outcome = "true" if _compare(condition["op"], values["left"], values["right"]) else "false"
            self._finish(task, at, "TERMINATED", "SUCCESS", "")
            return
        run_job = task.spec.get("run_job_task")
        if run_job is not None:
            other = self.jobs.jobs.get(int(run_job["job_id"]))
            if other is None:
                self._finish(task, at, "INTERNAL_ERROR", "FAILED", f"Job {run_job['job_id']} does not exist.")
                return
            child = self.start(other, task.resolved["run_job_task"].get("job_parameters", {}), "RUN_JOB_TASK")
            task.child_run_id = child.run_id
            return
        notebook = task.spec.get("notebook_task")
        if notebook and notebook.get("source", "WORKSPACE") == "WORKSPACE":
            try:
                path = normalize(notebook.get("notebook_path"))
            except ApiError:
                path = str(notebook.get("notebook_path"))
            node = self.tree.nodes.get(path)
            if node is None or node.object_type != "NOTEBOOK":
                self._finish(
                    task, at, "INTERNAL_ERROR", "FAILED", f"Notebook not found: {path}", "RESOURCE_NOT_FOUND"
                )
                return
        if job is not None and run.legacy_result is None:
            result = (self.jobs.setting_for(self.ctx.settings.task_results, job) or {}).get(task.key)
            if result and result not in _SUCCEEDED:
                task.result = result  # decided now, shown when the task ends

    def _progress_task(self, run: Run, task: TaskRun, now: float) -> bool:
        assert task.started is not None
        if task.child_run_id is not None:
            child = self.runs[task.child_run_id]
            self._advance(child, now)
            if child.phase != "DONE" or child.ended is None:
                return False
            ok = child.result in _SUCCEEDED
            self._finish(
                task,
                max(task.started, child.ended),
                "TERMINATED",
                "SUCCESS" if ok else "FAILED",
                "" if ok else child.message,
            )
            return True
        end = task.started + run.task_seconds
        if now < end:
            return False
        if task.result and task.result not in _SUCCEEDED:
            self._finish(task, end, "TERMINATED", task.result, _WORKLOAD_FAILED)
            return True
        self._finish(task, end, "TERMINATED", "SUCCESS", "")
        job = self.jobs.jobs.get(run.job_id)
        if job is not None:
            task.values = dict(
                (self.jobs.setting_for(self.ctx.settings.task_values, job) or {}).get(task.key) or {}
            )
        return True

    @staticmethod
    def _finish(
        task: TaskRun, at: float, life: str, result: str, message: str, code: str | None = None
    ) -> None:
        task.phase, task.life, task.result, task.message, task.code = "DONE", life, result, message, code
        task.started = at if task.started is None else task.started
        task.ended = at

    def _skip_verdict(self, run: Run, task: TaskRun) -> str | None:
        """None when the task runs, else the result it is skipped with (UPSTREAM_FAILED or EXCLUDED)."""
        outcomes = []  # per dependency: "success", "failed" or "excluded"
        for dependency in task.spec.get("depends_on", []):
            upstream = run.tasks[dependency["task_key"]]
            wanted = dependency.get("outcome")
            if upstream.result == "EXCLUDED" or (
                wanted is not None and upstream.outcome != wanted and upstream.result in _SUCCEEDED
            ):
                outcomes.append("excluded")
            elif upstream.result in _SUCCEEDED:
                outcomes.append("success")
            else:
                outcomes.append("failed")
        if not outcomes:
            return None
        ran = [o for o in outcomes if o != "excluded"]
        rule = task.spec.get("run_if", "ALL_SUCCESS")
        if not ran:
            return "EXCLUDED"
        if rule == "ALL_SUCCESS":
            if "failed" in ran:
                return "UPSTREAM_FAILED"
            return "EXCLUDED" if len(ran) < len(outcomes) else None
        holds = {
            "AT_LEAST_ONE_SUCCESS": "success" in ran,
            "NONE_FAILED": "failed" not in ran,
            "ALL_DONE": True,
            "AT_LEAST_ONE_FAILED": "failed" in ran,
            "ALL_FAILED": all(o == "failed" for o in ran),
        }[rule]
        if holds:
            return None
        # A run_if waiting for a failure that did not come is no upstream failure: the task is excluded.
        return "EXCLUDED" if rule in ("AT_LEAST_ONE_FAILED", "ALL_FAILED") else "UPSTREAM_FAILED"

    def _end_run(self, run: Run, at: float) -> None:
        run.phase, run.ended = "DONE", at
        failed = [
            t for t in run.tasks.values() if t.life != "SKIPPED" and t.result not in (*_SUCCEEDED, None)
        ]
        if run.legacy_result is not None and not any(t.life == "INTERNAL_ERROR" for t in failed):
            run.life, run.result = "TERMINATED", run.legacy_result
            run.message = f"Run {run.run_id} ended with result {run.legacy_result}."
            run.code = _FAILED_CODES.get(run.legacy_result, ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
        elif not failed:
            run.life, run.result, run.message = "TERMINATED", "SUCCESS", ""
            run.code = _FAILED_CODES["SUCCESS"]
        else:
            downstream = {d["task_key"] for t in run.tasks.values() for d in t.spec.get("depends_on", [])}
            leaves = [t for t in run.tasks.values() if t.key not in downstream]
            if all(t.result in (*_SUCCEEDED, "EXCLUDED") for t in leaves):
                # RunResultState SUCCESS_WITH_FAILURES: "completed successfully with some failures; leaf tasks
                # were successful."
                run.life, run.result, run.message = "TERMINATED", "SUCCESS_WITH_FAILURES", ""
                run.code = _FAILED_CODES["SUCCESS_WITH_FAILURES"]
            else:
                first = min(failed, key=lambda t: t.ended or 0.0)
                run.life, run.result = "INTERNAL_ERROR", "FAILED"
                run.message = f"Task {first.key} failed with message: {first.message}."
                run.code = (first.code or "RUN_EXECUTION_ERROR", "CLIENT_ERROR")
        self._end_job_clusters(run, at)

    def _cancel(self, run: Run, now: float) -> None:
        self._advance(run, now)
        if run.phase == "DONE":
            return
        for task in run.tasks.values():
            if task.child_run_id is not None:
                self._cancel(self.runs[task.child_run_id], now)
            if task.phase != "DONE":
                self._finish(task, now, "TERMINATED", "CANCELED", "Run cancelled.", code="USER_CANCELED")
        run.started = run.started if run.started is not None else now
        run.phase, run.ended, run.cancelled = "DONE", now, True
        run.life, run.result, run.message = "TERMINATED", "CANCELED", "Run cancelled."
        run.code = _FAILED_CODES["CANCELED"]
        self._end_job_clusters(run, now)

    # ---- job clusters -----------------------------------------------------------------------------------
    def _start_job_clusters(self, run: Run) -> None:
        assert run.started is not None
        specs = {c["job_cluster_key"]: c["new_cluster"] for c in run.settings.get("job_clusters", [])}
        used = [key for key in specs if any(t.spec.get("job_cluster_key") == key for t in run.tasks.values())]
        for key in used:
            spec = specs[key]
            users = [t.spec for t in run.tasks.values() if t.spec.get("job_cluster_key") == key]
            name = f"job-{run.job_id}-run-{run.run_id}" + (f"-{key}" if len(used) > 1 else "")
            libraries = [lib for t in users for lib in t.get("libraries", [])]
            tags = {"JobId": str(run.job_id), "RunName": str(run.settings.get("name", ""))}
            cluster = self.clusters.add_job_cluster(
                {**spec, "cluster_name": name}, run.creator, run.started, tags, libraries
            )
            run.job_clusters[key] = cluster.cluster_id

    def _end_job_clusters(self, run: Run, at: float) -> None:
        for cluster_id in run.job_clusters.values():
            self.clusters.end_job_cluster(cluster_id, at)

    # ---- dynamic value references ------------------------------------------------------------------------
    def _resolved(self, run: Run, task: TaskRun) -> dict:
        """resolved_values of the task: its parameters with `{{...}}` references filled in.

        A reference to nothing (a task value never set) stays as written: the docs' dynamic value references
        page, "Syntax errors, including non-existent dynamic reference values and missing braces, are silently
        ignored and treated as literal strings"."""
        parameters = {p["name"]: p["value"] for p in run.job_parameters}

        def value(reference: str) -> str | None:
            parts = reference.split(".")
            if parts[:1] == ["tasks"] and len(parts) == 4 and parts[2] == "values":
                upstream = run.tasks.get(parts[1])
                if upstream is None or parts[3] not in upstream.values:
                    return None
                return _as_text(upstream.values[parts[3]])
            if parts[:2] == ["job", "parameters"] and len(parts) == 3:
                return parameters.get(parts[2])
            return {
                "job.id": str(run.job_id),
                "job.run_id": str(run.run_id),
                "job.name": str(run.settings.get("name", "")),
                "task.name": task.key,
                "task.run_id": str(task.run_id),
            }.get(reference)

        def fill(text: Any) -> str:
            def one(match: re.Match) -> str:
                found = value(match.group(1))
                return match.group(0) if found is None else found

            return _REFERENCE.sub(one, str(text))

        spec = task.spec
        if "notebook_task" in spec:
            base = spec["notebook_task"].get("base_parameters") or {}
            return {"notebook_task": {"base_parameters": {k: fill(v) for k, v in base.items()}}}
        if "condition_task" in spec:
            condition = spec["condition_task"]
            return {"condition_task": {"left": fill(condition["left"]), "right": fill(condition["right"])}}
        if "run_job_task" in spec:
            given = spec["run_job_task"].get("job_parameters") or {}
            return {"run_job_task": {"job_parameters": {k: fill(v) for k, v in given.items()}}}
        return {}

    # ---- answers ------------------------------------------------------------------------------------------
    def _find(self, run_id: Any) -> Run:
        try:
            run = self.runs.get(int(run_id))
        except (TypeError, ValueError):
            run = None
        if run is None:
            raise invalid(f"Run {run_id} does not exist.")
        return run

    def _run_json(self, run: Run, resolved: bool = False) -> dict:
        self._advance(run)
        state, status = self._states(run)
        url = f"{self.ctx.base_url}/#job/{run.job_id}/run/{run.run_id}"
        out: dict[str, Any] = {
            "run_id": run.run_id,
            "job_id": run.job_id,
            "number_in_job": run.number_in_job,
            "original_attempt_run_id": run.run_id,
            "attempt_number": 0,
            "run_name": run.settings.get("name"),
            "creator_user_name": run.creator,
            "state": state,
            "status": status,
            "start_time": run.start_time,
            "run_page_url": url,
            "run_type": "JOB_RUN",
            "trigger": run.trigger,
            "format": "MULTI_TASK",
            "tasks": [self._task_json(run, t, resolved) for t in run.tasks.values()],
            "setup_duration": 0,
            "cleanup_duration": 0,
            "queue_duration": int((_first(run.started, run.ended, time.monotonic()) - run.created) * 1000),
        }
        if run.settings.get("job_clusters"):
            out["job_clusters"] = copy.deepcopy(run.settings["job_clusters"])
        if run.job_parameters:
            out["job_parameters"] = run.job_parameters
        if run.phase == "DONE" and run.ended is not None:
            out["end_time"] = run.wall(run.ended)
            out["run_duration"] = out["end_time"] - run.start_time
            out["execution_duration"] = max(0, run.wall(run.ended) - run.wall(run.running_at or run.ended))
        return out

    def _states(self, run: Run) -> tuple[dict, dict]:
        """(state, status) of the run: the deprecated RunState and its successor RunStatus."""
        if run.phase == "QUEUED":
            limit = run.settings.get("max_concurrent_runs", 1)
            # The code is the SDK's QueueDetailsCodeCode; the message text is not quoted by any source.
            message = f"Queued due to reaching maximum concurrent runs of {limit}."
            state = {
                "life_cycle_state": "QUEUED",
                "state_message": message,
                "queue_reason": message,
                "user_cancelled_or_timedout": False,
            }
            return state, {
                "state": "QUEUED",
                "queue_details": {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": message},
            }
        if run.phase in ("PENDING", "RUNNING"):
            message = "Waiting for cluster" if run.phase == "PENDING" else "In run"
            state = {
                "life_cycle_state": run.phase,
                "state_message": message,
                "user_cancelled_or_timedout": False,
            }
            return state, {"state": run.phase}
        state = {
            "life_cycle_state": run.life,
            "result_state": run.result,
            "state_message": run.message,
            "user_cancelled_or_timedout": run.cancelled,
        }
        code, kind = run.code or ("RUN_EXECUTION_ERROR", "CLIENT_ERROR")
        return state, {
            "state": "TERMINATED",
            "termination_details": {"code": code, "type": kind, "message": run.message},
        }

    def _task_json(self, run: Run, task: TaskRun, resolved: bool) -> dict:
        row = {k: copy.deepcopy(v) for k, v in task.spec.items() if k != "email_notifications"}
        row["run_id"] = task.run_id
        row["attempt_number"] = 0
        row["run_page_url"] = f"{self.ctx.base_url}/#job/{run.job_id}/run/{task.run_id}"
        if task.phase == "DONE":
            result = task.result
            if run.legacy_result is not None and result == "SUCCESS" and task.life == "TERMINATED":
                result = run.legacy_result
            code, kind = _FAILED_CODES.get(result or "", ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
            if task.code:
                code, kind = (
                    task.code,
                    ("SUCCESS" if task.code in ("SKIPPED", "USER_CANCELED") else "CLIENT_ERROR"),
                )
            row["state"] = {
                "life_cycle_state": task.life,
                "result_state": result,
                "state_message": task.message,
                "user_cancelled_or_timedout": result == "CANCELED",
            }
            row["status"] = {
                "state": "TERMINATED",
                "termination_details": {"code": code, "type": kind, "message": task.message},
            }
        else:
            life = task.phase if run.phase == "RUNNING" else self._states(run)[0]["life_cycle_state"]
            row["state"] = {
                "life_cycle_state": life,
                "state_message": "",
                "user_cancelled_or_timedout": False,
            }
            row["status"] = {"state": life}
        if task.started is not None:
            row["start_time"] = run.wall(task.started)
        if task.ended is not None:
            row["end_time"] = run.wall(task.ended)
            row["execution_duration"] = row["end_time"] - row["start_time"]
        if task.outcome is not None:
            row["condition_task"] = {
                **row["condition_task"],
                **(task.resolved or {}).get("condition_task", {}),
                "outcome": task.outcome,
            }
        cluster_id = run.job_clusters.get(task.spec.get("job_cluster_key", "")) or task.spec.get(
            "existing_cluster_id"
        )
        if cluster_id:
            row["cluster_instance"] = {"cluster_id": cluster_id}
        if resolved and task.resolved:
            row["resolved_values"] = copy.deepcopy(task.resolved)
        return row

    def dump(self) -> dict:
        self._tick()
        return {str(r.run_id): self._run_json(r, resolved=True) for r in self.runs.values()}


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _as_text(value: Any) -> str:
    """A task value as a `{{tasks.X.values.Y}}` reference reads it: booleans as "true"/"false" (the SDK's
    ConditionTaskOp docstring), strings as they are, anything else as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _compare(op: str, left: str, right: str) -> bool:
    """ConditionTaskOp: EQUAL_TO and NOT_EQUAL compare strings ("12.0" != "12"), the others numbers."""
    if op == "EQUAL_TO":
        return left == right
    if op == "NOT_EQUAL":
        return left != right
    try:
        a, b = float(left), float(right)
    except ValueError:
        return False
    return {
        "GREATER_THAN": a > b,
        "GREATER_THAN_OR_EQUAL": a >= b,
        "LESS_THAN": a < b,
        "LESS_THAN_OR_EQUAL": a <= b,
    }[op]
