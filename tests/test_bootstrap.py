"""`lakeforge bootstrap` on a project rendered from the template, against the fake workspace over HTTP.

What is checked is what the workspace ends up holding (the fake's state) and which calls reached it (its call
log), never lakeforge's internals: a cold run creates everything, a warm run makes no mutating call, a changed
file leads to an in-place edit, a crash half-way followed by a re-run converges to the state of an
uninterrupted run, and bad config or auth fails before anything is changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk.service.jobs import JobSettings
from lakeforge.cli import app
from typer.testing import CliRunner

from tests.fake_workspace import FakeWorkspace, MlflowServer
from tests.runtimes import default_spark_version

ROOT = "/Shared/churn-model/dev"  # the dev target's workspace_root, as the fake spells it (no /Workspace)
CLUSTER = "churn-model-dev"
JOBS = {"[dev] churn-model scoring", "[dev] churn-model training"}


# ---------------------------------------------------------------------------------------------------------
# helpers (test_destroy_run_doctor.py uses them too)
# ---------------------------------------------------------------------------------------------------------
def lakeforge(*args: str | Path, env: dict[str, str] | None = None, input: str | None = None):
    """Run the CLI in-process, as from a shell without a terminal; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], env=env, input=input, catch_exceptions=False)


def bootstrap(project: Path, *args: str, env: dict[str, str] | None = None):
    return lakeforge("bootstrap", project, "--target", "dev", *args, env=env)


