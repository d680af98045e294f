"""Generate a project from the lakeforge copier template.

The library layer under `lakeforge new`: find the template, pin the version to render, check the answers
given on the command line, run copier, and turn whatever copier rejects into a `LakeforgeError` with a
one-line message. A failed run leaves the destination as it found it.

Pinning: lakeforge X.Y.Z renders the template's tag vX.Y.Z by default, so that `lakeforge new`, `lakeforge
update` and the `lakeforge bootstrap` of the same release agree; only a development checkout that lacks
that tag renders its HEAD (and says so). An explicit ref always wins.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import copier
import yaml
from copier.errors import (
    CopierAnswersInterrupt,
    CopierError,
    DirtyLocalWarning,
    InteractiveSessionError,
    InvalidConfigFileError,
    TaskError,
)
from plumbum import ProcessExecutionError  # what copier's git calls raise (plumbum is copier's dependency)

from lakeforge import __version__
from lakeforge.errors import Cancelled, LakeforgeError
from lakeforge.wheel import find_uv

TEMPLATE_ENV = "LAKEFORGE_TEMPLATE"
ANSWERS_FILE = ".copier-answers.yml"
RELEASE_TAG = f"v{__version__}"  # the template release this lakeforge belongs to (PEP 440 tag)

# What copier's own cast accepts for a bool question, spelled out so that a typo is an error, not `true`.
_NO_TERMINAL = (
    "no terminal to ask the questions on: pass --defaults, and --data KEY=VALUE for each answer to change"
)
_BOOL_WORDS = {"true", "false", "yes", "no", "y", "n", "on", "off", "1", "0"}


@dataclass(frozen=True)
class TemplateSource:
    """Where the template comes from."""

    src: str


@dataclass(frozen=True)
class Pin:
    """The git ref of the template to render, and a note for the user when it is not this release's tag."""

    ref: str | None  # None: render the folder's files as they are (not a git repository)
    note: str | None = None


def locate_template(explicit: str | None = None) -> TemplateSource:
    """The template to render: `explicit`, else $LAKEFORGE_TEMPLATE, else the checkout lakeforge runs from."""
    if explicit:
        return TemplateSource(explicit)
    from_env = os.environ.get(TEMPLATE_ENV, "").strip()
    if from_env:
        return TemplateSource(from_env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "copier.yml").is_file():
        return TemplateSource(str(checkout))
    raise LakeforgeError(
        f"cannot find the lakeforge template: set {TEMPLATE_ENV} or pass --template "
        "(a local folder or a git URL holding copier.yml)"
    )


def pin_ref(src: str, requested: str | None = None) -> Pin:
    """Which ref of `src` to render: `requested`, else this lakeforge's release tag.

    A git URL is trusted to have the tag (copier says so if not). A local folder renders the tag when it has
    it; a development checkout without it renders HEAD, uncommitted changes included; a folder outside git
    renders as it is. The two last cases come with a note, because such a project cannot be updated later
    to a release in the usual way.
    """
    if requested:
        return Pin(requested)
    folder = Path(src).expanduser()
    if not folder.is_dir():
        return Pin(RELEASE_TAG)
    if _git(folder, "rev-parse", "--is-inside-work-tree") != "true":
        return Pin(None, f"template {src} is not a git repository: rendering its files as they are")
    if _git(folder, "rev-parse", "--quiet", "--verify", f"refs/tags/{RELEASE_TAG}^{{commit}}") is not None:
        return Pin(RELEASE_TAG)
    dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    detail = " with its uncommitted changes (a project made from them cannot be updated)" if dirty else ""
    return Pin(
        "HEAD",
        f"template {src} has no tag {RELEASE_TAG} (a development checkout): rendering its HEAD{detail}",
    )


