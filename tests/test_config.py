"""`load_config`: [tool.lakeforge] and the files it points to, validated before any API call."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from lakeforge.config import load_config, order_by_references
from lakeforge.errors import ConfigError
from lakeforge.payloads import fill


@pytest.fixture
def project(render, tmp_path: Path) -> Path:
    """A fresh copy of the default project, free to edit."""
    return Path(shutil.copytree(render({}), tmp_path / "churn-model"))


def edit_toml(project: Path, old: str, new: str, count: int = 1) -> None:
    path = project / "pyproject.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def rejects(project: Path, *needles: str, target: str | None = "dev") -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(project, target)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_the_generated_project_loads(project: Path) -> None:
    config = load_config(project, "dev")
    assert (config.project, config.package, config.registry, config.version) == (
        "churn-model",
        "churn_model",
        "unity-catalog",
        1,
    )
    assert config.target_names == ("dev", "staging", "prod")
    target = config.target
    assert target.name == "dev" and target.host is None and target.profile is None
    assert target.workspace_root == "/Workspace/Shared/churn-model/dev"
    assert target.model == "main.churn_model_dev.churn_model"
    assert config.cluster["spark_version"] and config.cluster["cluster_name"] == "churn-model-${target}"
    assert [job.key for job in config.jobs] == ["scoring", "training"]
    assert config.run_all == ("training", "scoring")
    assert target.owner == "data-science@example.com" and target.paused
    assert not load_config(project, "prod").target.paused
    assert config.secrets.scope == "churn-model-dev" and dict(config.secrets.keys) == {}
    assert config.secrets.shared_with == ()
    assert config.values()["secret_scope"] == "churn-model-dev"
    assert config.pypi_packages == ()


def test_the_first_target_is_the_default_and_others_are_chosen_by_name(project: Path) -> None:
    assert load_config(project).target.name == "dev"
    assert load_config(project, "prod").target.schema == "churn_model_prod"
    rejects(project, "no target 'qa'", "dev, staging, prod", target="qa")


def test_the_config_is_frozen(project: Path) -> None:
    config = load_config(project, "dev")
    with pytest.raises(AttributeError):
        config.project = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.secrets.keys["x"] = "Y"  # type: ignore[index]


def test_the_workspace_registry_project_loads(render, tmp_path: Path) -> None:
    project = Path(shutil.copytree(render({"registry": "workspace"}), tmp_path / "p"))
    config = load_config(project, "staging")
    assert config.registry == "workspace"
    assert (config.target.catalog, config.target.model) == ("hive_metastore", "churn_model_staging")


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        (
            "feature_store = false",
            "feature_store = false\nfeature_stor = true",
            ("pyproject.toml", "unknown key tool.lakeforge.feature_stor"),
        ),
        (
            'schema = "churn_model_dev"',
            'schema = "churn_model_dev"\nwarehouse = "x"',
            ("unknown key tool.lakeforge.targets.dev.warehouse",),
        ),
        (
            "keys = {}",
            'keys = {}\nbackend = "azure"',
            ("unknown key tool.lakeforge.secrets.backend",),
        ),
        ("keys = {}", 'keys = {}\nscope = "a b"', ("tool.lakeforge.secrets.scope 'a b' is not allowed",)),
        (
            "keys = {}",
            'keys = {}\nscope = "${project}-${schema}"',
            ("tool.lakeforge.secrets.scope uses unknown placeholder ${schema}",),
        ),
        (
            'schema = "churn_model_dev"',
            'schema = "churn_model_dev"\nsecret_scope = 3',
            ("tool.lakeforge.targets.dev.secret_scope must be a string",),
        ),
        ("version = 1", 'version = "1"', ("tool.lakeforge.version must be an integer", 'string "1"')),
        (
            "feature_store = false",
            'feature_store = "no"',
            ("tool.lakeforge.feature_store must be true or false",),
        ),
        (
            "pypi_packages = []",
            'pypi_packages = "lightgbm"',
            ("tool.lakeforge.pypi_packages must be an array",),
        ),
        ("pypi_packages = []", "pypi_packages = [3]", ("tool.lakeforge.pypi_packages[0]",)),
        (
            'run_all = ["training",',
            'run_all = ["trainin",',
            ('tool.lakeforge.run_all[0] is string "trainin"', "scoring, training"),
        ),
        (
            'run_all = ["training", "scoring"]',
            'run_all = ["training", "training"]',
            ("tool.lakeforge.run_all names 'training' twice",),
        ),
        ("keys = {}", "keys = { password = 3 }", ("tool.lakeforge.secrets.keys.password",)),
        ("keys = {}", 'keys = { password = "NOT-AN-ENV" }', ("tool.lakeforge.secrets.keys.password",)),
        ("version = 1", "version = 2", ("tool.lakeforge.version is 2", "reads version 1")),
        (
            'registry = "unity-catalog"',
            'registry = "mlflow"',
            ("tool.lakeforge.registry", "unity-catalog, workspace"),
        ),
        (
            'model = "main.churn_model_dev.churn_model"',
            'model = "churn_model"',
            ("tool.lakeforge.targets.dev.model", "catalog.schema.name"),
        ),
        (
            'workspace_root = "/Workspace/Shared/churn-model/dev"',
            'workspace_root = "Shared/x"',
            ("tool.lakeforge.targets.dev.workspace_root",),
        ),
        ('host = ""', 'host = "adb-1.azuredatabricks.net"', ("tool.lakeforge.targets.dev.host", "https://")),
        (
            'cluster = "databricks/cluster.json"',
            'cluster = "databricks/missing.json"',
            ("tool.lakeforge.cluster", "databricks/missing.json", "not a file"),
        ),
        (
            'jobs = "databricks/jobs"',
            'jobs = "databricks/workflows"',
            ("tool.lakeforge.jobs", "not a folder"),
        ),
        ('package = "churn_model"', 'package = "churn_modl"', ("tool.lakeforge.package", "is not a folder")),
    ],
)
def test_bad_pyproject_values_name_the_file_and_the_key(project: Path, old: str, new: str, needles) -> None:
    edit_toml(project, old, new)
    rejects(project, *needles)


def test_a_missing_required_key_is_named(project: Path) -> None:
    edit_toml(project, 'experiment = "/Shared/churn-model/dev/experiment"\n', "")
    rejects(project, "tool.lakeforge.targets.dev.experiment is missing")


def test_a_project_without_a_lakeforge_table_is_refused(project: Path) -> None:
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text.split("[tool.lakeforge]")[0])
    rejects(project, "no [tool.lakeforge] table")
    rejects(project / "src", "pyproject.toml not found")


def test_invalid_json_is_reported_with_file_and_position(project: Path) -> None:
    path = project / "databricks" / "cluster.json"
    path.write_text(
        path.read_text().replace('"autotermination_minutes": 30,', '"autotermination_minutes": 30')
    )
    message = rejects(project, "databricks/cluster.json", "invalid JSON at line")
    assert re.search(r"line \d+ column \d+", message)
    job = project / "databricks" / "jobs" / "training.json"
    path.write_text(json.dumps({"cluster_name": "x", "spark_version": "15.4.x-scala2.12"}))
    job.write_text("{")
    rejects(project, "databricks/jobs/training.json", "invalid JSON")


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (lambda c: c.pop("spark_version"), ("databricks/cluster.json", "'spark_version' is missing")),
        (lambda c: c.pop("cluster_name"), ("databricks/cluster.json", "'cluster_name' is missing")),
        (lambda c: c.update(num_workrs=2), ("databricks/cluster.json", "unknown key 'num_workrs'")),
        (lambda c: c["autoscale"].update(max_wrkers=4), ("unknown key 'autoscale.max_wrkers'",)),
        (lambda c: c.update(autotermination_minutes="30"), ("'autotermination_minutes' must be an integer",)),
        (lambda c: c.update(data_security_mode="SINGEL_USER"), ("'data_security_mode'", "SINGLE_USER")),
        (lambda c: c["spark_conf"].update({"spark.x": 1}), ("'spark_conf.spark.x' must be a string",)),
        (lambda c: c.update(cluster_id="0101-abc"), ("'cluster_id' belongs to a cluster's state",)),
        (lambda c: c.update(cluster_name="${cluster_id}"), ("unknown placeholder ${cluster_id}",)),
        (lambda c: c.update(cluster_name="x-${tarket}"), ("key 'cluster_name'", "${tarket}")),
    ],
)
def test_a_bad_cluster_json_is_refused_with_file_and_key(project: Path, change, needles) -> None:
    edit_json(project / "databricks" / "cluster.json", change)
    rejects(project, *needles)


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (lambda j: j.pop("name"), ("databricks/jobs/training.json", "'name' is missing")),
        (lambda j: j["tasks"][0].update(notebok_task={}), ("unknown key 'tasks[0].notebok_task'",)),
        (lambda j: j.update(max_concurrent_runs="1"), ("'max_concurrent_runs' must be an integer",)),
        (lambda j: j["schedule"].update(pause_status="STOPPED"), ("'schedule.pause_status'", "PAUSED")),
        (lambda j: j.update(tags=["a"]), ("'tags' must be an object",)),
        (lambda j: j.update(settings={}), ("'settings' belongs to a job's state",)),
        (
            lambda j: j.update(name="[${target}] churn-model scoring"),
            ("scoring.json", "must be unique"),
        ),
        (lambda j: j.update(description="${champion_version}"), ("unknown placeholder ${champion_version}",)),
    ],
)
def test_a_bad_job_json_is_refused_with_file_and_key(project: Path, change, needles) -> None:
    edit_json(project / "databricks" / "jobs" / "training.json", change)
    rejects(project, "databricks/jobs/training.json", *needles)


def test_a_cluster_json_copied_from_another_repo_works_unchanged(project: Path) -> None:
    copied = {
        "cluster_name": "team-shared-ml",
        "spark_version": "15.4.x-cpu-ml-scala2.12",
        "node_type_id": "i3.xlarge",
        "driver_node_type_id": "i3.2xlarge",
        "num_workers": 2,
        "autotermination_minutes": 60,
        "enable_elastic_disk": True,
        "data_security_mode": "SINGLE_USER",
        "runtime_engine": "STANDARD",
        "aws_attributes": {"availability": "SPOT_WITH_FALLBACK", "first_on_demand": 1, "zone_id": "auto"},
        "spark_conf": {"spark.databricks.delta.preview.enabled": "true"},
        "spark_env_vars": {"PYSPARK_PYTHON": "/databricks/python3/bin/python3", "EXTRA": "${env:HOME}"},
        "init_scripts": [{"workspace": {"destination": "/Shared/init/setup.sh"}}],
        "custom_tags": {"team": "ml"},
    }
    (project / "databricks" / "cluster.json").write_text(json.dumps(copied))
    config = load_config(project, "dev")
    assert config.cluster == copied


def test_jobs_may_carry_an_access_control_list(project: Path) -> None:
    acl = [{"group_name": "data-scientists", "permission_level": "CAN_MANAGE_RUN"}]
    edit_json(project / "databricks" / "jobs" / "training.json", lambda j: j.update(access_control_list=acl))
    assert load_config(project).jobs[-1].payload["access_control_list"] == acl
    edit_json(
        project / "databricks" / "jobs" / "training.json",
        lambda j: j.update(access_control_list=[{"group": "x"}]),
    )
    rejects(project, "unknown key 'access_control_list[0].group'")


def test_fill_replaces_lakeforge_placeholders_only() -> None:
    payload = {
        "name": "[${target}] ${project}",
        "tasks": [{"existing_cluster_id": "${cluster_id}", "path": "${workspace_root}/notebooks/a"}],
        "env": "${env:HOME} ${HOME} $PATH",
        "n": 3,
    }
    values = {"target": "dev", "project": "p", "workspace_root": "/W/p/dev"}
    assert fill(payload, values) == {
        "name": "[dev] p",
        "tasks": [{"existing_cluster_id": "${cluster_id}", "path": "/W/p/dev/notebooks/a"}],
        "env": "${env:HOME} ${HOME} $PATH",
        "n": 3,
    }
    assert fill(payload, {**values, "cluster_id": "c-1"})["tasks"][0]["existing_cluster_id"] == "c-1"


def test_a_string_that_is_one_placeholder_becomes_the_value_itself() -> None:
    spec = {"spark_version": "15.4.x-cpu-ml-scala2.12", "num_workers": 2}
    values = {"job_cluster": spec, "jobs.training.id": 42, "target": "dev"}
    filled = fill(
        {
            "job_clusters": [{"job_cluster_key": "main", "new_cluster": "${job_cluster}"}],
            "run_job_task": {"job_id": "${jobs.training.id}"},
            "name": "job ${jobs.training.id} in ${target}",
        },
        values,
    )
    assert filled["job_clusters"][0]["new_cluster"] == spec
    assert filled["run_job_task"]["job_id"] == 42
    assert filled["name"] == "job 42 in dev"
    filled["job_clusters"][0]["new_cluster"]["num_workers"] = 9
    assert spec["num_workers"] == 2, "each fill gets its own copy"


def test_a_job_naming_another_jobs_id_comes_after_it(project: Path) -> None:
    config = load_config(project, "dev")
    assert order_by_references(config.jobs) == ["training", "scoring"]


def test_job_id_placeholders_must_name_a_job_file_and_not_go_round(project: Path) -> None:
    training = project / "databricks" / "jobs" / "training.json"
    edit_json(training, lambda j: j.update(description="after ${jobs.trainig.id}"))
    rejects(project, "training.json", "${jobs.trainig.id} names no job file", "scoring, training")
    edit_json(training, lambda j: j.update(description="after ${jobs.scoring.id}"))
    rejects(project, "in a cycle: scoring -> training -> scoring")


def test_the_owner_is_an_address_and_a_target_may_name_its_own(project: Path) -> None:
    prod = 'schema = "churn_model_prod"'
    edit_toml(project, prod, f'{prod}\nowner = "ops@example.com"')
    assert load_config(project, "prod").target.owner == "ops@example.com"
    assert load_config(project, "staging").target.owner == "data-science@example.com"
    edit_toml(project, 'owner = "ops@example.com"', 'owner = "ops"')
    rejects(project, "tool.lakeforge.targets.prod.owner 'ops'", "an address", target="prod")


def test_jobs_that_notify_the_owner_need_one(project: Path) -> None:
    edit_toml(project, 'owner = "data-science@example.com"\n', "")
    rejects(project, "uses ${owner}", "tool.lakeforge.owner", "tool.lakeforge.targets.dev.owner")


def test_values_known_only_to_jobs_are_refused_in_the_cluster_file(project: Path) -> None:
    for placeholder in ("${wheel}", "${job_cluster}", "${jobs.training.id}"):
        edit_json(project / "databricks" / "cluster.json", lambda c, p=placeholder: c.update(cluster_name=p))
        rejects(project, "databricks/cluster.json", f"unknown placeholder {placeholder}")


def test_paused_schedules_are_a_target_setting(project: Path) -> None:
    assert load_config(project, "dev").values()["pause_status"] == "PAUSED"
    assert load_config(project, "prod").values()["pause_status"] == "UNPAUSED"
    edit_toml(project, "paused = true", 'paused = "yes"')
    rejects(project, "tool.lakeforge.targets.dev.paused must be true or false")


# --------------------------------------------------------------------------------------------------------
# secret scopes: one per target unless the config names one
# --------------------------------------------------------------------------------------------------------
def test_each_target_has_its_own_secret_scope_by_default(project: Path) -> None:
    scopes = {name: load_config(project, name).secrets.scope for name in ("dev", "staging", "prod")}
    assert scopes == {"dev": "churn-model-dev", "staging": "churn-model-staging", "prod": "churn-model-prod"}


def test_a_secret_scope_can_be_named_for_all_targets_or_for_one(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("keys = {}", 'keys = {}\nscope = "${project}_${target}_secrets"'))
    assert load_config(project, "prod").secrets.scope == "churn-model_prod_secrets"

    shared = text.replace("keys = {}", 'keys = {}\nscope = "team"')
    pyproject.write_text(shared)
    dev = load_config(project, "dev").secrets
    assert dev.scope == "team" and dev.shared_with == ("staging", "prod")  # hosts unset: maybe one workspace

    # different hosts: different workspaces, so not shared; an explicit per-target name wins
    hosts = shared.replace(
        '[tool.lakeforge.targets.prod]\nhost = ""',
        '[tool.lakeforge.targets.prod]\nhost = "https://prod.example.com"',
    ).replace(
        '[tool.lakeforge.targets.dev]\nhost = ""',
        '[tool.lakeforge.targets.dev]\nhost = "https://dev.example.com"\nsecret_scope = "dev-only"',
    )
    assert hosts != shared
    pyproject.write_text(hosts)
    assert load_config(project, "dev").secrets.scope == "dev-only"
    # staging's host is unset, so it may be in prod's workspace; dev has a scope of its own
    assert load_config(project, "staging").secrets.shared_with == ("prod",)
    pyproject.write_text(
        hosts.replace(
            '[tool.lakeforge.targets.staging]\nhost = ""',
            '[tool.lakeforge.targets.staging]\nhost = "https://staging.example.com"',
        )
    )
    assert load_config(project, "prod").secrets.shared_with == ()


def test_without_run_all_every_job_runs_in_file_name_order(project: Path) -> None:
    edit_toml(project, 'run_all = ["training", "scoring"]\n', "")
    assert load_config(project).run_all == tuple(job.key for job in load_config(project).jobs)
