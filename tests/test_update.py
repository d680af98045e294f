"""`copier update` and `lakeforge update` between two real template releases: no user edit is ever lost.

Real copier, real git: `tests/template_versions.py` builds a throwaway template repository with release A
(v0.1.0), v0.3.0 (this repository's own release, from its history: it renames a file with a migration, folds
five job files into two workflows with another, changes a setting, a README section and adds a CI step) and
B (v0.4.0, this checkout's template: the user's data.py gives way to sources.py, two files are renamed). Each
test generates a project at A (or v0.3.0) into its own git repository (the template's first-commit task makes
it one), edits and commits like a user, then updates to B, crossing every release's migrations on the way.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from itertools import product
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from copier.errors import DirtyLocalWarning
from lakeforge.errors import LakeforgeError
from lakeforge.update import EXIT_CONFLICTS, UpdateResult, update_project

from tests.generated_project import project_env, uv
from tests.lakeforge_cli import run_lakeforge
from tests.template_versions import (
    A_RENDERED,
    A_TAG,
    B_RENDERED,
    B_TAG,
    DATA,
    NEW_ENDPOINT,
    NEW_JOB_FILES,
    OLD_ENDPOINT,
    OLD_JOB_FILES,
    PREVIOUS_TAG,
    RENAMED,
    ROOT,
    SEAM_RELEASE,
    SOURCES,
    WORKFLOWS_RELEASE,
    build_versions,
    git,
)

COPIER = str(Path(sys.executable).with_name("copier"))
MOVE = ROOT / "migrations" / "move.py"
RETIRE = ROOT / "migrations" / "retire.py"
# ${{ }} is GitHub's and Azure DevOps' own syntax, {{tasks.X.values.Y}} a Databricks job's dynamic value.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{(?!tasks\.)|\{%|\{#")
RETIRED = [path for path in OLD_JOB_FILES if path not in NEW_JOB_FILES]  # the four files B no longer has
MARKERS = ("<<<<<<< before updating", ">>>>>>> after updating")


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_versions(tmp_path_factory.mktemp("template") / "lakeforge")


def generate(versions: Path, dest: Path, data: dict[str, Any] | None = None, ref: str = A_TAG) -> Path:
    """A project at `ref`, made by copier with its tasks: a git repository with one commit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(
            str(versions), str(dest), data=data or {}, defaults=True, unsafe=True, vcs_ref=ref, quiet=True
        )
    return dest


def edit(project: Path, path: str, old: str, new: str) -> None:
    file = project / path
    text = file.read_text()
    assert text.count(old) == 1, f"{path} must hold {old!r} once"
    file.write_text(text.replace(old, new))


def commit(project: Path, message: str = "my changes") -> None:
    git(project, "add", "--all")
    git(project, "commit", "-q", "-m", message)


