"""Three releases of the lakeforge template in a throwaway git repository, for the update tests and benchmark.

B (tag v0.4.0) is this checkout's template as it is, uncommitted changes included. The releases before it
come from this repository's own history, so they are what was really released, whatever the working tree
holds now: v0.3.0 is the template files of commit PREVIOUS_COMMIT (`git archive`), and A (tag v0.1.0) is
v0.3.0 with what v0.2.0 and v0.3.0 changed undone (v0.2.0: the rename of the serving endpoint payload and its
migration; v0.3.0: the two workflows in place of five single-task jobs, the `compute` question, the owner and
paused schedules in [tool.lakeforge], and the migration that retires the old job files), plus a few lines that
a template typically changes between two releases, so that an update from A to B has something to merge in
every kind of file:

| what v0.3.0 changes                 | where                                                     |
|-------------------------------------|-----------------------------------------------------------|
| renames a file, with a migration    | databricks/serving_endpoint.json -> serving/champion.json |
| a line of the renamed file          | its tag key "environment" -> "target"                     |
| folds files into others (migration) | five databricks/jobs/*.json -> training.json, scoring.json |
| adds a question                     | `compute` (A's projects take its default on update)       |
| a table of settings                 | [tool.lakeforge]: owner, run_all, dev's `paused`          |
| a setting's default                 | config.py `drift_threshold` 0.25 -> 0.2                   |
| a README section                    | "Updating from the template" rewritten                    |
| adds a CI step                      | `ruff check` in ci.yml, on both CI platforms              |

v0.4.0 (B) replaces the user's data.py with the sources.py seam and renames pipeline.py and tests/test_data.py
(copier.yml's v0.4.0 migrations). An update from A to B crosses all three releases' migrations, as a user's
does. The edits name the exact text they expect in v0.3.0, which never changes; B_RENDERED names what B must
still render, so a template change that moves it fails loudly here.

v0.3.0 comes from git history because v0.4.0 changes too many files at once to be undone by text edits
faithfully. `.ci/run` runs in the clone it is started in, so that history is there in any full clone; a
shallow one is refused with a line saying how to fetch the commit.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# What copier reads.
TEMPLATE_FILES = ("copier.yml", "runtimes.yml", "names.yml", "template", "migrations", "tasks")
A_TAG, PREVIOUS_TAG, B_TAG = "v0.1.0", "v0.3.0", "v0.4.0"
PREVIOUS_COMMIT = "b9b99d31a23cbf4b09815ef8d5454501429e22fd"  # this repository's v0.3.0 release
WORKFLOWS_RELEASE = (
    "v0.3.0"  # the release that folded the five jobs into two workflows (copier.yml _migrations)
)
SEAM_RELEASE = "v0.4.0"  # the release of the sources.py seam, steps.py and test_synthetic.py

OLD_ENDPOINT = "databricks/serving_endpoint.json"
NEW_ENDPOINT = "databricks/serving/champion.json"
GITHUB_CI = "template/{% if ci == 'github' %}.github{% endif %}/workflows/ci.yml.jinja"
AZURE_CI = "template/{% if ci == 'azure-devops' %}pipelines{% endif %}/ci.yml.jinja"
README = "template/README.md.jinja"
PYPROJECT = "template/pyproject.toml.jinja"
JOBS_DIR = "template/databricks/jobs"
SERVING_DIR = "template/databricks/{% if serving %}serving{% endif %}"
# v0.3.0's questions that A did not ask (each template file that uses one reads it as false in A).
NEW_QUESTIONS = ("compute", "serving", "streaming", "data_profiling")

# A's single-task jobs: file stem -> (name, notebook, Quartz schedule, timeout in seconds).
OLD_JOBS = {
    "feature_pipeline": ("feature pipeline", "01_feature_pipeline", "0 0 2 * * ?", 3600),
    "training": ("training", "02_training", "0 0 3 ? * MON", 7200),
    "promotion": ("promotion", "03_promotion", "0 0 5 ? * MON", 1800),
    "batch_inference": ("batch inference", "04_batch_inference", "0 0 6 * * ?", 3600),
    "monitoring": ("monitoring", "05_monitoring", "0 0 7 * * ?", 1800),
}
OLD_JOB_FILES = tuple(f"databricks/jobs/{stem}.json" for stem in OLD_JOBS)
NEW_JOB_FILES = ("databricks/jobs/training.json", "databricks/jobs/scoring.json")
# v0.4.0, in a project with the default answers: the user's data.py gives way to the user's sources.py, and
# two template files are renamed (copier.yml's v0.4.0 migrations).
DATA = "src/churn_model/data.py"
SOURCES = "src/churn_model/sources.py"
RENAMED = {
    "src/churn_model/pipeline.py": "src/churn_model/steps.py",
    "tests/test_data.py": "tests/test_synthetic.py",
}


@dataclass(frozen=True)
class Edit:
    """In template file `path`, A has `a` where v0.3.0 has `b` (each exactly once)."""

    path: str
    b: str
    a: str


README_SECTION_A = """## Updating from the template

