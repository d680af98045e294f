"""Notebook parameters and results: job parameters (widgets) and task values on Databricks, plain values elsewhere."""

from __future__ import annotations

import json

from .config import Settings
from .errors import UserError
from .world import on_databricks

# The settings every job passes as parameters; each target has its own values (see databricks/jobs/).
JOB_PARAMETERS = ("catalog", "schema", "experiment", "model")


def parameters(**defaults: object) -> dict[str, str]:
    if not on_databricks():
        return {name: str(value) for name, value in defaults.items()}
    from databricks.sdk.runtime import dbutils

    for name, value in defaults.items():
        dbutils.widgets.text(name, str(value))
    return {name: dbutils.widgets.get(name) for name in defaults}


def job_settings(*tunable: str) -> Settings:
    """Settings with the job's parameters applied; the dev target's names when run by hand.

    `tunable` names further settings the notebook exposes as widgets, e.g. the promotion gates.
    """
    defaults = Settings()
    names = (*JOB_PARAMETERS, *tunable)
    return defaults.with_params(parameters(**{name: getattr(defaults, name) for name in names}))


def optional_int(name: str, value: str) -> int | None:
    """A whole-number widget whose empty value (a notebook run by hand) means "not given"."""
    text = value.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"parameter {name}={value!r} is not allowed: use a whole number, or leave it empty") from None


def set_task_value(key: str, value: object) -> None:
    """Hand a value to later tasks of the job run (`{{tasks.<task>.values.<key>}}`); nothing happens elsewhere.

    Databricks "Use task values to pass information between tasks" (docs.databricks.com/aws/en/jobs/task-values):
    only Python notebooks can set them, and a value must be valid JSON of at most 48 KiB. "Add branching logic to a
    job with the If/else task" (.../jobs/tasks/if-else): a boolean task value is compared as "true" or "false".
    """
    size = len(json.dumps(value).encode())  # raises on a value that is not JSON
    if size > 48 * 1024:
        raise ValueError(f"task value {key} is {size} bytes of JSON; a task value holds at most 48 KiB")
    if not on_databricks():
        return
    from databricks.sdk.runtime import dbutils

    dbutils.jobs.taskValues.set(key=key, value=value)
