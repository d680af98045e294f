"""The `lakeforge` command line: option parsing and output only; the work is in the library modules."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from lakeforge import __version__, template
from lakeforge.errors import Cancelled, LakeforgeError, Refused, RunFailed

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from lakeforge.changes import Change
    from lakeforge.config import Target
    from lakeforge.plan import Plan

# The workspace commands import databricks-sdk (seconds to import) inside the command, so `new` stays quick.

app = typer.Typer(
    help="Generate a Databricks MLOps project whose whole loop runs offline, and put it on Databricks.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help: typer's rich help shows a type (<bool>) after every flag and reads help text as markup.
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"lakeforge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Generate a Databricks MLOps project whose whole loop runs offline, and put it on Databricks."""


def _parse_data(pairs: list[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="--data")
        data[key.strip()] = value
    return data


@app.command()
def new(
    dest: Annotated[
        Path, typer.Argument(metavar="DEST", help="Folder to create the project in (new or empty).")
    ],
    defaults: Annotated[
        bool,
        typer.Option(
            "--defaults/--no-defaults", help="Take the default for every question not given by --data."
        ),
    ] = False,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", "-d", metavar="KEY=VALUE", help="Answer a question, e.g. project_name='Churn Model'."
        ),
    ] = None,
    template_src: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="SRC",
            help=f"Template folder or git URL (default: ${template.TEMPLATE_ENV}, else this checkout).",
        ),
    ] = None,
    vcs_ref: Annotated[
        str | None,
        typer.Option(
            "--vcs-ref",
            metavar="REF",
            help=f"Git tag, branch or commit of the template to render (default: {template.RELEASE_TAG}, "
            "this lakeforge's release; HEAD in a development checkout without that tag).",
        ),
    ] = None,
) -> None:
    """Create a project from the lakeforge template."""
    answers = _parse_data(data or [])
    if not defaults and sys.stdin.isatty():  # copier puts each default in the answer's text, editable
        _note("each text answer starts as its default: Enter keeps it, Ctrl-U clears it to type another")
    with _errors_to_exit():
        project = template.create_project(
            dest, answers, defaults=defaults, template=template_src, vcs_ref=vcs_ref, on_note=_note
        )
    steps = template.next_steps(project)
    width = max(len(command) for command, _ in steps)
    typer.echo(f"Created {project}\n\nNext steps:")
    for command, comment in steps:
        typer.echo(f"  {command.ljust(width)}  {comment}".rstrip())


def _note(message: str) -> None:
    typer.echo(f"lakeforge: {message}", err=True)


@app.command()
def update(
    project_dir: Annotated[
        Path, typer.Argument(metavar="PROJECT_DIR", help="The generated project (a clean git work tree).")
    ] = Path("."),
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="REF",
            help=f"Template tag, branch or commit to update to (default: {template.RELEASE_TAG}, "
            "this lakeforge's release; HEAD in a development checkout without that tag).",
        ),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", metavar="KEY=VALUE", help="Change an answer, e.g. ci=github."),
    ] = None,
    defaults: Annotated[
        bool,
        typer.Option(
            "--defaults/--no-defaults",
            help="Keep the recorded answers and take the default for new questions, or ask them all again.",
        ),
    ] = True,
) -> None:
    """Merge the template's changes since the project's version into it; exit 3 if conflicts remain."""
    from lakeforge.update import EXIT_CONFLICTS, render_summary, update_project

    answers = _parse_data(data or [])
    with _errors_to_exit():
        result = update_project(project_dir, to=to, data=answers, defaults=defaults, on_note=_note)
    typer.echo(render_summary(result))
    if not result.clean:
        raise typer.Exit(EXIT_CONFLICTS)


# ---------------------------------------------------------------------------------------------------------
# Workspace commands: bootstrap, destroy, run, doctor
# ---------------------------------------------------------------------------------------------------------
ProjectDir = Annotated[
    Path,
    typer.Argument(metavar="PROJECT_DIR", help="The generated project (the folder of its pyproject.toml)."),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        metavar="NAME",
        help="A target of tool.lakeforge.targets in pyproject.toml (default: the first one).",
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (and nothing else there), for CI.")
]
SummaryOption = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        metavar="FILE",
        help="Append a Markdown summary to FILE, also when the command fails (in CI: $GITHUB_STEP_SUMMARY, "
        "or a file for Azure DevOps' ##vso[task.uploadsummary]).",
    ),
]

_err = Console(stderr=True, highlight=False)
_FILE_TICK = re.compile(r"^workspace: (imported|deleted) (\d+)/(\d+) files$")


