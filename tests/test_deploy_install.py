"""The deploy pipeline installs exactly the lakeforge that generated (or last updated) the project.

A project generated from the template's git URL at a commit that is not a release installs lakeforge from that
git source at that full commit hash; one generated from a release tag installs that release from the package
index. Here the template is a committed copy of this checkout in a bare repository, reached by a file:// URL;
for both CI flavours the test takes the install line out of the rendered pipeline and runs it, offline.

How it runs offline: `uvx` resolves its tool's dependencies against the package index, whose pages for them
may not be in the uv cache. So the same requirement (the pipeline's `--from` value) is installed with `uv pip
install --offline` into an environment that already holds lakeforge's locked dependencies (`uv sync --frozen`
of the copy's uv.lock, which installs from the cache), and its `lakeforge --version` is run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import copier
import pytest
import yaml
from lakeforge.wheel import find_uv

from tests.template_versions import git

REPO = Path(__file__).resolve().parents[1]

CI = {"github": ".github/workflows/deploy.yml", "azure-devops": "pipelines/deploy.yml"}
_SKIP = {".git", ".venv", "__pycache__", "site", "dist", ".pytest_cache", ".ruff_cache"}


def uv(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = find_uv()
    assert binary, "uv is not installed"
    done = subprocess.run(
        [binary, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {}), "UV_OFFLINE": "1"},
    )
    assert done.returncode == 0, f"uv {' '.join(map(str, args))}:\n{done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A bare git repository holding this checkout (tracked and new files, as they are now) in one commit."""
    work = tmp_path_factory.mktemp("template") / "lakeforge"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not _SKIP & set(Path(name).parts):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    git(work, "init", "-q")
    git(work, "add", "--all")
    git(work, "commit", "-q", "-m", "lakeforge")
    bare = work.parent / "lakeforge.git"
    git(work.parent, "clone", "-q", "--bare", str(work), str(bare))
    return bare, git(bare, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def lakeforge_env(template_repo: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An environment with lakeforge's locked dependencies and no lakeforge (what uvx would make)."""
    bare, _ = template_repo
    source = tmp_path_factory.mktemp("lock") / "lakeforge"
    git(source.parent, "clone", "-q", str(bare), str(source))
    venv = source.parent / "venv"
    uv(
        "sync",
        "--frozen",
        "--no-install-project",
        "--no-dev",
        "--project",
        source,
        "--python",
        sys.executable,
        env={"UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    return venv


def render(src: str, dest: Path, ci: str, vcs_ref: str) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            src,
            str(dest),
            data={"ci": ci},
            defaults=True,
            unsafe=True,
            vcs_ref=vcs_ref,
            quiet=True,
            skip_tasks=True,
        )
    return dest


def install_line(project: Path, ci: str) -> tuple[str, list[str]]:
    """The pipeline's LAKEFORGE_SPEC, and its bootstrap command with the spec filled in, as arguments."""
    pipeline = yaml.load((project / CI[ci]).read_text(), Loader=yaml.BaseLoader)
    if ci == "github":
        spec = pipeline["env"]["LAKEFORGE_SPEC"]
        scripts = [s["run"] for job in pipeline["jobs"].values() for s in job["steps"] if "run" in s]
        variable = "${LAKEFORGE_SPEC}"
    else:
        spec = pipeline["variables"]["LAKEFORGE_SPEC"]
        scripts = [
            step.get("script") or step.get("inputs", {}).get("inlineScript", "")
            for stage in pipeline["stages"]
            for job in stage["jobs"]
            for step in job.get("strategy", {}).get("runOnce", {}).get("deploy", {}).get("steps", [])
        ]
        variable = "$(LAKEFORGE_SPEC)"
    lines = [line.strip() for s in scripts for line in s.splitlines() if "lakeforge bootstrap" in line]
    assert lines, f"no bootstrap line in {CI[ci]}"
    words = shlex.split(lines[0].replace(variable, spec))
    assert words[:3] == ["uvx", "--from", spec] and words[3:5] == ["lakeforge", "bootstrap"], lines[0]
    return spec, words


def lakeforge_version(venv: Path, requirement: str, *extra: str) -> str:
    python = venv / "bin" / "python"
    uv("pip", "install", "--python", python, "--reinstall-package", "lakeforge", *extra, requirement)
    done = subprocess.run(
        [venv / "bin" / "lakeforge", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.mark.slow
@pytest.mark.parametrize("ci", list(CI))
def test_a_project_from_a_git_url_deploys_with_lakeforge_at_that_commit(
    template_repo: tuple[Path, str], lakeforge_env: Path, tmp_path: Path, ci: str
) -> None:
    bare, commit = template_repo
    url = bare.as_uri()
    project = render(url, tmp_path / "project", ci, vcs_ref="HEAD")

    spec, words = install_line(project, ci)
    assert spec == f"git+{url}@{commit}"  # the full hash, not the short one in .copier-answers.yml
    text = (project / CI[ci]).read_text()
    assert f"at commit {commit[:7]}" in text
    # file:// stands in for a hosted URL here, but is a path on this machine: the file says CI cannot reach it
    assert f"WARNING: that source, {url}, is a folder on the machine that generated the project" in text

    assert lakeforge_version(lakeforge_env, words[2]) == f"lakeforge {VERSION}"


@pytest.mark.slow
def test_a_project_from_a_release_tag_deploys_with_that_release(
    template_repo: tuple[Path, str], lakeforge_env: Path, tmp_path: Path
) -> None:
    bare, _ = template_repo
    tagged = tmp_path / "tagged"
    git(tmp_path, "clone", "-q", str(bare), str(tagged))
    git(tagged, "tag", f"v{VERSION}")
    project = render(str(tagged), tmp_path / "project", "github", vcs_ref=f"v{VERSION}")
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == f"v{VERSION}"

    spec, words = install_line(project, "github")
    assert spec == f"lakeforge=={VERSION}"
    assert "WARNING" not in (project / CI["github"]).read_text(), "a release needs no reachable folder"
    # The package index has no lakeforge here: the release's wheel, built from the tag, stands in for it.
    wheels = tmp_path / "wheels"
    uv("build", "--wheel", "--quiet", "--python", sys.executable, "--out-dir", wheels, tagged)
    assert re.fullmatch(rf"lakeforge-{re.escape(VERSION)}-py3-none-any\.whl", next(wheels.glob("*.whl")).name)
    version = lakeforge_version(lakeforge_env, words[2], "--no-index", "--find-links", str(wheels))
    assert version == f"lakeforge {VERSION}"


# --------------------------------------------------------------------------------------------------------
# Which source the pipeline names, for the forms copier accepts as a template source
# --------------------------------------------------------------------------------------------------------
HASH = "0123456789abcdef0123456789abcdef01234567"


def render_deploy(ci: str, src: str, commit: str, commit_hash: str | None = HASH) -> str:
    """The deploy pipeline template rendered alone, with copier's Jinja filters, for given answers."""
    import jinja2

    folder = {"github": "{% if ci == 'github' %}.github{% endif %}/workflows"}.get(
        ci, "{% if ci == 'azure-devops' %}pipelines{% endif %}"
    )
    source = (REPO / "template" / folder / "deploy.yml.jinja").read_text()
    env = jinja2.Environment(
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"], keep_trailing_newline=True
    )
    return env.from_string(source).render(
        _copier_answers={"_commit": commit, "_src_path": src},
        _copier_conf={"vcs_ref_hash": commit_hash},
        python_version="3.12",
        cloud="aws",
        project_slug="churn-model",
    )


@pytest.mark.parametrize("ci", list(CI))
@pytest.mark.parametrize(
    ("src", "commit", "spec", "local"),
    [
        ("gh:acme/lakeforge", "v1.4.0-3-g0123456", f"git+https://github.com/acme/lakeforge@{HASH}", False),
        ("gl:acme/lakeforge", "0123456", f"git+https://gitlab.com/acme/lakeforge@{HASH}", False),
        (
            "https://git.example.com/ml/lakeforge.git",
            "0123456",
            f"git+https://git.example.com/ml/lakeforge.git@{HASH}",
            False,
        ),
        (
            "git@github.com:acme/lakeforge.git",
            "0123456",
            f"git+ssh://git@github.com/acme/lakeforge.git@{HASH}",
            False,
        ),
        ("git+https://example.com/lakeforge", "0123456", f"git+https://example.com/lakeforge@{HASH}", False),
        ("/home/me/lakeforge", "0123456", f"git+file:///home/me/lakeforge@{HASH}", True),
        ("file:///srv/lakeforge.git", "0123456", f"git+file:///srv/lakeforge.git@{HASH}", True),
        ("/home/me/lakeforge", "v1.4.0", "lakeforge==1.4.0", False),  # a release: from the index
        ("gh:acme/lakeforge", "v1.4.0", "lakeforge==1.4.0", False),
    ],
)
def test_the_pipeline_names_a_source_ci_can_install(
    ci: str, src: str, commit: str, spec: str, local: bool
) -> None:
    text = render_deploy(ci, src, commit)
    document = yaml.load(text, Loader=yaml.BaseLoader)
    assert (document["env"] if ci == "github" else document["variables"])["LAKEFORGE_SPEC"] == spec
    assert ("is a folder on the machine that generated the project" in text) is local
    assert "lakeforge==0.1.0" not in text


def test_a_template_outside_git_installs_the_newest_release_and_says_so() -> None:
    text = render_deploy("github", "/home/me/lakeforge-copy", "", commit_hash=None)
    assert yaml.load(text, Loader=yaml.BaseLoader)["env"]["LAKEFORGE_SPEC"] == "lakeforge"
    assert "outside git, so there is no commit to pin" in text
