"""The fake Databricks workspace, driven by the real databricks-sdk `WorkspaceClient` over HTTP.

Besides checking the fake, these tests pin down how the SDK behaves against it (retries on 429/503, on a
dropped connection and on a read timeout; which exception each error becomes), since bootstrap relies on it.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.credentials_provider import CredentialsStrategy
from databricks.sdk.errors import (
    AlreadyExists,
    BadRequest,
    InternalError,
    InvalidParameterValue,
    InvalidState,
    NotFound,
    OperationFailed,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceConflict,
    ResourceDoesNotExist,
    TooManyRequests,
    Unauthenticated,
)
from databricks.sdk.service import compute, jobs, workspace

from tests.fake_workspace import FakeWorkspace

ME = "dev@example.com"
HOME = f"/Users/{ME}"
SPARK = "15.4.x-scala2.12"
NOTEBOOK = b"# Databricks notebook source\nprint('hello')\n"


@pytest.fixture
def ws(fake_workspace: FakeWorkspace) -> FakeWorkspace:
    """The fake with quick state changes (clusters and runs settle in a fraction of a second)."""
    fake_workspace.configure(
        cluster_start_seconds=0.2,
        cluster_restart_seconds=0.2,
        cluster_stop_seconds=0.1,
        library_install_seconds=0.1,
        run_pending_seconds=0.1,
        run_seconds=0.2,
    )
    return fake_workspace


@pytest.fixture
def w(ws: FakeWorkspace) -> WorkspaceClient:
    return ws.client()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _until(check, timeout: float = 5.0):
    """Poll `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


# ---- identity and auth -------------------------------------------------------------------------------------
def test_identity_and_discovery(w: WorkspaceClient, ws: FakeWorkspace):
    assert w.current_user.me().user_name == ME
    assert w.get_workspace_id() == 1234567890123456  # from /.well-known/databricks-config
    paths = [c["path"] for c in ws.calls()]
    assert paths[0] == "/.well-known/databricks-config"  # the SDK asks on init, without auth


def test_wrong_token_is_permission_denied_as_on_a_real_workspace(ws: FakeWorkspace):
    w = WorkspaceClient(host=ws.url, token="wrong", auth_type="pat")
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        w.current_user.me()
    assert ws.calls()[-1]["status"] == 403


def test_missing_credentials_are_unauthenticated(ws: FakeWorkspace):
    class NoCredentials(CredentialsStrategy):
        def auth_type(self) -> str:
            return "none"

        def __call__(self, cfg):
            return lambda: {}

    w = WorkspaceClient(host=ws.url, credentials_strategy=NoCredentials())
    with pytest.raises(Unauthenticated):
        w.current_user.me()
    assert ws.calls()[-1]["status"] == 401


def test_oauth_m2m_gets_a_token_from_the_fake(ws: FakeWorkspace):
    w = WorkspaceClient(
        host=ws.url, client_id="fake-client-id", client_secret="fake-client-secret", auth_type="oauth-m2m"
    )
    assert w.current_user.me().user_name == ME
    token_call = next(c for c in ws.calls() if c["path"] == "/oidc/v1/token")
    assert not token_call["mutating"]
    assert "fake-client-secret" not in str(ws.calls())


def test_databricks_env_fixture_drives_unified_auth(databricks_env: FakeWorkspace):
    assert WorkspaceClient().current_user.me().user_name == ME


def test_unknown_endpoint_is_not_found(w: WorkspaceClient):
    with pytest.raises(NotFound, match="No API found"):
        w.api_client.do("GET", "/api/2.0/no-such-thing")


# ---- clusters and libraries --------------------------------------------------------------------------------
def test_cluster_life_cycle(w: WorkspaceClient, ws: FakeWorkspace):
    waiter = w.clusters.create(
        cluster_name="churn",
        spark_version=SPARK,
        node_type_id="i3.xlarge",
        num_workers=2,
        autotermination_minutes=30,
        custom_tags={"lakeforge-project": "churn"},
        spark_conf={"spark.speculation": "true"},
        spark_env_vars={"ENV": "dev"},
    )
    cluster_id = waiter.cluster_id
    assert w.clusters.get(cluster_id).state == compute.State.PENDING
    with pytest.raises(InvalidState):  # the real service refuses an edit while pending
        w.clusters.edit(cluster_id, SPARK, cluster_name="churn", node_type_id="i3.xlarge", num_workers=3)

    details = _until(lambda: (c := w.clusters.get(cluster_id)).state == compute.State.RUNNING and c)
    sent = {
        "cluster_name": "churn",
        "spark_version": SPARK,
        "node_type_id": "i3.xlarge",
        "num_workers": 2,
        "autotermination_minutes": 30,
        "custom_tags": {"lakeforge-project": "churn"},
        "spark_conf": {"spark.speculation": "true"},
        "spark_env_vars": {"ENV": "dev"},
    }
    got = details.as_dict()
    assert {k: got[k] for k in sent} == sent
    # ... plus what the service adds, so diffs must be on the fields the user specifies
    assert got["default_tags"]["ClusterId"] == cluster_id and got["creator_user_name"] == ME
    assert got["aws_attributes"]["availability"] == "SPOT_WITH_FALLBACK"
    assert got["driver_node_type_id"] == "i3.xlarge" and got["spec"] == sent

    w.clusters.edit(
        cluster_id,
        SPARK,
        cluster_name="churn",
        node_type_id="i3.xlarge",
        num_workers=4,
        custom_tags={"lakeforge-project": "churn"},
    )
    assert w.clusters.get(cluster_id).state == compute.State.RESTARTING  # a running cluster restarts
    edited = _until(lambda: (c := w.clusters.get(cluster_id)).state == compute.State.RUNNING and c)
    assert edited.num_workers == 4 and edited.spark_conf is None  # edit replaces the whole spec

    assert [c.cluster_id for c in w.clusters.list() if c.cluster_name == "churn"] == [cluster_id]
    w.clusters.delete(cluster_id)
    assert _until(lambda: w.clusters.get(cluster_id).state == compute.State.TERMINATED)
    w.clusters.start(cluster_id)
    assert w.clusters.get(cluster_id).state == compute.State.PENDING
    w.clusters.permanent_delete(cluster_id)
    with pytest.raises(ResourceDoesNotExist):  # 400 INVALID_PARAMETER_VALUE, mapped by the SDK's override
        w.clusters.get(cluster_id)
    assert ws.calls()[-1]["status"] == 400


def test_cluster_validation_and_pagination(w: WorkspaceClient, ws: FakeWorkspace):
    with pytest.raises(InvalidParameterValue, match="spark_version"):
        w.api_client.do(
            "POST", "/api/2.1/clusters/create", body={"cluster_name": "x", "node_type_id": "i3.xlarge"}
        )
    with pytest.raises(InvalidParameterValue, match="Invalid spark version"):
        w.clusters.create(cluster_name="x", spark_version="nonsense", node_type_id="i3.xlarge")
    ids = {
        w.clusters.create(cluster_name=f"c{i}", spark_version=SPARK, node_type_id="i3.xlarge").cluster_id
        for i in range(3)
    }
    ws.reset_calls()
    listed = list(w.clusters.list(page_size=2))
    assert {c.cluster_id for c in listed} == ids
    assert [c["query"].get("page_token") is not None for c in ws.calls()] == [False, True]


def test_libraries(w: WorkspaceClient, ws: FakeWorkspace):
    ws.configure(cluster_start_seconds=0)  # RUNNING at the waiter's first look
    cluster_id = w.clusters.create_and_wait(
        cluster_name="lib", spark_version=SPARK, node_type_id="i3.xlarge", num_workers=1
    ).cluster_id
    wheel = compute.Library(whl="/Workspace/Users/dev@example.com/churn/churn-0.1.0-py3-none-any.whl")
    pypi = compute.Library(pypi=compute.PythonPyPiLibrary(package="lightgbm==4.5.0"))
    w.libraries.install(cluster_id, [wheel, pypi])
    w.libraries.install(cluster_id, [pypi])  # installing again changes nothing

    def statuses():
        return {
            s.library.as_dict()["whl" if s.library.whl else "pypi"].__str__(): s.status
            for s in w.libraries.cluster_status(cluster_id)
        }

    assert len(statuses()) == 2
    assert _until(lambda: set(statuses().values()) == {compute.LibraryInstallStatus.INSTALLED})

    w.libraries.uninstall(cluster_id, [pypi])
    assert compute.LibraryInstallStatus.UNINSTALL_ON_RESTART in statuses().values()
    w.clusters.restart(cluster_id)
    assert len(statuses()) == 1
    with pytest.raises(InvalidParameterValue, match="Exactly one library type"):
        w.api_client.do(
            "POST", "/api/2.0/libraries/install", body={"cluster_id": cluster_id, "libraries": [{}]}
        )


# ---- workspace files ---------------------------------------------------------------------------------------
def test_workspace_import_list_export(w: WorkspaceClient, ws: FakeWorkspace):
    root = f"{HOME}/churn"
    with pytest.raises(ResourceDoesNotExist, match="parent folder"):
        w.workspace.import_(
            f"{root}/nb",
            content=_b64(NOTEBOOK),
            format=workspace.ImportFormat.SOURCE,
            language=workspace.Language.PYTHON,
        )
    w.workspace.mkdirs(f"{root}/src/churn")
    w.workspace.mkdirs(f"{root}/src")  # mkdirs of an existing folder succeeds

    # SOURCE + language: a NOTEBOOK at exactly the path given
    w.workspace.import_(
        f"{root}/features",
        content=_b64(NOTEBOOK),
        format=workspace.ImportFormat.SOURCE,
        language=workspace.Language.PYTHON,
    )
    # AUTO with the notebook header: a NOTEBOOK without the extension (multipart, as the SDK's upload sends)
    w.workspace.upload(f"{root}/train.py", NOTEBOOK, format=workspace.ImportFormat.AUTO)
    # AUTO without the header: a FILE at the path as given
    w.workspace.upload(
        f"{root}/src/churn/model.py", b"def fit():\n    return 1\n", format=workspace.ImportFormat.AUTO
    )

    kinds = {o.path: o.object_type for o in w.workspace.list(root, recursive=True)}
    assert kinds == {
        f"{root}/features": workspace.ObjectType.NOTEBOOK,
        f"{root}/train": workspace.ObjectType.NOTEBOOK,
        f"{root}/src/churn/model.py": workspace.ObjectType.FILE,
    }
    status = w.workspace.get_status(f"{root}/src/churn/model.py")
    assert status.size == len(b"def fit():\n    return 1\n") and status.modified_at

    with pytest.raises(ResourceAlreadyExists):
        w.workspace.import_(
            f"{root}/features",
            content=_b64(NOTEBOOK),
            format=workspace.ImportFormat.SOURCE,
            language=workspace.Language.PYTHON,
        )
    w.workspace.import_(
        f"{root}/features",
        content=_b64(b"x = 2\n"),
        format=workspace.ImportFormat.SOURCE,
        language=workspace.Language.PYTHON,
        overwrite=True,
    )
    exported = w.workspace.export(f"{root}/features", format=workspace.ExportFormat.SOURCE)
    assert base64.b64decode(exported.content) == b"# Databricks notebook source\nx = 2\n"
    assert w.workspace.download(f"{root}/src/churn/model.py", format=workspace.ExportFormat.AUTO).read() == (
        b"def fit():\n    return 1\n"
    )

    with pytest.raises(ResourceDoesNotExist):
        w.workspace.get_status(f"{root}/missing")
    with pytest.raises(BadRequest, match="not empty"):
        w.workspace.delete(f"{root}/src")
    w.workspace.delete(f"{root}/src", recursive=True)
    assert [o.path for o in w.workspace.list(root)] == [f"{root}/features", f"{root}/train"]
    assert ws.state()["workspace"][f"{root}/train"]["content"] == NOTEBOOK.decode()


# ---- secrets -----------------------------------------------------------------------------------------------
def test_secrets_never_come_back(w: WorkspaceClient, ws: FakeWorkspace):
    w.secrets.create_scope("churn")
    with pytest.raises(ResourceAlreadyExists):
        w.secrets.create_scope("churn")
    w.secrets.put_secret("churn", "db-password", string_value="s3cr3t-value")
    assert [s.name for s in w.secrets.list_scopes()] == ["churn"]
    assert [s.key for s in w.secrets.list_secrets("churn")] == ["db-password"]
    assert "s3cr3t-value" not in str(ws.calls())  # redacted in the call log
    import hashlib

    assert (
        ws.state()["secret_scopes"]["churn"]["db-password"]["sha256"]
        == hashlib.sha256(b"s3cr3t-value").hexdigest()
    )
    with pytest.raises(ResourceDoesNotExist):
        w.secrets.put_secret("nope", "k", string_value="v")
    w.secrets.delete_secret("churn", "db-password")
    w.secrets.delete_scope("churn")
    assert list(w.secrets.list_scopes()) == []


# ---- jobs --------------------------------------------------------------------------------------------------
def _job_settings(name: str, notebook: str, **extra) -> dict:
    return dict(
        name=name,
        tags={"lakeforge-project": "churn"},
        tasks=[
            jobs.Task(
                task_key="train",
                notebook_task=jobs.NotebookTask(notebook_path=notebook),
                existing_cluster_id=extra.pop("cluster_id", None),
            )
        ],
        **extra,
    )


def test_jobs_create_get_list_reset_update(w: WorkspaceClient, ws: FakeWorkspace):
    job_id = w.jobs.create(
        **_job_settings(
            "churn-training", f"{HOME}/churn/train", schedule=jobs.CronSchedule("0 0 3 * * ?", "UTC")
        )
    ).job_id
    got = w.jobs.get(job_id).settings.as_dict()
    assert got["name"] == "churn-training" and got["tags"] == {"lakeforge-project": "churn"}
    # defaults the service adds on read
    assert got["max_concurrent_runs"] == 1 and got["timeout_seconds"] == 0 and got["format"] == "MULTI_TASK"
    assert (
        got["tasks"][0]["run_if"] == "ALL_SUCCESS"
        and got["tasks"][0]["notebook_task"]["source"] == "WORKSPACE"
    )
    assert got["schedule"]["pause_status"] == "UNPAUSED"

    others = [w.jobs.create(name=f"other-{i}").job_id for i in range(2)]
    ws.reset_calls()
    assert [j.job_id for j in w.jobs.list(name="CHURN-training")] == [job_id]  # exact, case-insensitive
    everything = list(w.jobs.list(limit=2))
    assert {j.job_id for j in everything} == {job_id, *others}
    assert not everything[0].settings.tasks  # tasks only with expand_tasks
    assert len(ws.calls(path_prefix="/api/2.2/jobs/list")) == 3  # 1 by name, 2 pages

    w.jobs.reset(job_id, jobs.JobSettings(**_job_settings("churn-training", f"{HOME}/churn/train2")))
    reset = w.jobs.get(job_id).settings
    assert reset.tasks[0].notebook_task.notebook_path == f"{HOME}/churn/train2" and reset.schedule is None
    w.jobs.update(job_id, new_settings=jobs.JobSettings(max_concurrent_runs=3))
    assert w.jobs.get(job_id).settings.max_concurrent_runs == 3

    w.jobs.delete(job_id)
    with pytest.raises(ResourceDoesNotExist):
        w.jobs.get(job_id)
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.jobs.create(**_job_settings("bad", "/x", cluster_id="0000-000000-nothere"))


def test_job_runs(w: WorkspaceClient, ws: FakeWorkspace):
    w.workspace.mkdirs(f"{HOME}/churn")
    w.workspace.import_(
        f"{HOME}/churn/train",
        content=_b64(NOTEBOOK),
        format=workspace.ImportFormat.SOURCE,
        language=workspace.Language.PYTHON,
    )
    job_id = w.jobs.create(**_job_settings("churn-training", f"{HOME}/churn/train")).job_id

    run_id = w.jobs.run_now(job_id, idempotency_token="once").run_id
    assert w.jobs.run_now(job_id, idempotency_token="once").run_id == run_id  # same token, same run
    seen = []

    def settled():
        run = w.jobs.get_run(run_id)
        if not seen or seen[-1] != run.state.life_cycle_state:
            seen.append(run.state.life_cycle_state)
        return run if run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED else None

    run = _until(settled)
    L = jobs.RunLifeCycleState
    assert seen == [L.PENDING, L.RUNNING, L.TERMINATED]
    assert run.state.result_state == jobs.RunResultState.SUCCESS and run.run_page_url.startswith(ws.url)

    ws.configure(job_results={"churn-training": "FAILED"}, run_pending_seconds=0, run_seconds=0)
    failed = w.jobs.run_now(job_id).result()
    assert failed.state.result_state == jobs.RunResultState.FAILED
    assert failed.status.termination_details.code == jobs.TerminationCodeCode.RUN_EXECUTION_ERROR

    missing = w.jobs.create(**_job_settings("broken", f"{HOME}/churn/not-there")).job_id
    with pytest.raises(OperationFailed, match="Notebook not found"):
        w.jobs.run_now(missing).result()

    ws.configure(run_pending_seconds=5)
    slow = w.jobs.run_now(job_id).run_id
    w.jobs.cancel_run(slow)
    cancelled = w.jobs.get_run(slow)
    assert cancelled.state.result_state == jobs.RunResultState.CANCELED
    assert [r.run_id for r in w.jobs.list_runs(job_id=job_id, completed_only=True)][0] == slow
    with pytest.raises(ResourceDoesNotExist):
        w.jobs.get_run(123)


# ---- multi-task workflows ----------------------------------------------------------------------------------
ROOT = f"{HOME}/churn/notebooks"
JOB_CLUSTER = {
    "spark_version": SPARK,
    "node_type_id": "i3.xlarge",
    "num_workers": 1,
    "data_security_mode": "SINGLE_USER",  # no single_user_name: a job cluster's user is the run's
    "custom_tags": {"lakeforge-project": "churn"},
}
WHEEL = {"whl": f"/Workspace{HOME}/churn/dist/abc/churn-0.1-py3-none-any.whl"}


def _notebooks(w: WorkspaceClient, *names: str) -> None:
    w.workspace.mkdirs(ROOT)
    for name in names:
        w.workspace.import_(
            f"{ROOT}/{name}",
            content=_b64(NOTEBOOK),
            format=workspace.ImportFormat.SOURCE,
            language=workspace.Language.PYTHON,
            overwrite=True,
        )


def _notebook_task(key: str, name: str, *after: str, **extra) -> dict:
    task = {
        "task_key": key,
        "notebook_task": {"notebook_path": f"{ROOT}/{name}", **extra.pop("notebook", {})},
        "job_cluster_key": "main",
        "libraries": [WHEEL],
        **extra,
    }
    if after:
        task["depends_on"] = [{"task_key": a} for a in after]
    return task


def _training() -> dict:
    return {
        "name": "[dev] churn training",
        "max_concurrent_runs": 1,
        "queue": {"enabled": True},
        "job_clusters": [{"job_cluster_key": "main", "new_cluster": JOB_CLUSTER}],
        "tasks": [
            _notebook_task("features", "01_feature_pipeline"),
            _notebook_task(
                "train",
                "02_training",
                "features",
                notebook={
                    "base_parameters": {
                        "feature_table_version": "{{tasks.features.values.feature_table_version}}"
                    }
                },
            ),
            _notebook_task("promote", "03_promotion", "train"),
        ],
    }


def _scoring(training_id: int) -> dict:
    return {
        "name": "[dev] churn scoring",
        "max_concurrent_runs": 1,
        "queue": {"enabled": True},
        "job_clusters": [{"job_cluster_key": "main", "new_cluster": JOB_CLUSTER}],
        "tasks": [
            _notebook_task("score", "04_batch_inference"),
            _notebook_task("monitor", "05_monitoring", "score"),
            {
                "task_key": "retrain_needed",
                "condition_task": {
                    "op": "EQUAL_TO",
                    "left": "{{tasks.monitor.values.retrain}}",
                    "right": "true",
                },
                "depends_on": [{"task_key": "monitor"}],
            },
            {
                "task_key": "retrain",
                "run_job_task": {"job_id": training_id},
                "depends_on": [{"task_key": "retrain_needed", "outcome": "true"}],
            },
        ],
    }


def _create(w: WorkspaceClient, settings: dict) -> int:
    return w.api_client.do("POST", "/api/2.2/jobs/create", body=settings)["job_id"]


def _tasks(run: jobs.Run) -> dict[str, jobs.RunTask]:
    return {t.task_key: t for t in run.tasks}


def _settled(w: WorkspaceClient, run_id: int) -> jobs.Run:
    done = (
        jobs.RunLifeCycleState.TERMINATED,
        jobs.RunLifeCycleState.INTERNAL_ERROR,
        jobs.RunLifeCycleState.SKIPPED,
    )
    return _until(lambda: (run := w.jobs.get_run(run_id)).state.life_cycle_state in done and run, timeout=15)


@pytest.fixture
def quick(ws: FakeWorkspace) -> FakeWorkspace:
    ws.configure(
        run_pending_seconds=0.05, run_seconds=0.1, cluster_start_seconds=0.05, cluster_stop_seconds=0.05
    )
    return ws


def test_multi_task_settings_the_service_refuses(w: WorkspaceClient, ws: FakeWorkspace):
    _notebooks(w, "01_feature_pipeline", "02_training", "03_promotion")
    training = _training()

    def refused(change, match: str, call: str = "create") -> None:
        settings = json.loads(json.dumps(training))
        change(settings)
        with pytest.raises(InvalidParameterValue, match=re.escape(match)):
            if call == "create":
                _create(w, settings)
            else:
                w.api_client.do(
                    "POST", "/api/2.2/jobs/reset", body={"job_id": job_id, "new_settings": settings}
                )

    job_id = _create(w, training)
    assert w.jobs.get(job_id).settings.queue.enabled is True
    tasks = lambda s: s["tasks"]  # noqa: E731
    refused(lambda s: tasks(s)[0].pop("task_key"), "Missing required field: settings.tasks.task_key")
    refused(
        lambda s: tasks(s)[0].pop("task_key"), "Missing required field: new_settings.tasks.task_key", "reset"
    )
    refused(lambda s: tasks(s)[1].update(task_key="features"), "task_key 'features' is used by more than one")
    refused(
        lambda s: tasks(s)[1].update(depends_on=[{"task_key": "nope"}]),
        "Invalid dependency graph, task 'train'",
    )
    refused(
        lambda s: tasks(s)[0].update(depends_on=[{"task_key": "features"}]),
        "Invalid dependency graph, task 'features' can not reference itself.",
    )
    refused(
        lambda s: tasks(s)[0].update(depends_on=[{"task_key": "promote"}]),
        "cycle: features -> promote -> train -> features",
    )
    refused(
        lambda s: tasks(s)[0].update(job_cluster_key="big"),
        "Job cluster 'big' is not defined in field 'job_clusters'.",
    )
    refused(
        lambda s: tasks(s)[0].update(job_cluster_key=None, environment_key="default"),
        "Job environment 'default' used by task features is not defined in field 'environments'.",
    )
    refused(
        lambda s: tasks(s)[0].update(existing_cluster_id="0000-000000-nothere"),
        "can specify only one of existing_cluster_id, new_cluster, job_cluster_key, environment_key",
    )
    refused(
        lambda s: tasks(s)[0].pop("job_cluster_key"),
        "Libraries field is not supported for serverless task, please specify libraries in environment.",
    )
    refused(
        lambda s: s["job_clusters"][0]["new_cluster"].pop("spark_version"),
        "Missing required field: spark_version",
    )
    refused(lambda s: s.update(queue={}), "Missing required field: settings.queue.enabled")
    refused(
        lambda s: tasks(s).append(
            {"task_key": "check", "condition_task": {"op": "EQUALS", "left": "a", "right": "b"}}
        ),
        "Invalid condition_task.op 'EQUALS'",
    )
    refused(
        lambda s: tasks(s).append({"task_key": "again", "run_job_task": {"job_id": 123}}),
        "Job 123 does not exist.",
    )

    serverless = {"task_key": "features", "notebook_task": {"notebook_path": f"{ROOT}/01_feature_pipeline"}}
    assert _create(w, {"name": "serverless", "tasks": [serverless]})
    with_env = {
        "name": "serverless env",
        "environments": [
            {"environment_key": "default", "spec": {"environment_version": "3", "dependencies": []}}
        ],
        "tasks": [{**serverless, "environment_key": "default"}],
    }
    assert _create(w, with_env)
    ws.configure(serverless=False)
    for settings in ({"name": "serverless", "tasks": [serverless]}, with_env):
        with pytest.raises(
            InvalidParameterValue,
            match="One of job_cluster_key, new_cluster, or existing_cluster_id must be specified.",
        ):
            _create(w, settings)
    assert _create(w, training), "job clusters need no serverless"


def test_scoring_retrains_through_a_run_job_task(w: WorkspaceClient, quick: FakeWorkspace):
    _notebooks(w, "01_feature_pipeline", "02_training", "03_promotion", "04_batch_inference", "05_monitoring")
    training_id = _create(w, _training())
    scoring_id = _create(w, _scoring(training_id))
    quick.configure(
        task_values={
            "[dev] churn training": {"features": {"feature_table_version": 7}},
            "[dev] churn scoring": {"monitor": {"retrain": True}},
        }
    )

    run = w.jobs.run_now(scoring_id).result(timeout=datetime.timedelta(seconds=30))
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    tasks = _tasks(run)
    assert all(t.state.result_state == jobs.RunResultState.SUCCESS for t in tasks.values())
    assert tasks["retrain_needed"].condition_task.outcome == "true"
    assert tasks["retrain_needed"].condition_task.left == "true", "the reference resolved, a boolean as true"
    assert tasks["score"].end_time <= tasks["monitor"].start_time <= tasks["retrain"].start_time
    assert len({t.run_id for t in tasks.values()} | {run.run_id}) == 5

    child_id = w.jobs.get_run_output(tasks["retrain"].run_id).run_job_output.run_id
    [training_run] = w.jobs.list_runs(job_id=training_id)
    assert training_run.run_id == child_id and training_run.trigger == jobs.TriggerType.RUN_JOB_TASK
    assert training_run.state.result_state == jobs.RunResultState.SUCCESS
    assert training_run.end_time <= tasks["retrain"].end_time
    train = _tasks(w.jobs.get_run(child_id, include_resolved_values=True))["train"]
    assert train.resolved_values.notebook_task.base_parameters == {"feature_table_version": "7"}
    assert train.notebook_task.base_parameters == {
        "feature_table_version": "{{tasks.features.values.feature_table_version}}"
    }
    assert _tasks(w.jobs.get_run(child_id))["train"].resolved_values is None, (
        "only with include_resolved_values"
    )
    with pytest.raises(InvalidParameterValue, match="Retrieving the output of runs with multiple tasks"):
        w.jobs.get_run_output(run.run_id)


def test_the_run_a_run_job_task_starts_is_listed_at_once_and_cancelled_with_it(
    w: WorkspaceClient, quick: FakeWorkspace
):
    _notebooks(w, "01_feature_pipeline", "02_training", "03_promotion", "04_batch_inference", "05_monitoring")
    training_id = _create(w, _training())
    scoring_id = _create(w, _scoring(training_id))
    quick.configure(run_seconds=1.0, task_values={"[dev] churn scoring": {"monitor": {"retrain": True}}})
    run_id = w.jobs.run_now(scoring_id).run_id

    [child] = _until(
        lambda: list(w.jobs.list_runs(job_id=training_id)), timeout=10
    )  # no runs/get of the parent
    assert child.state.life_cycle_state in (jobs.RunLifeCycleState.PENDING, jobs.RunLifeCycleState.RUNNING)
    w.jobs.cancel_run(run_id)
    run = w.jobs.get_run(run_id)
    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert _tasks(run)["retrain"].state.result_state == jobs.RunResultState.CANCELED
    assert w.jobs.get_run(child.run_id).state.result_state == jobs.RunResultState.CANCELED


def test_a_condition_that_does_not_hold_excludes_its_branch(w: WorkspaceClient, quick: FakeWorkspace):
    _notebooks(w, "04_batch_inference", "05_monitoring")
    training_id = _create(w, {"name": "training", "tasks": []})
    scoring_id = _create(w, _scoring(training_id))
    quick.configure(task_values={"[dev] churn scoring": {"monitor": {"retrain": False}}})

    run = w.jobs.run_now(scoring_id).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    tasks = _tasks(run)
    assert tasks["retrain_needed"].condition_task.outcome == "false"
    retrain = tasks["retrain"]
    assert retrain.state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
    assert retrain.state.result_state == jobs.RunResultState.EXCLUDED
    assert retrain.status.termination_details.code == jobs.TerminationCodeCode.SKIPPED
    assert list(w.jobs.list_runs(job_id=training_id)) == [], "the other job never started"

    quick.configure(task_values={})  # monitor set no value: the reference stays a literal string (docs)
    condition = _tasks(w.jobs.run_now(scoring_id).result())["retrain_needed"].condition_task
    assert (condition.left, condition.outcome) == ("{{tasks.monitor.values.retrain}}", "false")


def test_a_failed_task_fails_the_run_and_skips_what_depends_on_it(w: WorkspaceClient, quick: FakeWorkspace):
    _notebooks(w, "01_feature_pipeline", "02_training", "03_promotion")
    settings = _training()
    settings["tasks"].append({**_notebook_task("report", "03_promotion", "train"), "run_if": "ALL_DONE"})
    job_id = _create(w, settings)
    quick.configure(task_results={"[dev] churn training": {"features": "FAILED"}})

    run_id = w.jobs.run_now(job_id).run_id
    with pytest.raises(
        OperationFailed, match="INTERNAL_ERROR: Task features failed with message: Workload failed"
    ):
        w.jobs.wait_get_run_job_terminated_or_skipped(run_id)
    run = w.jobs.get_run(run_id)
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED
    assert run.status.termination_details.code == jobs.TerminationCodeCode.RUN_EXECUTION_ERROR
    tasks = _tasks(run)
    assert tasks["features"].state.result_state == jobs.RunResultState.FAILED
    for key in ("train", "promote"):
        assert tasks[key].state.result_state == jobs.RunResultState.UPSTREAM_FAILED
        assert tasks[key].state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
    assert tasks["report"].state.result_state == jobs.RunResultState.SUCCESS, "run_if ALL_DONE runs anyway"


def test_job_clusters_are_in_the_clusters_list_until_the_run_ends(w: WorkspaceClient, quick: FakeWorkspace):
    _notebooks(w, "01_feature_pipeline", "02_training", "03_promotion")
    job_id = _create(w, _training())
    quick.configure(run_seconds=0.4)
    run_id = w.jobs.run_now(job_id).run_id

    def job_clusters():
        only_jobs = compute.ListClustersFilterBy(cluster_sources=[compute.ClusterSource.JOB])
        return list(w.clusters.list(filter_by=only_jobs))

    [cluster] = _until(job_clusters)
    assert cluster.cluster_source == compute.ClusterSource.JOB
    assert cluster.cluster_name == f"job-{job_id}-run-{run_id}"
    assert cluster.custom_tags == {"lakeforge-project": "churn"} and cluster.default_tags["JobId"] == str(
        job_id
    )
    assert cluster.state in (compute.State.PENDING, compute.State.RUNNING) and cluster.single_user_name == ME
    statuses = w.libraries.cluster_status(cluster.cluster_id)
    assert [s.library.whl for s in statuses] == [WHEEL["whl"]], "the tasks' libraries, once"
    run = _settled(w, run_id)
    assert {t.cluster_instance.cluster_id for t in run.tasks} == {cluster.cluster_id}
    ended = _until(lambda: (c := w.clusters.get(cluster.cluster_id)).state == compute.State.TERMINATED and c)
    assert ended.termination_reason.code == compute.TerminationReasonCode.JOB_FINISHED
    assert [c.cluster_id for c in w.clusters.list()] == [cluster.cluster_id], "no other cluster was made"


def test_a_busy_job_queues_a_run_with_a_queue_and_skips_it_without(w: WorkspaceClient, quick: FakeWorkspace):
    _notebooks(w, "01_feature_pipeline")
    task = {"task_key": "features", "notebook_task": {"notebook_path": f"{ROOT}/01_feature_pipeline"}}
    queued_job = _create(
        w, {"name": "queued", "max_concurrent_runs": 1, "queue": {"enabled": True}, "tasks": [task]}
    )
    skipping_job = _create(w, {"name": "skipping", "max_concurrent_runs": 1, "tasks": [task]})
    quick.configure(run_seconds=0.5)

    first = w.jobs.run_now(queued_job).run_id
    second = w.jobs.run_now(queued_job).run_id
    waiting = w.jobs.get_run(second)
    assert waiting.state.life_cycle_state == jobs.RunLifeCycleState.QUEUED
    assert waiting.status.queue_details.code == jobs.QueueDetailsCodeCode.MAX_CONCURRENT_RUNS_REACHED
    assert [r.run_id for r in w.jobs.list_runs(job_id=queued_job, active_only=True)] == [second, first]
    one, two = _settled(w, first), _settled(w, second)
    assert one.state.result_state == two.state.result_state == jobs.RunResultState.SUCCESS
    assert two.tasks[0].start_time >= one.end_time, "the queued run started when the first ended"
    assert two.queue_duration > 0

    w.jobs.run_now(skipping_job)
    skipped = w.jobs.run_now(skipping_job).result()  # the SDK's waiter stops at SKIPPED
    assert skipped.state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
    assert skipped.state.state_message == (
        "Skipping this run because the limit of 1 maximum concurrent runs has been reached."
    )
    assert skipped.status.termination_details.code == jobs.TerminationCodeCode.MAX_CONCURRENT_RUNS_EXCEEDED


def test_fields_the_api_does_not_return_and_dropped_fields(w: WorkspaceClient, ws: FakeWorkspace):
    _notebooks(w, "01_feature_pipeline", "02_training", "03_promotion")
    settings = _training()
    settings["job_clusters"][0]["new_cluster"] = {**JOB_CLUSTER, "apply_policy_default_values": True}
    job_id = _create(w, settings)
    cluster_id = w.clusters.create(
        cluster_name="dev",
        spark_version=SPARK,
        node_type_id="i3.xlarge",
        num_workers=0,
        data_security_mode=compute.DataSecurityMode.SINGLE_USER,
        single_user_name=ME,
        apply_policy_default_values=True,
    ).cluster_id

    got = w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job_id})["settings"]
    new_cluster = got["job_clusters"][0]["new_cluster"]
    assert (
        "apply_policy_default_values" not in new_cluster
        and new_cluster["data_security_mode"] == "SINGLE_USER"
    )
    assert got["tasks"][0]["notebook_task"]["source"] == "WORKSPACE"
    cluster = w.api_client.do("GET", "/api/2.1/clusters/get", query={"cluster_id": cluster_id})
    assert (
        "apply_policy_default_values" not in cluster
        and cluster["spec"]["apply_policy_default_values"] is True
    )

    ws.configure(drop_fields=["notebook_task.source", "data_security_mode"])
    got = w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job_id})["settings"]
    assert "data_security_mode" not in got["job_clusters"][0]["new_cluster"]
    assert all("source" not in t["notebook_task"] for t in got["tasks"])
    listed = w.api_client.do("GET", "/api/2.2/jobs/list", query={"expand_tasks": "true"})["jobs"][0][
        "settings"
    ]
    assert listed == got
    for answer in (
        w.api_client.do("GET", "/api/2.1/clusters/get", query={"cluster_id": cluster_id}),
        w.api_client.do("GET", "/api/2.1/clusters/list")["clusters"][0],
    ):
        assert "data_security_mode" not in answer and "data_security_mode" not in answer["spec"]
        assert answer["single_user_name"] == ME
    assert ws.state()["clusters"][cluster_id]["data_security_mode"] == "SINGLE_USER", "only the answers"
    with pytest.raises(
        RuntimeError, match="fake setting 'drop_fields' must be a list, got 'data_security_mode'"
    ):
        ws.configure(drop_fields="data_security_mode")
    with pytest.raises(RuntimeError, match="drop_fields must be a list of dotted key names"):
        ws.configure(drop_fields=[""])


# ---- Unity Catalog models ----------------------------------------------------------------------------------
def test_unity_catalog_registered_models(w: WorkspaceClient):
    created = w.registered_models.create(catalog_name="main", schema_name="default", name="churn_model")
    assert created.full_name == "main.default.churn_model" and created.owner == ME
    assert w.registered_models.get("main.default.churn_model").name == "churn_model"
    with pytest.raises(AlreadyExists):  # 409 ALREADY_EXISTS: a ResourceConflict, not a ResourceAlreadyExists
        w.registered_models.create(catalog_name="main", schema_name="default", name="churn_model")
    with pytest.raises(ResourceConflict):
        w.registered_models.create(catalog_name="main", schema_name="default", name="churn_model")
    with pytest.raises(NotFound, match="Schema 'main.ml' does not exist"):
        w.registered_models.create(catalog_name="main", schema_name="ml", name="churn_model")
    w.schemas.create(name="ml", catalog_name="main")
    w.registered_models.create(catalog_name="main", schema_name="ml", name="churn_model")
    assert {m.full_name for m in w.registered_models.list(catalog_name="main", schema_name="ml")} == {
        "main.ml.churn_model"
    }
    w.registered_models.delete("main.default.churn_model")
    with pytest.raises(ResourceDoesNotExist):
        w.registered_models.get("main.default.churn_model")


# ---- seeding, state and the call log -----------------------------------------------------------------------
def test_seeded_resources_belong_to_someone_else(w: WorkspaceClient, ws: FakeWorkspace):
    ws.reset_calls()
    made = ws.seed(
        clusters=[
            {"cluster_name": "shared", "spark_version": SPARK, "node_type_id": "i3.xlarge", "num_workers": 1}
        ],
        jobs=[{"name": "someone-elses-job"}],
        workspace=[
            {"path": "/Shared/tool.py", "content": "x = 1\n"},
            {"path": "/Shared/nb", "type": "NOTEBOOK", "content": "print(1)\n"},
        ],
        secret_scopes={"their-scope": {"token": "abc"}},
    )
    assert ws.calls() == []  # seeding makes no API call
    cluster = w.clusters.get(made["clusters"][0])
    assert cluster.state == compute.State.RUNNING and cluster.creator_user_name == "someone.else@example.com"
    assert w.jobs.get(made["jobs"][0]).creator_user_name == "someone.else@example.com"
    assert {o.path for o in w.workspace.list("/Shared")} == {"/Shared/tool.py", "/Shared/nb"}
    assert [s.key for s in w.secrets.list_secrets("their-scope")] == ["token"]
    assert ws.calls(mutating_only=True) == []
    w.secrets.create_scope("mine")
    assert [c["path"] for c in ws.calls(mutating_only=True)] == ["/api/2.0/secrets/scopes/create"]
    ws.reset_calls()
    assert ws.calls() == []


# ---- faults and what the SDK does about them ---------------------------------------------------------------
CREATE = "/api/2.1/clusters/create"


def _create_cluster(w: WorkspaceClient) -> str:
    return w.clusters.create(cluster_name="retry", spark_version=SPARK, node_type_id="i3.xlarge").cluster_id


def test_429_with_retry_after_is_retried_even_on_post(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(status=429, retry_after=1, times=1, match={"method": "POST", "path": CREATE})
    started = time.monotonic()
    _create_cluster(w)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0  # Retry-After seconds plus up to 1 s of jitter
    assert [c["status"] for c in ws.calls(path_prefix=CREATE)] == [429, 200]
    assert len(ws.state()["clusters"]) == 1


def test_503_without_retry_after_is_retried_after_a_second(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(status=503, match={"path": "/api/2.2/jobs/create"})
    w.jobs.create(name="after-503")
    assert [c["status"] for c in ws.calls(path_prefix="/api/2.2/jobs/create")] == [503, 200]


def test_429_that_was_applied_still_lands_twice(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(status=429, retry_after=0, apply=True, match={"path": CREATE})
    _create_cluster(w)
    assert len(ws.state()["clusters"]) == 2  # the first create happened; its answer said "retry"


def test_dropped_connection_after_the_change_duplicates_a_create(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(drop="after", match={"method": "POST", "path": CREATE})
    started = time.monotonic()
    _create_cluster(w)
    elapsed = time.monotonic() - started
    # the SDK retries a POST on a connection error (requests.ConnectionError), after ~1-2 s
    assert [c.get("dropped") for c in ws.calls(path_prefix=CREATE)] == ["after", None]
    assert len(ws.state()["clusters"]) == 2 and 1.0 <= elapsed < 3.0


def test_dropped_connection_before_the_change_is_retried_cleanly(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(drop="before", match={"path": CREATE})
    _create_cluster(w)
    assert len(ws.state()["clusters"]) == 1


def test_read_timeout_is_retried_and_duplicates_a_slow_create(ws: FakeWorkspace):
    w = ws.client(http_timeout_seconds=1)
    ws.inject(delay_after=1.5, match={"path": "/api/2.2/jobs/create"})
    w.jobs.create(name="slow")
    assert len(ws.state()["jobs"]) == 2


def test_multipart_upload_is_not_retried_but_json_import_is(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(status=429, retry_after=0, times=2, match={"path": "/api/2.0/workspace/import"})
    with pytest.raises(TooManyRequests):  # workspace.upload sends a form: the SDK does not retry it at all
        w.workspace.upload(f"{HOME}/a.py", b"x = 1\n", format=workspace.ImportFormat.AUTO)
    w.workspace.import_(f"{HOME}/b.py", content=_b64(b"x = 1\n"), format=workspace.ImportFormat.AUTO)
    assert [c["status"] for c in ws.calls(path_prefix="/api/2.0/workspace/import")] == [429, 429, 200]


def test_fail_on_the_nth_call(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(fail_on_call=2, status=500, match={"method": "POST", "path": "/api/2.0/secrets/scopes/create"})
    w.secrets.create_scope("one")
    with pytest.raises(InternalError):  # a 500 is not retried
        w.secrets.create_scope("two")
    w.secrets.create_scope("three")
    assert [c["status"] for c in ws.calls(path_prefix="/api/2.0/secrets")] == [200, 500, 200]
    assert [s.name for s in w.secrets.list_scopes()] == ["one", "three"]


def test_latency_applies_per_call_and_calls_overlap(w: WorkspaceClient, ws: FakeWorkspace):
    ws.inject(latency=0.1)
    started = time.monotonic()
    for _ in range(5):
        w.current_user.me()
    serial = time.monotonic() - started
    started = time.monotonic()
    with ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda _: w.current_user.me(), range(5)))
    concurrent = time.monotonic() - started
    assert serial >= 0.5 and concurrent < serial / 2


# ---- MLflow through a real `mlflow server` (last: the session's server starts with the first fake) ---------
def test_mlflow_experiment_and_workspace_registry(w: WorkspaceClient, ws: FakeWorkspace, mlflow_server):
    name = f"{HOME}/churn/experiment"
    with pytest.raises(ResourceDoesNotExist, match="Parent directory"):
        w.experiments.create_experiment(name)
    w.workspace.mkdirs(f"{HOME}/churn")
    experiment_id = w.experiments.create_experiment(name).experiment_id
    assert w.experiments.get_by_name(name).experiment.experiment_id == experiment_id
    with pytest.raises(ResourceAlreadyExists):
        w.experiments.create_experiment(name)
    with pytest.raises(InvalidParameterValue, match="absolute path"):
        w.experiments.create_experiment("relative-name")
    with pytest.raises(ResourceDoesNotExist):
        w.experiments.get_by_name(f"{HOME}/nope")
    assert [o.path for o in w.workspace.list(f"{HOME}/churn")] == [name]  # experiments live in the tree

    w.model_registry.create_model("churn-model")
    got = w.model_registry.get_model("churn-model")  # /api/2.0/mlflow/databricks/registered-models/get
    assert got.registered_model_databricks.name == "churn-model"
    with pytest.raises(ResourceAlreadyExists):
        w.model_registry.create_model("churn-model")
    with pytest.raises(ResourceDoesNotExist):
        w.model_registry.get_model("other")


def test_mlflow_state_is_per_fake_workspace(w: WorkspaceClient, ws: FakeWorkspace, mlflow_server):
    with FakeWorkspace.start(mlflow_url=mlflow_server.url) as other:
        ws.seed(experiments=["/Shared/exp"], registered_models=["m"])
        assert w.experiments.get_by_name("/Shared/exp").experiment.name == "/Shared/exp"
        with pytest.raises(ResourceDoesNotExist):
            other.client().experiments.get_by_name("/Shared/exp")
        with pytest.raises(ResourceDoesNotExist):
            other.client().model_registry.get_model("m")


# ---- cloud storage behind presigned URLs; MLflow's Unity Catalog registry (no MLflow server needed) ----
def _storage(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    """A request to a presigned URL as MLflow sends it: no workspace credentials."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _signed(w: WorkspaceClient, kind: str, run_id: str, path: str) -> str:
    answer = w.api_client.do(
        "POST", f"/api/2.0/mlflow/artifacts/credentials-for-{kind}", body={"run_id": run_id, "path": [path]}
    )
    (info,) = answer["credential_infos"]
    assert info["type"] == "AWS_PRESIGNED_URL" and info["path"] == path and info["run_id"] == run_id
    return info["signed_uri"]


def test_presigned_storage_urls_are_verified_as_s3_does(w: WorkspaceClient, ws: FakeWorkspace):
    put = _signed(w, "write", "run1", "plots/roc.png")
    assert _storage("PUT", put, b"png bytes")[0] == 200
    get = _signed(w, "read", "run1", "plots/roc.png")
    assert _storage("GET", get) == (200, b"png bytes")
    listed = w.api_client.do(
        "GET", "/api/2.0/mlflow/artifacts/list", query={"run_id": "run1", "path": "plots"}
    )
    assert listed["files"] == [{"path": "plots/roc.png", "is_dir": False, "file_size": 9}]

    tampered = re.sub(r"X-Amz-Signature=[0-9a-f]{4}", "X-Amz-Signature=0000", get)
    status, body = _storage("GET", tampered)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert _storage("GET", put)[0] == 403, "a URL signed for PUT does not allow GET"
    assert _storage("PUT", get, b"overwritten")[0] == 403, "nor one signed for GET a PUT"
    assert _storage("GET", get.replace("roc.png", "pr.png"))[0] == 403, "the signature covers the object"
    assert _storage("GET", get.split("?")[0])[0] == 403, "no signature, no access"
    missing = _signed(w, "read", "run1", "plots/none.png")
    status, body = _storage("GET", missing)
    assert status == 404 and b"<Code>NoSuchKey</Code>" in body

    ws.configure(presigned_url_seconds=1)
    short = _signed(w, "read", "run1", "plots/roc.png")
    time.sleep(2.1)  # X-Amz-Date has seconds; one second of validity is gone after two
    status, body = _storage("GET", short)
    assert status == 403 and b"Request has expired" in body
    assert ws.state()["storage"]["runs/run1/plots/roc.png"]["size"] == 9


UC = "/api/2.0/mlflow/unity-catalog"
RESERVED_TAG = "Tag name {} contains one or more of the reserved characters: List(., ,, -, =, /, :)"


def test_unity_catalog_model_versions_as_mlflow_registers_them(w: WorkspaceClient, ws: FakeWorkspace):
    name = "main.default.churn_model"
    created = w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": name})
    assert created["registered_model"]["name"] == name
    with pytest.raises(ResourceAlreadyExists):
        w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": name})
    with pytest.raises(
        InvalidParameterValue, match="all three levels"
    ):  # MLflow adds its legacy hint on this
        w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": "churn_model"})
    with pytest.raises(NotFound, match="Schema 'main.ml' does not exist"):
        w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": "main.ml.m"})

    version = w.api_client.do(
        "POST", f"{UC}/model-versions/create", body={"name": name, "source": "models:/m-1"}
    )
    assert version["model_version"]["version"] == "1"
    assert version["model_version"]["status"] == "PENDING_REGISTRATION"
    ask = {"name": name, "version": "1", "operation": "MODEL_VERSION_OPERATION_READ_WRITE"}
    credentials = w.api_client.do("POST", f"{UC}/model-versions/generate-temporary-credentials", body=ask)
    assert credentials["credentials"]["storage_mode"] == "DEFAULT_STORAGE"
    path = "/Models/main/default/churn_model/1/MLmodel"
    upload = w.api_client.do("POST", "/api/2.0/fs/create-upload-url", body={"path": path})
    assert _storage("PUT", upload["url"], b"flavors: {}\n")[0] == 200
    listed = w.api_client.do("GET", "/api/2.0/fs/directories/Models/main/default/churn_model/1")
    assert [(e["path"], e["is_directory"]) for e in listed["contents"]] == [(path, False)]
    with pytest.raises(NotFound):  # MLflow reads NOT_FOUND as an empty folder
        w.api_client.do("GET", "/api/2.0/fs/directories/Models/main/default/churn_model/2")

    done = w.api_client.do("POST", f"{UC}/model-versions/finalize", body={"name": name, "version": "1"})
    assert done["model_version"]["status"] == "READY"
    with pytest.raises(InvalidState):  # the files of a READY version are fixed
        w.api_client.do("POST", "/api/2.0/fs/create-upload-url", body={"path": path})
    download = w.api_client.do("POST", "/api/2.0/fs/create-download-url", body={"path": path})
    assert _storage("GET", download["url"]) == (200, b"flavors: {}\n")

    for key in ["promotion.decision", "a,b", "a-b", "a=b", "a/b", "a:b"]:
        for where, body in [
            ("model-versions/set-tag", {"name": name, "version": "1", "key": key, "value": "x"}),
            ("registered-models/set-tag", {"name": name, "key": key, "value": "x"}),
        ]:
            with pytest.raises(InvalidParameterValue) as refused:
                w.api_client.do("POST", f"{UC}/{where}", body=body)
            assert str(refused.value) == RESERVED_TAG.format(key)
    tag = {"name": name, "version": "1", "key": "promotion_decision", "value": "promoted"}
    w.api_client.do("POST", f"{UC}/model-versions/set-tag", body=tag)

    with pytest.raises(ResourceDoesNotExist):
        w.api_client.do("GET", f"{UC}/registered-models/alias", query={"name": name, "alias": "champion"})
    with pytest.raises(ResourceDoesNotExist):
        w.api_client.do(
            "POST", f"{UC}/registered-models/alias", body={"name": name, "alias": "c", "version": "9"}
        )
    w.api_client.do(
        "POST", f"{UC}/registered-models/alias", body={"name": name, "alias": "champion", "version": "1"}
    )
    champion = w.api_client.do(
        "GET", f"{UC}/registered-models/alias", query={"name": name, "alias": "champion"}
    )
    assert champion["model_version"]["tags"] == [{"key": "promotion_decision", "value": "promoted"}]
    assert champion["model_version"]["aliases"] == [{"alias": "champion", "version": "1"}]
    assert w.registered_models.get(name, include_aliases=True).aliases[0].alias_name == "champion"
    with pytest.raises(ResourceDoesNotExist):
        w.api_client.do("GET", f"{UC}/model-versions/get", query={"name": name, "version": "2"})
    assert ws.state()["unity_catalog"]["registry"][name]["aliases"] == {"champion": 1}


# ---- MLflow's own Databricks clients against the fake (in a subprocess: MLflow caches host credentials) --
MLFLOW_CLIENT = """
import sys
import mlflow, numpy as np, pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

registry = sys.argv[1]
name = "main.default.m" if registry == "databricks-uc" else "m"
mlflow.set_tracking_uri("databricks")
mlflow.set_registry_uri(registry)
mlflow.set_experiment("/Shared/exp")
X = pd.DataFrame({"a": np.arange(20.0)})
model = LogisticRegression().fit(X, (X.a > 9).astype(int))
with mlflow.start_run() as run:
    mlflow.log_dict({"k": 1}, "notes/k.json")
    info = mlflow.sklearn.log_model(
        model, name="model", signature=infer_signature(X, model.predict(X)), registered_model_name=name
    )
client = MlflowClient()
if registry == "databricks-uc":
    client.set_registered_model_alias(name, "champion", info.registered_model_version)
    uri = f"models:/{name}@champion"
else:
    client.transition_model_version_stage(name, info.registered_model_version, "Production")
    uri = f"models:/{name}/Production"
assert list(mlflow.sklearn.load_model(uri).predict(X.head(2))) == [0, 0]
assert open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="notes/k.json")).read()
print("OK", run.info.run_id, info.model_id)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "registry, files_api",
    [("databricks-uc", True), ("databricks-uc", False), ("databricks", False)],
    ids=["uc-files-api", "uc-credentials", "workspace-credentials"],
)
def test_mlflows_databricks_clients_run_against_the_fake(
    ws: FakeWorkspace, mlflow_server, tmp_path, registry: str, files_api: bool
):
    """Tracking URI `databricks`: with the Files API MLflow writes run and logged-model files through it;
    without (404, as where it is off) it falls back to credentials-for-write/read and presigned URLs."""
    mlflow_server.wait_ready()
    ws.configure(files_api=files_api)
    ws.seed(experiments=["/Shared/exp"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(ws.env(), DATABRICKS_CONFIG_FILE=str(tmp_path / "none"), MLFLOW_DISABLE_TELEMETRY="true")
    done = subprocess.run(
        [sys.executable, "-c", MLFLOW_CLIENT, registry], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    _, run_id, model_id = done.stdout.split()[-3:]
    storage = ws.state()["storage"]
    assert f"runs/{run_id}/notes/k.json" in storage
    assert f"logged_models/{model_id}/MLmodel" in storage
    paths = {(c["method"], c["path"].split("/fake-cloud-storage/")[0]) for c in ws.calls()}
    via_credentials = ("POST", "/api/2.0/mlflow/artifacts/credentials-for-write") in paths
    assert via_credentials is not files_api
    if registry == "databricks-uc":
        assert ("POST", f"{UC}/model-versions/finalize") in paths
        assert storage.get("Models/main/default/m/1/MLmodel")
    else:
        assert storage.get("model-registry/m/1/MLmodel")
        assert ("GET", "/api/2.0/mlflow/model-versions/get-signed-download-uri") in paths


def test_workspace_registry_versions_copy_their_files_and_move_through_stages(
    w: WorkspaceClient, ws: FakeWorkspace, mlflow_server
):
    """Databricks' workspace registry: a version is PENDING_REGISTRATION at create (MLflow polls until READY),
    its files are copied from the source and served signed; stages with archive_existing_versions."""
    mlflow_server.wait_ready()
    put = _signed(w, "write", "run7", "model/MLmodel")
    assert _storage("PUT", put, b"flavors: {}\n")[0] == 200
    w.api_client.do("POST", "/api/2.0/mlflow/registered-models/create", body={"name": "churn"})
    source = "dbfs:/databricks/mlflow-tracking/1/run7/artifacts/model"
    versions = [
        w.api_client.do(
            "POST", "/api/2.0/mlflow/model-versions/create", body={"name": "churn", "source": source}
        )
        for _ in range(2)
    ]
    assert [v["model_version"]["status"] for v in versions] == ["PENDING_REGISTRATION"] * 2
    got = w.api_client.do(
        "GET", "/api/2.0/mlflow/model-versions/get", query={"name": "churn", "version": "1"}
    )
    assert got["model_version"]["status"] == "READY"
    query = {"name": "churn", "version": "1", "path": ""}
    listed = w.api_client.do("GET", "/api/2.0/mlflow/model-versions/list-artifacts", query=query)
    assert listed["files"] == [{"path": "MLmodel", "is_dir": False, "file_size": 12}]
    signed = w.api_client.do(
        "GET", "/api/2.0/mlflow/model-versions/get-signed-download-uri", query={**query, "path": "MLmodel"}
    )
    assert _storage("GET", signed["signed_uri"]) == (200, b"flavors: {}\n")

    def transition(version: str, stage: str, archive: bool) -> None:
        body = {"name": "churn", "version": version, "stage": stage, "archive_existing_versions": archive}
        w.api_client.do("POST", "/api/2.0/mlflow/model-versions/transition-stage", body=body)

    def stages() -> dict[str, str]:
        found = w.api_client.do(
            "GET", "/api/2.0/mlflow/model-versions/search", query={"filter": "name='churn'"}
        )
        return {v["version"]: v["current_stage"] for v in found["model_versions"]}

    transition("1", "Production", True)
    transition("2", "Staging", False)
    assert stages() == {"1": "Production", "2": "Staging"}
    transition("2", "Production", True)
    assert stages() == {"1": "Archived", "2": "Production"}
    with pytest.raises(InvalidParameterValue):  # only Staging and Production archive the others
        transition("1", "None", True)
