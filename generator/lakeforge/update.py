"""Update a generated project to another template version: the library under `lakeforge update`.

A thin layer over `copier update`, which does the merging: lakeforge first refuses what copier would make
hard to review or undo (no git repository, uncommitted changes), pins the template to this lakeforge's
release like `lakeforge new`, runs copier with the flags an update needs, and then reports what changed
and which files hold conflicts to resolve. Plain `copier update --trust` does the same update without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import copier
from copier.errors import CopierAnswersInterrupt, DirtyLocalWarning

from lakeforge.errors import LakeforgeError
from lakeforge.template import ANSWERS_FILE, as_lakeforge_error, check_answers, pin_ref, read_answers
from lakeforge.wheel import find_uv

EXIT_CONFLICTS = 3  # `lakeforge update` exit status when the update left conflicts to resolve

# The lines copier's inline conflict mode writes around each conflict (`git merge-file -L ...`).
CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")


@dataclass(frozen=True)
class Change:
    """One entry of `git status --porcelain` after the update: a two-letter status and a path."""

    status: str
    path: str
    renamed_from: str | None = None

    def __str__(self) -> str:
        moved = f"{self.renamed_from} -> " if self.renamed_from else ""
        return f"{self.status} {moved}{self.path}"


@dataclass(frozen=True)
class UpdateResult:
    project: Path
    from_version: str  # the `_commit` recorded before the update (a tag, or tag-N-gHASH)
    to_version: str  # and after it
    changes: tuple[Change, ...]
    conflicts: tuple[str, ...]  # files with copier's inline conflict markers, or unmerged in the index
    rejects: tuple[str, ...]  # `.rej` files: hunks copier could not place at all

    @property
    def clean(self) -> bool:
        return not (self.conflicts or self.rejects)


def update_project(
    project: Path,
    *,
    to: str | None = None,
    data: dict[str, str] | None = None,
    defaults: bool = True,
    quiet: bool = True,
    on_note: Callable[[str], None] | None = None,
) -> UpdateResult:
    """Merge the template's changes between the project's recorded version and `to` into the project.

    `to` defaults to this lakeforge's release (see `template.pin_ref`); `data` changes answers; with
    `defaults` every recorded answer is kept and new questions take their default, without it copier asks
    again on the terminal. Raises `LakeforgeError`, having touched nothing, when the project is not a
    generated project, not in git, has uncommitted changes, or copier refuses the update.
    """
    project = project.expanduser().absolute()
    answers = _check_project(project)
    source = str(answers["_src_path"])
    data = dict(data or {})
    check_answers(source, data)
    if not defaults and not sys.stdin.isatty():
        raise LakeforgeError("no terminal to ask the questions on: leave out --no-defaults")
    pin = pin_ref(source, to)
    if pin.ref is None:
        raise LakeforgeError(
            f"the template {source} recorded in {ANSWERS_FILE} is not a git repository: copier updates only "
            "from git; pass --to with a tag of a git template"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DirtyLocalWarning)
            copier.run_update(
                str(project),
                data=data,
                defaults=defaults,
                vcs_ref=pin.ref,
                conflict="inline",
                overwrite=True,
                unsafe=True,
                quiet=quiet,
            )
    except Exception as exc:
        if isinstance(exc, CopierAnswersInterrupt):
            _restore(project)
        mapped = as_lakeforge_error(exc, source, pin.ref)
        if mapped is exc:
            raise
        raise mapped from exc
    if pin.note and on_note:
        on_note(pin.note)
    changes = _status(project)
    if any(c.path == "pyproject.toml" for c in changes) and (project / "uv.lock").is_file():
        # The project's requirements changed (a release adds a dependency): relock now, so that the update
        # holds its uv.lock, as the first commit does, and the first `uv run` leaves the tree as it was.
        problem = _relock(project)
        if problem and on_note:
            on_note(problem)
        changes = _status(project)
    after = read_answers(project)
    return UpdateResult(
        project=project,
        from_version=str(answers.get("_commit", "?")),
        to_version=str(after.get("_commit", "?")),
        changes=changes,
        conflicts=_conflicts(project, changes),
        rejects=tuple(change.path for change in changes if change.path.endswith(".rej")),
    )


def render_summary(result: UpdateResult) -> str:
    """What `lakeforge update` prints: versions, changed files, conflicts, and what to do next."""
    if result.from_version == result.to_version and not result.changes:
        return f"{result.project} is up to date with template {result.to_version}; nothing changed."
    lines = [f"Updated {result.project}: template {result.from_version} -> {result.to_version}"]
    lines.append(f"\nChanged files ({len(result.changes)}, as `git status --short` shows them):")
    lines += [f"  {change}" for change in result.changes]
    if result.conflicts or result.rejects:
        lines.append(f"\nConflicts to resolve ({len(result.conflicts) + len(result.rejects)}):")
        lines += [
            f"  {path}  (marked <<<<<<< before updating ... >>>>>>> after updating)"
            for path in result.conflicts
        ]
        lines += [
            f"  {path}  (hunks copier could not place: apply them by hand, then delete it)"
            for path in result.rejects
        ]
    lines.append("\nNext steps:")
    if result.conflicts or result.rejects:
        lines.append("  resolve each conflict (edit the file, or `git mergetool`), then `git add` it")
    lines += [
        "  git diff HEAD            # review everything the update changed",
        "  uv run pytest            # the project's own tests",
        f'  git add -A && git commit -m "Update to lakeforge template {result.to_version}"',
    ]
    return "\n".join(lines)


def _check_project(project: Path) -> dict:
    """The project's answers, after checking it is a generated project in a clean git work tree."""
    if not project.is_dir():
        raise LakeforgeError(f"{project} is not a folder; give the folder of a generated project")
    answers = read_answers(project)
    if "_src_path" not in answers or "_commit" not in answers:
        raise LakeforgeError(
            f"{project} has no {ANSWERS_FILE} with the template's source and version "
            "(_src_path, _commit): it was not generated by lakeforge or copier from a git template"
        )
    inside = _git(project, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.strip() != "true":
        raise LakeforgeError(
            f"{project} is not in a git repository: an update is a change to review and undo; "
            'run git init && git add -A && git commit -m "Generated project", then update'
        )
    dirty = _status(project)
    if dirty:
        raise LakeforgeError(
            f"{project} has uncommitted changes ({len(dirty)} path(s), e.g. {dirty[0].path}): "
            "commit or stash them first, so that the update is one change you can review and undo"
        )
    return answers


def _status(project: Path) -> tuple[Change, ...]:
    """`git status --porcelain` of the project folder, untracked files listed one by one.

    Paths are relative to the project, also when it is a folder of a larger repository.
    """
    out = _git(project, "status", "--porcelain", "-z", "--untracked-files=all", "--", ".") or ""
    prefix = (_git(project, "rev-parse", "--show-prefix") or "").strip()

    def relative(path: str) -> str:  # porcelain paths are relative to the repository's top
        return path.removeprefix(prefix)

    fields = iter(out.split("\0"))
    changes = []
    for entry in fields:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        renamed_from = next(fields) if status[0] in "RC" else None  # -z: the source path follows
        changes.append(Change(status, relative(path), renamed_from and relative(renamed_from)))
    return tuple(changes)


def _conflicts(project: Path, changes: tuple[Change, ...]) -> tuple[str, ...]:
    """Changed files holding copier's inline markers, plus any path git still records as unmerged."""
    unmerged = {
        line.split("\t", 1)[1]
        for line in (_git(project, "ls-files", "--unmerged", "--", ".") or "").splitlines()
        if "\t" in line
    }
    marked = {
        change.path
        for change in changes
        if (project / change.path).is_file() and _has_markers(project / change.path)
    }
    return tuple(sorted(marked | unmerged))


def _has_markers(file: Path) -> bool:
    with file.open("rb") as lines:
        return any(line.rstrip() in CONFLICT_MARKERS for line in lines)


LOCK_SECONDS = 120


def _relock(project: Path) -> str | None:
    """Run `uv lock` in the project; return why it failed, or None."""
    if _has_markers(project / "pyproject.toml"):
        return "pyproject.toml holds conflicts: resolve them, then run `uv lock` and commit uv.lock"
    uv = find_uv()
    if uv is None:
        return "uv is not installed: run `uv lock` once it is, and commit uv.lock"
    # Never a Python download just to lock (as the first-commit task).
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"UV_PYTHON_DOWNLOADS": "never"}
    try:
        done = subprocess.run(
            [uv, "lock", "--quiet"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=LOCK_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`uv lock` took over {LOCK_SECONDS} s and was stopped: run it, then commit uv.lock"
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[-300:]
        return f"uv.lock is out of date: `uv lock` failed ({detail}); run it, then commit uv.lock"
    return None


def _restore(project: Path) -> None:
    """Put the project folder back at its last commit after Ctrl-C at a question. copier runs the `before`
    migrations ahead of the questions (v0.2.0's moves a file, staged), and the tree was clean when the update
    began (copier refuses a dirty one), so this removes only what the update did; ignored files are kept."""
    _git(project, "restore", "--source=HEAD", "--staged", "--worktree", "--", ".")
    _git(project, "clean", "-d", "--force", "--quiet", "--", ".")


def _git(project: Path, *args: str) -> str | None:
    """git's output in `project`, or None when it fails or git is not installed."""
    try:
        result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return result.stdout if result.returncode == 0 else None
