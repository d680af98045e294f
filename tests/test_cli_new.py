"""`lakeforge new`, run as a user runs it: the installed console script in a subprocess, on this checkout,
without a terminal or on a real pseudo-terminal."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from contextlib import suppress
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from lakeforge.template import TEMPLATE_ENV

from tests.generated_project import OLDEST_CPU, project_env, tail, uv, uv_run
from tests.lakeforge_cli import LAKEFORGE, run_lakeforge


def answers_of(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(*args: str | Path, steps: list[tuple[str, bytes | signal.Signals]]) -> tuple[int, str]:
    """`lakeforge ARGS` on a pseudo-terminal: for each step, wait for its text on the screen, then type its
    keys, or send its signal (what Ctrl-C does at a prompt that reads in the terminal's line mode: the pty is
    not the process's controlling terminal, so a typed \x03 raises no SIGINT there). Returns the exit code and
    the screen's text (escape sequences removed)."""
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != TEMPLATE_ENV}
    process = subprocess.Popen([LAKEFORGE, *map(str, args)], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    screen = ""

    def read(until: str | None) -> None:
        nonlocal screen
        deadline = time.monotonic() + 120
        while until is None or until not in screen:
            assert time.monotonic() < deadline, f"no {until!r} on the screen:\n{screen}"
            if select.select([master], [], [], 1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other end closed: the process ended
                    chunk = b""
                if not chunk:
                    assert until is None, f"ended before {until!r}:\n{screen}"
                    return
                screen = _ANSI.sub("", screen + chunk.decode(errors="replace"))

    try:
        for text, keys in steps:
            read(text)
            if isinstance(keys, bytes):
                os.write(master, keys)
            else:
                _wait_until_reading(process.pid)
                process.send_signal(keys)
        read(None)
        return process.wait(timeout=60), screen
    finally:
        process.kill()
        os.close(master)


# read(2)'s system call number, as /proc/PID/syscall shows it
_READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine)


def _wait_until_reading(pid: int) -> None:
    """Wait (at most 30 s) until the process blocks reading its terminal. A SIGINT that lands after the prompt
    is written but before `input()` enters read(2) is only acted on once read returns (CPython checks signals
    on EINTR), so a signal sent the moment the prompt shows can hang the test; a person is never that fast."""
    deadline = time.monotonic() + 30
    while _READ_SYSCALL is not None and time.monotonic() < deadline:
        with suppress(OSError):
            if Path(f"/proc/{pid}/syscall").read_text().split()[0] == _READ_SYSCALL:
                return
        time.sleep(0.05)


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
        f"databricks_runtime={OLDEST_CPU}",
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
        # the template's own refusals (tests/test_answers.py), shown by lakeforge in the same one line
        (
            "project_name=If",
            "project_name 'If' is not allowed: the package_name made from it, 'if', is a Python keyword",
        ),
        ("project_name=Json", "'json', is a module of Python's standard library"),
        (
            "project_name=Scikit Learn",
            "project_name 'Scikit Learn' is not allowed: the project_slug made from it",
        ),
        ("package_name=pyspark", "package_name 'pyspark' is not allowed: it is the name of a package"),
        ("feature_store=maybe", "feature_store 'maybe' is not allowed: answer true or false"),
        ("projet_name=Churn", "unknown question 'projet_name' in --data"),
        ("uc=false", "'uc' is derived from other answers and cannot be set with --data"),
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


# --------------------------------------------------------------------------------------------------------
# on a terminal
# --------------------------------------------------------------------------------------------------------
FIRST_QUESTION = "Project name, in words"


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "empty-folder"])
def test_ctrl_c_at_a_question_cancels_writes_nothing_and_exits_130(tmp_path: Path, existing: bool) -> None:
    dest = tmp_path / "project"
    if existing:
        dest.mkdir()
    code, screen = on_a_terminal("new", dest, steps=[(FIRST_QUESTION, b"\x03")])
    assert code == 130, screen
    last = screen.strip().splitlines()[-1]
    assert last == "lakeforge: cancelled, nothing written", screen
    assert "AnswersMap" not in screen and "Traceback" not in screen
    assert list(dest.iterdir()) == [] if existing else not dest.exists()


