"""After `copier copy`: lock the new project's dependencies and make it a git repository on branch main with a
first commit.

`copier update` works only on a git repository, and refuses a dirty one, so a project starts as one whose
first commit holds uv.lock: the first `uv run` would otherwise write it and leave the tree dirty. Run by
copier's `_tasks` (on copy only, see copier.yml) in the new project's folder:

    python tasks/git_init.py AUTHOR_NAME AUTHOR_EMAIL

`uv lock` runs with uv from copier's Python, else the one on PATH. The git part does nothing when the folder
is already inside a git work tree (a folder of a monorepo: its owner commits) or when git is not installed.
The commit uses the committer's own git identity; where none is configured, the author answers. It never
fails the copy: copier would delete the freshly generated project, so a failed step is reported and the rest
left to the user. Standard library only: copier runs it with its own Python.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

LOCK_SECONDS = 120


def git(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=False)


def lock(project: Path) -> str | None:
    """Write uv.lock; return why it could not be written, or None."""
    if importlib.util.find_spec("uv") is not None:
        uv = [sys.executable, "-m", "uv"]
    elif shutil.which("uv"):
        uv = ["uv"]
    else:
        return "uv is not installed: no uv.lock written (the first `uv run` writes it: commit it then)"
    # Never a Python download just to lock: the project takes any supported Python the machine has.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"UV_PYTHON_DOWNLOADS": "never"}
    try:
        result = subprocess.run(
            [*uv, "lock", "--quiet"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=LOCK_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`uv lock` took over {LOCK_SECONDS} s and was stopped: run it, then commit uv.lock"
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[-300:]
        return f"`uv lock` failed ({detail}): run it, then commit uv.lock"
    return None


def first_commit(project: Path, author_name: str, author_email: str) -> str:
    """Initialise `project` and commit everything not ignored; return what was done, in a few words."""
    try:
        inside = git(project, "rev-parse", "--is-inside-work-tree")
    except OSError:
        return "git is not installed: no repository made (copier update needs one: git init, then commit)"
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        top = git(project, "rev-parse", "--show-toplevel").stdout.strip()
        return f"already inside the git work tree {top}: nothing initialised or committed"
    identity = []
    for key, fallback in (("user.name", author_name), ("user.email", author_email)):
        if not git(project, "config", key).stdout.strip():
            identity += ["-c", f"{key}={fallback}"]
    version = _template_version(project)
    steps = [
        ("init", "-q"),
        ("symbolic-ref", "HEAD", "refs/heads/main"),  # the CI files deploy from main; works on any git
        ("add", "--all"),
        # No hooks (none are installed yet; a global core.hooksPath could reject the template's own files)
        # and no signing prompt in a non-interactive task.
        ("commit", "-q", "--no-verify", "--no-gpg-sign", "-m", f"Generate from lakeforge {version}"),
    ]
    for step in steps:
        result = git(project, *(identity if step[0] == "commit" else []), *step)
        if result.returncode != 0:
            detail = " ".join((result.stderr or result.stdout).split())
            return f"`git {step[0]}` failed ({detail}): finish by hand (git add --all, git commit)"
    return f"git repository initialised on main, first commit 'Generate from lakeforge {version}'"


def _template_version(project: Path) -> str:
    """The template version copier recorded (`_commit` in the answers file), or 'template'."""
    answers = project / ".copier-answers.yml"
    if answers.is_file():
        for line in answers.read_text(encoding="utf-8").splitlines():
            if line.startswith("_commit:"):
                return line.partition(":")[2].strip().strip("'\"") or "template"
    return "template"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(
            "usage: git_init.py AUTHOR_NAME AUTHOR_EMAIL (run in the new project's folder)", file=sys.stderr
        )
        return 2
    project = Path.cwd()
    problem = lock(project)
    if problem:
        print(f"uv: {problem}", file=sys.stderr)
    print(f"git: {first_commit(project, argv[0], argv[1])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
