"""Reaching the workspace: a host that does not answer makes every workspace command fail in bounded time with
one line naming the host and where it came from; a slow but alive host still works; a target's host that
overrides DATABRICKS_HOST is said so. Real processes, real sockets, the fake workspace over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import test_bootstrap as tb
from tests.fake_workspace import FakeWorkspace
from tests.lakeforge_cli import LAKEFORGE, run_lakeforge

rendered = tb.rendered
project = tb.project
ws = tb.ws

# A hang guard, not a speed target: lakeforge gives up on a silent host after 15 s (connection.py), where it
# used to wait 5 minutes and more (the SDK's retry budget); 120 s leaves room for start-up on a loaded machine
# (importing databricks-sdk alone can take seconds there) and still tells the two apart.
HANG_GUARD_SECONDS = 120
WORKSPACE_COMMANDS = {  # PROJECT: the project's folder
    "doctor": ("doctor", "PROJECT", "--target", "dev"),
    "bootstrap": ("bootstrap", "PROJECT", "--target", "dev", "--dry-run"),
    "destroy": ("destroy", "PROJECT", "--target", "dev", "--dry-run"),
    "run": ("run", "training", "PROJECT", "--target", "dev"),
}


@contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server that accepts every connection and never sends a byte (a stuck proxy or firewall)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in [*held, server]:
            conn.close()


@contextmanager
def full_backlog() -> Iterator[str]:
    """A listening socket that never accepts, its queue full: the kernel drops further connection attempts,
    so connecting gets no answer at all (as with a host behind a firewall that drops packets)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    address = server.getsockname()
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(address)
    check = socket.socket()
    check.settimeout(1)
    with pytest.raises(TimeoutError):  # the premise: a connection attempt is not answered
        check.connect(address)
    try:
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        for sock in [check, *fillers, server]:
            sock.close()


def set_dev_host(project: Path, host: str) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert '[tool.lakeforge.targets.dev]\nhost = ""' in text
    pyproject.write_text(
        text.replace(
            '[tool.lakeforge.targets.dev]\nhost = ""', f'[tool.lakeforge.targets.dev]\nhost = "{host}"'
        )
    )


