"""Show plans and results: a rich table for people on a terminal (stderr for progress, stdout for the table),
one plain line per resource elsewhere (a pipe, a CI log: whole URLs, never wrapped), the same rows as JSON for
CI, and Markdown for a CI job's summary page (what changed, and the runs of `run all`). Workspace code is one
row per target (with counts); every other resource is its own row.

One vocabulary everywhere: a plan says "to create, to update, to delete, unchanged", a result "created,
updated, deleted, unchanged", and a plan without changes "nothing to change". JSON has the same keys and
action values ("create", "update", "delete", "unchanged") for a plan and a result; `applied` tells them apart.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lakeforge.changes import Action, Change, workspace_url
from lakeforge.plan import Plan
from lakeforge.runs import RunAllResult, duration

_CODE_KINDS = ("notebook", "file")
_ORDER = (Action.CREATE, Action.UPDATE, Action.DELETE, Action.UNCHANGED)
_STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red", Action.UNCHANGED: "dim"}


@dataclass(frozen=True)
class Row:
    step: str
    kind: str
    name: str
    action: Action
    detail: str
    url: str | None
    files: tuple[tuple[str, Action], ...] = ()


def rows(plan: Plan, changes: tuple[Change, ...] | list[Change], applied: bool = False) -> list[Row]:
    """The changes as table rows; the code files of the workspace step become one row."""
    result: list[Row] = []
    code = [c for c in changes if c.step == "workspace" and c.kind in _CODE_KINDS]
    code_row_at = None
    for change in changes:
        if change in code:
            code_row_at = len(result) if code_row_at is None else code_row_at
            continue
        result.append(Row(change.step, change.kind, change.name, change.action, change.detail, change.url))
    if code:
        counts = Counter(c.action for c in code)
        changed = [a for a in _ORDER if a is not Action.UNCHANGED and counts[a]]
        action = changed[0] if len(changed) == 1 else (Action.UPDATE if changed else Action.UNCHANGED)
        root = plan.desired.root
        row = Row(
            "workspace",
            "code",
            root,
            action,
            ", ".join(f"{counts[a]} {word(a, applied)}" for a in _ORDER if counts[a]),
            workspace_url(plan.desired.host, root),
            tuple((c.name, c.action) for c in code if c.action is not Action.UNCHANGED),
        )
        result.insert(code_row_at if code_row_at is not None else len(result), row)
    return result


def as_json(plan: Plan, changes: tuple[Change, ...] | list[Change], applied: bool, dry_run: bool) -> str:
    table = rows(plan, changes, applied)
    resources: list[dict[str, Any]] = []
    for row in table:
        entry: dict[str, Any] = {
            "step": row.step,
            "kind": row.kind,
            "name": row.name,
            "action": row.action.value,
            "detail": row.detail,
            "url": row.url,
        }
        if row.kind == "code":
            entry["files"] = [{"path": p, "action": a.value} for p, a in row.files]
        resources.append(entry)
    counts = Counter(c.action for c in changes if c.step != "identity")
    document = {
        "command": plan.command,
        "project": plan.config.project,
        "target": plan.config.target.name,
        "host": plan.desired.host,
        "user": plan.desired.user,
        "dry_run": dry_run,
        "applied": applied,
        "summary": {a.value: counts[a] for a in _ORDER},
        "resources": resources,
    }
    return json.dumps(document, indent=2)


def word(action: Action, applied: bool) -> str:
    """An action as people read it: "to create" in a plan, "created" once applied, "unchanged" in both."""
    if applied or action is Action.UNCHANGED:
        return action.past
    return f"to {action.value}"


def title(plan: Plan, changes: tuple[Change, ...] | list[Change], applied: bool) -> str:
    config = plan.config
    state = "applied" if applied else "plan" if _changed(changes) else "nothing to change"
    return f"{plan.command} {config.project} → {config.target.name}: {state}"


def table(plan: Plan, changes: tuple[Change, ...] | list[Change], applied: bool) -> Table:
    # Names, details and URLs are user and workspace text ("[dev] churn-model training"): Text, never markup.
    grid = Table(
        title=Text(title(plan, changes, applied)), title_justify="left", show_lines=False, expand=False
    )
    grid.add_column("step")
    grid.add_column("resource")
    grid.add_column("action")
    grid.add_column("detail", overflow="fold")
    grid.add_column("url", overflow="fold")
    for row in rows(plan, changes, applied):
        grid.add_row(
            Text(row.step),
            Text.assemble(f"{row.kind} ", (row.name, "bold")),
            Text(word(row.action, applied), style=_STYLE[row.action]),
            Text(row.detail),
            Text(row.url or ""),
        )
    return grid


def summary_line(changes: tuple[Change, ...] | list[Change], applied: bool) -> str:
    """E.g. "3 to create, 28 unchanged", "3 created, 28 unchanged", "nothing to change (31 unchanged)"."""
    counts = Counter(c.action for c in changes if c.step != "identity")
    if not _changed(changes):
        return f"nothing to change ({counts[Action.UNCHANGED]} unchanged)"
    return ", ".join(f"{counts[a]} {word(a, applied)}" for a in _ORDER if counts[a])


def lines(plan: Plan, changes: tuple[Change, ...] | list[Change], applied: bool) -> list[str]:
    """The table as plain text for a pipe or a CI log: the title, one line per resource, the summary."""
    body = [
        "  ".join(
            part
            for part in (word(r.action, applied).ljust(9), r.step, f"{r.kind} {r.name}", r.detail, r.url)
            if part
        )
        for r in rows(plan, changes, applied)
    ]
    return [title(plan, changes, applied), *body, summary_line(changes, applied)]


def show(console: Console, plan: Plan, changes: tuple[Change, ...] | list[Change], applied: bool) -> None:
    """A table on a terminal; elsewhere plain lines, so that no URL is wrapped to the console's width."""
    if not console.is_terminal:
        for line in lines(plan, changes, applied):
            console.out(line, highlight=False)
        return
    console.print(table(plan, changes, applied))
    console.print(summary_line(changes, applied), markup=False)


