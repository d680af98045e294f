"""The template: what every combination of answers generates, what it refuses, and what it never writes.

Tiers, cheapest first: every combination of cloud × CI × registry × Feature Store rendered once per session
and its tree, Python, notebooks and settings checked; bad answers rejected with nothing written; no secret in
any generated file; the copier.yml questions themselves; and, marked `slow`, two generated projects
installed for real, their own tests, ruff and the local loop run in them.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from lakeforge.config import load_config

from tests.generated_project import OLDEST_PYTHON, RUNS, STEPS, tail, uv_run
from tests.lakeforge_cli import run_lakeforge
from tests.runtimes import (
    default_spark_version,
    node_type,
    question_choices,
    runtime_lines,
    runtime_of,
    spark_versions,
)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

Render = Callable[[dict[str, Any]], Path]

CLOUDS = ["azure", "aws", "gcp"]
CIS = ["github", "azure-devops"]
REGISTRIES = ["unity-catalog", "workspace"]
# Every supported runtime (runtimes.yml, CPU and GPU) in turn, so that each one meets each cloud without
# multiplying the combinations: 24 combinations, 8 runtimes, each rendered 3 times.
RUNTIMES = spark_versions()
RUNTIME_LINES = runtime_lines()
COMBINATIONS = [
    pytest.param(
        {
            "cloud": cloud,
            "ci": ci,
            "registry": registry,
            "feature_store": feature_store,
            "databricks_runtime": RUNTIMES[number % len(RUNTIMES)],
        },
        id=f"{cloud}-{ci}-{registry}-{'fs' if feature_store else 'nofs'}-{RUNTIMES[number % len(RUNTIMES)]}",
    )
    for number, (cloud, ci, registry, feature_store) in enumerate(
        itertools.product(CLOUDS, CIS, REGISTRIES, [True, False])
    )
]
CI_DIRS = {"github": ".github/workflows", "azure-devops": "pipelines"}
TARGETS = ["dev", "staging", "prod"]
MODULES = [
    "__init__",
    "config",
    "world",
    "tables",
    "sources",
    "catalog",
    "synthetic",
    "features",
    "model",
    "training",
    "promotion",
    "inference",
    "monitoring",
    "registry",
    "steps",
    "cli",
    "notebook",
    "plots",
    "serving",
]
# Modules of earlier releases: data.py gave way to sources.py (the user's), synthetic.py and catalog.py in
# v0.4.0, and pipeline.py became steps.py (copier.yml's v0.4.0 migrations).
RETIRED_MODULES = ["data", "pipeline"]
NOTEBOOKS = ["01_feature_pipeline", "02_training", "03_promotion", "04_batch_inference", "05_monitoring"]
# What `serving` adds (on by default with Unity Catalog, off with the workspace registry).
SERVING_FILES = [
    "databricks/serving/champion.json",
    "notebooks/06_deploy.py",
    "src/churn_model/deployment.py",
    "tests/test_deployment.py",
]
JOBS = ["training", "scoring"]  # databricks/jobs/: two workflows (docs/workflows.md)
COMPUTES = ["job-cluster", "serverless", "all-purpose"]
TOP_FILES = [
    "pyproject.toml",
    "README.md",
    ".copier-answers.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
]

# `${{ ... }}` is GitHub's and Azure DevOps' own expression syntax, `{{tasks.X.values.Y}}` a Databricks job's
# dynamic value reference; anything else of Jinja is a leftover.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{(?!tasks\.)|\{%|\{#")
NOTEBOOK_HEADER = "# Databricks notebook source"
CELL_SEPARATOR = re.compile(r"^# COMMAND ----------$", re.MULTILINE)


def files_of(project: Path) -> list[Path]:
    """Every generated file (the first commit's repository, .git, aside)."""
    return sorted(p for p in project.rglob("*") if p.is_file() and ".git" not in p.relative_to(project).parts)


def answers_of(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def lakeforge_table(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "pyproject.toml").read_text())["tool"]["lakeforge"]


def copier_spec() -> dict[str, Any]:
    return yaml.safe_load((REPO / "copier.yml").read_text())


def asked_questions() -> dict[str, dict[str, Any]]:
    """The questions copier can ask: not a `_` setting, not a derived `when: false` value."""
    return {
        name: spec
        for name, spec in copier_spec().items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    }


def settings_defaults(project: Path, package: str = "churn_model") -> dict[str, Any]:
    """The literal defaults of the generated `config.Settings` dataclass (`name: type = _setting(default,
    help)`), read without importing it."""
    module = ast.parse((project / "src" / package / "config.py").read_text())
    (settings,) = [n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    defaults = {}
    for node in settings.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "_setting":
                value = value.args[0]
            try:
                defaults[node.target.id] = ast.literal_eval(value)
            except ValueError:  # e.g. field(default_factory=...): not a literal, not checked here
                continue
    assert defaults, "no literal defaults found in config.Settings"
    return defaults


# --------------------------------------------------------------------------------------------------------
# Every combination: the tree
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("combo", COMBINATIONS)
def test_the_tree_has_what_it_must(render: Render, combo: dict[str, Any]) -> None:
    project = render(combo)
    expected = [
        *TOP_FILES,
        *(f"src/churn_model/{module}.py" for module in MODULES),
        *(f"notebooks/{notebook}.py" for notebook in NOTEBOOKS),
        "databricks/cluster.json",
        "tests/conftest.py",
        "tests/test_loop.py",
    ]
    if combo["registry"] == "unity-catalog":  # serving is on by default there
        expected += SERVING_FILES
    missing = [name for name in expected if not (project / name).is_file()]
    assert not missing, f"missing from the generated project: {missing}"
    assert sorted(p.stem for p in (project / "databricks/jobs").glob("*.json")) == sorted(JOBS)
    assert len(list((project / "tests").glob("test_*.py"))) >= 5
    assert list((project / CI_DIRS[combo["ci"]]).glob("*.yml")), f"no CI files in {CI_DIRS[combo['ci']]}"


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_the_tree_has_nothing_it_must_not(render: Render, combo: dict[str, Any]) -> None:
    project = render(combo)
    other = "pipelines" if combo["ci"] == "github" else ".github"
    assert not (project / other).exists(), f"{other}/ must not be generated for ci={combo['ci']}"
    for unwanted in [".venv", "lakehouse", "uv.lock", *(f"src/churn_model/{m}.py" for m in RETIRED_MODULES)]:
        assert not (project / unwanted).exists(), f"{unwanted} must not be generated"
    for path in files_of(project):
        name = str(path.relative_to(project))
        assert not name.endswith(".jinja"), f"{name} kept its .jinja suffix"
        assert "{{" not in name and "{%" not in name, f"{name}: a file name with Jinja left in it"
    for path in files_of(project):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not JINJA_LEFTOVER.search(line), (
                f"{path.relative_to(project)}:{number} keeps Jinja: {line.strip()}"
            )


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_every_python_file_compiles(render: Render, combo: dict[str, Any]) -> None:
    project = render(combo)
    sources = [p for p in files_of(project) if p.suffix == ".py"]
    assert len(sources) >= len(MODULES) + len(NOTEBOOKS)
    for path in sources:
        compile(path.read_text(), str(path), "exec", dont_inherit=True)


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_notebooks_are_databricks_notebook_source(render: Render, combo: dict[str, Any]) -> None:
    project = render(combo)
    found = sorted(p.stem for p in (project / "notebooks").glob("*.py"))
    expected = NOTEBOOKS + (["06_deploy"] if combo["registry"] == "unity-catalog" else [])
    assert found == expected
    for name in expected:
        text = (project / "notebooks" / f"{name}.py").read_text()
        assert text.splitlines()[0] == NOTEBOOK_HEADER, f"{name}.py does not start with {NOTEBOOK_HEADER!r}"
        cells = CELL_SEPARATOR.split(text)
        assert len(cells) >= 2, f"{name}.py has no '# COMMAND ----------' cell separator"
        for number, cell in enumerate(cells, 1):
            assert cell.strip(), f"{name}.py: cell {number} is empty"
            # Databricks runs each cell on its own, so each must be complete Python by itself.
            ast.parse(cell, f"{name}.py cell {number}")
        ast.parse(text, f"{name}.py")


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_pyproject_describes_the_targets(render: Render, combo: dict[str, Any]) -> None:
    project = render(combo)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "churn-model"
    assert pyproject["project"]["scripts"] == {"churn-model": "churn_model.cli:app"}
    # The oldest supported runtime's Python: the package code runs on every supported runtime's.
    assert pyproject["project"]["requires-python"] == f">={OLDEST_PYTHON}"
    table = pyproject["tool"]["lakeforge"]
    assert table["project"] == "churn-model"
    assert table["package"] == "churn_model"
    assert table["registry"] == combo["registry"]
    assert list(table["targets"]) == TARGETS
    uc = combo["registry"] == "unity-catalog"
    for name, target in table["targets"].items():
        assert target["host"] == ""
        assert target["schema"] == f"churn_model_{name}"
        if uc:
            assert target["catalog"] == "main"
            assert target["model"] == f"main.churn_model_{name}.churn_model"
            assert len(target["model"].split(".")) == 3
        else:
            assert target["catalog"] == "hive_metastore"
            assert target["model"] == f"churn_model_{name}"
            assert "." not in target["model"]
    defaults = settings_defaults(project)
    dev = table["targets"]["dev"]
    assert {k: defaults[k] for k in ["catalog", "schema", "experiment", "model"]} == {
        k: dev[k] for k in ["catalog", "schema", "experiment", "model"]
    }, "Settings defaults are the dev target's names"


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_cluster_node_type_follows_the_cloud(render: Render, combo: dict[str, Any]) -> None:
    cluster = json.loads((render(combo) / "databricks/cluster.json").read_text())
    assert cluster["node_type_id"] == node_type(combo["cloud"], combo["databricks_runtime"])
    assert cluster["spark_version"] == combo["databricks_runtime"]


def test_the_default_runtime_is_the_data_files_default(render: Render) -> None:
    cluster = json.loads((render({}) / "databricks/cluster.json").read_text())
    assert cluster["spark_version"] == default_spark_version()
    assert answers_of(render({}))["python_version"] == runtime_of(default_spark_version())["python"]


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_feature_store_reaches_settings_and_tool_lakeforge(render: Render, combo: dict[str, Any]) -> None:
    project = render(combo)
    assert settings_defaults(project)["feature_store"] is combo["feature_store"]
    assert lakeforge_table(project)["feature_store"] is combo["feature_store"]
    assert answers_of(project)["feature_store"] is combo["feature_store"]


# --------------------------------------------------------------------------------------------------------
# The workflows, for every compute choice (docs/workflows.md)
# --------------------------------------------------------------------------------------------------------
NOTEBOOK_COMPUTE = {  # what a notebook task carries for each choice, and nothing of the others
    "job-cluster": {"job_cluster_key", "libraries"},
    "serverless": {"environment_key"},
    "all-purpose": {"existing_cluster_id"},
}
COMPUTE_KEYS = set().union(*NOTEBOOK_COMPUTE.values())
# The Python of each serverless environment version ("Serverless environment versions",
# https://docs.databricks.com/aws/en/release-notes/serverless/environment-version).
SERVERLESS_PYTHON = {"2": "3.11", "3": "3.12", "4": "3.12", "5": "3.12"}


def workflows(project: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((project / "databricks/jobs").glob("*.json"))}


def tasks_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["task_key"]: task for task in job["tasks"]}


def after(task: dict[str, Any]) -> list[dict[str, str]]:
    return task.get("depends_on", [])


@pytest.mark.parametrize("compute", COMPUTES)
def test_training_chains_features_train_promote_and_hands_over_the_feature_version(
    render: Render, compute: str
) -> None:
    training = workflows(render({"compute": compute}))["training"]
    assert training["name"] == "[${target}] churn-model training"
    tasks = tasks_of(training)
    assert list(tasks) == ["features", "train", "promote", "deploy"]
    assert after(tasks["features"]) == []
    assert after(tasks["train"]) == [{"task_key": "features"}]
    assert after(tasks["promote"]) == [{"task_key": "train"}]
    assert after(tasks["deploy"]) == [{"task_key": "promote"}]
    notebooks = {key: task["notebook_task"]["notebook_path"] for key, task in tasks.items()}
    assert notebooks == {
        "features": "${workspace_root}/notebooks/01_feature_pipeline",
        "train": "${workspace_root}/notebooks/02_training",
        "promote": "${workspace_root}/notebooks/03_promotion",
        "deploy": "${workspace_root}/notebooks/06_deploy",
    }
    # The deploy task reads the endpoint's template that bootstrap uploads (lakeforge.serving).
    assert tasks["deploy"]["notebook_task"]["base_parameters"] == {
        "endpoint_template": "${workspace_root}/serving/champion.json"
    }
    # The features task sets the task value; train reads it as a notebook parameter.
    assert tasks["train"]["notebook_task"]["base_parameters"] == {
        "feature_table_version": "{{tasks.features.values.feature_table_version}}"
    }


def test_without_serving_training_ends_at_promotion_and_nothing_serves(render: Render) -> None:
    project = render({"serving": False})
    assert list(tasks_of(workflows(project)["training"])) == ["features", "train", "promote"]
    assert not [name for name in SERVING_FILES if (project / name).exists()]
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in dependencies if d.startswith("databricks-sdk")]


