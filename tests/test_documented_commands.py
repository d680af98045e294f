"""Every shell command the documentation shows exists as written, and those that run offline in seconds work.

The commands are those of the fenced ```bash blocks of README.md and docs/**/*.md, and the `$ ` lines of
their ```text transcripts. Each is checked by the parser of the program it names: `lakeforge` by the real CLI
(click's `make_context` at every level of subcommands, so an unknown command or option, a wrong type or a
missing argument fails), the generated project's command by its own `cli.py` rendered from the template,
copier by copier's command line, and `uv run`'s own options by uv. The `lakeforge` commands that run offline
in seconds then run for real in a temporary folder; a command no parser here can check is in `UNCHECKED`,
with the reason. Option names in inline code (`lakeforge run all . --target staging`, `churn-model serve
[--port 5001]`) are checked against the same parsers.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import typer
from copier._cli import CopierApp
from lakeforge.cli import app as lakeforge_app
from plumbum.cli.switches import SwitchError
from typer.core import TyperCommand, TyperGroup

from tests.conftest import Render
from tests.fake_workspace import FakeWorkspace
from tests.generated_project import uv
from tests.lakeforge_cli import run_lakeforge

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^\s*```(\w*)")
# typer's commands are its own (it vendors click): a group of subcommands, or one command.
Cli = TyperGroup | TyperCommand
SEPARATORS = {"&&", "||", ";", "|", "&"}

# Documented commands that no parser here can check, by their text as the docs give it (a comment after `#`
# and redirections left out). A command missing from the docs, or added to them, fails the tests below until
# this list says why.
UNCHECKED = {
    # Other programs' commands, with nothing of lakeforge's or of the generated project's in them.
    "python3 -m pip install uv": "pip installs uv from the package index",
    "git switch -c template-update": "git's own command",
    "cd churn-model": "the shell's cd; the commands after it are checked as the generated project's",
    # lakeforge's whole test suite: about 18 minutes, and it includes this test; .ci/run runs it.
    "python3 -m uv run --extra test pytest": "lakeforge's own test suite (about 18 minutes)",
}

# Inline code that starts like a command but quotes something else.
NOT_COMMANDS = {
    "churn-model is already installed with the same version as the provided wheel": "pip's message, quoted",
}

# Subcommands of lakeforge whose documented commands are parsed but not run here, and why.
NOT_RUN = {
    "bootstrap": "changes a workspace; tests/test_bootstrap.py runs it against the fake workspace",
    "destroy": "removes what bootstrap made; tests/test_destroy_run_doctor.py runs it against the fake",
    "run": "follows job runs to their end; tests/test_destroy_run_doctor.py runs it against the fake",
    "rollback": "moves a target's champion; tests/test_rollback.py runs it against the fake workspace",
    "update": "merges one template release into a project of another; tests/test_update.py builds two",
}
# Options of `uv run` that take a value, so that the program after them is found.
UV_RUN_VALUE_OPTIONS = {"--directory", "--project", "--extra", "--with", "--python", "--group", "--package"}


@dataclass(frozen=True)
class Command:
    where: str  # page:line
    argv: tuple[str, ...]
    transcript: bool = False  # a `$ ` line of a transcript: its output follows, so it is parsed, never run

    def __str__(self) -> str:
        return shlex.join(self.argv)


def shell_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, command line, whether it is a transcript's) of each ```bash block's commands,
    continuation lines joined, and of each `$ ` line of a ```text or ```console transcript."""
    language: str | None = None
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            language = fence[1] if language is None else None
            continue
        stripped = line.strip()
        if language == "bash" and (stripped or pending):
            start = start or number
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            yield start, pending + stripped, False
            pending, start = "", 0
        elif language in {"text", "console"} and stripped.startswith("$ "):
            yield number, stripped[2:], True


