"""The model flavour: how the model is made, logged to MLflow and loaded back (a scikit-learn pipeline here).

The wheel runs on whatever MLflow the cluster's runtime ships, from 2.13.1 (15.4 LTS ML) to 3.8.1 (18 LTS ML),
and locally on the newest; `_log_options` is the one place that asks which MLflow this is.
"""

from __future__ import annotations

import importlib.util
import inspect
from functools import cache
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from .features import CATEGORICAL

HYPERPARAMETERS = {"learning_rate": 0.08, "max_iter": 200, "max_leaf_nodes": 31, "l2_regularization": 1.0}
# skops refuses HistGradientBoosting's tree nodes on load unless the model says to trust them.
SKOPS_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def make(hyperparameters: dict[str, float] | None = None, seed: int = 0) -> Pipeline:
    encode = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    params = {**HYPERPARAMETERS, **(hyperparameters or {})}
    classify = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed, **params)
    return Pipeline([("encode", encode), ("classify", classify)])


def log(model: Pipeline, example: pd.DataFrame) -> ModelInfo:
    """Log the fitted model to the active run as `model`; pyfunc's predict gives both class probabilities."""
    return mlflow.sklearn.log_model(
        model,
        signature=infer_signature(example, model.predict_proba(example)),
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        **_log_options(),
    )


def load(name: str, number: str) -> Pipeline:
    return mlflow.sklearn.load_model(f"models:/{name}/{number}")


@cache
def _log_options() -> dict[str, Any]:
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
            "skops_trusted_types": SKOPS_TRUSTED_TYPES,
            "pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_skops=True),
        }
    return {
        **options,
        "serialization_format": "cloudpickle",
        "pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
    }
