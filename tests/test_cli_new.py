"""`lakeforge new`, run as a user runs it: the installed console script in a subprocess, on this checkout."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from tests.lakeforge_cli import run_lakeforge


def answers_of(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


@pytest.fixture(scope="module")
def default_project(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    dest = tmp_path_factory.mktemp("new") / "churn-model"
    return dest, run_lakeforge("new", dest, "--defaults")


def test_version() -> None:
    result = run_lakeforge("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"lakeforge {version('lakeforge')}"


def test_defaults_generate_the_project(
    default_project: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    dest, result = default_project
    assert result.returncode == 0, result.stderr
    for path in [
        "pyproject.toml",
        "README.md",
        ".gitignore",
        "src/churn_model/__init__.py",
        "notebooks",
        "databricks/cluster.json",
        "databricks/jobs",
        "tests",
        ".copier-answers.yml",
    ]:
        assert (dest / path).exists(), f"{path} missing from the generated project"
    answers = answers_of(dest)
    assert answers["project_name"] == "Churn Model"
    assert answers["project_slug"] == "churn-model"
    assert answers["package_name"] == "churn_model"
    assert "uv run churn-model run-all" in result.stdout


def test_data_overrides_are_applied_and_recorded(tmp_path: Path) -> None:
    dest = tmp_path / "fraud"
    result = run_lakeforge(
        "new",
        dest,
        "--defaults",
        "--data",
        "project_name=Fraud Detector",
        "-d",
        "cloud=aws",
        "--data",
        "registry=workspace",
        "--data",
        "ci=azure-devops",
        "--data",
        "host_dev=https://adb-123.4.azuredatabricks.net",
    )
    assert result.returncode == 0, result.stderr
    assert (dest / "src" / "fraud_detector").is_dir()
    answers = answers_of(dest)
    assert answers["project_name"] == "Fraud Detector"
    assert answers["project_slug"] == "fraud-detector"
    assert answers["cloud"] == "aws"
    assert answers["registry"] == "workspace"
    assert answers["ci"] == "azure-devops"
    assert answers["host_dev"] == "https://adb-123.4.azuredatabricks.net"
    assert "uv run fraud-detector run-all" in result.stdout


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ("project_name=9 lives", "9 lives"),
        ("cloud=mars", "mars"),
        ("host_dev=http://adb-1.azuredatabricks.net", "http://adb-1.azuredatabricks.net"),
        ("feature_store=maybe", "maybe"),
        ("projet_name=Churn", "projet_name"),
    ],
)
def test_bad_answer_is_one_line_and_writes_nothing(tmp_path: Path, data: str, named: str) -> None:
    dest = tmp_path / "project"
    result = run_lakeforge("new", dest, "--defaults", "--data", data)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "\n" not in message, message
    assert named in message
    assert "Traceback" not in result.stderr
    assert not dest.exists()


def test_bad_answer_leaves_an_empty_destination_empty(tmp_path: Path) -> None:
    result = run_lakeforge("new", tmp_path, "--defaults", "--data", "project_name=9 lives")
    assert result.returncode == 1
    assert list(tmp_path.iterdir()) == []


def test_non_empty_destination_is_refused(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("mine\n")
    result = run_lakeforge("new", tmp_path, "--defaults")
    assert result.returncode == 1
    assert "not empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert mine.read_text() == "mine\n"


def test_without_defaults_and_without_a_terminal_says_what_to_pass(tmp_path: Path) -> None:
    result = run_lakeforge("new", tmp_path / "project")
    assert result.returncode == 1
    assert "--defaults" in result.stderr
    assert not (tmp_path / "project").exists()


def test_data_that_is_not_key_value_is_a_usage_error(tmp_path: Path) -> None:
    result = run_lakeforge("new", tmp_path / "project", "--defaults", "--data", "cloud")
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr
