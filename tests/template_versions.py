"""Two releases of the lakeforge template in a throwaway git repository, for the update tests and benchmark.

B (tag v0.2.0) is this checkout's template as it is, uncommitted changes included. A (tag v0.1.0) is B with
what v0.2.0 really changed undone (the rename of the serving endpoint payload and its migration), plus a few
lines that a template typically changes between two releases, so that an update from A to B has something
to merge in every kind of file:

| what B changes                   | where                                                      |
|----------------------------------|------------------------------------------------------------|
| renames a file, with a migration | databricks/serving_endpoint.json -> serving/champion.json  |
| a line of the renamed file       | its tag key "environment" -> "target"                      |
| a setting's default              | config.py `drift_threshold` 0.25 -> 0.2                    |
| a README section                 | "Updating from the template" rewritten                     |
| adds a CI step                   | `ruff check` in ci.yml, on both CI platforms               |

Each edit names the exact text it expects, so a template change that moves it fails loudly here.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# What copier reads.
TEMPLATE_FILES = ("copier.yml", "runtimes.yml", "names.yml", "template", "migrations", "tasks")
A_TAG, B_TAG = "v0.1.0", "v0.2.0"

OLD_ENDPOINT = "databricks/serving_endpoint.json"
NEW_ENDPOINT = "databricks/serving/champion.json"
GITHUB_CI = "template/{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml.jinja"
AZURE_CI = "template/{% if ci == 'azure-devops' %}pipelines{% endif %}/ci.yml.jinja"
README = "template/README.md.jinja"


@dataclass(frozen=True)
class Edit:
    """In template file `path`, A has `a` where B has `b` (each exactly once)."""

    path: str
    b: str
    a: str


README_SECTION_A = """## Updating from the template

```bash
copier update --trust        # or: lakeforge update
```
"""

EDITS = (
    Edit("template/databricks/serving/champion.json.jinja", '"key": "target"', '"key": "environment"'),
    Edit(
        "template/src/{{package_name}}/config.py.jinja",
        "drift_threshold: float = 0.2\n",
        "drift_threshold: float = 0.25\n",
    ),
    Edit(GITHUB_CI, "      - run: uv sync\n      - run: uv run ruff check\n", "      - run: uv sync\n"),
    Edit(AZURE_CI, "  - script: uv run ruff check\n    displayName: ruff\n\n", ""),
    Edit(
        README,
        "databricks/serving/       one Model Serving endpoint payload per endpoint: "
        "champion.json serves @champion\n",
        "",
    ),
)

# How B's changes read in a project generated with the default answers (ci=github).
B_RENDERED = {
    "src/churn_model/config.py": "    drift_threshold: float = 0.2\n",
    ".github/workflows/ci.yml": "      - run: uv run ruff check\n",
    "README.md": "lakeforge update             # or, without lakeforge: copier update --trust --defaults\n",
    NEW_ENDPOINT: '"key": "target"',
}
A_RENDERED = {
    "src/churn_model/config.py": "    drift_threshold: float = 0.25\n",
    "README.md": "copier update --trust        # or: lakeforge update\n",
    OLD_ENDPOINT: '"key": "environment"',
}


def git(cwd: Path, *args: str) -> str:
    """Run git with a fixed identity and no signing; return its stdout."""
    identity = ["-c", "user.name=lakeforge tests", "-c", "user.email=tests@example.com"]
    no_signing = ["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
    done = subprocess.run(
        ["git", *identity, *no_signing, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout


def build_versions(repo: Path, source: Path = ROOT) -> Path:
    """A git repository at `repo` holding A (tag v0.1.0), then B (tag v0.2.0) of the template in `source`."""
    repo.mkdir(parents=True)
    _put_b(repo, source)
    _undo_to_a(repo)
    git(repo, "init", "-q")
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "lakeforge template A")
    git(repo, "tag", A_TAG)
    _put_b(repo, source)
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "lakeforge template B: serving/champion.json, and more")
    git(repo, "tag", B_TAG)
    return repo


def _put_b(repo: Path, source: Path) -> None:
    for name in TEMPLATE_FILES:
        target = repo / name
        if target.is_dir():
            shutil.rmtree(target)
        if (source / name).is_dir():
            shutil.copytree(source / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source / name, target)


def _undo_to_a(repo: Path) -> None:
    for edit in EDITS:
        _replace(repo / edit.path, edit.b, edit.a)
    readme = repo / README
    text = readme.read_text()
    start = text.index("## Updating from the template\n")
    readme.write_text(text[:start] + README_SECTION_A)
    # The rename: A has the old name and no migration (copier.yml's comments are not needed in A).
    serving = repo / "template/databricks/serving"
    (serving / "champion.json.jinja").rename(repo / "template" / f"{OLD_ENDPOINT}.jinja")
    serving.rmdir()
    spec = yaml.safe_load((repo / "copier.yml").read_text())
    assert "_migrations" in spec, "B's copier.yml has no _migrations"
    del spec["_migrations"]
    (repo / "copier.yml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1000))


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (
        f"{path} must hold {old!r} exactly once (it holds it {text.count(old)} times)"
    )
    path.write_text(text.replace(old, new))