def bootstrap_json(project: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = bootstrap(project, "--yes", "--json", *args, env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def mutating(ws: FakeWorkspace) -> list[str]:
    return [f"{c['method']} {c['path']}" for c in ws.calls(mutating_only=True)]


def ours(tags: dict[str, str] | None) -> bool:
    tags = tags or {}
    return tags.get("lakeforge-project") == "churn-model" and tags.get("lakeforge-target") == "dev"


def our_clusters(state: dict) -> list[dict]:
    return [c for c in state["clusters"].values() if ours(c.get("custom_tags"))]


def our_jobs(state: dict) -> list[dict]:
    return [j for j in state["jobs"].values() if ours(j["settings"].get("tags"))]


def one_line_error(result) -> str:
    """The error: one line, the last on stderr (progress lines may come before it)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("lakeforge: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


def plain_plan(stdout: str, report: dict[str, Any]) -> str:
    """Check a plan printed without a terminal against its JSON: the title, then one line per resource with
    its whole URL, unbroken; return the last line, the summary."""
    title, *body, summary = stdout.splitlines()
    assert title == f"{report['command']} {report['project']} → {report['target']}: plan"
    assert len(body) == len(report["resources"]), stdout
    for line, resource in zip(body, report["resources"], strict=True):
        word = "unchanged" if resource["action"] == "unchanged" else f"to {resource['action']}"
        assert line.startswith(
            f"{word.ljust(9)}  {resource['step']}  {resource['kind']} {resource['name']}"
        ), line
        if resource["url"]:
            assert line.endswith(f"  {resource['url']}"), line
    return summary


_VOLATILE = {
    "cluster_id",
    "job_id",
    "created_time",
    "creator_user_name",
    "run_as_user_name",
    "start_time",
    "state",
    "state_message",
    "last_activity_time",
    "last_state_loss_time",
    "spark_context_id",
    "default_tags",
    "status",
    "object_id",
    "resource_id",
    "created_at",
    "modified_at",
    "updated_at",
    "created_by",
    "updated_by",
    "storage_location",
    "metastore_id",
    "messages",
    "terminated_time",
    "termination_reason",
    "settings_version",
    "runs",
    "experiment_id",
    "id",
    "full_name_id",
    "securable_type",
    "owner",
    "lakeforge-spec",  # a hash over the rest, which holds ids (a job's spec names another job's id)
}


def normalized(state: dict) -> dict:
    """The fake's state without ids, times and run states, so two workspaces can be compared."""

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in sorted(value.items()) if k not in _VOLATILE}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    ids = {cid: "<cluster>" for cid in state["clusters"]} | {str(jid): "<job>" for jid in state["jobs"]}
    text = json.dumps(
        {
            "clusters": sorted((scrub(c) for c in state["clusters"].values()), key=json.dumps),
            "jobs": sorted((scrub(j["settings"]) for j in state["jobs"].values()), key=json.dumps),
            "workspace": {
                p: {
                    k: v
                    for k, v in scrub(o).items()
                    if not (p.endswith("manifest.json") and k in ("sha256", "size"))
                }
                for p, o in state["workspace"].items()
                if not p.startswith("/Users")
            },
            "secret_scopes": state["secret_scopes"],
            "unity_catalog": scrub(state["unity_catalog"]),
        },
        sort_keys=True,
    )
    for raw, placeholder in ids.items():
        text = text.replace(raw, placeholder)
    return json.loads(text)


def state_differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two normalized states differ, as readable paths (empty when equal)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        found = []
        for key in sorted(set(actual) | set(expected), key=str):
            if key not in actual or key not in expected:
                found.append(f"{path}/{key}: only in {'actual' if key in actual else 'expected'}")
            else:
                found += state_differences(actual[key], expected[key], f"{path}/{key}")
        return found
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        return [
            d
            for i, (a, e) in enumerate(zip(actual, expected, strict=True))
            for d in state_differences(a, e, f"{path}[{i}]")
        ]
    return [] if actual == expected else [f"{path}: {str(actual)[:150]} != {str(expected)[:150]}"]


# ---------------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rendered(render) -> Path:
    return render({})


@pytest.fixture(autouse=True)
def _build_each_wheel_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`uv build` takes a second; the tests build the same sources many times. Build each distinct source tree
    once per session (the real build, keyed by the bytes of pyproject.toml and src/)."""
    import hashlib

    import lakeforge.plan
    from lakeforge.wheel import build_wheel

    def cached(project_dir: Path):
        digest = hashlib.sha256()
        for path in sorted([project_dir / "pyproject.toml", *(project_dir / "src").rglob("*")]):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes())
        key = digest.hexdigest()
        if key not in _WHEELS:
            _WHEELS[key] = build_wheel(project_dir)
        return _WHEELS[key]

    monkeypatch.setattr(lakeforge.plan, "build_wheel", cached)


_WHEELS: dict[str, Any] = {}


@pytest.fixture
def project(rendered: Path, tmp_path: Path) -> Path:
    """A fresh copy of the rendered default project (Unity Catalog registry, three targets)."""
    return Path(shutil.copytree(rendered, tmp_path / "churn-model"))


@pytest.fixture
def ws(databricks_env: FakeWorkspace) -> FakeWorkspace:
    """The fake workspace, with unified auth pointed at it through the environment."""
    return databricks_env


@pytest.fixture(scope="module")
def reference(rendered: Path, mlflow_server: MlflowServer, tmp_path_factory) -> dict:
    """The normalized state after one uninterrupted cold bootstrap of the default project, in its own fake."""
    project = Path(shutil.copytree(rendered, tmp_path_factory.mktemp("reference") / "churn-model"))
    with FakeWorkspace.start(mlflow_url=mlflow_server.url) as other:
        env = {**{k: None for k in os.environ if k.startswith("DATABRICKS_")}, **other.env()}
        bootstrap_json(project, env=env)  # type: ignore[arg-type]
        return normalized(other.state())


@pytest.fixture
def bootstrapped(ws: FakeWorkspace, project: Path) -> Iterator[tuple[FakeWorkspace, Path]]:
    bootstrap_json(project)
    ws.reset_calls()
    yield ws, project


# ---------------------------------------------------------------------------------------------------------
# a cold run, a warm run, a dry run
# ---------------------------------------------------------------------------------------------------------
def test_a_cold_bootstrap_creates_everything(ws: FakeWorkspace, project: Path) -> None:
    report = bootstrap_json(project)

    state = ws.state()
    (cluster,) = our_clusters(state)
    assert cluster["cluster_name"] == CLUSTER
    assert cluster["spark_version"] == default_spark_version()  # runtimes.yml's default
    assert cluster["custom_tags"]["project"] == "churn-model"  # the file's own tags stay
    assert cluster["single_user_name"] == ws.user  # SINGLE_USER without a name: the caller
    (wheel,) = [lib["library"]["whl"] for lib in cluster["libraries"]]
    # the content hash names the folder and is the version's local label, so pip installs every new build
    folder = re.fullmatch(
        rf"/Workspace{ROOT}/dist/([0-9a-f]{{16}})/churn_model-0\.1\.0\+(\w+)-py3-none-any\.whl", wheel
    )
    assert folder and folder[1] == folder[2], wheel

    tree = state["workspace"]
    notebooks = sorted(p for p, o in tree.items() if p.startswith(f"{ROOT}/notebooks/"))
    assert [p.rsplit("/", 1)[1] for p in notebooks] == sorted(
        n.stem for n in (project / "notebooks").glob("*.py")
    )
    assert all(tree[p]["object_type"] == "NOTEBOOK" for p in notebooks)
    package = {p for p in tree if p.startswith(f"{ROOT}/src/churn_model/")}
    local = {f"{ROOT}/src/churn_model/{f.name}" for f in (project / "src" / "churn_model").glob("*.py")}
    assert package == local and all(tree[p]["object_type"] == "FILE" for p in package)
    manifest = json.loads(tree[f"{ROOT}/.lakeforge/manifest.json"]["content"])
    assert set(manifest["files"]) == {p.removeprefix(ROOT + "/") for p in notebooks} | {
        p.removeprefix(ROOT + "/") for p in package
    } | {"serving/champion.json"}
    template = json.loads(tree[f"{ROOT}/serving/champion.json"]["content"])
    assert template["name"] == "churn-model-dev" and "${champion_version}" in json.dumps(template)
    assert all(entry["sha256"] for entry in manifest["files"].values())
    assert tree[f"{ROOT}/experiment"]["object_type"] == "MLFLOW_EXPERIMENT"

    assert "churn-model-dev" in state["secret_scopes"]  # one scope per target
    assert "main.churn_model_dev" in state["unity_catalog"]["schemas"]
    assert "main.churn_model_dev.churn_model" in state["unity_catalog"]["models"]

    jobs = {j["settings"]["name"].rsplit(" ", 1)[1]: j for j in our_jobs(state)}
    assert {j["settings"]["name"] for j in jobs.values()} == JOBS
    for job in jobs.values():
        settings = job["settings"]
        # job compute: one job cluster per run from cluster.json, without what only the all-purpose one has
        (job_cluster,) = settings["job_clusters"]
        spec = job_cluster["new_cluster"]
        assert spec["spark_version"] == default_spark_version() and "cluster_name" not in spec
        assert "lakeforge-project" not in spec.get("custom_tags", {}) and "single_user_name" not in spec
        for task in settings["tasks"]:
            if "notebook_task" in task:
                assert task["job_cluster_key"] == job_cluster["job_cluster_key"]
                assert task["libraries"] == [{"whl": wheel}], "each run installs the wheel last deployed"
                assert task["notebook_task"]["notebook_path"].startswith(f"/Workspace{ROOT}/notebooks/")
        assert settings["queue"] == {"enabled": True}
        assert settings["email_notifications"]["on_failure"] == ["data-science@example.com"]
        assert settings["schedule"]["pause_status"] == "PAUSED"  # dev runs only when started
        params = {p["name"]: p["default"] for p in settings["parameters"]}
        assert params["model"] == "main.churn_model_dev.churn_model"
    (retrain,) = [t for t in jobs["scoring"]["settings"]["tasks"] if "run_job_task" in t]
    assert retrain["run_job_task"]["job_id"] == jobs["training"]["job_id"]

    assert report["applied"] and report["target"] == "dev" and report["user"] == ws.user
    actions = {(r["kind"], r["action"]) for r in report["resources"]}
    assert actions >= {
        ("cluster", "create"),
        ("code", "create"),
        ("secret scope", "create"),
        ("experiment", "create"),
        ("model", "create"),
        ("job", "create"),
    }
    assert not {a for k, a in actions if k not in ("user", "serving endpoint")} - {"create"}
    assert ("serving endpoint", "unchanged") in actions  # it waits for the first champion
    urls = {r["kind"]: r["url"] for r in report["resources"]}
    assert urls["cluster"] == f"{ws.url}/#setting/clusters/{cluster['cluster_id']}/configuration"
    assert urls["code"] == f"{ws.url}/#workspace{ROOT}"
    assert re.fullmatch(rf"{ws.url}/#mlflow/experiments/\w+", urls["experiment"])
    assert urls["model"] == f"{ws.url}/explore/data/models/main/churn_model_dev/churn_model"
    assert re.fullmatch(rf"{ws.url}/#job/\d+", urls["job"])


def test_a_second_run_makes_zero_mutating_calls(bootstrapped) -> None:
    ws, project = bootstrapped
    report = bootstrap_json(project)
    assert mutating(ws) == []
    assert {r["action"] for r in report["resources"]} == {"unchanged"}
    assert sum(report["summary"].values()) == report["summary"]["unchanged"]
    assert len(ws.calls()) < 30  # reads only: identity, one list per kind, one get per job


def test_fields_a_workspace_does_not_echo_cause_no_update(ws: FakeWorkspace, project: Path) -> None:
    """Answers that leave out fields bootstrap sent (as an emulator drops notebook_task.source and
    data_security_mode, and the real APIs apply_policy_default_values) are not changes: the decision is made
    against the spec bootstrap last applied, kept in the lakeforge-spec tag."""
    cluster = project / "databricks" / "cluster.json"
    spec = json.loads(cluster.read_text())
    cluster.write_text(json.dumps({**spec, "apply_policy_default_values": True}, indent=2))
    ws.configure(drop_fields=["notebook_task.source", "data_security_mode", "apply_policy_default_values"])
    bootstrap_json(project)
    job = next(iter(ws.client().jobs.list(expand_tasks=True)))
    assert all(
        "source" not in (t.notebook_task.as_dict() if t.notebook_task else {}) for t in job.settings.tasks
    )
    ws.reset_calls()
    report = bootstrap_json(project)
    assert mutating(ws) == []
    assert {r["action"] for r in report["resources"]} == {"unchanged"}


def test_a_field_edited_in_the_workspace_is_drift_and_is_reset(bootstrapped) -> None:
    ws, project = bootstrapped
    w = ws.client()
    (training,) = [j for j in our_jobs(ws.state()) if j["settings"]["name"].endswith("training")]
    w.jobs.update(training["job_id"], new_settings=JobSettings(max_concurrent_runs=5))
    ws.reset_calls()
    report = bootstrap_json(project)
    (row,) = [r for r in report["resources"] if r["action"] != "unchanged"]
    assert row["name"].endswith("training") and row["detail"].startswith("drift: reset max_concurrent_runs")
    assert mutating(ws) == ["POST /api/2.2/jobs/reset"]
    assert w.jobs.get(training["job_id"]).settings.max_concurrent_runs == 1
    ws.reset_calls()
    bootstrap_json(project)
    assert mutating(ws) == []


def test_dry_run_makes_no_mutating_call_and_shows_the_plan(ws: FakeWorkspace, project: Path) -> None:
    result = bootstrap(project, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert mutating(ws) == []
    assert our_clusters(ws.state()) == []
    assert "create" in result.stdout and CLUSTER in result.stdout
    assert "[dev]" in result.stdout, "job names ([dev] ...) are printed as they are, not as markup"

    report = json.loads(bootstrap(project, "--dry-run", "--json").stdout)
    assert report["dry_run"] and not report["applied"]
    waiting = ("user", "serving endpoint")  # the endpoint waits for the first champion
    assert {r["action"] for r in report["resources"] if r["kind"] not in waiting} == {"create"}
    assert mutating(ws) == []


def test_without_a_terminal_and_without_yes_nothing_is_changed(ws: FakeWorkspace, project: Path) -> None:
    result = bootstrap(project)
    assert result.exit_code == 1
    line = one_line_error(result)
    assert re.fullmatch(
        r"lakeforge: bootstrap plan for target 'dev': \d+ to create, 1 unchanged; no terminal to confirm on: "
        r"pass --yes to apply it \(or --dry-run to only look\)",
        line,
    ), line
    assert mutating(ws) == []


def test_without_a_terminal_the_plan_is_one_line_per_resource_with_its_whole_url(
    ws: FakeWorkspace, project: Path
) -> None:
    """In a pipe or a CI log there is no table to wrap URLs over several lines: one plain line each."""
    report = json.loads(bootstrap(project, "--dry-run", "--json").stdout)
    result = bootstrap(project, "--dry-run")
    assert result.exit_code == 0, result.stderr
    summary = plain_plan(result.stdout, report)
    creates = report["summary"]["create"]
    assert creates > 0 and summary == f"{creates} to create, 1 unchanged"  # the endpoint waits


def test_a_plan_and_its_result_speak_one_vocabulary(ws: FakeWorkspace, project: Path, tmp_path: Path) -> None:
    """JSON: the same keys and action words for a plan and a result, `applied` tells them apart. Text and
    Markdown: "to create" in a plan, "created" once done, "nothing to change" when there is nothing to do."""
    plan_md = tmp_path / "plan.md"
    assert bootstrap(project, "--dry-run", "--summary", plan_md).exit_code == 0
    planned = json.loads(bootstrap(project, "--dry-run", "--json").stdout)
    done = bootstrap_json(project)
    noop = bootstrap(project)  # nothing to confirm, so no --yes needed
    again = bootstrap_json(project)

    for report in (planned, done, again):
        assert list(report["summary"]) == ["create", "update", "delete", "unchanged"]
    creates = planned["summary"]["create"]
    assert creates > 0 and planned["summary"] == done["summary"]
    assert [r["action"] for r in planned["resources"]] == [r["action"] for r in done["resources"]]
    assert (planned["applied"], done["applied"], again["applied"]) == (False, True, False)
    unchanged = again["summary"]["unchanged"]
    assert again["summary"] == {"create": 0, "update": 0, "delete": 0, "unchanged": unchanged}

    text = plan_md.read_text()
    head = f"### Bootstrap of churn-model on dev (plan, not applied): {creates} to create, 1 unchanged\n"
    assert text.startswith(head)
    assert "| cluster | cluster churn-model-dev | to create |" in text

    assert noop.exit_code == 0, noop.stderr
    lines = noop.stdout.splitlines()
    assert lines[0] == "bootstrap churn-model → dev: nothing to change"
    assert lines[-1] == f"nothing to change ({unchanged} unchanged)"

    path = project / "databricks" / "cluster.json"
    path.write_text(path.read_text().replace('"autotermination_minutes": ', '"autotermination_minutes": 1'))
    applied = bootstrap(project, "--yes")
    assert applied.exit_code == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert lines[0] == "bootstrap churn-model → dev: applied"
    assert re.match(r"updated +cluster  cluster churn-model-dev  edit autotermination_minutes", lines[2]), (
        lines
    )
    assert lines[-1] == f"1 updated, {unchanged - 1} unchanged"


def test_json_goes_alone_on_stdout(ws: FakeWorkspace, project: Path) -> None:
    result = bootstrap(project, "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)  # nothing else on stdout
    assert {"command", "project", "target", "host", "user", "summary", "resources"} <= set(report)
    assert all({"step", "kind", "name", "action", "detail", "url"} <= set(r) for r in report["resources"])


# ---------------------------------------------------------------------------------------------------------
# changes
# ---------------------------------------------------------------------------------------------------------
def test_a_changed_cluster_json_is_an_edit_never_a_delete(bootstrapped) -> None:
    ws, project = bootstrapped
    (before,) = our_clusters(ws.state())
    path = project / "databricks" / "cluster.json"
    spec = json.loads(path.read_text())
    spec["autoscale"]["max_workers"] = 4
    spec["autotermination_minutes"] = 45
    path.write_text(json.dumps(spec, indent=2))

    report = bootstrap_json(project)

    # the all-purpose cluster is edited; the job clusters, made from the same file, follow in the jobs
    calls = mutating(ws)
    assert calls == ["POST /api/2.1/clusters/edit", "POST /api/2.2/jobs/reset", "POST /api/2.2/jobs/reset"]
    (after,) = our_clusters(ws.state())
    assert after["cluster_id"] == before["cluster_id"]
    assert after["autoscale"]["max_workers"] == 4 and after["autotermination_minutes"] == 45
    assert after["single_user_name"] == before["single_user_name"]
    (row,) = [r for r in report["resources"] if r["kind"] == "cluster"]
    assert row["action"] == "update" and "autoscale" in row["detail"]
    ws.reset_calls()
    bootstrap_json(project)
    assert mutating(ws) == []


def test_a_key_removed_from_a_job_file_resets_the_job(bootstrapped) -> None:
    ws, project = bootstrapped
    path = project / "databricks" / "jobs" / "training.json"
    spec = json.loads(path.read_text())
    del spec["schedule"]
    path.write_text(json.dumps(spec))
    bootstrap_json(project)
    assert mutating(ws) == ["POST /api/2.2/jobs/reset"]
    (training,) = [j for j in our_jobs(ws.state()) if j["settings"]["name"].endswith("training")]
    assert "schedule" not in training["settings"]


def test_changed_code_uploads_only_what_changed_and_removes_only_its_own_files(bootstrapped) -> None:
    ws, project = bootstrapped
    ws.seed(
        workspace=[
            {"path": f"/Workspace{ROOT}/notebooks/scratch", "type": "NOTEBOOK", "content": "1"},
            {"path": f"/Workspace{ROOT}/src/churn_model/notes.txt", "content": "mine"},
        ]
    )
    package = project / "src" / "churn_model"
    (package / "plots.py").unlink()
    (package / "extra.py").write_text("VALUE = 1\n")
    notebook = project / "notebooks" / "02_training.py"
    notebook.write_text(notebook.read_text() + "\n# COMMAND ----------\n\nprint('changed')\n")

    report = bootstrap_json(project)

    imports = sorted(
        c["body"]["path"] for c in ws.calls(mutating_only=True) if c["path"] == "/api/2.0/workspace/import"
    )
    tree = ws.state()["workspace"]
    assert f"/Workspace{ROOT}/src/churn_model/extra.py" in imports
    assert f"/Workspace{ROOT}/notebooks/02_training" in imports
    code_imports = [p for p in imports if "/.lakeforge/" not in p and "/dist/" not in p]
    assert len(code_imports) == 2
    assert f"{ROOT}/src/churn_model/plots.py" not in tree
    assert "print('changed')" in tree[f"{ROOT}/notebooks/02_training"]["content"]
    # what lakeforge did not upload is left alone
    assert f"{ROOT}/notebooks/scratch" in tree and f"{ROOT}/src/churn_model/notes.txt" in tree
    (code,) = [r for r in report["resources"] if r["kind"] == "code"]
    assert {f["action"] for f in code["files"]} == {"create", "update", "delete"}
    # the package changed, so its wheel did: a new path, installed; the old one uninstalled and removed
    calls = mutating(ws)
    assert "POST /api/2.0/libraries/install" in calls and "POST /api/2.0/libraries/uninstall" in calls
    (cluster,) = our_clusters(ws.state())
    wheels = {lib["library"]["whl"]: lib["status"] for lib in cluster["libraries"]}
    assert len(wheels) == 2 and "UNINSTALL_ON_RESTART" in wheels.values()
    assert len([p for p in tree if p.endswith(".whl")]) == 1
    ws.reset_calls()
    bootstrap_json(project)
    assert mutating(ws) == []


def test_pypi_packages_are_installed_once(bootstrapped) -> None:
    ws, project = bootstrapped
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("pypi_packages = []", 'pypi_packages = ["lightgbm==4.5.0"]')
    )
    bootstrap_json(project)
    installs = [c for c in ws.calls(mutating_only=True) if c["path"] == "/api/2.0/libraries/install"]
    assert [lib for c in installs for lib in c["body"]["libraries"]] == [
        {"pypi": {"package": "lightgbm==4.5.0"}}
    ]
    for job in our_jobs(ws.state()):  # each run's job cluster installs them too, after the wheel
        for task in (t for t in job["settings"]["tasks"] if "notebook_task" in t):
            assert task["libraries"][1:] == [{"pypi": {"package": "lightgbm==4.5.0"}}]
    ws.reset_calls()
    bootstrap_json(project)
    assert mutating(ws) == []


# ---------------------------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------------------------
def with_secret(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("keys = {}", 'keys = { db-password = "CHURN_DB_PASSWORD" }')
    )


def test_a_missing_secret_variable_fails_before_any_call(
    ws: FakeWorkspace, project: Path, monkeypatch
) -> None:
    with_secret(project)
    monkeypatch.delenv("CHURN_DB_PASSWORD", raising=False)
    result = bootstrap(project, "--yes")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "CHURN_DB_PASSWORD" in line and "db-password" in line
    assert ws.calls() == []


def test_secrets_are_put_once_and_never_shown(ws: FakeWorkspace, project: Path, monkeypatch) -> None:
    with_secret(project)
    value = "s3cr3t-value-9f2"
    monkeypatch.setenv("CHURN_DB_PASSWORD", value)
    result = bootstrap(project, "--yes")
    assert result.exit_code == 0, result.stderr
    assert value not in result.stdout + result.stderr
    puts = [c for c in ws.calls(mutating_only=True) if c["path"] == "/api/2.0/secrets/put"]
    assert [c["body"]["key"] for c in puts] == ["db-password"]
    assert list(ws.state()["secret_scopes"]["churn-model-dev"]) == ["db-password"]

    ws.reset_calls()
    monkeypatch.setenv("CHURN_DB_PASSWORD", "another-value")
    assert bootstrap(project, "--yes").exit_code == 0
    assert mutating(ws) == []  # a present secret is not compared (values cannot be read back)
    assert bootstrap(project, "--yes", "--rotate-secrets").exit_code == 0
    assert mutating(ws) == ["POST /api/2.0/secrets/put"]


# ---------------------------------------------------------------------------------------------------------
# failures before anything is changed
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("file", "change", "needles"),
    [
        (
            "databricks/cluster.json",
            lambda t: t.replace('"autoscale": {', '"autoscale": {,'),
            ("databricks/cluster.json", "invalid JSON"),
        ),
        (
            "databricks/cluster.json",
            lambda t: t.replace('"spark_version"', '"spark_versoin"'),
            ("databricks/cluster.json", "spark_versoin"),
        ),
        (
            "databricks/cluster.json",
            lambda t: re.sub(r'\s*"spark_version": "[^"]*",', "", t),
            ("databricks/cluster.json", "'spark_version' is missing"),
        ),
        (
            "databricks/jobs/training.json",
            lambda t: t.replace('"max_concurrent_runs": 1', '"max_concurrent_runs": "1"'),
            ("databricks/jobs/training.json", "max_concurrent_runs", "integer"),
        ),
        (
            "pyproject.toml",
            lambda t: t.replace("feature_store = false", "feature_store = false\nclusterr = 'x'"),
            ("pyproject.toml", "tool.lakeforge.clusterr"),
        ),
        (
            "pyproject.toml",
            lambda t: t.replace("feature_store = false", "feature_store = 0"),
            ("pyproject.toml", "tool.lakeforge.feature_store"),
        ),
    ],
)
def test_bad_config_fails_before_any_api_call(
    ws: FakeWorkspace, project: Path, file, change, needles
) -> None:
    path = project / file
    path.write_text(change(path.read_text()))
    result = bootstrap(project, "--yes")
    assert result.exit_code == 1
    line = one_line_error(result)
    for needle in needles:
        assert needle in line
    assert ws.calls() == []


def test_rejected_credentials_give_the_one_line_hint(ws: FakeWorkspace, project: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-wrong-token-123")
    result = bootstrap(project, "--yes")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "cannot authenticate" in line and "DATABRICKS_TOKEN" in line and "databricks auth login" in line
    assert "dapi-wrong-token-123" not in result.stdout + result.stderr
    assert mutating(ws) == []


def test_no_credentials_at_all_give_the_one_line_hint(ws: FakeWorkspace, project: Path, monkeypatch) -> None:
    monkeypatch.delenv("DATABRICKS_TOKEN")
    monkeypatch.delenv("DATABRICKS_AUTH_TYPE")
    monkeypatch.setenv("HOME", str(project))  # no ~/.databrickscfg, no CLI token cache
    result = bootstrap(project, "--yes")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "cannot authenticate" in line and "profile" in line
    assert mutating(ws) == []


# ---------------------------------------------------------------------------------------------------------
# faults: retried calls, crashes, lost answers
# ---------------------------------------------------------------------------------------------------------
def test_429_with_retry_after_and_503_are_survived(ws: FakeWorkspace, project: Path, reference: dict) -> None:
    ws.inject(
        status=429, retry_after=1, times=2, match={"method": "POST", "path": "/api/2.1/clusters/create"}
    )
    ws.inject(status=503, times=3, match={"path": "/api/2.0/workspace/import"})
    ws.inject(status=503, times=1, match={"method": "GET", "path": "/api/2.2/jobs/list"})
    bootstrap_json(project)
    assert state_differences(normalized(ws.state()), reference) == []


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "apply": True, "match": {"method": "POST", "path": "/api/2.2/jobs/create"}},
        {"drop": "after", "match": {"method": "POST", "path": "/api/2.1/clusters/create"}},
    ],
    ids=["job-create-503-after-applying", "cluster-create-answer-dropped"],
)
def test_a_create_whose_answer_was_lost_is_not_duplicated(ws, project: Path, reference: dict, fault) -> None:
    ws.inject(**fault)
    bootstrap_json(project)
    state = ws.state()
    assert len(our_clusters(state)) == 1 and len(our_jobs(state)) == len(JOBS)
    assert state_differences(normalized(state), reference) == []


@pytest.mark.parametrize("nth", [2, 9, 30, 37])
def test_a_crash_half_way_then_a_rerun_converges(
    ws: FakeWorkspace, project: Path, reference: dict, nth: int
) -> None:
    """The nth mutating call fails (a 500 is not retried); the re-run ends where an uninterrupted run does."""
    ws.inject(status=500, fail_on_call=nth, match={"method": "POST"})
    crashed = bootstrap(project, "--yes")
    assert crashed.exit_code == 1
    line = one_line_error(crashed)
    assert re.match(r"lakeforge: (cluster|libraries|workspace|secrets|mlflow|jobs): ", line), line
    ws.clear_faults()
    bootstrap_json(project)
    assert state_differences(normalized(ws.state()), reference) == []
    ws.reset_calls()
    bootstrap_json(project)
    assert mutating(ws) == []


def test_duplicates_from_an_earlier_lost_answer_are_adopted(ws: FakeWorkspace, project: Path) -> None:
    """Two clusters and two jobs of one name with the project's tags (a retried create): the oldest stays."""
    bootstrap_json(project)
    state = ws.state()
    (cluster,) = our_clusters(state)
    training = next(j for j in our_jobs(state) if j["settings"]["name"].endswith("training"))
    made = ws.seed(
        clusters=[{"spec": cluster["spec"], "creator": ws.user}],
        jobs=[{"settings": training["settings"], "creator": ws.user}],
    )
    ws.reset_calls()
    report = bootstrap_json(project)
    state = ws.state()
    assert [c["cluster_id"] for c in our_clusters(state)] == [cluster["cluster_id"]]
    assert len(our_jobs(state)) == len(JOBS)
    assert str(made["jobs"][0]) not in state["jobs"]
    deleted = {(r["kind"], r["detail"]) for r in report["resources"] if r["action"] == "delete"}
    assert ("cluster", f"duplicate of {cluster['cluster_id']}") in deleted
    assert ("job", f"duplicate of {training['job_id']}") in deleted


def test_wait_blocks_until_the_new_cluster_runs(ws: FakeWorkspace, project: Path) -> None:
    ws.configure(cluster_start_seconds=1.5)
    bootstrap_json(project, "--wait", "--wait-minutes", "2")
    (cluster,) = our_clusters(ws.state())
    assert cluster["state"] == "RUNNING"
    assert any(c["path"] == "/api/2.1/clusters/get" for c in ws.calls())


@pytest.mark.parametrize("keys", [signal.SIGINT, b"\x04"], ids=["ctrl-c", "end-of-input"])
def test_ctrl_c_at_the_confirmation_cancels_and_changes_nothing(
    ws: FakeWorkspace, project: Path, keys: bytes | signal.Signals
) -> None:
    from tests.test_cli_new import on_a_terminal

    code, screen = on_a_terminal(
        "bootstrap", project, "--target", "dev", steps=[("Apply this bootstrap plan", keys)]
    )
    assert code == 130, screen
    assert screen.strip().splitlines()[-1] == "lakeforge: cancelled, nothing changed", screen
    assert "Aborted" not in screen and "Traceback" not in screen
    assert mutating(ws) == []
