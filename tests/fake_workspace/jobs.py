"""Jobs API 2.2: jobs (create, reset, update, delete, get, list) and their runs (run-now, get, list, cancel).

Settings are stored as sent plus the defaults the real service adds on read (`email_notifications: {}`,
`timeout_seconds: 0`, `max_concurrent_runs: 1`, `format: MULTI_TASK`, per task `run_if: ALL_SUCCESS`,
`notebook_task.source: WORKSPACE`, `schedule.pause_status: UNPAUSED`), so a client must diff on the fields it
specifies. A run goes PENDING -> RUNNING -> TERMINATED with the result set for its job in the fake's settings
(`job_results`, by job name or id; SUCCESS by default); a notebook task whose notebook is missing ends in
INTERNAL_ERROR as on a real workspace. `idempotency_token` on run-now returns the existing run.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from .clusters import Clusters, validated_spec
from .common import Context, Request, now_ms, page
from .errors import ApiError, invalid
from .workspace_files import WorkspaceTree, normalize

_FAILED_CODES = {
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("CANCELED", "SUCCESS"),
    "SUCCESS": ("SUCCESS", "SUCCESS"),
}


@dataclass
class Job:
    job_id: int
    settings: dict
    creator: str
    created_time: int
    runs: int = 0


@dataclass
class Run:
    run_id: int
    job_id: int
    number_in_job: int
    settings: dict
    created: float
    start_time: int
    pending: float
    running: float
    result: str
    error: str | None
    job_parameters: list[dict]
    idempotency_token: str | None = None
    cancelled_at: float | None = None
    end_time: int | None = None
    task_run_ids: dict[str, int] = field(default_factory=dict)


class Jobs:
    def __init__(self, ctx: Context, clusters: Clusters, tree: WorkspaceTree):
        self.ctx = ctx
        self.clusters = clusters
        self.tree = tree
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, Run] = {}

    def routes(self):
        return [
            ("POST", "/api/2.2/jobs/create", self.create),
            ("POST", "/api/2.2/jobs/reset", self.reset),
            ("POST", "/api/2.2/jobs/update", self.update),
            ("POST", "/api/2.2/jobs/delete", self.delete),
            ("GET", "/api/2.2/jobs/get", self.get),
            ("GET", "/api/2.2/jobs/list", self.list),
            ("POST", "/api/2.2/jobs/run-now", self.run_now),
            ("GET", "/api/2.2/jobs/runs/get", self.get_run),
            ("GET", "/api/2.2/jobs/runs/list", self.list_runs),
            ("POST", "/api/2.2/jobs/runs/cancel", self.cancel_run),
        ]

    # ---- jobs -----------------------------------------------------------------------------------------
    def create(self, req: Request) -> dict:
        settings = {k: v for k, v in req.body.items() if k != "access_control_list"}
        return {"job_id": self.add(settings, self.ctx.settings.user).job_id}

    def add(self, settings: dict, creator: str) -> Job:
        job = Job(self.ctx.big_id(), self._validated(settings), creator, now_ms())
        self.jobs[job.job_id] = job
        return job

    def reset(self, req: Request) -> dict:
        job = self._job(req.need("job_id"))
        new_settings = req.need("new_settings")
        job.settings = self._validated(new_settings)
        return {}

    def update(self, req: Request) -> dict:
        job = self._job(req.need("job_id"))
        merged = copy.deepcopy(job.settings)
        for key, value in (req.body.get("new_settings") or {}).items():
            if key in ("tasks", "job_clusters", "environments", "parameters"):
                ident = {
                    "tasks": "task_key",
                    "job_clusters": "job_cluster_key",
                    "environments": "environment_key",
                    "parameters": "name",
                }[key]
                by_key = {item.get(ident): item for item in merged.get(key, [])}
                for item in value:
                    by_key[item.get(ident)] = item
                merged[key] = list(by_key.values())
            else:
                merged[key] = value
        for field_path in req.body.get("fields_to_remove") or []:
            head, _, tail = str(field_path).partition("/")
            if tail and head in ("tasks", "job_clusters"):
                ident = "task_key" if head == "tasks" else "job_cluster_key"
                merged[head] = [item for item in merged.get(head, []) if item.get(ident) != tail]
            else:
                merged.pop(head, None)
        job.settings = self._validated(merged)
        return {}

    def delete(self, req: Request) -> dict:
        job = self._job(req.need("job_id"))
        del self.jobs[job.job_id]
        return {}

    def get(self, req: Request) -> dict:
        return self._job_json(self._job(req.need("job_id")), expand=True)

    def list(self, req: Request) -> dict:
        limit = req.int_arg("limit", 20)
        if limit < 1 or limit > 100:
            raise invalid(f"The limit {limit} is invalid: it must be between 1 and 100.")
        name = req.arg("name")
        rows = list(reversed(self.jobs.values()))  # most recently created first
        if name:
            rows = [j for j in rows if str(j.settings.get("name", "")).lower() == name.lower()]
        offset = req.int_arg("offset", 0)
        rows = rows[offset:]
        chunk, next_token, prev_token = page(rows, req.arg("page_token"), limit)
        expand = req.flag("expand_tasks")
        answer: dict[str, Any] = {"has_more": next_token is not None}
        if chunk:
            answer["jobs"] = [self._job_json(j, expand=expand) for j in chunk]
        if next_token:
            answer["next_page_token"] = next_token
        if prev_token:
            answer["prev_page_token"] = prev_token
        return answer

    # ---- runs -----------------------------------------------------------------------------------------
    def run_now(self, req: Request) -> dict:
        job = self._job(req.need("job_id"))
        token = req.body.get("idempotency_token")
        if token:
            for run in self.runs.values():
                if run.idempotency_token == token:
                    return {"run_id": run.run_id, "number_in_job": run.number_in_job}
        overrides = req.body.get("job_parameters") or {}
        declared = {p["name"]: p.get("default") for p in job.settings.get("parameters", [])}
        unknown = sorted(set(overrides) - set(declared))
        if unknown and declared:
            raise invalid(f"Job parameters {unknown} are not defined in the job.")
        parameters = [
            {"name": n, "default": d, "value": str(overrides.get(n, d))} for n, d in declared.items()
        ]
        job.runs += 1
        settings = self.ctx.settings
        result = settings.job_results.get(str(job.job_id)) or settings.job_results.get(
            str(job.settings.get("name")), "SUCCESS"
        )
        run = Run(
            self.ctx.big_id(),
            job.job_id,
            job.runs,
            copy.deepcopy(job.settings),
            time.monotonic(),
            now_ms(),
            settings.run_pending_seconds,
            settings.run_seconds,
            result,
            self._run_error(job.settings),
            parameters,
            token,
        )
        for task in job.settings.get("tasks", []):
            run.task_run_ids[task["task_key"]] = self.ctx.big_id()
        self.runs[run.run_id] = run
        return {"run_id": run.run_id, "number_in_job": run.number_in_job}

    def get_run(self, req: Request) -> dict:
        return self._run_json(self._run(req.need("run_id")))

    def list_runs(self, req: Request) -> dict:
        job_id = req.arg("job_id")
        rows = list(reversed(self.runs.values()))  # most recent first
        if job_id:
            rows = [r for r in rows if str(r.job_id) == str(job_id)]
        if req.flag("active_only"):
            rows = [r for r in rows if self._life_cycle(r)[0] in ("PENDING", "RUNNING", "QUEUED")]
        if req.flag("completed_only"):
            rows = [r for r in rows if self._life_cycle(r)[0] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")]
        chunk, next_token, _ = page(rows, req.arg("page_token"), req.int_arg("limit", 25))
        answer: dict[str, Any] = {"has_more": next_token is not None}
        if chunk:
            answer["runs"] = [self._run_json(r) for r in chunk]
        if next_token:
            answer["next_page_token"] = next_token
        return answer

    def cancel_run(self, req: Request) -> dict:
        run = self._run(req.need("run_id"))
        if self._life_cycle(run)[0] in ("PENDING", "RUNNING", "QUEUED"):
            run.cancelled_at = time.monotonic()
            run.end_time = now_ms()
        return {}

    # ---- helpers --------------------------------------------------------------------------------------
    def _job(self, job_id: Any) -> Job:
        try:
            job = self.jobs.get(int(job_id))
        except (TypeError, ValueError):
            job = None
        if job is None:
            raise invalid(f"Job {job_id} does not exist.")
        return job

    def _run(self, run_id: Any) -> Run:
        try:
            run = self.runs.get(int(run_id))
        except (TypeError, ValueError):
            run = None
        if run is None:
            raise invalid(f"Run {run_id} does not exist.")
        return run

    def _validated(self, settings: dict) -> dict:
        s = copy.deepcopy(settings)
        s.setdefault("name", "Untitled")
        s.setdefault("email_notifications", {})
        s.setdefault("webhook_notifications", {})
        s.setdefault("timeout_seconds", 0)
        s.setdefault("max_concurrent_runs", 1)
        s.setdefault("format", "MULTI_TASK")
        tags = s.get("tags")
        if tags is not None and (
            not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
        ):
            raise invalid("tags must be a map from string to string")
        if tags and len(tags) > 25:
            raise invalid("A job can have at most 25 tags.")
        job_cluster_keys = set()
        for job_cluster in s.get("job_clusters", []):
            key = job_cluster.get("job_cluster_key")
            if not key:
                raise invalid("Missing required field: job_clusters.job_cluster_key")
            if key in job_cluster_keys:
                raise invalid(f"Job cluster key {key} is used more than once.")
            validated_spec(job_cluster.get("new_cluster") or {})
            job_cluster_keys.add(key)
        task_keys: set[str] = set()
        for task in s.get("tasks", []):
            key = task.get("task_key")
            if not key:
                raise invalid("Missing required field: tasks.task_key")
            if key in task_keys:
                raise invalid(f"Task key {key} is used more than once.")
            task_keys.add(key)
            kinds = [k for k in task if k.endswith("_task")]
            if len(kinds) != 1:
                raise invalid(f"Task {key} must specify exactly one task type, got {kinds or 'none'}.")
            if "notebook_task" in task and not (task["notebook_task"] or {}).get("notebook_path"):
                raise invalid(f"Missing required field: tasks[{key}].notebook_task.notebook_path")
            cluster_id = task.get("existing_cluster_id")
            if cluster_id and cluster_id not in self.clusters.clusters:
                raise invalid(f"Cluster {cluster_id} does not exist")
            cluster_key = task.get("job_cluster_key")
            if cluster_key and cluster_key not in job_cluster_keys:
                raise invalid(f"Task {key} refers to job cluster {cluster_key}, which is not defined.")
            if "new_cluster" in task:
                validated_spec(task["new_cluster"])
            task.setdefault("timeout_seconds", 0)
            task.setdefault("email_notifications", {})
            task.setdefault("run_if", "ALL_SUCCESS")
            if "notebook_task" in task:
                task["notebook_task"].setdefault("source", "WORKSPACE")
        for task in s.get("tasks", []):
            for dependency in task.get("depends_on", []):
                if dependency.get("task_key") not in task_keys:
                    raise invalid(
                        f"Task {task['task_key']} depends on {dependency.get('task_key')}, which is "
                        "not defined."
                    )
        schedule = s.get("schedule")
        if schedule is not None:
            if not schedule.get("quartz_cron_expression") or not schedule.get("timezone_id"):
                raise invalid("A schedule needs quartz_cron_expression and timezone_id.")
            schedule.setdefault("pause_status", "UNPAUSED")
        if int(s["max_concurrent_runs"]) < 0:
            raise invalid("max_concurrent_runs must be at least 0.")
        return s

    def _run_error(self, settings: dict) -> str | None:
        for task in settings.get("tasks", []):
            notebook = task.get("notebook_task")
            if notebook and notebook.get("source", "WORKSPACE") == "WORKSPACE":
                try:
                    path = normalize(notebook.get("notebook_path"))
                except ApiError:
                    return f"Task {task['task_key']} failed: bad notebook path {notebook['notebook_path']}."
                node = self.tree.nodes.get(path)
                if node is None or node.object_type != "NOTEBOOK":
                    return f"Task {task['task_key']} failed with message: Notebook not found: {path}"
        return None

    def _job_json(self, job: Job, expand: bool) -> dict:
        settings = copy.deepcopy(job.settings)
        if not expand:
            settings.pop("tasks", None)
            settings.pop("job_clusters", None)
        return {
            "job_id": job.job_id,
            "creator_user_name": job.creator,
            "run_as_user_name": job.creator,
            "created_time": job.created_time,
            "settings": settings,
        }

    def _life_cycle(self, run: Run) -> tuple[str, str | None, str]:
        """(life_cycle_state, result_state, state_message) now."""
        if run.cancelled_at is not None:
            return "TERMINATED", "CANCELED", "Run cancelled."
        elapsed = time.monotonic() - run.created
        if elapsed < run.pending:
            return "PENDING", None, "Waiting for cluster"
        if run.error:
            return "INTERNAL_ERROR", "FAILED", run.error
        if elapsed < run.pending + run.running:
            return "RUNNING", None, "In run"
        if run.result == "SUCCESS":
            return "TERMINATED", "SUCCESS", ""
        return "TERMINATED", run.result, f"Run {run.run_id} ended with result {run.result}."

    def _run_json(self, run: Run) -> dict:
        life, result, message = self._life_cycle(run)
        done = life in ("TERMINATED", "INTERNAL_ERROR")
        if done and run.end_time is None:
            run.end_time = run.start_time + int((run.pending + run.running) * 1000)
        state: dict[str, Any] = {
            "life_cycle_state": life,
            "state_message": message,
            "user_cancelled_or_timedout": run.cancelled_at is not None,
        }
        status: dict[str, Any] = {"state": "TERMINATED" if done else life}
        if result:
            state["result_state"] = result
            if life == "INTERNAL_ERROR":
                code, kind = "RESOURCE_NOT_FOUND", "CLIENT_ERROR"
            else:
                code, kind = _FAILED_CODES.get(result, ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
            status["termination_details"] = {"code": code, "type": kind, "message": message}
        url = f"{self.ctx.base_url}/#job/{run.job_id}/run/{run.run_id}"
        tasks = []
        for task in run.settings.get("tasks", []):
            row = {k: v for k, v in task.items() if k not in ("email_notifications",)}
            task_run_id = run.task_run_ids[task["task_key"]]
            row.update(
                {
                    "run_id": task_run_id,
                    "state": dict(state),
                    "status": dict(status),
                    "start_time": run.start_time,
                    "attempt_number": 0,
                    "run_page_url": f"{self.ctx.base_url}/#job/{run.job_id}/run/{task_run_id}",
                }
            )
            tasks.append(row)
        out: dict[str, Any] = {
            "run_id": run.run_id,
            "job_id": run.job_id,
            "number_in_job": run.number_in_job,
            "original_attempt_run_id": run.run_id,
            "attempt_number": 0,
            "run_name": run.settings.get("name"),
            "creator_user_name": self.ctx.settings.user,
            "state": state,
            "status": status,
            "start_time": run.start_time,
            "run_page_url": url,
            "run_type": "JOB_RUN",
            "trigger": "ONE_TIME",
            "format": "MULTI_TASK",
            "tasks": tasks,
            "setup_duration": 0,
            "cleanup_duration": 0,
        }
        if run.job_parameters:
            out["job_parameters"] = run.job_parameters
        if done:
            out["end_time"] = run.end_time
            out["run_duration"] = run.end_time - run.start_time
            out["execution_duration"] = out["run_duration"]
        return out

    def dump(self) -> dict:
        return {
            "jobs": {str(j.job_id): self._job_json(j, expand=True) for j in self.jobs.values()},
            "runs": {str(r.run_id): self._run_json(r) for r in self.runs.values()},
        }