def split_commands(line: str) -> list[tuple[str, ...]]:
    """The simple commands of one shell line: split at `&&`, `|`, `;`; comments and redirections left out."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[tuple[str, ...]] = []
    current: list[str] = []
    tokens = iter(lexer)
    for token in tokens:
        if token in SEPARATORS:
            commands.append(tuple(current))
            current = []
        elif set(token) <= set("<>"):
            next(tokens, None)  # the redirection's target
        else:
            current.append(token)
    commands.append(tuple(current))
    return [command for command in commands if command]


def documented_commands() -> list[Command]:
    return [
        Command(f"{page.relative_to(ROOT)}:{number}", argv, transcript)
        for page in PAGES
        for number, line, transcript in shell_lines(page.read_text())
        for argv in split_commands(line)
    ]


def inline_commands() -> list[Command]:
    """Inline code spans of the docs that start with `lakeforge` or `churn-model` (the default project's
    command): synopses and examples in running text."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for span in re.finditer(r"(?<!`)`((?:lakeforge|churn-model) [^`]+)`(?!`)", text):
            number = text.count("\n", 0, span.start()) + 1
            if " ".join(span[1].split()) not in NOT_COMMANDS:
                found.append(Command(f"{page.relative_to(ROOT)}:{number}", tuple(span[1].split())))
    return found


DOCUMENTED = documented_commands()


def program(argv: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """`uv run`'s own options and the program's command line: `python3 -m uv run [OPTIONS] PROGRAM ARGS` and
    `uv run [OPTIONS] PROGRAM ARGS` are PROGRAM ARGS."""
    args = list(argv)
    if args[:2] in (["python3", "-m"], ["python", "-m"]):
        args = args[2:]
    if args[:2] != ["uv", "run"]:
        return [], args
    options, args = [], args[2:]
    while args and args[0].startswith("-"):
        options.append(args.pop(0))
        if options[-1] in UV_RUN_VALUE_OPTIONS and args:
            options.append(args.pop(0))
    return options, args


def parse(command: Cli, name: str, args: list[str]) -> None:
    """Parse `args` as `command` would, every level of subcommands included, running none of them. Raises
    typer's `UsageError` (a `TyperException`) for an unknown command or option, a bad value or a missing
    argument."""
    try:
        context = command.make_context(name, list(args))
        # a group leaves its subcommand's name in `_protected_args`, the subcommand's arguments in `args`
        while isinstance(command, TyperGroup) and (rest := [*context._protected_args, *context.args]):
            sub_name, sub, rest = command.resolve_command(context, rest)
            assert sub is not None and sub_name is not None
            command, context = sub, sub.make_context(sub_name, rest, parent=context)
    except typer.Exit as done:  # an eager option such as --version
        assert done.exit_code == 0


def parse_copier(args: list[str]) -> None:
    """Parse a copier command line with copier's own (plumbum) application, without running it: `_parse_args`
    reads the switches, `_validate_args` checks their values and the positional arguments."""
    app = CopierApp("copier")
    app._validate_args(*app._parse_args(list(args)))
    if app.nested_command:
        subapp, argv = app.nested_command
        sub = subapp(argv[0])
        sub._validate_args(*sub._parse_args(argv[1:]))


def project_commands(project: Path) -> dict[str, Cli]:
    """The generated project's console scripts as click commands, built from its `cli.py`.

    `cli.py` imports the package's steps (Spark, MLflow: the `local` extra, not in lakeforge's environment)
    and only its commands' bodies call them (but for the `--help` epilog, built from `config` at import), so
    each module it imports from its own package is a stand-in of mocks here: the parser is cli.py's alone.
    """
    scripts = tomllib.loads((project / "pyproject.toml").read_text())["project"]["scripts"]
    commands = {}
    for script, target in scripts.items():
        module_name, _, attribute = target.partition(":")
        package, _, module = module_name.rpartition(".")
        source = project / "src" / Path(*package.split(".")) / f"{module}.py"
        with mock.patch.dict(sys.modules):  # the stand-ins and the loaded cli.py go again afterwards
            sys.modules[package] = types.ModuleType(package)
            for sibling in sibling_modules(source):
                stand_in = types.ModuleType(f"{package}.{sibling}")
                stand_in.__getattr__ = lambda name, of=stand_in.__name__: mock.MagicMock(name=f"{of}.{name}")
                sys.modules[stand_in.__name__] = stand_in
                setattr(sys.modules[package], sibling, stand_in)
            spec = importlib.util.spec_from_file_location(module_name, source)
            assert spec is not None and spec.loader is not None
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = loaded
            spec.loader.exec_module(loaded)
            commands[script] = typer.main.get_command(getattr(loaded, attribute))
    return commands


def sibling_modules(source: Path) -> set[str]:
    """The modules of its own package that a file imports (`from . import a`, `from .b import c`)."""
    found: set[str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
    return found


@pytest.fixture(scope="module")
def default_project(render: Render) -> Path:
    return render({})


@pytest.fixture(scope="module")
def project_clis(default_project: Path) -> dict[str, Cli]:
    return project_commands(default_project)


def check(command: Command, project_clis: dict[str, Cli]) -> None:
    """Parse a documented command with the parser of its program."""
    if str(command) in UNCHECKED:
        return
    uv_options, (name, *args) = program(command.argv)
    if uv_options:
        done = subprocess.run([uv(), "run", *uv_options, "--help"], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"{command.where}: `{command}`: uv run {shlex.join(uv_options)}: {done.stderr}")
    try:
        if name == "lakeforge":
            parse(typer.main.get_command(lakeforge_app), name, args)
        elif name in project_clis:
            parse(project_clis[name], name, args)
        elif name == "copier":
            parse_copier(args)
        else:
            pytest.fail(f"{command.where}: no parser for {name!r}; check it, or list it in UNCHECKED")
    except (typer.TyperException, SwitchError) as error:
        pytest.fail(f"{command.where}: `{command}` does not parse: {error}")


@pytest.mark.parametrize("command", DOCUMENTED, ids=[c.where for c in DOCUMENTED])
def test_documented_command_parses(command: Command, project_clis: dict[str, Cli]) -> None:
    check(command, project_clis)


def test_every_unchecked_command_is_still_documented() -> None:
    documented = {str(command) for command in DOCUMENTED}
    assert set(UNCHECKED) <= documented, f"no longer in the docs: {set(UNCHECKED) - documented}"


def test_the_checks_catch_a_wrong_command(project_clis: dict[str, Cli]) -> None:
    wrong = [
        "lakeforge bootstrap . --target dev --dry-rum",  # unknown option
        "lakeforge bootstrapp . --target dev",  # unknown command
        "lakeforge new --defaults",  # missing argument
        "lakeforge run training . --timeout-minutes soon",  # wrong type
        "lakeforge destroy .",  # missing required option
        "python3 -m uv run --directory ../churn-model churn-model score --shfit 0.5",
        "uv run churn-model run-everything",
        "copier copy --trusted --defaults path/to/lakeforge ../churn-model",
        "copier copy --trust --defaults ../churn-model",  # missing argument
        "python3 -m uv run --extras test lakeforge --version",  # not an option of uv run
        "make docs",  # no parser
    ]
    for text in wrong:
        for argv in split_commands(text):
            with pytest.raises(pytest.fail.Exception):
                check(Command("example", argv), project_clis)


# ---- running them ----------------------------------------------------------------------------------------
def runnable() -> list[Command]:
    """The documented lakeforge commands that run offline in seconds, once each: all but `NOT_RUN`'s."""
    seen: dict[tuple[str, ...], Command] = {}
    for command in DOCUMENTED:
        _, (name, *args) = program(command.argv)
        if name == "lakeforge" and not command.transcript and str(command) not in UNCHECKED:
            subcommand = next((arg for arg in args if not arg.startswith("-")), None)
            if subcommand not in NOT_RUN:
                seen.setdefault(tuple(args), command)
    return list(seen.values())


RUNNABLE = runnable()


def run(command: Command, folder: Path, project: Path, env: dict[str, str]) -> str | None:
    """Run a documented lakeforge command in `folder`: `new` with `folder/here` empty (so `../DEST` lands in
    `folder`), the others in `folder/here`, a copy of the default project (`.`). What failed, if anything."""
    _, (_, *args) = program(command.argv)
    here = folder / "here"
    if args[0] == "new":
        here.mkdir(parents=True)
    else:
        shutil.copytree(project, here)
    result = run_lakeforge(*args, cwd=here, env=env)
    if result.returncode == 0:
        return None
    return f"{command.where}: `{command}`: exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_documented_commands_run(default_project: Path, tmp_path: Path) -> None:
    """Each runnable command for real, all at once (a `lakeforge new` takes seconds), with auth pointed at a
    fake workspace and no ~/.databrickscfg."""
    workspace = FakeWorkspace.start()
    env = {**workspace.env(), "DATABRICKS_CONFIG_FILE": str(tmp_path / "no-databrickscfg")}
    try:
        with ThreadPoolExecutor(max_workers=len(RUNNABLE)) as pool:
            failures = pool.map(
                lambda item: run(item[1], tmp_path / str(item[0]), default_project, env), enumerate(RUNNABLE)
            )
            failed = [failure for failure in failures if failure]
    finally:
        workspace.stop()
    assert not failed, "\n\n".join(failed)


def test_lakeforge_new_and_doctor_are_among_the_commands_run() -> None:
    ran = {program(command.argv)[1][1] for command in RUNNABLE}
    assert {"new", "doctor"} <= ran, ran


# ---- option names in running text ------------------------------------------------------------------------
INLINE = inline_commands()


@pytest.mark.parametrize("command", INLINE, ids=[c.where for c in INLINE])
def test_inline_command_names_only_existing_commands_and_options(
    command: Command, project_clis: dict[str, Cli]
) -> None:
    """A synopsis such as `lakeforge new DEST [--defaults] [--data KEY=VALUE ...]`: each word that names a
    subcommand, and each option, exists at that place; `a | b` are alternatives at the same level."""
    name, *words = command.argv
    root = typer.main.get_command(lakeforge_app) if name == "lakeforge" else project_clis[name]
    path = [root]
    skip_value = False
    for word in (w if w == "." else w.strip("[](),.") for w in words):
        current = path[-1]
        if not word:
            continue
        if skip_value:
            skip_value = False
        elif word == "|" and len(path) > 1:
            path.pop()
        elif word.startswith("-"):
            option = word.partition("=")[0]
            known = {n: p for c in path for p in c.params for n in [*p.opts, *p.secondary_opts]}
            if option == "--help":  # click adds it to every command, outside `params`
                continue
            assert option in known, f"{command.where}: `{' '.join(command.argv)}`: no option {option}"
            skip_value = "=" not in word and not getattr(known[option], "is_flag", False)
        elif isinstance(current, TyperGroup) and re.fullmatch(r"[a-z][a-z-]*", word):
            assert word in current.commands, f"{command.where}: `{' '.join(command.argv)}`: no command {word}"
            path.append(current.commands[word])