def test_on_a_terminal_ctrl_u_clears_the_default_an_answer_starts_with(tmp_path: Path) -> None:
    """Copier puts a question's default in the answer's text (questionary's `default`), so typing appends to
    it; lakeforge says so, and Ctrl-U clears it."""
    slug_question = "Distribution and folder name"
    code, screen = on_a_terminal(
        "new",
        tmp_path / "project",
        steps=[(FIRST_QUESTION, b"\x15Fraud Model\r"), (slug_question, b""), ("fraud-model", b"\x03")],
    )
    assert code == 130, screen
    assert "Enter keeps it, Ctrl-U clears it" in screen.split(FIRST_QUESTION)[0]
    assert "churn-model" not in screen.split(slug_question)[1], screen


# --------------------------------------------------------------------------------------------------------
# what `new` leaves and says
# --------------------------------------------------------------------------------------------------------
def test_a_new_project_starts_as_a_clean_repository_with_its_lock(
    default_project: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    dest, result = default_project
    assert result.returncode == 0, result.stderr
    assert git(dest, "status", "--porcelain", "--ignored") == ""
    assert "uv.lock" in git(dest, "ls-files").split()


@pytest.mark.slow
def test_the_readmes_first_commands_leave_the_tree_clean(tmp_path: Path) -> None:
    dest = tmp_path / "churn-model"
    assert run_lakeforge("new", dest, "--defaults").returncode == 0
    env = project_env()
    for command in (["churn-model", "run-all"], ["pytest", "-q", "-x", "tests/test_config.py"]):
        done = uv_run(dest, env, *command)
        assert done.returncode == 0, tail(done)
    assert git(dest, "status", "--porcelain") == "", "a file the first commands write is not ignored"


def test_the_path_is_resolved_and_the_next_steps_run_from_here(tmp_path: Path) -> None:
    here = tmp_path / "lakeforge"
    here.mkdir()
    result = run_lakeforge("new", "../churn-model", "--defaults", cwd=here)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "churn-model"
    lines = result.stdout.splitlines()
    assert lines[0] == f"Created {project}"
    steps = [line.strip() for line in lines[lines.index("Next steps:") + 1 :]]
    assert steps[0] == "cd ../churn-model"
    bootstrap = re.fullmatch(r"(\S+) bootstrap \. --target dev +# put it on Databricks", steps[-1])
    assert bootstrap, steps
    program = bootstrap[1]  # `lakeforge`, or its path from the project's folder where that is not on PATH
    done = subprocess.run([program, "--version"], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("lakeforge "), done.stderr


def test_a_default_project_needs_no_python_download_where_only_311_is_installed(tmp_path: Path) -> None:
    """The default project targets 18 LTS ML (Python 3.12), yet uv takes the machine's 3.11 for it: offline,
    with no Python download. With `requires-python >=3.12` uv 0.13 tried to download CPython 3.15 instead,
    even with a 3.12 on PATH; a `.python-version` of 3.12 breaks uv under pyenv (its shims read the file)
    and offline."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("needs lakeforge to run on Python 3.11, the only Python this test leaves on PATH")
    dest = tmp_path / "project"
    assert run_lakeforge("new", dest, "--defaults").returncode == 0
    assert answers_of(dest)["python_version"] == "3.12"
    assert not (dest / ".python-version").exists()
    pythons = tmp_path / "bin"
    pythons.mkdir()
    (pythons / "python3.11").symlink_to(Path(sys.executable).resolve())
    env = {
        "PATH": str(pythons),
        "HOME": str(tmp_path),
        "UV_PYTHON_INSTALL_DIR": str(tmp_path / "uv-pythons"),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    found = subprocess.run([uv(), "python", "find"], cwd=dest, env=env, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).name == "python3.11"
