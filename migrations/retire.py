"""Retire files a new template version no longer has, but keep those the user edited: a copier migration.

`copier update` deletes every file the old template version rendered and the new one does not, edited or not,
without a conflict (copier's `_remove_old_files`; `_skip_if_exists` does not protect a file from it). When a
release folds such files into others, copier.yml runs this script after the update (`_migrations`, for that
release), with pairs OLD=NEW: the old file and the file that now holds what it did. v0.3.0: the five
single-task jobs became the training and scoring workflows; v0.4.0: the user's data.py gave way to sources.py.

* An old file the user never changed (byte for byte what the old version rendered with the project's answers
  from before the update) stays deleted, or is deleted if copier kept it.
* An edited one is put back as the user committed it, with one line: "kept OLD because you edited it; " and
  the `--note`, which says what to move where ({old} and {new} in it stand for the pair's paths).
* A pair whose OLD is NEW (v0.3.0's training.json stayed, now a workflow): copier merged the user's edits into
  the new file; one line says so, for the user to check them.

    python migrations/retire.py --template SRC --from VERSION --note TEXT OLD=NEW ...   # in the project

Safe to run any number of times: it only deletes a file equal to the old version's, only writes a file that
is missing, and does nothing for a file neither the project's last commit nor its folder has. When the old
version cannot be rendered, every old file counts as edited and is kept. Needs git, copier and PyYAML
(copier runs migrations with its own Python, which has both); move.py beside it renders the old version.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from move import render_old, run_git


def retire(project: Path, old: str, new: str, rendered: Path | None, note: str) -> str | None:
    """Delete or keep `old` (see the module docstring); the line to print, or None if there is none."""
    here = project / old
    mine = run_git(project, "show", f"HEAD:./{old}")  # the user's file as committed before the update
    if mine is None and here.is_file():  # no git, or a file git does not track: the folder's copy is theirs
        mine = here.read_bytes()
    if mine is None:
        return None  # deleted by the user before, or already retired and committed
    base = rendered / old if rendered is not None else None
    edited = base is None or not base.is_file() or base.read_bytes() != mine
    if old == new:
        return f"{new} is now a workflow; your edits to it were merged in, check them" if edited else None
    if not edited:
        here.unlink(missing_ok=True)
        return None
    if not here.exists():
        here.write_bytes(mine)
    return f"kept {old} because you edited it; {note.format(old=old, new=new)}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", metavar="OLD=NEW", nargs="+", help="an old file and the one replacing it")
    parser.add_argument("--template", required=True, help="the template source, as copier cloned it")
    parser.add_argument("--from", dest="version_from", required=True, help="the version updated from")
    parser.add_argument("--answers-file", default=".copier-answers.yml", help="the project's answers file")
    parser.add_argument("--note", required=True, help="what to do with a kept OLD ({old}, {new}: the pair)")
    args = parser.parse_args(argv)
    pairs = [pair.split("=", 1) for pair in args.pairs]
    if any(len(pair) != 2 or not all(pair) for pair in pairs):
        parser.error(f"each pair is OLD=NEW, not {' '.join(args.pairs)}")
    project = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="lakeforge-migration-") as tmp:
        try:
            rendered = render_old(Path(tmp), project, args.template, args.version_from, args.answers_file)
        except Exception as exc:  # keep every old file rather than fail the update
            print(f"migration: cannot render {args.version_from}: {exc}; keeping old files", file=sys.stderr)
            rendered = None
        for old, new in pairs:
            line = retire(project, old, new, rendered, args.note)
            if line:
                print(f"migration: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