@pytest.mark.parametrize("compute", COMPUTES)
def test_streaming_adds_a_third_job_on_the_same_compute(render: Render, compute: str) -> None:
    project = render({"streaming": True, "compute": compute})
    jobs = workflows(project)
    assert sorted(jobs) == sorted([*JOBS, "streaming_scoring"])
    job = jobs["streaming_scoring"]
    assert job["name"] == "[${target}] churn-model streaming scoring"
    assert job["queue"] == {"enabled": True} and job["max_concurrent_runs"] == 1
    assert job["email_notifications"] == {"on_failure": ["${owner}"]}
    assert job["schedule"]["pause_status"] == "${pause_status}"
    (task,) = job["tasks"]
    assert task["notebook_task"]["notebook_path"] == "${workspace_root}/notebooks/07_streaming_scoring"
    assert COMPUTE_KEYS & set(task) == NOTEBOOK_COMPUTE[compute]
    for name in (
        "notebooks/07_streaming_scoring.py",
        "src/churn_model/streaming.py",
        "tests/test_streaming.py",
    ):
        assert (project / name).is_file(), name
    assert "streaming_scoring" in {j.key for j in load_config(project, "dev").jobs}
    assert not list(render({}).rglob("*stream*")), "streaming is an option, off by default"


@pytest.mark.parametrize("compute", COMPUTES)
def test_scoring_chains_score_monitor_and_a_retrain_only_when_monitor_asks(
    render: Render, compute: str
) -> None:
    scoring = workflows(render({"compute": compute}))["scoring"]
    assert scoring["name"] == "[${target}] churn-model scoring"
    tasks = tasks_of(scoring)
    assert list(tasks) == ["score", "monitor", "retrain_needed", "retrain"]
    assert (
        tasks["score"]["notebook_task"]["notebook_path"] == "${workspace_root}/notebooks/04_batch_inference"
    )
    assert tasks["monitor"]["notebook_task"]["notebook_path"] == "${workspace_root}/notebooks/05_monitoring"
    assert after(tasks["score"]) == []
    assert after(tasks["monitor"]) == [{"task_key": "score"}]
    assert after(tasks["retrain_needed"]) == [{"task_key": "monitor"}]
    assert tasks["retrain_needed"]["condition_task"] == {
        "op": "EQUAL_TO",
        "left": "{{tasks.monitor.values.retrain}}",
        "right": "true",
    }
    assert after(tasks["retrain"]) == [{"task_key": "retrain_needed", "outcome": "true"}]
    assert tasks["retrain"]["run_job_task"] == {"job_id": "${jobs.training.id}"}
    assert tasks["retrain"]["email_notifications"] == {"on_start": ["${owner}"]}
    # A retrain runs the whole training workflow, within the scoring run: the timeouts leave room for it.
    training = workflows(render({"compute": compute}))["training"]
    assert tasks["retrain"]["timeout_seconds"] >= training["timeout_seconds"]
    assert scoring["timeout_seconds"] >= sum(task.get("timeout_seconds", 0) for task in tasks.values())


