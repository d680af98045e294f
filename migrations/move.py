"""Carry a user's file over to the name a new template version gives it: a copier migration in two stages.

Copier on its own loses data when a template renames a file: the update deletes the user's (maybe edited)
file at the old name and writes the template's at the new one, with no conflict reported. copier.yml runs
this script around such an update (`_migrations`, for the version that renamed the file):

* `--stage before` (in the project folder, before copier merges): `git mv OLD NEW`. Copier's update then sees
  the user's file at NEW, in the index, and merges the template's new file into it. Copier has no common
  ancestor for NEW (the old version had no such file), so it marks every line where the user's file and the
  new template file differ as a conflict, the user's edits included.
* `--stage after` (after copier merged): redo that merge with the right ancestor, the old template version's
  OLD, rendered with the project's previous answers. What the template did not change merges cleanly, so only
  the lines that both sides changed stay marked, as with any other file. If that render is not possible the
  conservative result of the first stage is kept.

    python migrations/move.py OLD NEW [OLD NEW ...]    # the first stage alone, in the project folder

OLD and NEW may name answers in braces, e.g. `src/{package_name}/pipeline.py`, filled from the project's
answers file: copier runs `before` migrations ahead of the questions, so their Jinja has no answers yet.

Safe to run any number of times: the move does nothing when OLD is absent (already migrated, or deleted by
the user) or when NEW already exists; the second stage does nothing unless copier left NEW in conflict.
Without git, or for a file git does not track, the move is a plain move. Needs only the standard library,
plus PyYAML for answers in the paths and copier for the second stage (copier runs migrations with its own
Python, which has both).
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

LABELS = ("before updating", "last update", "after updating")  # the labels copier's own merge uses


def move(project: Path, old: str, new: str) -> str:
    """Move `old` to `new` inside `project` (with `git mv` when git tracks it); say what was done."""
    source, target = project / old, project / new
    if not source.exists():
        return f"nothing to move: {old} is not there"
    if target.exists():
        return f"left as is: {new} already exists (and {old} too; merge them by hand)"
    target.parent.mkdir(parents=True, exist_ok=True)
    if run_git(project, "ls-files", "--error-unmatch", "--", old) is not None:
        run_git(project, "mv", "--", old, new, check=True)
        return f"git mv {old} {new}"
    shutil.move(source, target)
    return f"moved {old} to {new}"


def remerge(project: Path, old: str, new: str, rendered: Callable[[], Path]) -> str:
    """Merge `new` again, with the old version's `old` as common ancestor, if copier left it in conflict;
    `rendered()` gives the folder of the old version's render."""
    unmerged = run_git(project, "ls-files", "--unmerged", "--", new)
    if not unmerged:
        return f"nothing to re-merge: {new} is not in conflict"
    ours, theirs = run_git(project, "show", f":2:./{new}"), run_git(project, "show", f":3:./{new}")
    if ours is None or theirs is None:
        return f"kept copier's merge of {new}: it has no user or template side"
    with tempfile.TemporaryDirectory(prefix="lakeforge-migration-") as tmp:
        try:
            base = (rendered() / old).read_bytes()
        except Exception as exc:  # any failure keeps copier's conservative result, never fails the update
            return f"kept copier's merge of {new} (every difference marked): cannot render {old}: {exc}"
        sides = {}
        for name, content in (("ours", ours), ("base", base), ("theirs", theirs)):
            sides[name] = Path(tmp, name)
            sides[name].write_bytes(content)
        labels = [arg for label in LABELS for arg in ("-L", label)]
        merged = subprocess.run(
            [
                "git",
                "merge-file",
                "-p",
                *labels,
                str(sides["ours"]),
                str(sides["base"]),
                str(sides["theirs"]),
            ],
            cwd=project,
            capture_output=True,
            check=False,
        )
        if merged.returncode > 127:  # git's error status; 0-127 is the number of conflicts
            return f"kept copier's merge of {new}: git merge-file failed: {merged.stderr.decode().strip()}"
        base_blob = run_git(project, "hash-object", "-w", "--", str(sides["base"]), text=True)
    (project / new).write_bytes(merged.stdout)
    mode, path = unmerged.decode().split()[0], _repo_path(project, new)
    blobs = {line.split()[2]: line.split()[1] for line in unmerged.decode().splitlines()}
    if base_blob:
        blobs["1"] = base_blob.strip()
    remove = f"0 {'0' * 40}\t{path}"
    if merged.returncode == 0:
        # Resolved: leave the index as a clean update leaves it, holding the user's (moved) file.
        entries = [remove, f"{mode} {blobs['2']} 0\t{path}"]
        outcome = f"merged {new} cleanly, with the old version's {old} as common ancestor"
    else:
        # Still in conflict, on fewer lines: merge tools get the real ancestor as stage 1.
        entries = [remove, *(f"{mode} {blobs[stage]} {stage}\t{path}" for stage in sorted(blobs))]
        outcome = f"{merged.returncode} conflict(s) left in {new}, where both sides changed the same lines"
    subprocess.run(
        ["git", "update-index", "--index-info"],
        cwd=project,
        input="\n".join(entries) + "\n",
        text=True,
        check=True,
    )
    return outcome