def pat_env(tmp_path: Path, host: str | None) -> dict[str, str]:
    """A PAT user's environment: `host` in DATABRICKS_HOST (None: unset), no other Databricks setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    return {
        **env,
        **({"DATABRICKS_HOST": host} if host else {}),
        "DATABRICKS_TOKEN": "dapi-unused",
        "DATABRICKS_AUTH_TYPE": "pat",
        "DATABRICKS_CONFIG_FILE": str(tmp_path / "no-databrickscfg"),
    }


def run_at_once(
    project: Path, runs: dict[str, tuple[str, dict[str, str]]]
) -> dict[str, subprocess.CompletedProcess]:
    """For each label, `lakeforge` with that command of WORKSPACE_COMMANDS and environment, all at once, each
    in its own process; one still running after HANG_GUARD_SECONDS fails the test."""

    def one(label: str) -> subprocess.CompletedProcess:
        command, env = runs[label]
        args = [str(project) if arg == "PROJECT" else arg for arg in WORKSPACE_COMMANDS[command]]
        try:
            return subprocess.run(
                [LAKEFORGE, *args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=HANG_GUARD_SECONDS,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"`lakeforge {command}` ({label}) still waiting after {HANG_GUARD_SECONDS} s: it hangs"
            )

    with ThreadPoolExecutor(len(runs)) as pool:
        return dict(zip(runs, pool.map(one, runs), strict=True))


def error_line(label: str, result: subprocess.CompletedProcess) -> str:
    """The one line that says what went wrong: doctor's auth check, or the error of another command."""
    assert result.returncode == 1, (label, result.stdout, result.stderr)
    if label.startswith("doctor"):
        (line,) = [line for line in result.stdout.splitlines() if line.startswith("✗ ")]
        return line.removeprefix("✗ auth: ")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("lakeforge: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0].removeprefix("lakeforge: ")


def test_every_workspace_command_gives_up_on_a_host_that_never_answers(project: Path, tmp_path: Path) -> None:
    profiles = tmp_path / "databrickscfg"
    closed = socket.create_server(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there now: connecting is refused
    with silent_server() as url:
        profiles.write_text(f"[ci]\nhost = {url}/\ntoken = dapi-unused\n")
        from_profile = {**pat_env(tmp_path, None), "DATABRICKS_CONFIG_FILE": str(profiles)}
        results = run_at_once(
            project,
            {command: (command, pat_env(tmp_path, url)) for command in WORKSPACE_COMMANDS}
            | {
                "doctor, profile": ("doctor", {**from_profile, "DATABRICKS_CONFIG_PROFILE": "ci"}),
                "doctor, refused": ("doctor", pat_env(tmp_path, refused)),
            },
        )
    expected = dict.fromkeys(WORKSPACE_COMMANDS, f"{url} (target 'dev', host from DATABRICKS_HOST)")
    expected["doctor, profile"] = f"{url} (target 'dev', host from profile ci of {profiles})"
    for label in expected:
        line = error_line(label, results[label])
        assert line.startswith(f"cannot reach {expected[label]} within 15 s"), (label, line)
        assert "(connected, but no answer to a request): check the host URL" in line, line
    assert error_line("doctor, refused", results["doctor, refused"]).startswith(
        f"cannot reach {refused} (target 'dev', host from DATABRICKS_HOST) within 15 s (Connection refused)"
    )


def test_a_host_that_does_not_accept_connections_fails_doctor_and_a_dry_run(
    project: Path, tmp_path: Path
) -> None:
    env = pat_env(tmp_path, "https://elsewhere.example.com")
    with full_backlog() as url:
        set_dev_host(project, url)
        results = run_at_once(project, {"doctor": ("doctor", env), "bootstrap": ("bootstrap", env)})
    source = "host from [tool.lakeforge.targets.dev], not DATABRICKS_HOST=https://elsewhere.example.com"
    for label, result in results.items():
        line = error_line(label, result)
        assert line.startswith(f"cannot reach {url} (target 'dev', {source}) within 15 s"), (label, line)
        assert "(no answer to connecting)" in line, line


def test_a_slow_but_alive_host_still_passes_doctor(ws: FakeWorkspace, project: Path) -> None:
    ws.inject(delay=5, times=-1)  # every request of the fake, the host-metadata lookup included
    result = run_lakeforge("doctor", project, "--target", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"✓ auth: {ws.user} on {ws.url} (pat)" in result.stdout
    (fault,) = ws.faults()
    assert fault["fired"] >= 3, fault  # slow answers to the reachability check, host metadata and me()


def test_doctor_says_when_the_target_host_overrides_databricks_host(
    ws: FakeWorkspace, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_dev_host(project, ws.url)
    monkeypatch.setenv("DATABRICKS_HOST", "https://elsewhere.example.com/")
    result = run_lakeforge("doctor", project, "--target", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    (auth,) = [line for line in result.stdout.splitlines() if line.startswith("✓ auth:")]
    assert auth == (
        f"✓ auth: {ws.user} on {ws.url} (pat; host from [tool.lakeforge.targets.dev], "
        "not DATABRICKS_HOST=https://elsewhere.example.com)"
    )

    monkeypatch.setenv("DATABRICKS_HOST", ws.url + "/")  # the same host: nothing to say
    result = run_lakeforge("doctor", project, "--target", "dev")
    assert result.returncode == 0 and f"✓ auth: {ws.user} on {ws.url} (pat)\n" in result.stdout


def test_bootstrap_notes_on_stderr_when_the_target_host_overrides_databricks_host(
    ws: FakeWorkspace, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_dev_host(project, ws.url)
    monkeypatch.setenv("DATABRICKS_HOST", "https://elsewhere.example.com")
    result = run_lakeforge("bootstrap", project, "--target", "dev", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "note: target 'dev': host from [tool.lakeforge.targets.dev], not DATABRICKS_HOST=https://elsewhere.example.com"
        in result.stderr.splitlines()
    ), result.stderr