@pytest.mark.parametrize("compute", COMPUTES)
def test_every_workflow_queues_runs_one_at_a_time_tells_the_owner_and_follows_pause_status(
    render: Render, compute: str
) -> None:
    jobs = workflows(render({"compute": compute}))
    assert sorted(jobs) == sorted(JOBS)
    crons = {"training": "0 0 3 ? * MON", "scoring": "0 0 6 * * ?"}  # Monday 03:00 and daily 06:00 UTC
    for name, job in jobs.items():
        assert job["queue"] == {"enabled": True}, name
        assert job["max_concurrent_runs"] == 1, name
        assert job["email_notifications"] == {"on_failure": ["${owner}"]}, name
        assert job["schedule"] == {
            "quartz_cron_expression": crons[name],
            "timezone_id": "UTC",
            "pause_status": "${pause_status}",
        }, name
        assert [p["name"] for p in job["parameters"]] == ["catalog", "schema", "experiment", "model"]
        assert job["timeout_seconds"] >= max(task.get("timeout_seconds", 0) for task in job["tasks"])


@pytest.mark.parametrize("compute", COMPUTES)
def test_each_compute_choice_gives_every_notebook_task_exactly_its_own_compute(
    render: Render, compute: str
) -> None:
    for name, job in workflows(render({"compute": compute})).items():
        assert ("job_clusters" in job) == (compute == "job-cluster"), name
        assert ("environments" in job) == (compute == "serverless"), name
        for task in job["tasks"]:
            where = f"{name}.{task['task_key']}"
            carried = COMPUTE_KEYS & set(task)
            if "notebook_task" not in task:  # condition and run-job tasks run on no compute of theirs
                assert carried == set(), where
                continue
            assert carried == NOTEBOOK_COMPUTE[compute], where
            if compute == "job-cluster":
                (cluster,) = job["job_clusters"]
                assert cluster == {"job_cluster_key": "main", "new_cluster": "${job_cluster}"}
                assert task["job_cluster_key"] == "main", where
                assert task["libraries"] == "${libraries}", where
            elif compute == "serverless":
                (environment,) = job["environments"]
                assert task["environment_key"] == environment["environment_key"] == "default", where
                assert environment["spec"]["dependencies"] == "${dependencies}"
            else:
                assert task["existing_cluster_id"] == "${cluster_id}", where


