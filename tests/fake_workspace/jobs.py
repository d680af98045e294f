"""Jobs API 2.2: jobs (create, reset, update, delete, get, list); their runs are in job_runs.py.

Settings are stored as sent plus the defaults the real service adds on read (`email_notifications: {}`,
`timeout_seconds: 0`, `max_concurrent_runs: 1`, `format: MULTI_TASK`, per task `run_if: ALL_SUCCESS`,
`notebook_task.source: WORKSPACE`, `schedule.pause_status: UNPAUSED`), so a client must diff on the fields it
specifies. `apply_policy_default_values` in a task's or job cluster's new_cluster is accepted but never
answered (databricks/cli#5731: "The Jobs API accepts apply_policy_default_values but does not return it in GET
responses"). Multi-task settings are refused as the real service refuses them; each refusal names its source.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .clusters import Clusters, validated_spec
from .common import Context, Request, drop_fields, now_ms, page
from .errors import invalid, missing_field
from .job_runs import Runs
from .workspace_files import WorkspaceTree

_RUN_IF = (
    "ALL_SUCCESS",
    "AT_LEAST_ONE_SUCCESS",
    "NONE_FAILED",
    "ALL_DONE",
    "AT_LEAST_ONE_FAILED",
    "ALL_FAILED",
)
# databricks-sdk jobs.ConditionTaskOp
_CONDITION_OPS = (
    "EQUAL_TO",
    "NOT_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
)
# Task types that run on no cluster of the job's (the service runs them itself, or on a SQL warehouse).
_NO_COMPUTE = frozenset(
    {"condition_task", "run_job_task", "pipeline_task", "sql_task", "dashboard_task", "alert_task"}
)
_COMPUTE_FORMS = ("existing_cluster_id", "new_cluster", "job_cluster_key", "environment_key")


@dataclass
class Job:
    job_id: int
    settings: dict
    creator: str
    created_time: int
    runs: int = 0


class Jobs:
    def __init__(self, ctx: Context, clusters: Clusters, tree: WorkspaceTree):
        self.ctx = ctx
        self.clusters = clusters
        self.jobs: dict[int, Job] = {}
        self.runs = Runs(ctx, self, clusters, tree)

    def routes(self):
        return [
            ("POST", "/api/2.2/jobs/create", self.create),
            ("POST", "/api/2.2/jobs/reset", self.reset),
            ("POST", "/api/2.2/jobs/update", self.update),
            ("POST", "/api/2.2/jobs/delete", self.delete),
            ("GET", "/api/2.2/jobs/get", self.get),
            ("GET", "/api/2.2/jobs/list", self.list),
            *self.runs.routes(),
        ]

    # ---- jobs -----------------------------------------------------------------------------------------
    def create(self, req: Request) -> dict:
        settings = {k: v for k, v in req.body.items() if k != "access_control_list"}
        return {"job_id": self.add(settings, self.ctx.settings.user).job_id}

    def add(self, settings: dict, creator: str) -> Job:
        job = Job(self.ctx.big_id(), self._validated(settings, "settings"), creator, now_ms())
        self.jobs[job.job_id] = job
        return job

    def reset(self, req: Request) -> dict:
        job = self.find(req.need("job_id"))
        job.settings = self._validated(req.need("new_settings"), "new_settings")
        return {}

    def update(self, req: Request) -> dict:
        job = self.find(req.need("job_id"))
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
        job.settings = self._validated(merged, "new_settings")
        return {}

    def delete(self, req: Request) -> dict:
        job = self.find(req.need("job_id"))
        del self.jobs[job.job_id]
        return {}

    def get(self, req: Request) -> dict:
        return drop_fields(
            self._job_json(self.find(req.need("job_id")), expand=True), self.ctx.settings.drop_fields
        )

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
            answer["jobs"] = drop_fields(
                [self._job_json(j, expand=expand) for j in chunk], self.ctx.settings.drop_fields
            )
        if next_token:
            answer["next_page_token"] = next_token
        if prev_token:
            answer["prev_page_token"] = prev_token
        return answer

    # ---- helpers --------------------------------------------------------------------------------------
    def find(self, job_id: Any) -> Job:
        try:
            job = self.jobs.get(int(job_id))
        except (TypeError, ValueError):
            job = None
        if job is None:
            raise invalid(f"Job {job_id} does not exist.")
        return job

    def setting_for(self, table: dict[str, Any], job: Job) -> Any:
        """A per-job entry of a fake setting, by job id or name (`job_results`, `task_values`...)."""
        if str(job.job_id) in table:
            return table[str(job.job_id)]
        return table.get(str(job.settings.get("name")))

    def _validated(self, settings: dict, where: str) -> dict:
        """The settings with the service's defaults, or the refusal the real service answers.

        `where` is how the service names the settings in "Missing required field" (`settings` on create,
        `new_settings` on reset and update: databricks/bundle-examples#22 quotes both)."""
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
        queue = s.get("queue")
        if queue is not None and not isinstance((queue or {}).get("enabled"), bool):
            raise missing_field(
                f"{where}.queue.enabled"
            )  # QueueSettings.enabled: "This is a required field."
        job_cluster_keys = self._keys(s, "job_clusters", "job_cluster_key", where)
        for job_cluster in s.get("job_clusters", []):
            if not job_cluster.get("new_cluster"):
                raise missing_field(f"{where}.job_clusters.new_cluster")
            validated_spec(job_cluster["new_cluster"], for_job=True)
        environment_keys = self._keys(s, "environments", "environment_key", where)
        tasks = s.get("tasks", [])
        task_keys = self._keys(s, "tasks", "task_key", where)
        for task in tasks:
            self._validate_task(task, where, job_cluster_keys, environment_keys)
            task.setdefault("timeout_seconds", 0)
            task.setdefault("email_notifications", {})
            task.setdefault("run_if", "ALL_SUCCESS")
            if "notebook_task" in task:
                task["notebook_task"].setdefault("source", "WORKSPACE")
        _validate_graph(tasks, task_keys, where)
        schedule = s.get("schedule")
        if schedule is not None:
            if not schedule.get("quartz_cron_expression") or not schedule.get("timezone_id"):
                raise invalid("A schedule needs quartz_cron_expression and timezone_id.")
            schedule.setdefault("pause_status", "UNPAUSED")
        if int(s["max_concurrent_runs"]) < 0:
            raise invalid("max_concurrent_runs must be at least 0.")
        return s

    @staticmethod
    def _keys(settings: dict, field: str, ident: str, where: str) -> set[str]:
        keys: set[str] = set()
        for item in settings.get(field, []):
            key = item.get(ident)
            if not key:
                raise missing_field(f"{where}.{field}.{ident}")
            if key in keys:
                # No source quotes the real text for a repeated key; the code is the service's.
                raise invalid(f"The {ident} '{key}' is used by more than one entry of field '{field}'.")
            keys.add(key)
        return keys

    def _validate_task(
        self, task: dict, where: str, job_cluster_keys: set[str], environment_keys: set[str]
    ) -> None:
        key = task["task_key"]
        kinds = [k for k in task if k.endswith("_task")]
        if len(kinds) != 1:
            raise invalid(f"Task {key} must specify exactly one task type, got {kinds or 'none'}.")
        kind = kinds[0]
        if kind == "notebook_task" and not (task["notebook_task"] or {}).get("notebook_path"):
            raise missing_field(f"{where}.tasks.notebook_task.notebook_path")
        forms = [form for form in _COMPUTE_FORMS if task.get(form)]
        if len(forms) > 1:
            # No source quotes the real text; a task runs on one compute (Jobs API reference).
            raise invalid(
                f"Task {key} can specify only one of {', '.join(_COMPUTE_FORMS)}, got {', '.join(forms)}."
            )
        cluster_id = task.get("existing_cluster_id")
        if cluster_id and cluster_id not in self.clusters.clusters:
            raise invalid(f"Cluster {cluster_id} does not exist")
        cluster_key = task.get("job_cluster_key")
        if cluster_key and cluster_key not in job_cluster_keys:
            # databrickslabs/lakebridge#2132 quotes the service.
            raise invalid(f"Job cluster '{cluster_key}' is not defined in field 'job_clusters'.")
        environment_key = task.get("environment_key")
        if environment_key and environment_key not in environment_keys:
            # databricks/dbt-databricks#1055 quotes the service.
            raise invalid(
                f"Job environment '{environment_key}' used by task {key} "
                "is not defined in field 'environments'."
            )
        if kind not in _NO_COMPUTE and not (set(forms) - {"environment_key"}):
            if not self.ctx.settings.serverless:
                # What a workspace answers when a task has no cluster and serverless jobs are not there:
                # databricks/cli#838, databricks/terraform-provider-databricks#3414.
                raise invalid(
                    "One of job_cluster_key, new_cluster, or existing_cluster_id must be specified."
                )
            if task.get("libraries"):
                # dbt-databricks#943 quotes the service.
                raise invalid(
                    "Libraries field is not supported for serverless task, "
                    "please specify libraries in environment."
                )
        if "new_cluster" in task:
            validated_spec(task["new_cluster"], for_job=True)
        if task.get("run_if", "ALL_SUCCESS") not in _RUN_IF:
            raise invalid(
                f"Invalid run_if {task['run_if']!r} for task {key}: must be one of {', '.join(_RUN_IF)}."
            )
        condition = task.get("condition_task")
        if condition is not None:
            if condition.get("op") not in _CONDITION_OPS:
                # No source quotes the real text for a bad op; the values are the SDK's ConditionTaskOp.
                raise invalid(
                    f"Invalid condition_task.op {condition.get('op')!r} for task {key}: must be one of "
                    f"{', '.join(_CONDITION_OPS)}."
                )
            for operand in ("left", "right"):
                if condition.get(operand) is None:
                    raise missing_field(f"{where}.tasks.condition_task.{operand}")
        run_job = task.get("run_job_task")
        if run_job is not None:
            if run_job.get("job_id") in (None, ""):
                raise missing_field(f"{where}.tasks.run_job_task.job_id")
            self.find(run_job["job_id"])  # jobs/get's text, "Job <id> does not exist."

    def _job_json(self, job: Job, expand: bool) -> dict:
        settings = copy.deepcopy(job.settings)
        for holder in [*settings.get("tasks", []), *settings.get("job_clusters", [])]:
            (holder.get("new_cluster") or {}).pop("apply_policy_default_values", None)
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

    def dump(self) -> dict:
        return {
            "jobs": {str(j.job_id): self._job_json(j, expand=True) for j in self.jobs.values()},
            "runs": self.runs.dump(),
        }


def _validate_graph(tasks: list[dict], task_keys: set[str], where: str) -> None:
    """Every depends_on names a task of the job, and the tasks form no cycle."""
    for task in tasks:
        for dependency in task.get("depends_on", []):
            upstream = dependency.get("task_key")
            if not upstream:
                raise missing_field(
                    f"{where}.tasks.depends_on.task_key"
                )  # terraform-provider-databricks#1527
            if upstream == task["task_key"]:
                # apache/airflow#47983 quotes the service.
                raise invalid(f"Invalid dependency graph, task '{upstream}' can not reference itself.")
            if upstream not in task_keys:
                # The "Invalid dependency graph" prefix is the service's (above); the rest of the text is not
                # quoted by any source.
                raise invalid(
                    f"Invalid dependency graph, task '{task['task_key']}' depends on '{upstream}', which is "
                    "not a task of this job."
                )
            if dependency.get("outcome") not in (None, "true", "false"):
                raise invalid(f'Invalid outcome {dependency["outcome"]!r}: must be "true" or "false".')
    upstream_of = {t["task_key"]: [d["task_key"] for d in t.get("depends_on", [])] for t in tasks}
    done: set[str] = set()

    def visit(key: str, path: list[str]) -> None:
        if key in path:
            cycle = " -> ".join([*path[path.index(key) :], key])
            raise invalid(f"Invalid dependency graph, the tasks form a cycle: {cycle}.")  # text not sourced
        if key in done:
            return
        for upstream in upstream_of[key]:
            visit(upstream, [*path, key])
        done.add(key)

    for key in upstream_of:
        visit(key, [])
