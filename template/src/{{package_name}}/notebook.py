"""Notebook parameters: job parameters (widgets) on Databricks, the notebook's own defaults elsewhere."""

from __future__ import annotations

from .config import Settings
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