def create_project(
    dest: Path,
    data: dict[str, str],
    defaults: bool,
    template: str | None = None,
    vcs_ref: str | None = None,
    quiet: bool = True,
    on_note: Callable[[str], None] | None = None,
) -> Path:
    """Render the template into `dest` (a new or empty folder) and return the project's path.

    `data` answers questions up front; with `defaults` every other question takes its default, without it
    copier asks them on the terminal. `vcs_ref` defaults to this lakeforge's release (see `pin_ref`), and
    `on_note` hears, after a successful render, why another ref was rendered. Raises `LakeforgeError` for a
    bad answer, an unknown question, a non-empty destination or a template that cannot be fetched, and
    `Cancelled` for Ctrl-C; nothing is left behind in `dest` then. Copier's tasks make the project a git
    repository with a first commit.
    """
    dest = dest.expanduser().resolve()
    _check_destination(dest)
    source = locate_template(template)
    check_answers(source.src, data)
    pin = pin_ref(source.src, vcs_ref)
    if not defaults and not sys.stdin.isatty():
        raise LakeforgeError(_NO_TERMINAL)
    existed = dest.exists()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DirtyLocalWarning)
            copier.run_copy(
                source.src,
                str(dest),
                data=dict(data),
                defaults=defaults,
                unsafe=True,
                vcs_ref=pin.ref,
                quiet=quiet,
                overwrite=False,
            )
    except BaseException as exc:
        _remove_partial(dest, existed)
        if isinstance(exc, KeyboardInterrupt):  # also copier's CopierAnswersInterrupt, raised at a question
            raise Cancelled("cancelled, nothing written") from None
        mapped = as_lakeforge_error(exc, source.src, pin.ref) if isinstance(exc, Exception) else exc
        if mapped is exc:
            raise
        raise mapped from exc
    if pin.note and on_note:
        on_note(pin.note)
    return dest


def next_steps(project: Path, target: str = "dev") -> list[tuple[str, str]]:
    """What to run after `lakeforge new`, each command with a comment, as the user can type them here.

    `uv` and `lakeforge` are named as on the user's PATH when that is the command that works in the project's
    folder, otherwise by path: `uv run lakeforge` runs lakeforge with its environment's bin folder first on
    PATH, and pyenv's shims with their Python's.
    """
    slug = read_answers(project).get("project_slug")
    shell = _shell_env()
    own = find_uv()
    uv = "uv" if own is None or _works(["uv", "--version"], project, shell) else _shortest(Path(own), project)
    here = Path(sys.argv[0]).resolve()
    on_path = shutil.which("lakeforge", path=shell["PATH"])
    lakeforge = "lakeforge" if on_path and Path(on_path).resolve() == here else _shortest(here, project)
    steps = [(f"cd {shlex.quote(_shortest(project, Path.cwd()))}", "")]
    if slug:
        steps.append((f"{shlex.quote(uv)} run {slug} run-all", "# the whole loop, locally and offline"))
    steps.append((f"{shlex.quote(uv)} run pytest", "# the project's own tests"))
    steps.append((f"{shlex.quote(lakeforge)} bootstrap . --target {target}", "# put it on Databricks"))
    return steps


def _shell_env() -> dict[str, str]:
    """This environment as the user's shell has it, as far as can be told: without what `uv run` (its bin
    folder first on PATH) and pyenv's shims (PYENV_VERSION, that version's bin folder) give what they run."""
    env = {k: v for k, v in os.environ.items() if k != "PYENV_VERSION"}
    added = {Path(sys.executable).parent} if env.get("UV_RUN_RECURSION_DEPTH") else set()
    if env.get("PYENV_ROOT"):  # pyenv's libexec/pyenv-exec exports PYENV_VERSION, puts its bin first on PATH
        added |= set(Path(env["PYENV_ROOT"]).glob("versions/*/bin"))
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) not in added
    )
    return env


def _works(command: list[str], folder: Path, env: dict[str, str] | None = None) -> bool:
    try:
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _shortest(path: Path, start: Path) -> str:
    """`path` relative to `start` when that is shorter (../churn-model), else absolute."""
    relative = os.path.relpath(path, start)
    return relative if len(relative) < len(str(path)) else str(path)