@app.command()
def bootstrap(
    project_dir: ProjectDir = Path("."),
    target: TargetOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and change nothing.")] = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for a cluster that bootstrap creates or edits to be RUNNING.")
    ] = False,
    wait_minutes: Annotated[
        int, typer.Option("--wait-minutes", metavar="MINUTES", min=1, help="How long --wait waits.")
    ] = 20,
    rotate_secrets: Annotated[
        bool, typer.Option("--rotate-secrets", help="Put every secret again (values cannot be compared).")
    ] = False,
    summary: SummaryOption = None,
) -> None:
    """Create or update the project's cluster, libraries, code, secrets, MLflow objects and jobs."""
    from lakeforge.config import load_config
    from lakeforge.plan import check_local, plan_bootstrap

    with _errors_to_exit(summary, f"lakeforge bootstrap --target {target or '(first)'}"):
        config = load_config(project_dir, target)
        check_local(config)
        w = _connect(config.target)
        with _progress("planning") as progress:
            progress("reading the workspace")
            plan = plan_bootstrap(
                w, config, rotate_secrets=rotate_secrets, wait=wait, wait_minutes=wait_minutes
            )
        _apply(w, plan, dry_run=dry_run, yes=yes, json_output=json_output, summary=summary)


@app.command()
def destroy(
    project_dir: ProjectDir = Path("."),
    target: Annotated[
        str, typer.Option("--target", "-t", metavar="NAME", help="The target to remove the project from.")
    ] = ...,
    yes: YesOption = False,
    json_output: JsonOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed.")] = False,
    include_mlflow: Annotated[
        bool,
        typer.Option(
            "--include-mlflow",
            help="Also delete the experiment (with its runs) and the registered model (with its versions), "
            "if lakeforge created them.",
        ),
    ] = False,
) -> None:
    """Remove what bootstrap made in a target: jobs, cluster, uploaded code and wheels, a secret scope it
    created.

    The experiment and the model are kept unless --include-mlflow; the schema (it holds tables) is always
    kept.
    """
    from lakeforge.config import load_config
    from lakeforge.plan import plan_destroy

    with _errors_to_exit():
        config = load_config(project_dir, target)
        w = _connect(config.target)
        with _progress("planning") as progress:
            progress("reading the workspace")
            plan = plan_destroy(w, config, include_mlflow=include_mlflow)
        _apply(w, plan, dry_run=dry_run, yes=yes, json_output=json_output)


@app.command()
def run(
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB",
            help="A job file's name (e.g. training), the job's name, or `all`: every job of "
            "tool.lakeforge.run_all in order, each after the one before succeeded.",
        ),
    ],
    project_dir: ProjectDir = Path("."),
    target: TargetOption = None,
    timeout_minutes: Annotated[
        int,
        typer.Option("--timeout-minutes", metavar="MINUTES", min=1, help="Give up waiting for a run after."),
    ] = 120,
    summary: SummaryOption = None,
) -> None:
    """Run one of the project's jobs, or all of them in order, follow each, and exit 0 only if all succeed.

    `run all` stops at the first run that does not succeed: the jobs after it are not started.
    """
    from lakeforge import render
    from lakeforge.config import load_config
    from lakeforge.runs import ALL, RunAllResult, run_all, run_job

    with _errors_to_exit(summary, f"lakeforge run {job} --target {target or '(first)'}"):
        config = load_config(project_dir, target)
        w = _connect(config.target)
        with _progress("starting") as progress:
            if job == ALL:
                result = run_all(w, config, progress=progress, timeout_minutes=timeout_minutes)
            else:
                one = run_job(w, config, job, progress=progress, timeout_minutes=timeout_minutes)
                result = RunAllResult(config.target.name, "", (one,), ())
        for line in render.run_all_lines(result):
            typer.echo(line)
        if summary is not None:
            _append(summary, render.run_all_markdown(result))
        failed = result.failed
        if failed is not None:
            detail = f": {failed.message}" if failed.message else ""
            later = f"; not started: {', '.join(result.not_started)}" if result.not_started else ""
            raise RunFailed(f"run {failed.run_id} of {failed.job} ended {failed.state}{detail}{later}")


@app.command()
def rollback(
    project_dir: ProjectDir = Path("."),
    target: Annotated[
        str, typer.Option("--target", "-t", metavar="NAME", help="The target whose champion to roll back.")
    ] = ...,
) -> None:
    """Give the champion role back to the version the current champion replaced, and point the serving
    endpoint at it.

    Runs the project's own `rollback` (it records the decision on both versions, as promotion does) with
    MLflow pointed at the target's workspace, then updates the endpoint as bootstrap would.
    """
    from lakeforge.config import load_config
    from lakeforge.rollback import rollback as roll_back

    with _errors_to_exit():
        config = load_config(project_dir, target)
        w = _connect(config.target)
        with _progress("rolling back") as progress:
            result = roll_back(w, config, progress)
    typer.echo(f"{result.model} in {result.target}: champion version {result.before} -> {result.after}")
    for change in result.endpoints:
        typer.echo(f"  {change.kind} {change.name}: {change.detail} {change.url or ''}".rstrip())


