"""Fixtures shared by lakeforge's tests: the template rendered once per answer set and session."""

from __future__ import annotations

import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from copier.errors import DirtyLocalWarning

REPO = Path(__file__).resolve().parents[1]

Render = Callable[[dict[str, Any]], Path]


def render_template(dest: Path, data: dict[str, Any]) -> Path:
    """Render HEAD of this checkout, uncommitted changes included, into `dest` with every other default.

    Without copier's tasks: the first-commit task (git init) is tested in test_update.py.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(
            str(REPO),
            str(dest),
            data=dict(data),
            defaults=True,
            unsafe=True,
            vcs_ref="HEAD",
            quiet=True,
            skip_tasks=True,
        )
    return dest


def _plain_defaults() -> dict[str, Any]:
    """Questions whose default is a plain value (not derived with Jinja from other answers)."""
    spec = yaml.safe_load((REPO / "copier.yml").read_text())
    return {
        name: question["default"]
        for name, question in spec.items()
        if not name.startswith("_")
        and isinstance(question, dict)
        and "default" in question
        and not (isinstance(question["default"], str) and "{" in question["default"])
    }


@pytest.fixture(scope="session")
def render(tmp_path_factory: pytest.TempPathFactory) -> Render:
    """`render(data)`: the project generated with these answers (others default), rendered once per session.

    Answers equal to a plain default are left out of the cache key, so `{}` and `{"cloud": "azure"}` share
    one render. The result is shared: tests read it and never write into it (copy it first to run it).
    """
    defaults = _plain_defaults()
    rendered: dict[frozenset[tuple[str, Any]], Path] = {}

    def _render(data: dict[str, Any]) -> Path:
        key = frozenset((k, v) for k, v in data.items() if not (k in defaults and defaults[k] == v))
        if key not in rendered:
            rendered[key] = render_template(tmp_path_factory.mktemp("render") / "project", dict(key))
        return rendered[key]

    return _render


@pytest.fixture(scope="session", autouse=True)
def _runtime_pythons_on_path(tmp_path_factory: pytest.TempPathFactory):
    """Make each supported runtime's Python (runtimes.yml: 3.11, 3.12) findable by uv, as on a developer's
    machine: a generated project requires its runtime's Python, and uv here may neither download one nor use
    pyenv's shims of versions pyenv has not activated (they exit 127). An installed interpreter that uv does
    not find (pyenv's ~/.pyenv/versions/X.Y.*) is linked as `pythonX.Y` into a folder put first on PATH."""
    import os
    import shutil
    import subprocess

    from tests.runtimes import runtime_lines

    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    folder = tmp_path_factory.mktemp("pythons")
    for version in sorted({line["python"] for line in runtime_lines()}):
        find = [uv or "uv", "python", "find", "--no-project", version]
        if uv and subprocess.run(find, capture_output=True).returncode == 0:
            continue
        found = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
        if found:
            (folder / f"python{version}").symlink_to(found[-1])
    with pytest.MonkeyPatch.context() as patch:
        if any(folder.iterdir()):
            patch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@pytest.fixture(scope="session")
def render_into() -> Callable[[Path, dict[str, Any]], Path]:
    """`render_into(dest, data)`: a fresh render, not cached (for bad answers and a changed environment)."""
    return render_template


# ---- the fake Databricks workspace (tests/fake_workspace) -------------------------------------------------
# A real `mlflow server` takes tens of seconds to start, so one serves the whole session; each fake workspace
# proxies MLflow calls to it inside an MLflow workspace of its own, so no state leaks between tests. The
# server is started (not awaited) on first use: only a test that makes an MLflow call waits for it.
import os as _os  # noqa: E402

from tests.fake_workspace import FakeWorkspace, MlflowServer  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """The session's real `mlflow server` (started, maybe not ready yet: `.wait_ready()` blocks)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@pytest.fixture
def fake_workspace(mlflow_server: MlflowServer):
    """A fresh fake Databricks workspace in its own process (see tests/fake_workspace/client.py)."""
    workspace = FakeWorkspace.start(mlflow_url=mlflow_server.url)
    yield workspace
    workspace.stop()


@pytest.fixture
def databricks_env(fake_workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Unified auth pointed at `fake_workspace` by environment only (PAT); no other DATABRICKS_* variable
    and no ~/.databrickscfg leaks in. Returns the FakeWorkspace."""
    for name in list(_os.environ):
        if name.startswith("DATABRICKS_"):
            monkeypatch.delenv(name)
    for name, value in fake_workspace.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    return fake_workspace


@pytest.fixture(scope="module")
def installed(render: Render, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, dict]]:
    """`installed(run)`: a private copy of that RUNS project and the environment to run uv in it, on its
    runtime's Python, or on the oldest supported one where that is missing (the package runs on both)."""
    from tests.generated_project import OLDEST_PYTHON, RUNS, find_python, project_env
    from tests.runtimes import default_spark_version, runtime_of

    projects: dict[str, tuple[Path, dict[str, str]]] = {}

    def _installed(run: str) -> tuple[Path, dict[str, str]]:
        if run not in projects:
            data = dict(RUNS[run])
            env = project_env()
            version = runtime_of(data.get("databricks_runtime", default_spark_version()))["python"]
            python = find_python(version, env)
            if python is None:
                warnings.warn(f"no Python {version} here: {run} runs on Python {OLDEST_PYTHON}", stacklevel=1)
                python = find_python(OLDEST_PYTHON, env)
            if python is None:
                pytest.fail(
                    f"no Python {version} or {OLDEST_PYTHON} interpreter found for the generated project"
                )
            env["UV_PYTHON"] = python
            rendered = render(data)
            project = (
                tmp_path_factory.mktemp(run)
                / yaml.safe_load((rendered / ".copier-answers.yml").read_text())["project_slug"]
            )
            shutil.copytree(rendered, project)
            projects[run] = (project, env)
        return projects[run]

    return _installed
