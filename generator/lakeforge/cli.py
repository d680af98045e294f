"""The `lakeforge` command line: option parsing and output only; the work is in the library modules."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from lakeforge import __version__, template
from lakeforge.errors import LakeforgeError

app = typer.Typer(
    help="Generate a Databricks MLOps project whose whole loop runs offline, and put it on Databricks.",
    no_args_is_help=True,
    add_completion=False,
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
            help=f"Template folder or git URL (default: ${template.TEMPLATE_ENV}, else this checkout).",
        ),
    ] = None,
    vcs_ref: Annotated[
        str | None, typer.Option("--vcs-ref", help="Git tag, branch or commit of the template to render.")
    ] = None,
) -> None:
    """Create a project from the lakeforge template."""
    answers = _parse_data(data or [])
    try:
        project = template.create_project(
            dest, answers, defaults=defaults, template=template_src, vcs_ref=vcs_ref
        )
    except LakeforgeError as exc:
        typer.echo(f"lakeforge: {exc}", err=True)
        raise typer.Exit(1) from None
    slug = template.read_answers(project).get("project_slug")
    steps = [(f"cd {shlex.quote(str(dest))}", "")]
    if slug:
        steps.append((f"uv run {slug} run-all", "# the whole loop, locally and offline"))
    steps.append(("uv run pytest", "# the project's own tests"))
    width = max(len(command) for command, _ in steps)
    typer.echo(f"Created {project}\n\nNext steps:")
    for command, comment in steps:
        typer.echo(f"  {command.ljust(width)}  {comment}".rstrip())