def _changed(changes: tuple[Change, ...] | list[Change]) -> bool:
    return any(c.action is not Action.UNCHANGED for c in changes)


# ---------------------------------------------------------------------------------------------------------
# Markdown, for a CI job's summary ($GITHUB_STEP_SUMMARY, Azure DevOps' task.uploadsummary)
# ---------------------------------------------------------------------------------------------------------
def markdown(plan: Plan, changes: tuple[Change, ...] | list[Change], applied: bool) -> str:
    """What bootstrap or destroy changed (or would change) in the target, for a person to read."""
    config = plan.config
    verb = {"bootstrap": "Bootstrap", "destroy": "Destroy"}.get(plan.command, plan.command)
    how = " (plan, not applied)" if not applied and _changed(changes) else ""
    text = [
        f"### {verb} of {config.project} on {config.target.name}{how}: {summary_line(changes, applied)}",
        "",
        f"Workspace {_cell(plan.desired.host) or '(from the environment)'}, as {_cell(plan.desired.user)}.",
        "",
    ]
    every = rows(plan, changes, applied)
    changed = [r for r in every if r.action is not Action.UNCHANGED]
    if not changed:
        text.append("Nothing to change: the workspace already matches the project.")
        return "\n".join(text) + "\n"
    text += ["| step | resource | action | detail |", "|---|---|---|---|"]
    for row in changed:
        name = f"[{_cell(row.name)}]({row.url})" if row.url else _cell(row.name)
        detail = row.detail
        if row.files:
            shown = ", ".join(f"{path.rsplit('/', 1)[-1]} ({word(a, applied)})" for path, a in row.files[:10])
            detail = f"{detail}: {shown}" + (", ..." if len(row.files) > 10 else "")
        text.append(f"| {row.step} | {row.kind} {name} | {word(row.action, applied)} | {_cell(detail)} |")
    unchanged = len(every) - len(changed)
    if unchanged:
        text += ["", f"{unchanged} other resources unchanged."]
    return "\n".join(text) + "\n"


_MARKS = {"SUCCESS": "✅", "not started": "⏭️"}


def run_all_markdown(result: RunAllResult) -> str:
    """The runs of `lakeforge run all`: each job, its result, how long it took and its run's page."""
    total = len(result.runs) + len(result.not_started)
    failed = result.failed
    if result.succeeded:
        head = f"all {total} succeeded"
    else:
        head = f"{failed.job if failed else '?'} ended {failed.state if failed else '?'}"
        if result.not_started:
            head += f", {len(result.not_started)} not started"
    lines = [
        f"### Jobs on {result.target}: {head}",
        "",
        "| # | job | result | time | tasks | run |",
        "|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(result.runs, 1):
        mark = _MARKS.get(run.state, "❌")
        link = f"[run {run.run_id}]({run.url})"
        took = duration(run.seconds)
        tasks = ", ".join(f"{t.key} {t.state}" for t in run.tasks)
        lines.append(f"| {i} | {_cell(run.job)} | {mark} {run.state} | {took} | {_cell(tasks)} | {link} |")
    for i, job in enumerate(result.not_started, len(result.runs) + 1):
        lines.append(f"| {i} | {_cell(job)} | {_MARKS['not started']} not started | | | |")
    if failed is not None:
        lines += [
            "",
            f"**{_cell(failed.job)}**: {_cell(failed.message).rstrip('.') or failed.state}. "
            f"The jobs after it were not started; see [its run]({failed.url}).",
        ]
    return "\n".join(lines) + "\n"


def run_all_lines(result: RunAllResult) -> list[str]:
    """One line per job for the terminal, `job: STATE url`, then one per task, `  task: STATE time`."""
    lines = []
    for run in result.runs:
        lines.append(f"{run.job}: {run.state} {run.url}")
        lines += [f"  {t.key}: {t.state} {duration(t.seconds)}".rstrip() for t in run.tasks]
    return lines + [f"{job}: not started" for job in result.not_started]


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")