@app.command()
def doctor(project_dir: ProjectDir = Path("."), target: TargetOption = None) -> None:
    """Check the project's config, the files it points to, uv and auth; changes nothing."""
    from lakeforge.doctor import run_checks

    checks = run_checks(project_dir, target)
    marks = {True: ("✓", "green"), False: ("✗", "red"), None: ("-", "dim")}
    console = Console(highlight=False)
    for check in checks:  # details quote config text such as [tool.lakeforge]: Text, never markup
        console.print(Text.assemble(marks[check.ok], f" {check.name}: {check.detail}"), soft_wrap=True)
    if any(check.ok is False for check in checks):
        raise typer.Exit(1)


def _apply(
    w: WorkspaceClient,
    plan: Plan,
    *,
    dry_run: bool,
    yes: bool,
    json_output: bool,
    summary: Path | None = None,
) -> None:
    from lakeforge import render
    from lakeforge.apply import apply_plan

    out = Console(highlight=False, soft_wrap=False)
    if dry_run or not plan.has_changes:
        _show(out, plan, plan.changes, applied=False, json_output=json_output, dry_run=dry_run)
        if summary is not None:
            _append(summary, render.markdown(plan, plan.changes, applied=False))
        return
    if not yes:
        if not sys.stdin.isatty():
            raise Refused(
                f"{plan.command} plan for target '{plan.config.target.name}': "
                f"{render.summary_line(plan.changes, False)}; no terminal to confirm on: pass --yes to apply "
                "it (or --dry-run to only look)"
            )
        render.show(_err if json_output else out, plan, plan.changes, applied=False)
        question = f"Apply this {plan.command} plan to target '{plan.config.target.name}'?"
        try:
            confirmed = typer.confirm(question, err=True)
        except typer.Abort:  # Ctrl-C or end of input at the question (click's confirm raises Abort)
            _err.print()  # end the question's line
            raise Cancelled("cancelled, nothing changed") from None
        if not confirmed:
            raise Refused("not applied: nothing changed")
    with _progress("applying") as progress:
        result = apply_plan(w, plan, progress)
    _show(out, plan, result.changes, applied=True, json_output=json_output, dry_run=False)
    if summary is not None:
        _append(summary, render.markdown(plan, result.changes, applied=True))


def _append(path: Path, markdown: str) -> None:
    """Add a section to a summary file (a CI job's summary page), after what is there."""
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(markdown + "\n")
    except OSError as exc:
        raise LakeforgeError(f"cannot write the summary to {path}: {exc.strerror or exc}") from exc


def _show(
    out: Console, plan: Plan, changes: Sequence[Change], *, applied: bool, json_output: bool, dry_run: bool
) -> None:
    from lakeforge import render

    if json_output:
        typer.echo(render.as_json(plan, changes, applied=applied, dry_run=dry_run))
    else:
        render.show(out, plan, changes, applied=applied)


def _connect(target: Target) -> WorkspaceClient:
    """The target's client, after a note on stderr when its host wins over a different DATABRICKS_HOST."""
    from lakeforge.connection import connect, host_override

    override = host_override(target)
    if override is not None:
        _err.print(f"note: target '{target.name}': {override}", soft_wrap=True, markup=False)
    return connect(target)


@contextmanager
def _progress(what: str) -> Iterator[Callable[[str], None]]:
    """Progress on stderr: a spinner on a terminal, otherwise one line per step (not per file)."""
    if _err.is_terminal:
        with _err.status(what) as status:
            yield lambda message: status.update(f"{what}: {escape(message)}")  # job names hold [dev]
        return

    def line(message: str) -> None:
        tick = _FILE_TICK.match(message)
        if tick is None or tick[2] == tick[3]:
            _err.print(message, soft_wrap=True, markup=False)

    yield line


@contextmanager
def _errors_to_exit(summary: Path | None = None, command: str = "") -> Iterator[None]:
    """A `LakeforgeError` becomes one line on stderr and exit 1 (130 when cancelled with Ctrl-C, as a shell
    reports SIGINT), and a line in the summary file if any."""
    try:
        yield
    except LakeforgeError as exc:
        _err.print(f"lakeforge: {exc}", soft_wrap=True, markup=False)
        if summary is not None and not isinstance(exc, RunFailed):  # a failed run is in the summary already
            with suppress(LakeforgeError):
                _append(summary, f"**`{command}` failed**: {' '.join(str(exc).split())}\n")
        raise typer.Exit(130 if isinstance(exc, Cancelled) else 1) from None
