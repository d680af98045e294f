"""How a model goes to MLflow and comes back: logging a scikit-learn model, its requirements, loading through pyfunc.

model.py (yours) decides the estimator and calls `log_sklearn`; this module (the template's, so template releases
can fix it) knows the MLflow versions the wheel meets. The wheel runs on whatever MLflow the cluster's runtime
ships, from 2.13.1 (15.4 LTS ML) to 3.8.1 (18 LTS ML), and locally on the newest; `_log_options` is the one place
that asks which MLflow this is. Every step loads models through `mlflow.pyfunc`, whatever the flavour.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PyFuncModel

# This project's own package: a model holding its classes needs its code logged with it, not a pin of it.
PACKAGE = __name__.split(".")[0]


def log_sklearn(
    model: Any, example: pd.DataFrame, metadata: dict[str, Any], *, skops_trusted_types: Sequence[str] = ()
) -> ModelInfo:
    """Log a fitted scikit-learn-API model (a Pipeline around LightGBM or XGBoost too) to the active run as `model`.

    pyfunc's predict gives the classes' probabilities. The requirements are the format's and every package whose
    classes the model holds, pinned to the installed version, so serving installs what the model needs.
    """
    options = dict(_log_options(tuple(skops_trusted_types)))
    pins = {_name(r): r for r in [*options.pop("pip_requirements"), *requirements(model)]}
    if holds_own_code(model):
        options["code_paths"] = [str(Path(__file__).resolve().parent)]
    return mlflow.sklearn.log_model(
        model,
        signature=infer_signature(example, model.predict_proba(example)),
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        metadata=metadata,
        pip_requirements=sorted(pins.values()),
        **options,
    )


def load(name: str, number: str) -> PyFuncModel:
    return mlflow.pyfunc.load_model(f"models:/{name}/{number}")


def probability(output: Any) -> np.ndarray:
    """P(positive class) from a model's output: `predict_proba`'s (n, 2) pairs, as pyfunc gives them here, or one
    probability per row (a 1-column frame, a series or a flat array), as other flavours' pyfunc may give."""
    values = output.to_numpy() if isinstance(output, pd.DataFrame | pd.Series) else np.asarray(output)
    values = values.astype(float)
    if values.ndim == 2 and values.shape[1] == 2:
        return values[:, 1]
    if values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    if values.ndim == 1:
        return values
    raise ValueError(f"model output of shape {values.shape} is neither (n, 2) class probabilities nor (n,)")


def requirements(model: Any) -> list[str]:
    """`name==version` of every installed distribution whose modules the model's classes (deep) come from."""
    distributions = _distributions()
    pins = set()
    for module in _modules(model, set()):
        top = module.split(".")[0]
        # MLflow pins itself; the standard library and this package's own code (logged as code) are not installed.
        if top in {"mlflow", PACKAGE, "builtins"} or top in sys.stdlib_module_names:
            continue
        for distribution in distributions.get(top, []):
            pins.add(f"{distribution}=={version(distribution)}")
    return sorted(pins)


@cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()  # reads every installed distribution's file list: a second, once


def holds_own_code(model: Any) -> bool:
    return any(module.split(".")[0] == PACKAGE for module in _modules(model, set()))


def _modules(value: Any, seen: set[int]) -> Iterator[str]:
    """The modules of the classes and functions a scikit-learn estimator holds, through its parameters, deep."""
    if id(value) in seen or value is None or isinstance(value, str | bytes | bool | int | float):
        return
    seen.add(id(value))
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _modules(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _modules(item, seen)
    elif hasattr(value, "get_params") and not isinstance(value, type):
        yield type(value).__module__
        for item in value.get_params(deep=False).values():
            yield from _modules(item, seen)
    elif isinstance(value, type) or callable(value):
        if module := getattr(value, "__module__", None):
            yield module
    else:
        yield type(value).__module__


def _name(requirement: str) -> str:
    return requirement.split("==")[0].strip().lower().replace("_", "-")


@cache
def _log_options(skops_trusted_types: tuple[str, ...] = ()) -> dict[str, Any]:
    """The `log_model` arguments that differ between the MLflow versions the wheel meets, by feature detection.

    - The artifact's name: MLflow 3.0 added `name` and deprecated `artifact_path`; 2.x has only `artifact_path`.
    - The format: skops (loads without unpickling code) arrived in MLflow 3.9.0 (mlflow/mlflow#18759), with
      `skops_trusted_types` and `get_default_pip_requirements(include_skops=...)`; 3.17.0 made it the default
      off Databricks (#23987). Before 3.9 cloudpickle is the choice, as it is MLflow's default on Databricks.
      Checked against the mlflow-skinny wheels 2.13.1, 2.21.3, 3.0.1, 3.8.1 (no skops) and 3.9.0, 3.17.0.
    - The requirements, pinned to the format: without them MLflow exports the whole environment it runs in.
    """
    parameters = inspect.signature(mlflow.sklearn.log_model).parameters
    options: dict[str, Any] = {"name" if "name" in parameters else "artifact_path": "model"}
    if "skops_trusted_types" in parameters and importlib.util.find_spec("skops") is not None:
        return {
            **options,
            "serialization_format": "skops",
            "skops_trusted_types": list(skops_trusted_types),
            "pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_skops=True),
        }
    return {
        **options,
        "serialization_format": "cloudpickle",
        "pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
    }
