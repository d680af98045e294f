"""The project's wheel carries its content in its version, so that a cluster's pip installs every new build.

A cluster installs a wheel library with pip, and uninstalling the previous one takes effect only at the next
restart; pip skips a wheel whose name and version are already installed. These tests run the real pip in a
throwaway virtual environment: with the same version (what every build was before, `0.1.0`) a changed wheel
is skipped, with the content hash as a local version label it is installed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import zipfile
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest
from lakeforge.wheel import build_wheel, content_digest, find_uv, with_local_version

from tests.runtimes import runtime_lines


@pytest.fixture(scope="module")
def project(render, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A runtime whose Python is this interpreter's: the wheel requires its runtime's Python; pip checks it.
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    data = {"databricks_runtime": next(r["cpu"] for r in runtime_lines() if r["python"] == python)}
    return Path(shutil.copytree(render(data), tmp_path_factory.mktemp("wheel") / "churn-model"))


def changed_copy(project: Path, dest: Path) -> Path:
    copy = Path(shutil.copytree(project, dest))
    (copy / "src" / "churn_model" / "deployed_marker.py").write_text("BUILD = 'changed'\n")
    return copy


def raw_wheel(project: Path, out: Path) -> Path:
    """The wheel as uv builds it, without lakeforge's label."""
    uv = find_uv()
    assert uv
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--python", sys.executable, "--out-dir", str(out), str(project)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def test_the_version_carries_the_content_hash(project: Path, tmp_path: Path) -> None:
    wheel = build_wheel(project)
    label = wheel.digest[:16]
    assert wheel.version == f"0.1.0+{label}"
    assert wheel.filename == f"churn_model-0.1.0+{label}-py3-none-any.whl"
    assert build_wheel(project).content == wheel.content, "the same sources give the same bytes"
    assert "0.1.0+" not in (project / "pyproject.toml").read_text(), "the project is not touched"

    other = build_wheel(changed_copy(project, tmp_path / "changed"))
    assert other.version != wheel.version and other.digest != wheel.digest


def test_the_labelled_wheel_is_a_valid_wheel(project: Path, tmp_path: Path) -> None:
    raw = raw_wheel(project, tmp_path / "raw")
    filename, version, content = with_local_version(raw, "abc123")
    assert (filename, version) == ("churn_model-0.1.0+abc123-py3-none-any.whl", "0.1.0+abc123")
    with zipfile.ZipFile(io.BytesIO(content)) as archive, zipfile.ZipFile(raw) as before:
        names = archive.namelist()
        assert len(names) == len(before.namelist())
        assert not [n for n in names if "0.1.0.dist-info" in n]
        metadata = archive.read("churn_model-0.1.0+abc123.dist-info/METADATA").decode()
        assert re.search(r"^Version: 0\.1\.0\+abc123$", metadata, re.M)
        assert (
            metadata.replace("0.1.0+abc123", "0.1.0")
            == before.read("churn_model-0.1.0.dist-info/METADATA").decode()
        )
        record = archive.read("churn_model-0.1.0+abc123.dist-info/RECORD").decode()
        rows = list(csv.reader(io.StringIO(record)))
        assert sorted(r[0] for r in rows) == sorted(n for n in names if not n.endswith("/"))
        for path, digest, size in rows:
            if path.endswith("/RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = archive.read(path)
            expected = urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, size) == (f"sha256={expected}", str(len(data)))
    labelled = tmp_path / filename
    labelled.write_bytes(content)
    assert content_digest(labelled) != content_digest(raw)
    _, twice, _ = with_local_version(labelled, "def")
    assert twice == "0.1.0+abc123.def"  # a version that has a label gets another segment


@pytest.mark.slow
def test_pip_skips_the_same_version_and_installs_a_changed_one(project: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"

    def pip_install(wheel: Path) -> str:
        # --ignore-requires-python: the project asks for its runtime's Python, this venv has lakeforge's
        quiet = ["--no-deps", "--no-index", "--disable-pip-version-check", "--ignore-requires-python"]
        done = subprocess.run(
            [python, "-m", "pip", "install", *quiet, wheel],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def marker() -> str:
        done = subprocess.run(
            [python, "-c", "import churn_model.deployed_marker as m; print(m.BUILD)"],
            capture_output=True,
            text=True,
        )
        return done.stdout.strip() or "missing"

    changed = changed_copy(project, tmp_path / "changed")

    # Before: every build is 0.1.0, so pip keeps the first one installed.
    first_raw, second_raw = raw_wheel(project, tmp_path / "a"), raw_wheel(changed, tmp_path / "b")
    assert first_raw.name == second_raw.name == "churn_model-0.1.0-py3-none-any.whl"
    assert "Successfully installed churn-model-0.1.0" in pip_install(first_raw)
    assert "already installed with the same version" in pip_install(second_raw)
    assert marker() == "missing", "the changed code was not installed"
    subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", "churn_model"], check=True)

    # Now: the content is in the version.
    wheels = []
    for name, source in (("first", project), ("second", changed)):
        wheel = build_wheel(source)
        path = tmp_path / name / wheel.filename
        path.parent.mkdir()
        path.write_bytes(wheel.content)
        wheels.append((wheel, path))
    (first, first_path), (second, second_path) = wheels
    assert f"Successfully installed churn-model-{first.version}" in pip_install(first_path)
    assert "already installed with the same version" in pip_install(first_path)  # unchanged: skipped
    out = pip_install(second_path)
    assert f"Successfully uninstalled churn-model-{first.version}" in out
    assert f"Successfully installed churn-model-{second.version}" in out
    assert marker() == "changed"