@pytest.mark.parametrize("line", RUNTIME_LINES, ids=[line["name"] for line in RUNTIME_LINES])
def test_serverless_runs_the_environment_version_of_the_runtime_s_python(render: Render, line: dict) -> None:
    assert SERVERLESS_PYTHON[line["serverless_environment"]] == line["python"], line["name"]
    project = render({"compute": "serverless", "databricks_runtime": line["cpu"]})
    for name, job in workflows(project).items():
        (environment,) = job["environments"]
        assert environment["spec"]["environment_version"] == line["serverless_environment"], name


def test_serverless_is_refused_without_unity_catalog(
    render_into: Callable[[Path, dict[str, Any]], Path], empty_dir: Path
) -> None:
    with pytest.raises(ValueError) as raised:
        render_into(empty_dir, {"registry": "workspace", "compute": "serverless"})
    message = str(raised.value)
    assert (
        "compute 'serverless' is not allowed: serverless compute needs a Unity Catalog workspace" in message
    )
    assert list(empty_dir.iterdir()) == []


@pytest.mark.parametrize("option", ["serving", "streaming", "data_profiling"])
def test_unity_catalog_options_are_refused_with_the_workspace_registry(
    render_into: Callable[[Path, dict[str, Any]], Path], empty_dir: Path, option: str
) -> None:
    with pytest.raises(ValueError) as raised:
        render_into(empty_dir, {"registry": "workspace", option: True})
    assert f"{option} is not allowed with registry 'workspace'" in str(raised.value)
    assert list(empty_dir.iterdir()) == []


