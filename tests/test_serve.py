"""The default generated project's commands run for real: `serve` works however it is called (its virtualenv's
bin off PATH), answers the README's request as the README says, and a SIGTERM or SIGINT to it stops the whole
server; `run-all` prints its step headers on stdout and `monitor` the path of its report.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.generated_project import STEPS, tail, uv_run

pytestmark = pytest.mark.slow

SLUG = "churn-model"
Project = tuple[Path, dict[str, str], str]

# The champion's own numbers for the records of argv[1] (a /invocations body): what batch scoring computes.
CHAMPION_SCORES = """
import json, sys
import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from churn_model import registry
from churn_model.config import Settings
from churn_model.world import connect_mlflow

connect_mlflow()
name = Settings().model
# The estimator itself, as scikit-learn has it (the project loads it through pyfunc).
number = registry.require(MlflowClient(), name, registry.CHAMPION, "").number
model = mlflow.sklearn.load_model(f"models:/{name}/{number}")
rows = pd.DataFrame(json.loads(sys.argv[1])["dataframe_records"])
print(json.dumps({"classes": model.classes_.tolist(), "churn": model.predict_proba(rows)[:, 1].tolist()}))
"""


@pytest.fixture(scope="module")
def project(installed: Callable) -> Project:
    """The default project, installed, after one `run-all` (so with a champion), and that run's stdout."""
    path, env = installed("default")
    result = uv_run(path, env, SLUG, "-p", "customers=5000", "run-all")
    assert result.returncode == 0, tail(result)
    return path, env, result.stdout


def test_run_all_prints_each_step_header_on_stdout(project: Project) -> None:
    """`run-all > log` keeps the step headers: they go to stdout with the results under them."""
    *_, stdout = project
    headers = [line.removeprefix("==> ") for line in stdout.splitlines() if line.startswith("==> ")]
    assert headers == STEPS, stdout


def test_monitor_prints_the_path_of_its_report(project: Project) -> None:
    path, env, _ = project
    result = uv_run(path, env, SLUG, "-p", "customers=5000", "monitor")
    assert result.returncode == 0, tail(result)
    found = re.search(r"^Drift report: (.+)$", result.stdout, re.MULTILINE)
    assert found, result.stdout
    report = Path(found.group(1))
    assert report.is_file() and report.is_relative_to(path.resolve() / "lakehouse" / "reports")


# Off PATH, `serve` used to fail; on it, a signal to `serve` used to leave its server running.
@pytest.mark.parametrize(
    ("on_path", "stop"),
    [(False, signal.SIGTERM), (False, signal.SIGINT), (True, signal.SIGTERM)],
    ids=["venv-off-path-SIGTERM", "venv-off-path-SIGINT", "venv-on-path-SIGTERM"],
)
def test_serve_answers_as_documented_and_a_signal_stops_all_of_it(
    project: Project, tmp_path: Path, on_path: bool, stop: signal.Signals
) -> None:
    path, env, _ = project
    venv_bin = path / ".venv" / "bin"
    search = [p for p in env["PATH"].split(os.pathsep) if p and Path(p) != venv_bin]
    assert shutil.which("uvicorn", path=os.pathsep.join(search)) is None, "a PATH without uvicorn is needed"
    search = os.pathsep.join([str(venv_bin), *search] if on_path else search)
    port = free_port()
    printed = tmp_path / "stdout"
    with printed.open("w") as out, (tmp_path / "stderr").open("w") as err:
        # A session of its own: whatever the server starts is in it, and nothing else is.
        server = subprocess.Popen(
            [str(venv_bin / SLUG), "serve", "--port", str(port)],
            cwd=path,
            env={**env, "PATH": search},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        wait_until_ready(server, port, tmp_path)
        url = f"http://127.0.0.1:{port}/invocations"
        assert f"on {url}\n" in printed.read_text()

        # The README's request, as written there but for the port.
        readme_url, body = curl_request(readme_section(path / "README.md", "Serving the champion"))
        assert readme_url == "http://127.0.0.1:5001/invocations", "the default port of `serve`"
        pairs = post(url, body)
        records = json.loads(body)["dataframe_records"]
        assert len(pairs) == len(records) == 2
        assert all(stays == pytest.approx(1 - churns) for stays, churns in pairs)
        (churner, stayer) = (churns for _, churns in pairs)
        assert churner >= 0.5 > stayer, "the README says the first customer churns and the second does not"
        # The second number is what batch scoring calls the churn probability: the champion's P(churned=1).
        champion = subprocess.run(
            [str(venv_bin / "python"), "-c", CHAMPION_SCORES, body],
            cwd=path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert champion.returncode == 0, tail(champion)
        own = json.loads(champion.stdout.strip().splitlines()[-1])
        assert own["classes"] == [0, 1]
        assert [churns for _, churns in pairs] == pytest.approx(own["churn"])

        # The request serve prints when it starts works as printed.
        (line,) = [line for line in printed.read_text().splitlines() if line.startswith("try: curl ")]
        printed_url, printed_body = curl_request(line.removeprefix("try: "))
        assert printed_url == url
        ((stays, churns),) = post(url, printed_body)
        assert stays == pytest.approx(1 - churns)

        server.send_signal(stop)  # to serve alone, as `kill PID` does
        server.wait(timeout=60)
        assert gone(server.pid, within=30), f"left running after {stop.name}: {members(server.pid)}"
        assert not answers(port), f"port {port} still answers after {stop.name}"
        assert "Traceback" not in (tmp_path / "stderr").read_text()
    finally:
        if members(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(server: subprocess.Popen, port: int, logs: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not answers(port):
        output = (logs / "stdout").read_text() + (logs / "stderr").read_text()
        assert server.poll() is None, f"serve exited {server.returncode}:\n{output[-4000:]}"
        assert time.monotonic() < deadline, f"no answer on /ping after {timeout:.0f}s:\n{output[-4000:]}"
        time.sleep(0.5)


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def readme_section(readme: Path, title: str) -> str:
    text = readme.read_text()
    assert f"\n## {title}\n" in text, f"the generated README has no section {title!r}"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def curl_request(text: str) -> tuple[str, str]:
    """The URL and the body of the one `curl ... -d BODY` command in the text, parsed as a shell would."""
    (command,) = re.findall(r"^curl .*?(?=\n```|\Z)", text, re.MULTILINE | re.DOTALL)
    words = shlex.split(command)
    assert words[words.index("-H") + 1] == "Content-Type: application/json"
    (url,) = [word for word in words if word.startswith("http://")]
    return url, words[words.index("-d") + 1]


def post(url: str, body: str) -> list[list[float]]:
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["predictions"]


def members(session: int) -> list[str]:
    """The live processes of that session or process group (zombies are not running): pid and command."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        state, group, sid = fields[0], int(fields[2]), int(fields[3])
        if state != "Z" and session in (group, sid):
            found.append(f"{stat.parent.name} {command}")
    return found


def gone(session: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while members(session):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