def render_old(tmp: Path, project: Path, template: str, version_from: str, answers_file: str) -> Path:
    """A folder in `tmp` holding the project as the old template version rendered it, with the project's
    answers from before the update (migrations/retire.py uses it too)."""
    import copier
    import yaml

    answers = yaml.safe_load(run_git(project, "show", f"HEAD:./{answers_file}", check=True)) or {}
    copier.run_copy(
        template,
        str(tmp / "old"),
        data=answers,
        vcs_ref=version_from,
        defaults=True,
        overwrite=True,
        quiet=True,
        skip_tasks=True,
        unsafe=True,
    )
    return tmp / "old"


def fill(path: str, project: Path, answers_file: str) -> str:
    """`path` with `{answer}` placeholders filled from the project's answers file."""
    if "{" not in path:
        return path
    import yaml

    answers = yaml.safe_load((project / answers_file).read_text()) or {}
    try:
        return path.format_map(answers)
    except KeyError as missing:
        raise SystemExit(f"migration: {path} names {missing}, which {answers_file} does not answer") from None


def _repo_path(project: Path, path: str) -> str:
    prefix = run_git(project, "rev-parse", "--show-prefix", text=True) or ""
    return f"{prefix.strip()}{path}"


def run_git(project: Path, *args: str, check: bool = False, text: bool = False):
    """git's stdout (bytes, or str with `text`), or None when it fails or git is missing (unless `check`)."""
    try:
        result = subprocess.run(["git", *args], cwd=project, capture_output=True, check=check)
    except OSError:
        if check:
            raise
        return None
    if result.returncode != 0:
        return None
    return result.stdout.decode() if text else result.stdout


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths",
        metavar="OLD NEW",
        nargs="+",
        help="a file's old path and its new one, relative to the project",
    )
    parser.add_argument("--stage", choices=["before", "after"], default="before")
    parser.add_argument("--template", help="(after) the template source, as copier cloned it")
    parser.add_argument("--from", dest="version_from", help="(after) the template version updated from")
    parser.add_argument("--answers-file", default=".copier-answers.yml", help="the project's answers file")
    args = parser.parse_args(argv)
    project = Path.cwd()
    if len(args.paths) % 2:
        parser.error(f"the paths come in pairs, OLD NEW, not {' '.join(args.paths)}")
    paths = [fill(path, project, args.answers_file) for path in args.paths]
    pairs = list(zip(paths[::2], paths[1::2], strict=True))
    if args.stage == "before":
        for old, new in pairs:
            print(f"migration: {move(project, old, new)}", file=sys.stderr)
        return 0
    if not (args.template and args.version_from):
        parser.error("--stage after needs --template and --from")
    with tempfile.TemporaryDirectory(prefix="lakeforge-migration-") as tmp:
        # Rendered once, when a first file needs its ancestor.
        rendered = functools.cache(
            lambda: render_old(Path(tmp), project, args.template, args.version_from, args.answers_file)
        )
        for old, new in pairs:
            print(f"migration: {remerge(project, old, new, rendered)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