def tree(project: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file outside .git: its bytes and whether it is executable."""
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] == ".git" or not path.is_file():
            continue
        files[relative.as_posix()] = (path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return files


def status(project: Path) -> str:
    return git(project, "status", "--porcelain")


def unmerged(project: Path) -> str:
    return git(project, "ls-files", "--unmerged")


def marked(project: Path) -> list[str]:
    """Files holding copier's inline conflict markers."""
    found = []
    for name, (content, _) in tree(project).items():
        lines = content.decode(errors="replace").splitlines()
        if any(line.rstrip() in MARKERS for line in lines):
            found.append(name)
    return found


def jinja_leftovers(project: Path) -> list[str]:
    found = []
    for name, (content, _) in tree(project).items():
        for number, line in enumerate(content.decode(errors="replace").splitlines(), 1):
            if JINJA_LEFTOVER.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def assert_b_applied(project: Path) -> None:
    for path, text in B_RENDERED.items():
        assert text in (project / path).read_text(), f"B's change is missing from {path}: {text!r}"
    for path, text in A_RENDERED.items():
        if (project / path).exists():
            assert text not in (project / path).read_text(), f"A's {text!r} is still in {path}"
    assert not (project / OLD_ENDPOINT).exists()
    assert jobs_of(project) == sorted(NEW_JOB_FILES)


def plain_copier_update(project: Path) -> subprocess.CompletedProcess[str]:
    """`copier update` to the newest release, without lakeforge."""
    return subprocess.run(
        [COPIER, "update", "--trust", "--defaults", "--vcs-ref", B_TAG, "--quiet", str(project)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )


def jobs_of(project: Path) -> list[str]:
    return sorted(p.relative_to(project).as_posix() for p in (project / "databricks/jobs").glob("*.json"))


# --------------------------------------------------------------------------------------------------------
# The first-commit task
# --------------------------------------------------------------------------------------------------------
def test_a_new_project_is_a_git_repository_with_one_commit_even_without_a_git_identity(
    versions: Path, tmp_path: Path
) -> None:
    """Plain `copier copy` in a process of its own, with no git identity configured anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "EMAIL"}
    env |= {"GIT_CONFIG_GLOBAL": str(tmp_path / "no-gitconfig"), "GIT_CONFIG_NOSYSTEM": "1"}
    project = tmp_path / "churn-model"
    done = subprocess.run(
        [COPIER, "copy", "--trust", "--defaults", "--vcs-ref", A_TAG, "-d", "author_name=Ada Team"]
        + [str(versions), str(project)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert git(project, "log", "--format=%an <%ae>|%s").splitlines() == [
        f"Ada Team <data-science@example.com>|Generate from lakeforge {A_TAG}"
    ]
    assert git(project, "branch", "--show-current").strip() == "main"
    assert status(project) == "", "everything generated is committed"
    assert ".copier-answers.yml" in git(project, "ls-files")


def test_a_project_in_a_folder_of_a_larger_repository_is_left_to_it_and_updates(
    versions: Path, tmp_path: Path
) -> None:
    monorepo = tmp_path / "monorepo"
    monorepo.mkdir()
    git(monorepo, "init", "-q")
    project = generate(versions, monorepo / "models" / "churn-model")
    assert not (project / ".git").exists()
    assert git(monorepo, "rev-list", "--all") == "", "nothing was committed in the user's repository"
    edit(project, OLD_ENDPOINT, *WORKLOAD)
    edit(project, "src/churn_model/config.py", *CLASHES["src/churn_model/config.py"][:2])
    commit(monorepo)
    result = update_project(project, to=B_TAG)
    assert result.conflicts == ("src/churn_model/config.py",), "paths are the project's own"
    assert WORKLOAD[1] in (project / NEW_ENDPOINT).read_text()
    assert unmerged(monorepo).count("\t") == 3, "only config.py is unmerged (its three stages)"


# --------------------------------------------------------------------------------------------------------
# 1 and 6: an untouched project
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def untouched(versions: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, UpdateResult]:
    project = generate(versions, tmp_path_factory.mktemp("untouched") / "churn-model")
    return project, update_project(project, to=B_TAG)


def test_an_untouched_project_gets_every_change_and_no_conflict(untouched: tuple[Path, UpdateResult]) -> None:
    project, result = untouched
    assert result.clean, result
    assert (result.from_version, result.to_version) == (A_TAG, B_TAG)
    assert_b_applied(project)
    assert marked(project) == [] and unmerged(project) == ""
    changed = {change.path for change in result.changes}
    assert {
        ".copier-answers.yml",
        "src/churn_model/config.py",
        "README.md",
        ".github/workflows/ci.yml",
    } <= changed
    assert len(git(project, "log", "--oneline").splitlines()) == 1, "the first-commit task ran on update"
    (rename,) = [change for change in result.changes if change.path == NEW_ENDPOINT]
    assert (rename.status[0], rename.renamed_from) == ("R", OLD_ENDPOINT), "the migration moved it (git mv)"
    # The five single-task jobs became the two workflows: the four files B lacks are gone, not left to deploy.
    assert jobs_of(project) == sorted(NEW_JOB_FILES)
    assert {change.path: change.status.strip() for change in result.changes if change.path in RETIRED} == {
        path: "D" for path in RETIRED
    }
    assert_seam_release_applied(project, result)


def assert_seam_release_applied(project: Path, result: UpdateResult) -> None:
    """v0.4.0 in a project whose data.py, pipeline.py and test_data.py were never edited."""
    changes = {change.path: change for change in result.changes}
    assert changes[DATA].status.strip() == "D", "the untouched data.py is gone"
    assert (project / SOURCES).is_file() and not (project / DATA).exists()
    for old, new in RENAMED.items():
        assert (changes[new].status[0], changes[new].renamed_from) == ("R", old), f"{old} was not moved"


@pytest.fixture(scope="module")
def untouched_previous(versions: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, UpdateResult]:
    """A project made at v0.3.0, the last release, updated to B as it was."""
    project = generate(versions, tmp_path_factory.mktemp("untouched") / "churn-model", ref=PREVIOUS_TAG)
    return project, update_project(project, to=B_TAG)


def test_an_untouched_project_of_the_last_release_gets_the_seam_and_no_conflict(
    untouched_previous: tuple[Path, UpdateResult],
) -> None:
    project, result = untouched_previous
    assert result.clean, result
    assert (result.from_version, result.to_version) == (PREVIOUS_TAG, B_TAG)
    assert marked(project) == [] and unmerged(project) == ""
    assert_seam_release_applied(project, result)


@pytest.mark.parametrize("start", ["untouched", "untouched_previous"])
def test_an_updated_untouched_project_is_identical_to_a_fresh_copy(
    start: str, request: pytest.FixtureRequest, versions: Path, tmp_path: Path
) -> None:
    """Every file outside .git, byte for byte and executable bit, .copier-answers.yml (`_commit`) included."""
    project, _ = request.getfixturevalue(start)
    fresh = generate(versions, tmp_path / "churn-model", ref=B_TAG)
    updated, copied = tree(project), tree(fresh)
    assert sorted(updated) == sorted(copied)
    different = [name for name in updated if updated[name] != copied[name]]
    assert different == []


@pytest.mark.slow
def test_an_updated_untouched_project_passes_its_own_tests(
    untouched: tuple[Path, UpdateResult], tmp_path: Path
) -> None:
    project = tmp_path / "churn-model"
    shutil.copytree(untouched[0], project)
    result = subprocess.run(
        [uv(), "run", "--directory", str(project), "pytest", "-q", "-p", "no:cacheprovider"],
        env=project_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = f"exit {result.returncode}\n{(result.stdout + result.stderr)[-6000:]}"
    assert result.returncode == 0, output
    assert re.search(r"\d+ passed", result.stdout), output


# --------------------------------------------------------------------------------------------------------
# 2: the user's own edits, where the template changed nothing
# --------------------------------------------------------------------------------------------------------
USER_EDITS = [
    # (file, template text, the user's text): lines no release after A changes
    ("databricks/cluster.json", '"max_workers": 2', '"max_workers": 8'),
    ("src/churn_model/plots.py", 'color="grey"', 'color="black"'),
    (
        "README.md",
        "## Monitoring, retraining and rollback\n",
        "## Monitoring, retraining and rollback\n\nOur on-call rota reads the drift report every Monday.\n",
    ),
    # The user's own data.py, which v0.4.0 no longer reads: an edited one is kept (its migration).
    (DATA, "HISTORY_DAYS = 90", "HISTORY_DAYS = 180"),
]
USER_FILE = ("src/churn_model/crm.py", '"""Reads our CRM export."""\n')


def make_user_edits(project: Path) -> None:
    for path, old, new in USER_EDITS:
        edit(project, path, old, new)
    (project / USER_FILE[0]).write_text(USER_FILE[1])
    commit(project)


def assert_user_edits_intact(project: Path) -> None:
    for path, _, new in USER_EDITS:
        assert new in (project / path).read_text(), f"the user's edit of {path} is gone"
    assert (project / USER_FILE[0]).read_text() == USER_FILE[1]


def test_edits_where_the_template_changed_nothing_all_survive(versions: Path, tmp_path: Path) -> None:
    project = generate(versions, tmp_path / "churn-model")
    make_user_edits(project)
    result = update_project(project, to=B_TAG)
    assert result.clean, result
    assert_user_edits_intact(project)
    assert_b_applied(project)
    assert marked(project) == [] and unmerged(project) == ""


# --------------------------------------------------------------------------------------------------------
# 3: the user changed the lines the template changed
# --------------------------------------------------------------------------------------------------------
CLASHES = {
    # file: (A's text, the user's text, B's text): B changed the same lines
    "src/churn_model/config.py": (
        "drift_threshold: float = 0.25",
        "drift_threshold: float = 0.3",
        "drift_threshold: float = _setting(",  # v0.4.0's settings carry their help and range
    ),
    "README.md": (
        "copier update --trust        # or: lakeforge update",
        "make update                  # our wrapper",
        "lakeforge update             # or, without lakeforge: copier update --trust --defaults",
    ),
    ".github/workflows/ci.yml": (
        "      - run: uv sync\n",
        "      - run: uv sync\n      - run: uv run mypy src\n",
        "      - run: uv run ruff check\n",
    ),
}


def test_edits_to_the_lines_the_template_changed_are_conflicts_in_exactly_those_files(
    versions: Path, tmp_path: Path
) -> None:
    project = generate(versions, tmp_path / "churn-model")
    for path, (old, mine, _) in CLASHES.items():
        edit(project, path, old, mine)
    commit(project)
    result = run_lakeforge("update", project, "--to", B_TAG)
    assert result.returncode == EXIT_CONFLICTS, result.stdout + result.stderr
    assert sorted(marked(project)) == sorted(CLASHES)
    for path, (_, mine, theirs) in CLASHES.items():
        text = (project / path).read_text()
        conflict = text[text.index(MARKERS[0]) : text.index(MARKERS[1])]
        mine, theirs = mine.splitlines()[-1], theirs.splitlines()[-1]  # the lines that differ
        assert mine in conflict, f"the user's {mine!r} was overwritten in {path}"
        assert theirs in conflict, f"the template's {theirs!r} is missing from {path}"
    summary = result.stdout.split("Conflicts to resolve (3):")
    assert len(summary) == 2, result.stdout
    assert sorted(re.findall(r"^  (\S+)  \(marked", summary[1], re.MULTILINE)) == sorted(CLASHES)
    assert f"template {A_TAG} -> {B_TAG}" in result.stdout
    # Everything else still merged: B's rename and its other changes are there.
    assert (project / NEW_ENDPOINT).is_file() and not (project / OLD_ENDPOINT).exists()


# --------------------------------------------------------------------------------------------------------
# 4: a dirty working tree, or no git at all
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dirt", ["modified", "untracked", "staged"])
def test_a_dirty_working_tree_is_refused_and_nothing_is_touched(
    versions: Path, tmp_path: Path, dirt: str
) -> None:
    project = generate(versions, tmp_path / "churn-model")
    if dirt == "untracked":
        (project / "notes.txt").write_text("to do\n")
    else:
        edit(project, "src/churn_model/flavour.py", '"max_iter": 200', '"max_iter": 300')
        if dirt == "staged":
            git(project, "add", "--all")
    before = (
        tree(project),
        status(project),
        git(project, "rev-parse", "HEAD"),
        git(project, "ls-files", "-s"),
    )
    result = run_lakeforge("update", project, "--to", B_TAG)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "\n" not in message and "uncommitted changes" in message and "Traceback" not in message, message
    assert result.stdout == ""
    after = (
        tree(project),
        status(project),
        git(project, "rev-parse", "HEAD"),
        git(project, "ls-files", "-s"),
    )
    assert after == before


def test_a_project_outside_git_is_refused_and_nothing_is_touched(versions: Path, tmp_path: Path) -> None:
    project = generate(versions, tmp_path / "churn-model")
    shutil.rmtree(project / ".git")
    before = tree(project)
    with pytest.raises(LakeforgeError, match="not in a git repository"):
        update_project(project, to=B_TAG)
    assert tree(project) == before


def test_a_folder_that_is_not_a_generated_project_is_refused(tmp_path: Path) -> None:
    result = run_lakeforge("update", tmp_path)
    assert result.returncode == 1
    assert "has no .copier-answers.yml" in result.stderr and "\n" not in result.stderr.strip()


# --------------------------------------------------------------------------------------------------------
# 5: a file the template renames (with the migration)
# --------------------------------------------------------------------------------------------------------
WORKLOAD = ('"workload_size": "Small"', '"workload_size": "Medium"')  # a line the template did not change


def test_an_edit_to_a_renamed_file_survives_under_the_new_name_with_plain_copier(
    versions: Path, tmp_path: Path
) -> None:
    """Plain `copier update`, without lakeforge: the migration is the template's, not the CLI's."""
    project = generate(versions, tmp_path / "churn-model")
    edit(project, OLD_ENDPOINT, *WORKLOAD)
    commit(project)
    done = plain_copier_update(project)
    assert done.returncode == 0, done.stderr
    endpoint = (project / NEW_ENDPOINT).read_text()
    assert WORKLOAD[1] in endpoint, "the user's edit is lost"
    assert B_RENDERED[NEW_ENDPOINT] in endpoint, "the template's change to the renamed file is lost"
    assert not (project / OLD_ENDPOINT).exists()
    assert marked(project) == [] and unmerged(project) == "", "a clean merge, no conflict"
    moved = re.compile(rf"^R. {OLD_ENDPOINT} -> {NEW_ENDPOINT}$", re.MULTILINE)
    assert moved.search(status(project)), status(project)
    assert "migration: merged databricks/serving/champion.json cleanly" in done.stderr


def test_an_edit_to_a_renamed_file_conflicts_only_where_the_template_changed_the_same_line(
    versions: Path, tmp_path: Path
) -> None:
    project = generate(versions, tmp_path / "churn-model")
    edit(project, OLD_ENDPOINT, *WORKLOAD)
    edit(project, OLD_ENDPOINT, '"key": "environment"', '"key": "stage"')
    commit(project)
    result = update_project(project, to=B_TAG)
    assert result.conflicts == (NEW_ENDPOINT,)
    endpoint = (project / NEW_ENDPOINT).read_text()
    conflict = endpoint[endpoint.index(MARKERS[0]) : endpoint.index(MARKERS[1])]
    assert '"key": "stage"' in conflict and '"key": "target"' in conflict
    assert WORKLOAD[1] in endpoint and WORKLOAD[1] not in conflict, (
        "the other edit merged outside the conflict"
    )
    assert endpoint.count(MARKERS[0]) == 1
    # Merge tools get the real common ancestor: the old version's file, not an empty one.
    ancestor = git(project, "show", f":1:{NEW_ENDPOINT}")
    assert '"key": "environment"' in ancestor and WORKLOAD[0] in ancestor


# --------------------------------------------------------------------------------------------------------
# 5b: files the template folds into others (v0.3.0: five jobs into two workflows, with the retire migration)
# --------------------------------------------------------------------------------------------------------
MONITORING = "databricks/jobs/monitoring.json"
TRAINING = "databricks/jobs/training.json"
MY_TIMEOUT = ('"timeout_seconds": 1800,\n', '"timeout_seconds": 2700,\n')  # the job-level one (first)
MY_CRON = ('"0 0 3 ? * MON"', '"0 30 4 ? * MON"')  # training's schedule: a line B keeps


def test_an_edited_job_file_the_workflows_replace_is_kept_with_one_line_saying_where_its_task_went(
    versions: Path, tmp_path: Path
) -> None:
    """Plain `copier update`: copier itself would delete the edited file; the migration puts it back."""
    project = generate(versions, tmp_path / "churn-model")
    text = (project / MONITORING).read_text()
    (project / MONITORING).write_text(text.replace(*MY_TIMEOUT, 1))
    edit(project, TRAINING, *MY_CRON)
    commit(project)
    mine = (project / MONITORING).read_bytes()
    done = plain_copier_update(project)
    assert done.returncode == 0, done.stderr
    assert (project / MONITORING).read_bytes() == mine, "the user's edited job file is kept as it was"
    assert jobs_of(project) == sorted([*NEW_JOB_FILES, MONITORING]), "the unedited old job files are gone"
    notes = [line for line in done.stderr.splitlines() if MONITORING in line]
    assert notes == [
        f"migration: kept {MONITORING} because you edited it; databricks/jobs/scoring.json now runs its "
        f"notebook: fold your edits into databricks/jobs/scoring.json, then delete {MONITORING} (lakeforge "
        "deploys every job file, so the old job runs beside the workflow until then)"
    ]
    # training.json is the workflow now; the user's edit to a line B kept merged into it, and they hear of it.
    training = json.loads((project / TRAINING).read_text())
    assert training["schedule"]["quartz_cron_expression"] == MY_CRON[1].strip('"')
    assert [task["task_key"] for task in training["tasks"]] == ["features", "train", "promote", "deploy"]
    assert (
        f"migration: {TRAINING} is now a workflow; your edits to it were merged in, check them" in done.stderr
    )
    assert marked(project) == [] and unmerged(project) == "", "a clean merge, no conflict"


def test_an_untouched_project_hears_nothing_of_the_retired_job_files(versions: Path, tmp_path: Path) -> None:
    project = generate(versions, tmp_path / "churn-model")
    done = plain_copier_update(project)
    assert done.returncode == 0, done.stderr
    assert jobs_of(project) == sorted(NEW_JOB_FILES)
    assert "databricks/jobs/" not in done.stderr, done.stderr
    assert not (project / DATA).exists() and DATA not in done.stderr, "nor of the retired data.py"


JOBS_NOTE = "{new} now runs its notebook: fold your edits into {new}, then delete {old}"


def retire(project: Path, versions: Path, *pairs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(RETIRE),
            f"--template={versions}",
            f"--from={A_TAG}",
            f"--note={JOBS_NOTE}",
            *pairs,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )


def test_the_retire_migration_deletes_only_unedited_files_and_then_does_nothing(
    versions: Path, tmp_path: Path
) -> None:
    """Run by hand on a project at A, where copier deleted nothing: it deletes what it must, once."""
    project = generate(versions, tmp_path / "churn-model")
    (project / MONITORING).write_text((project / MONITORING).read_text().replace(*MY_TIMEOUT, 1))
    commit(project)
    pairs = [
        f"{path}=databricks/jobs/scoring.json"
        for path in (MONITORING, "databricks/jobs/batch_inference.json")
    ]
    first = retire(project, versions, *pairs)
    assert jobs_of(project) == sorted([*OLD_JOB_FILES[:3], MONITORING]), "only the unedited one is deleted"
    assert first.stderr.count("migration: kept databricks/jobs/monitoring.json because you edited it") == 1
    retired = tree(project)
    second = retire(project, versions, *pairs)
    assert tree(project) == retired and second.stderr == first.stderr


def test_copier_yml_retires_every_old_job_file_after_the_workflows_release() -> None:
    spec = yaml.safe_load((ROOT / "copier.yml").read_text())
    (migration,) = [m for m in spec["_migrations"] if m["version"] == WORKFLOWS_RELEASE]
    assert migration["when"] == "{{ _stage == 'after' }}"
    assert migration["command"][:2] == [
        "{{ _copier_python }}",
        "{{ _copier_conf.src_path }}/migrations/retire.py",
    ]
    pairs = dict(arg.split("=", 1) for arg in migration["command"] if not arg.startswith(("-", "{{")))
    assert sorted(pairs) == sorted(OLD_JOB_FILES)
    assert set(pairs.values()) == set(NEW_JOB_FILES)


# --------------------------------------------------------------------------------------------------------
# 7: every combination of the options that shape the tree
# --------------------------------------------------------------------------------------------------------
COMBINATIONS = [
    {"cloud": cloud, "ci": ci, "registry": registry, "feature_store": feature_store}
    for cloud, ci, registry, feature_store in product(
        ["azure", "aws", "gcp"], ["github", "azure-devops"], ["unity-catalog", "workspace"], [False, True]
    )
]
# Four of them hold every value of every option and every pair of values of ci, registry and feature_store
# (an orthogonal array): the quick check. The other twenty are `slow` (an update takes seconds).
QUICK = [
    {"cloud": "azure", "ci": "github", "registry": "unity-catalog", "feature_store": False},
    {"cloud": "aws", "ci": "github", "registry": "workspace", "feature_store": True},
    {"cloud": "gcp", "ci": "azure-devops", "registry": "unity-catalog", "feature_store": True},
    {"cloud": "aws", "ci": "azure-devops", "registry": "workspace", "feature_store": False},
]
REST = [combo for combo in COMBINATIONS if combo not in QUICK]


def _combo_id(combo: dict[str, Any]) -> str:
    return "-".join(str(v) if not isinstance(v, bool) else ("fs" if v else "nofs") for v in combo.values())


def _update_one(versions: str, scratch: str, combo: dict[str, Any]) -> list[str]:
    """Copy at A, update to B, and say what is wrong (run in a worker process)."""
    project = generate(Path(versions), Path(scratch) / _combo_id(combo) / "project", data=combo)
    result = update_project(project, to=B_TAG)
    problems = [f"conflict in {path}" for path in result.conflicts + result.rejects]
    problems += [f"unmerged: {line}" for line in unmerged(project).splitlines()]
    problems += [f"Jinja left: {line}" for line in jinja_leftovers(project)]
    if not (project / NEW_ENDPOINT).is_file() or (project / OLD_ENDPOINT).exists():
        problems.append("the serving endpoint was not moved")
    if jobs_of(project) != sorted(NEW_JOB_FILES):
        problems.append(f"the job files are {jobs_of(project)}")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    problems += [f"answer {k} became {answers.get(k)!r}" for k, v in combo.items() if answers.get(k) != v]
    if answers["_commit"] != B_TAG:
        problems.append(f"_commit is {answers['_commit']}")
    return problems


def update_all(versions: Path, scratch: Path, combos: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The updates run in parallel processes (copier changes the working directory: no threads)."""
    workers = max(2, min(len(combos), os.cpu_count() or 2))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {_combo_id(c): pool.submit(_update_one, str(versions), str(scratch), c) for c in combos}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def quick_updates(versions: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return update_all(versions, tmp_path_factory.mktemp("combinations"), QUICK)


@pytest.fixture(scope="module")
def other_updates(versions: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return update_all(versions, tmp_path_factory.mktemp("combinations"), REST)


def test_the_quick_combinations_cover_every_value_and_pair() -> None:
    for option in COMBINATIONS[0]:
        assert {c[option] for c in QUICK} == {c[option] for c in COMBINATIONS}, option
    for first, second in [("ci", "registry"), ("ci", "feature_store"), ("registry", "feature_store")]:
        assert len({(c[first], c[second]) for c in QUICK}) == 4, (first, second)


@pytest.mark.parametrize("combo", QUICK, ids=_combo_id)
def test_combinations_update_cleanly(quick_updates: dict[str, list[str]], combo: dict) -> None:
    assert quick_updates[_combo_id(combo)] == []


@pytest.mark.slow
@pytest.mark.parametrize("combo", REST, ids=_combo_id)
def test_every_other_combination_updates_cleanly(other_updates: dict[str, list[str]], combo: dict) -> None:
    assert other_updates[_combo_id(combo)] == []


# --------------------------------------------------------------------------------------------------------
# 8: changing an answer on update
# --------------------------------------------------------------------------------------------------------
def test_switching_ci_platform_replaces_its_files_and_keeps_every_other_edit(
    versions: Path, tmp_path: Path
) -> None:
    project = generate(versions, tmp_path / "churn-model", data={"ci": "azure-devops"})
    assert (project / "pipelines/ci.yml").is_file() and not (project / ".github").exists()
    make_user_edits(project)
    result = update_project(project, to=B_TAG, data={"ci": "github"})
    assert result.clean, result
    assert not (project / "pipelines").exists(), "the old platform's files are gone"
    for name in ["ci.yml", "deploy.yml", "template-update.yml"]:
        assert (project / ".github/workflows" / name).is_file(), f".github/workflows/{name} is missing"
    assert_user_edits_intact(project)
    assert_b_applied(project)
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["ci"] == "github"
    assert ".github/workflows/" in (project / "README.md").read_text(), "the README follows the new answer"


def test_the_compute_answer_given_on_update_shapes_the_workflows(versions: Path, tmp_path: Path) -> None:
    """A's projects had no `compute` question: the update asks it (here answered with --data)."""
    project = generate(versions, tmp_path / "churn-model")
    result = update_project(project, to=B_TAG, data={"compute": "serverless"})
    assert result.clean, result
    assert jobs_of(project) == sorted(NEW_JOB_FILES)
    for path in NEW_JOB_FILES:
        job = json.loads((project / path).read_text())
        assert [e["environment_key"] for e in job["environments"]] == ["default"], path
        notebook_tasks = [task for task in job["tasks"] if "notebook_task" in task]
        assert {task.get("environment_key") for task in notebook_tasks} == {"default"}, path
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["compute"] == "serverless"


# --------------------------------------------------------------------------------------------------------
# Files that are the user's (_skip_if_exists)
# --------------------------------------------------------------------------------------------------------
USER_OWNED = (SOURCES, "src/churn_model/model.py")  # copier.yml's _skip_if_exists, as rendered


def test_sources_py_and_model_py_are_never_changed_by_an_update(versions: Path, tmp_path: Path) -> None:
    """A later release changes both; a project keeps its own, edited (sources.py) or not (model.py)."""
    repo = tmp_path / "template"
    git(tmp_path, "clone", "-q", str(versions), str(repo))
    for path in USER_OWNED:
        template_file = repo / "template" / path.replace("churn_model", "{{package_name}}")
        template_file.write_text(template_file.read_text() + "# changed in v0.4.1\n")
    commit(repo, "C: the seams change")
    git(repo, "tag", "v0.4.1")
    project = generate(repo, tmp_path / "churn-model", ref=B_TAG)
    (project / SOURCES).write_text((project / SOURCES).read_text() + "# our CRM tables land at 02:00\n")
    commit(project)
    before = {path: (project / path).read_bytes() for path in USER_OWNED}
    result = update_project(project, to="v0.4.1")
    assert result.clean and result.to_version == "v0.4.1"
    assert {path: (project / path).read_bytes() for path in USER_OWNED} == before
    assert not set(USER_OWNED) & {change.path for change in result.changes}


# --------------------------------------------------------------------------------------------------------
# 9: v0.4.0, the data seam: data.py retired, pipeline.py and tests/test_data.py renamed (with migrations)
# --------------------------------------------------------------------------------------------------------
STEPS = RENAMED["src/churn_model/pipeline.py"]
MY_DOCSTRING = (  # a line of pipeline.py that steps.py keeps
    '"""Make the champion before the current one champion again (the registry alone: no Spark session)."""',
    '"""Back to the previous champion; our runbook: wiki/churn/rollback."""',
)
DATA_NOTE = (
    f"migration: kept {DATA} because you edited it; the loop no longer reads it: move your source into "
    f"{SOURCES} (lakeforge's docs: Bring your own data), then delete {DATA}"
)


def test_an_edited_data_py_is_kept_with_one_line_and_edits_to_pipeline_py_land_in_steps_py(
    versions: Path, tmp_path: Path
) -> None:
    """Plain `copier update` from the last release: copier alone would delete both files, edits and all."""
    project = generate(versions, tmp_path / "churn-model", ref=PREVIOUS_TAG)
    edit(project, DATA, "HISTORY_DAYS = 90", "HISTORY_DAYS = 180")
    edit(project, "src/churn_model/pipeline.py", *MY_DOCSTRING)
    commit(project)
    mine = (project / DATA).read_bytes()
    done = plain_copier_update(project)
    assert done.returncode == 0, done.stderr
    assert (project / DATA).read_bytes() == mine, "the user's data.py is kept as it was"
    assert [line for line in done.stderr.splitlines() if DATA in line] == [DATA_NOTE]
    assert (project / SOURCES).is_file(), "the seam arrives beside it"
    steps = (project / STEPS).read_text()
    assert MY_DOCSTRING[1] in steps, "the user's edit of pipeline.py is lost"
    assert "def _connect(" in steps, "the template's steps.py is not there"
    assert not (project / "src/churn_model/pipeline.py").exists()
    assert marked(project) == [] and unmerged(project) == "", "a clean merge, no conflict"
    assert f"migration: merged {STEPS} cleanly" in done.stderr


def test_every_file_the_seam_release_drops_is_moved_or_retired(versions: Path, tmp_path: Path) -> None:
    """What v0.3.0 renders and B does not (copier would delete it, edited or not) has a v0.4.0 migration."""
    rendered = {}
    for ref in (PREVIOUS_TAG, B_TAG):
        project = tmp_path / ref
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DirtyLocalWarning)
            copier.run_copy(
                str(versions),
                str(project),
                data={"serving": True, "streaming": True, "data_profiling": True},
                defaults=True,
                unsafe=True,
                skip_tasks=True,
                vcs_ref=ref,
                quiet=True,
            )
        rendered[ref] = {
            path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()
        }
    dropped = sorted(rendered[PREVIOUS_TAG] - rendered[B_TAG])
    spec = yaml.safe_load((ROOT / "copier.yml").read_text())
    arguments = [arg for m in spec["_migrations"] if m["version"] == SEAM_RELEASE for arg in m["command"]]
    handled = " ".join(arguments).replace("{{ package_name }}", "churn_model")
    handled = handled.replace("{package_name}", "churn_model")
    assert DATA in dropped
    assert [path for path in dropped if path not in handled] == []


# --------------------------------------------------------------------------------------------------------
# The migration script on its own: idempotent, and safe without git
# --------------------------------------------------------------------------------------------------------
def move(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MOVE), *args], cwd=project, capture_output=True, text=True, check=True
    )


def test_the_migration_moves_once_and_then_does_nothing(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "databricks").mkdir(parents=True)
    (project / OLD_ENDPOINT).write_text('{"edited": true}\n')
    git(project, "init", "-q")
    commit(project)
    first = move(project, OLD_ENDPOINT, NEW_ENDPOINT)
    assert f"git mv {OLD_ENDPOINT} {NEW_ENDPOINT}" in first.stderr
    assert status(project) == f"R  {OLD_ENDPOINT} -> {NEW_ENDPOINT}\n"
    migrated = tree(project)
    second = move(project, OLD_ENDPOINT, NEW_ENDPOINT)
    assert "nothing to move" in second.stderr
    assert tree(project) == migrated and status(project) == f"R  {OLD_ENDPOINT} -> {NEW_ENDPOINT}\n"
    after = move(project, "--stage=after", "--template=unused", "--from=v0.1.0", OLD_ENDPOINT, NEW_ENDPOINT)
    assert "nothing to re-merge" in after.stderr and tree(project) == migrated


def test_the_migration_never_overwrites_and_moves_plainly_without_git(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "databricks/serving").mkdir(parents=True)
    (project / OLD_ENDPOINT).write_text("old\n")
    (project / NEW_ENDPOINT).write_text("new\n")
    assert "left as is" in move(project, OLD_ENDPOINT, NEW_ENDPOINT).stderr
    assert (project / OLD_ENDPOINT).read_text() == "old\n" and (project / NEW_ENDPOINT).read_text() == "new\n"
    (project / NEW_ENDPOINT).unlink()
    assert "moved" in move(project, OLD_ENDPOINT, NEW_ENDPOINT).stderr  # not a git repository: a plain move
    assert (project / NEW_ENDPOINT).read_text() == "old\n" and not (project / OLD_ENDPOINT).exists()


def test_the_migration_fills_answers_in_its_paths_and_names_a_missing_one(tmp_path: Path) -> None:
    """Copier runs `before` migrations ahead of the questions, so move.py reads package_name itself."""
    project = tmp_path / "project"
    (project / "src/json_tools").mkdir(parents=True)
    (project / "src/json_tools/pipeline.py").write_text("mine\n")
    (project / ".copier-answers.yml").write_text("package_name: json_tools\n")
    done = move(project, "src/{package_name}/pipeline.py", "src/{package_name}/steps.py", "a.py", "b.py")
    assert done.stderr.splitlines() == [
        "migration: moved src/json_tools/pipeline.py to src/json_tools/steps.py",
        "migration: nothing to move: a.py is not there",
    ]
    assert (project / "src/json_tools/steps.py").read_text() == "mine\n"
    refused = subprocess.run(
        [sys.executable, str(MOVE), "src/{package}/pipeline.py", "steps.py"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert refused.stderr == (
        "migration: src/{package}/pipeline.py names 'package', which .copier-answers.yml does not answer\n"
    )


def test_copier_yml_runs_the_migration_for_v0_2_0_before_and_after_the_update() -> None:
    spec = yaml.safe_load((ROOT / "copier.yml").read_text())
    migrations = [m for m in spec["_migrations"] if m["version"] == "v0.2.0"]
    assert [m["when"] for m in migrations] == ["{{ _stage == 'before' }}", "{{ _stage == 'after' }}"]
    for migration in migrations:
        assert migration["command"][:2] == [
            "{{ _copier_python }}",
            "{{ _copier_conf.src_path }}/migrations/move.py",
        ]
        assert migration["command"][-2:] == [OLD_ENDPOINT, NEW_ENDPOINT]
    (task,) = spec["_tasks"]
    assert task["when"] == "{{ _copier_operation == 'copy' }}"


def test_ctrl_c_at_a_question_of_update_cancels_and_changes_nothing(versions: Path, tmp_path: Path) -> None:
    from tests.test_cli_new import FIRST_QUESTION, on_a_terminal

    project = generate(versions, tmp_path / "churn-model")
    before = (tree(project), status(project), git(project, "rev-parse", "HEAD"))
    code, screen = on_a_terminal(
        "update", project, "--to", B_TAG, "--no-defaults", steps=[(FIRST_QUESTION, b"\x03")]
    )
    assert code == 130, screen
    assert screen.strip().splitlines()[-1] == "lakeforge: cancelled, nothing changed", screen
    assert "AnswersMap" not in screen and "Traceback" not in screen
    assert (tree(project), status(project), git(project, "rev-parse", "HEAD")) == before