```bash
copier update --trust        # or: lakeforge update
```
"""

EDITS = (
    Edit(f"{SERVING_DIR}/champion.json.jinja", '"key": "target"', '"key": "environment"'),
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
    Edit(
        PYPROJECT,
        "# Who hears of a failed run (every job's on_failure) and of a retrain the scoring workflow starts; "
        'a target\'s\n# table may set its own `owner`.\nowner = "{{ author_email }}"\n'
        "# The workflows that `lakeforge run all` runs one after the other (the deploy pipeline, on staging, "
        "before\n# prod), by file name; the first failure stops it.\n"
        'run_all = ["training", "scoring"{% if streaming %}, "streaming_scoring"{% endif %}]\n',
        "# The jobs that `lakeforge run all` runs one after the other (the deploy pipeline, on staging, "
        "before prod),\n# by file name; the first failure stops it.\n"
        'run_all = ["feature_pipeline", "training", "promotion", "batch_inference", "monitoring"]\n',
    ),
    Edit(
        PYPROJECT,
        "{%- if target == 'dev' %}\n"
        "# The schedules are paused here: dev's workflows run only when started (`lakeforge run`).\n"
        "paused = true\n{%- endif %}\n",
        "",
    ),
)

# How B's changes read in a project generated with the default answers (ci=github).
B_RENDERED = {
    "src/churn_model/config.py": "    drift_threshold: float = _setting(\n        0.2,",
    ".github/workflows/ci.yml": "      - run: uv run ruff check\n",
    "README.md": "lakeforge update             # or, without lakeforge: copier update --trust --defaults\n",
    NEW_ENDPOINT: '"key": "target"',
    "databricks/jobs/training.json": '"task_key": "promote"',
    "databricks/jobs/scoring.json": '"run_job_task"',
    "pyproject.toml": 'run_all = ["training", "scoring"]',
}
A_RENDERED = {
    "src/churn_model/config.py": "    drift_threshold: float = 0.25\n",
    "README.md": "copier update --trust        # or: lakeforge update\n",
    OLD_ENDPOINT: '"key": "environment"',
    "databricks/jobs/training.json": '"existing_cluster_id"',
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
    """A git repository at `repo` holding A (tag v0.1.0), v0.3.0 and B (v0.4.0: the template in `source`)."""
    repo.mkdir(parents=True)
    _put_release(repo, source, PREVIOUS_COMMIT)
    _undo_to_a(repo)
    git(repo, "init", "-q")
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "lakeforge template A")
    git(repo, "tag", A_TAG)
    _put_release(repo, source, PREVIOUS_COMMIT)
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", f"lakeforge template {PREVIOUS_TAG}, as released")
    git(repo, "tag", PREVIOUS_TAG)
    _put_b(repo, source)
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "lakeforge template B: the sources.py seam, steps.py")
    git(repo, "tag", B_TAG)
    return repo


def _put_release(repo: Path, source: Path, commit: str) -> None:
    """The template files as `source`'s git history holds them at `commit`, in place of any in `repo`."""
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=source, capture_output=True, check=False
    )
    if found.returncode != 0:
        raise RuntimeError(
            f"{source} has no commit {commit[:7]} (the {PREVIOUS_TAG} release the update tests update from): "
            "a shallow clone? `git fetch --unshallow` fetches the history"
        )
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "--", *TEMPLATE_FILES],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout
    _remove(repo)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(repo, filter="data")


def _put_b(repo: Path, source: Path) -> None:
    _remove(repo)
    for name in TEMPLATE_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source / name, repo / name)


def _remove(repo: Path) -> None:
    for name in TEMPLATE_FILES:
        target = repo / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _undo_to_a(repo: Path) -> None:
    for edit in EDITS:
        _replace(repo / edit.path, edit.b, edit.a)
    readme = repo / README
    text = readme.read_text()
    start = text.index("## Updating from the template\n")
    readme.write_text(text[:start] + README_SECTION_A)
    # The rename: A has the old name and no migration (copier.yml's comments are not needed in A).
    serving = repo / SERVING_DIR
    (serving / "champion.json.jinja").rename(repo / "template" / f"{OLD_ENDPOINT}.jinja")
    serving.rmdir()
    # The workflows: A has the five single-task jobs, none of v0.3.0's new questions and no migrations at all.
    jobs = repo / JOBS_DIR
    for path in jobs.glob("*.json.jinja"):
        path.unlink()
    for stem, job in OLD_JOBS.items():
        (jobs / f"{stem}.json.jinja").write_text(old_job(*job))
    spec = yaml.safe_load((repo / "copier.yml").read_text())
    assert "_migrations" in spec, "v0.3.0's copier.yml has no _migrations"
    assert WORKFLOWS_RELEASE in {m["version"] for m in spec["_migrations"]}, (
        "v0.3.0 has no workflows migration"
    )
    del spec["_migrations"]
    for question in NEW_QUESTIONS:
        del spec[question]
    (repo / "copier.yml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1000))


def old_job(title: str, notebook: str, cron: str, timeout: int) -> str:
    """A's job file (.json.jinja) for one notebook, as the release before the workflows shipped it."""
    parameters = ",\n".join(
        f'    {{\n      "name": "{name}",\n      "default": "${{{name}}}"\n    }}'
        for name in ("catalog", "schema", "experiment", "model")
    )
    return f"""{{
  "name": "[${{target}}] {{{{ project_slug }}}} {title}",
  "tags": {{
    "project": "{{{{ project_slug }}}}",
    "target": "${{target}}"
  }},
  "schedule": {{
    "quartz_cron_expression": "{cron}",
    "timezone_id": "UTC",
    "pause_status": "UNPAUSED"
  }},
  "max_concurrent_runs": 1,
  "timeout_seconds": {timeout},
  "email_notifications": {{}},
  "parameters": [
{parameters}
  ],
  "tasks": [
    {{
      "task_key": "{notebook[3:]}",
      "notebook_task": {{
        "notebook_path": "${{workspace_root}}/notebooks/{notebook}",
        "source": "WORKSPACE"
      }},
      "existing_cluster_id": "${{cluster_id}}",
      "timeout_seconds": {timeout}
    }}
  ]
}}
"""


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (
        f"{path} must hold {old!r} exactly once (it holds it {text.count(old)} times)"
    )
    path.write_text(text.replace(old, new))