@pytest.mark.parametrize("registry", REGISTRIES)
def test_tool_lakeforge_names_the_owner_runs_both_workflows_and_pauses_dev(
    render: Render, registry: str
) -> None:
    table = lakeforge_table(render({"registry": registry, "author_email": "ml-team@example.com"}))
    assert table["owner"] == "ml-team@example.com"
    assert table["run_all"] == ["training", "scoring"]
    assert {name: target.get("paused", False) for name, target in table["targets"].items()} == {
        "dev": True,
        "staging": False,
        "prod": False,
    }


# --------------------------------------------------------------------------------------------------------
# Good answers at the edges
# --------------------------------------------------------------------------------------------------------
HOSTS = {
    "host_dev": "https://adb-1234567890123456.7.azuredatabricks.net/",
    "host_staging": "https://dbc-a1b2c3d4-e5f6.cloud.databricks.com/",
    "host_prod": "https://1234567890123456.7.gcp.databricks.com",
}


def test_hosts_are_accepted_with_a_trailing_slash_and_stored_without(render: Render) -> None:
    table = lakeforge_table(render(HOSTS))
    for target in TARGETS:
        assert table["targets"][target]["host"] == HOSTS[f"host_{target}"].rstrip("/")


@pytest.mark.parametrize(
    ("data", "slug", "package"),
    [
        pytest.param({"project_name": "Churn_Model"}, "churn-model", "churn_model", id="underscore"),
        pytest.param(
            {"project_name": "Churn-Model 2"}, "churn-model-2", "churn_model_2", id="dash-and-digit"
        ),
        pytest.param({"project_name": "A" + "b" * 59}, "a" + "b" * 59, "a" + "b" * 59, id="60-characters"),
        pytest.param(
            {"project_slug": "fraud", "package_name": "fraud_ml"}, "fraud", "fraud_ml", id="own-names"
        ),
    ],
)
def test_good_names_are_accepted(render: Render, data: dict[str, str], slug: str, package: str) -> None:
    project = render(data)
    answers = answers_of(project)
    assert (answers["project_slug"], answers["package_name"]) == (slug, package)
    assert (project / "src" / package / "cli.py").is_file()
    scripts = tomllib.loads((project / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {slug: f"{package}.cli:app"}
    for path in files_of(project):
        if path.suffix == ".py":
            compile(path.read_text(), str(path), "exec", dont_inherit=True)


def test_the_chosen_catalog_and_schema_name_every_target(render: Render) -> None:
    project = render({"catalog": "analytics", "schema": "_churn"})
    for name, target in lakeforge_table(project)["targets"].items():
        assert target["catalog"] == "analytics"
        assert target["schema"] == f"_churn_{name}"
        assert target["model"] == f"analytics._churn_{name}.churn_model"
    assert settings_defaults(project)["catalog"] == "analytics"


# --------------------------------------------------------------------------------------------------------
# Bad answers
# --------------------------------------------------------------------------------------------------------
BAD_ANSWERS = [
    ("project_name", "9 lives"),
    ("project_name", ""),
    ("project_name", "a" * 61),
    ("project_name", "Churn/Model"),
    ("project_name", "Churn "),
    ("project_name", "Churn  Model"),
    ("project_slug", "Churn"),
    ("project_slug", "churn--model"),
    ("project_slug", "-churn"),
    ("project_slug", "churn_model"),
    ("project_slug", "churn-"),
    ("package_name", "1pkg"),
    ("package_name", "my-pkg"),
    ("package_name", "mlflow"),
    ("package_name", "pyspark"),
    ("package_name", "class"),
    ("description", "two\nlines"),
    ("description", 'says "hi"'),
    ("description", "C:\\New\\path"),
    ("description", "x" * 201),
    ("author_name", ""),
    ("author_name", 'The "A" Team'),
    ("author_email", "nobody"),
    ("author_email", "a@b"),
    ("author_email", "a b@example.com"),
    # The default runtime (18 LTS ML) runs Python 3.12; tests/test_runtimes.py refuses a mismatch per runtime.
    ("python_version", "3.11"),
    ("python_version", "3.10"),
    ("catalog", "Main"),
    ("catalog", "1cat"),
    ("catalog", "main.schema"),
    ("catalog", ""),
    ("schema", "my-schema"),
    ("schema", "Churn"),
    ("schema", ""),
    ("host_dev", "http://adb-1.2.azuredatabricks.net"),
    ("host_dev", "https://user:pw@host.net"),
    ("host_dev", "https://adb-1.azuredatabricks.net/path?o=1"),
    ("host_dev", "adb-1.azuredatabricks.net"),
    ("host_staging", "https://localhost"),
    ("host_staging", "https://adb-1.azuredatabricks.net:443"),
    ("host_prod", "https://adb-1.azuredatabricks.net/?o=1"),
    ("host_prod", "https://ADB-1.azuredatabricks.net"),
]
BAD_CHOICES = [
    ("databricks_runtime", "15.4"),
    ("databricks_runtime", "latest"),
    ("databricks_runtime", "15.4.x-cpu-ml-scala2.11"),
    ("databricks_runtime", "14.3.x-cpu-ml-scala2.12"),  # an LTS ML runtime, but not a supported one
    ("databricks_runtime", "15.4.x-scala2.12"),  # not an ML runtime
    ("cloud", "azurex"),
    ("registry", "uc"),
    ("ci", "gitlab"),
    ("compute", "serverless-gpu"),
]


def _case_id(key: str, value: str) -> str:
    shown = value if len(value) <= 20 else f"{value[:8]}...{len(value)}-chars"
    return f"{key}={shown!r}"


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "dest"
    dest.mkdir()
    return dest


@pytest.mark.parametrize(("key", "value"), [pytest.param(k, v, id=_case_id(k, v)) for k, v in BAD_ANSWERS])
def test_a_bad_answer_is_rejected_with_its_value_and_nothing_written(
    render_into: Callable[[Path, dict[str, Any]], Path], empty_dir: Path, key: str, value: str
) -> None:
    with pytest.raises(ValueError) as raised:
        render_into(empty_dir, {key: value})
    message = str(raised.value)
    assert f"question '{key}'" in message
    assert f"{key} '{value}' is not allowed: " in message, message
    allowed = message.split("is not allowed: ", 1)[1]
    assert len(allowed.split()) >= 3, f"the message does not say what is allowed: {message}"
    assert list(empty_dir.iterdir()) == []


@pytest.mark.parametrize(("key", "value"), [pytest.param(k, v, id=_case_id(k, v)) for k, v in BAD_CHOICES])
def test_an_answer_outside_the_choices_is_rejected_with_the_choices(
    render_into: Callable[[Path, dict[str, Any]], Path], empty_dir: Path, key: str, value: str
) -> None:
    with pytest.raises(ValueError) as raised:
        render_into(empty_dir, {key: value})
    message = str(raised.value)
    allowed = question_choices(key, asked_questions()[key])
    assert f"'{key}'" in message and f"'{value}'" in message, message
    assert all(f"'{choice}'" in message for choice in allowed), message
    assert list(empty_dir.iterdir()) == []


def test_there_are_at_least_15_bad_answers() -> None:
    assert len(BAD_ANSWERS) >= 15
    asked = asked_questions()
    validated = {name for name, spec in asked.items() if "validator" in spec}
    # These validators refuse a pair of answers (an option with the workspace registry): the tests
    # test_serverless_is_refused_without_unity_catalog and test_unity_catalog_options_are_refused_with_...
    pairs = {"compute", "serving", "streaming", "data_profiling"}
    assert validated <= {key for key, _ in BAD_ANSWERS} | pairs, "every validator has a bad answer"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("project_name", "9 lives", "project_name '9 lives' is not allowed: "),
        ("package_name", "class", "package_name 'class' is not allowed: "),
        ("catalog", "main.schema", "catalog 'main.schema' is not allowed: "),
        ("host_dev", "http://adb-1.2.azuredatabricks.net", "host_dev 'http://adb-1.2.azuredatabricks.net'"),
        ("description", "two\nlines", "description 'two"),
        ("cloud", "azurex", "'azurex' is not in"),
        (
            "python_version",
            "3.11",
            "python_version '3.11' is not allowed: 18 LTS ML (18.x-cpu-ml-scala2.13) runs",
        ),
        ("databricks_runtime", "14.3.x-cpu-ml-scala2.12", "'14.3.x-cpu-ml-scala2.12' is not in"),
    ],
    ids=[
        "project_name",
        "package_name",
        "catalog",
        "host_dev",
        "description-newline",
        "cloud-choice",
        "python-mismatch",
        "runtime-choice",
    ],
)
def test_lakeforge_new_refuses_a_bad_answer_in_one_line(
    tmp_path: Path, key: str, value: str, expected: str
) -> None:
    dest = tmp_path / "project"
    result = run_lakeforge("new", dest, "--defaults", "--data", f"{key}={value}")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not dest.exists() or not any(dest.iterdir())