def read_answers(project: Path) -> dict[str, Any]:
    """The answers a generated project was made with (empty when it has no answers file)."""
    path = project / ANSWERS_FILE
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _check_destination(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise LakeforgeError(f"destination {dest} is a file; give the path of a new or empty folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise LakeforgeError(
            f"destination {dest} is not empty; give the path of a new or empty folder "
            "(to update an existing project: lakeforge update PROJECT_DIR)"
        )


def _questions(src: str) -> dict[str, dict[str, Any]] | None:
    """The questions of a local template, or None when the template is remote or unreadable here."""
    for name in ("copier.yml", "copier.yaml"):
        path = Path(src).expanduser() / name
        if path.is_file():
            try:
                spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise LakeforgeError(
                    f"the template's {path} is not valid YAML: {_one_line(str(exc))}"
                ) from exc
            return {k: (v if isinstance(v, dict) else {}) for k, v in spec.items() if not k.startswith("_")}
    return None


def check_answers(src: str, data: dict[str, str]) -> None:
    """Reject answers to questions the template does not ask, and bool answers that are not a bool."""
    questions = _questions(src)
    if questions is None:
        return
    asked = [name for name, spec in questions.items() if spec.get("when") is not False]
    for key, value in data.items():
        if key not in questions:
            raise LakeforgeError(f"unknown question '{key}' in --data; the questions are: {', '.join(asked)}")
        if questions[key].get("when") is False:
            raise LakeforgeError(f"'{key}' is derived from other answers and cannot be set with --data")
        if questions[key].get("type") == "bool" and str(value).strip().lower() not in _BOOL_WORDS:
            raise LakeforgeError(f"{key} '{value}' is not allowed: answer true or false")


def _remove_partial(dest: Path, existed: bool) -> None:
    """Leave `dest` as it was before the run: gone if copier made it, empty if it was an empty folder."""
    if not dest.exists():
        return
    if not existed:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def as_lakeforge_error(exc: Exception, src: str, ref: str | None = None) -> Exception:
    """Map what copier raises to one line a user can act on; anything unexpected passes through."""
    if isinstance(exc, InteractiveSessionError):
        return LakeforgeError(_NO_TERMINAL)
    if isinstance(exc, InvalidConfigFileError):
        return LakeforgeError(
            f"the template's copier.yml in {src} is not valid: {_one_line(str(exc.__cause__))}"
        )
    if isinstance(exc, TaskError):
        return LakeforgeError(f"a task or migration of the template {src} failed: {_one_line(str(exc))}")
    if isinstance(exc, ProcessExecutionError):
        detail = _one_line(exc.stderr or str(exc))
        at = f" at {ref}" if ref else ""
        return LakeforgeError(f"cannot fetch the template {src}{at}: {detail}")
    if type(exc) is ValueError:
        # Copier raises a plain ValueError for an answer that fails its validator or its choices, e.g.
        # "Validation error for question 'project_name': project_name '9 lives' is not allowed: ...".
        message = _one_line(str(exc))
        validation = re.match(r"Validation error for question '[^']*': (.*)", message)
        if validation:  # the template's validators name the question and the value themselves
            return LakeforgeError(validation[1])
        if message.startswith("Invalid choice"):
            return LakeforgeError(message)
        if message == "Local template must be a directory.":
            return LakeforgeError(f"template {src} is neither a folder holding copier.yml nor a git URL")
        if message.startswith("Unknown revision"):
            return LakeforgeError(f"template {src} has no tag, branch or commit {ref}: choose one it has")
        return LakeforgeError(f"template {src}: {message}")
    if isinstance(exc, CopierAnswersInterrupt):  # Ctrl-C at a question: copier has not written anything yet
        return Cancelled("cancelled, nothing changed")
    if isinstance(exc, CopierError):
        return LakeforgeError(_one_line(str(exc)))
    return exc


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _git(folder: Path, *args: str) -> str | None:
    """git's stripped output in `folder`, or None when it fails or git is not installed."""
    try:
        result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None