# --------------------------------------------------------------------------------------------------------
# No secret anywhere
# --------------------------------------------------------------------------------------------------------
SECRET_PATTERNS = [
    re.compile(r"dapi[0-9a-f]{32}"),
    # A password given a value; an environment variable's name ("SOURCE_DB_PASSWORD") or a CI reference
    # ($(...), ${...}, ${{ secrets.X }}) is where a secret comes from, not a secret.
    re.compile(
        r"password\s*[:=]\s*(?!(?-i:[\"']?[A-Z][A-Z0-9_]*([\"'\s,.;)]|$)))(?![\"']?\$)\S", re.I | re.M
    ),
    re.compile(r"BEGIN [A-Z ]*PRIVATE KEY"),
    re.compile(r"DATABRICKS_TOKEN\s*[:=]", re.I),
    re.compile(r"client_secret\s*[:=]\s*['\"][^'\"$]", re.I),
]
FAKE_SECRETS = {
    "DATABRICKS_TOKEN": "dapi0123456789abcdef0123456789abcdef",
    "DATABRICKS_CLIENT_SECRET": "fake-client-secret-4f9a1c",
    "DATABRICKS_PASSWORD": "fake-password-8d2e7b",
    "ARM_CLIENT_SECRET": "fake-arm-secret-5c3b9e",
    "GITHUB_TOKEN": "ghp_fakeTokenThatMustNeverAppear0000",
}


def secrets_in(project: Path) -> list[str]:
    found = []
    for path in files_of(project):
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            found += [f"{path.relative_to(project)}: {m[0]!r}" for m in pattern.finditer(text)]
        found += [f"{path.relative_to(project)}: {name}" for name, v in FAKE_SECRETS.items() if v in text]
    return found


def test_the_secret_patterns_find_secrets(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / "a.yml").write_text(
        "token: dapi0123456789abcdef0123456789abcdef\npassword: hunter2\n"
        "DATABRICKS_TOKEN=x\nclient_secret = 'abc'\n-----BEGIN PRIVATE KEY-----\n"
    )
    (leaky / "b.toml").write_text('source-db-password = "SOURCE_DB_PASSWORD"\nsecret: $(SECRET)\n')
    assert len(secrets_in(leaky)) == 6  # dapi twice (pattern and fake value), nothing from b.toml


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_no_generated_file_holds_a_secret(render: Render, combo: dict[str, Any]) -> None:
    assert secrets_in(render(combo)) == []


@pytest.mark.parametrize("ci", CIS)
def test_secrets_in_the_environment_never_reach_a_file(
    render_into: Callable[[Path, dict[str, Any]], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ci: str,
) -> None:
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-999.9.azuredatabricks.net")
    project = render_into(tmp_path / "project", {**HOSTS, "ci": ci})
    assert secrets_in(project) == []
    assert "adb-999" not in "".join(p.read_text() for p in files_of(project)), "the environment leaked in"


@pytest.mark.parametrize("combo", COMBINATIONS)
def test_the_answers_file_holds_exactly_the_asked_answers(render: Render, combo: dict[str, Any]) -> None:
    answers = answers_of(render(combo))
    asked = set(asked_questions())
    if combo["registry"] != "unity-catalog":  # asked only for Unity Catalog
        asked -= {"catalog", "serving", "streaming", "data_profiling"}
    assert {k for k in answers if not k.startswith("_")} == asked
    assert {k for k in answers if k.startswith("_")} == {"_commit", "_src_path"}
    assert "node_type" not in answers and "uc" not in answers and "runtime" not in answers


def test_the_answers_file_keeps_the_hosts_as_given(render: Render) -> None:
    answers = answers_of(render(HOSTS))
    assert {k: answers[k] for k in HOSTS} == HOSTS
    assert secrets_in(render(HOSTS)) == []


def test_no_question_asks_for_a_secret() -> None:
    suspicious = re.compile(r"token|passw|secret|key|credential|pat$", re.I)
    names = [name for name in copier_spec() if not name.startswith("_")]
    assert [name for name in names if suspicious.search(name)] == []


# --------------------------------------------------------------------------------------------------------
# copier.yml itself
# --------------------------------------------------------------------------------------------------------
def test_every_question_has_help_a_default_and_a_validator_for_free_text() -> None:
    questions = asked_questions()
    assert next(iter(questions)) == "project_name", "the first question is project_name"
    for name, spec in questions.items():
        assert spec.get("help"), f"{name} has no help"
        assert "default" in spec, f"{name} has no default (--defaults would stop at it)"
        if spec.get("type", "str") == "str" and not spec.get("choices"):
            assert spec.get("validator"), f"{name} is free text without a validator"


def test_derived_values_are_never_asked() -> None:
    spec = copier_spec()
    for name in ["node_type", "uc", "runtime"]:
        assert spec[name]["when"] is False


# --------------------------------------------------------------------------------------------------------
# Slow: two generated projects installed and run for real
# --------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
def test_the_generated_project_passes_its_own_tests(installed: Callable, run: str) -> None:
    project, env = installed(run)
    result = uv_run(project, env, "pytest", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, tail(result)
    assert re.search(r"\d+ passed", result.stdout), tail(result)
    assert "skipped" not in result.stdout, tail(result)
    venv = (project / ".venv" / "pyvenv.cfg").read_text()  # uv used the project's own .venv, on its Python
    python = subprocess.run(
        [env["UV_PYTHON"], "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert re.search(rf"^version_info = {re.escape(python)}\.", venv, re.MULTILINE), venv


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
def test_the_generated_project_is_ruff_clean(installed: Callable, run: str) -> None:
    project, env = installed(run)
    check = uv_run(project, env, "ruff", "check", ".")
    assert check.returncode == 0, tail(check)
    formatted = uv_run(project, env, "ruff", "format", "--check", ".")
    assert formatted.returncode == 0, tail(formatted)


@pytest.mark.slow
def test_run_all_runs_the_five_steps_and_says_where_to_look(installed: Callable) -> None:
    project, env = installed("default")
    result = uv_run(project, env, "churn-model", "-p", "customers=5000", "run-all")
    assert result.returncode == 0, tail(result)
    output = result.stdout + result.stderr
    for step in STEPS:
        assert re.search(rf"\b{step}\b", output), f"step {step} missing from the output:\n{tail(result)}"
    assert "PROMOTED to @champion" in output
    assert "MLflow UI" in result.stdout
    assert (project / "lakehouse").is_dir(), "the local tables and MLflow store live in the project"
