"""The model: the estimator, its hyperparameters, how it is made, fitted and logged. This file is yours: template
updates never change it.

Swap the estimator here and nowhere else (docs/project/change-the-model.md walks through it, LightGBM and XGBoost
included). The rest of the project relies on these four names:

- HYPERPARAMETERS: each hyperparameter's default and allowed range. They are settings (`-p learning_rate=0.05`,
  job parameters, the training notebook's widgets) and the ranges are what tuning searches.
- make(hyperparameters, seed): a new, unfitted scikit-learn classifier over the FEATURES columns (a pandas
  DataFrame) with `predict_proba`; `seed` makes it reproducible.
- fit(model, X, y): the model fitted on those rows.
- log(model, example, metadata): the fitted model logged to the active MLflow run; scoring, promotion and serving
  load it back through `mlflow.pyfunc`, whose `predict` must give the classes' probabilities.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.models.model import ModelInfo
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from . import flavour
from .features import CATEGORICAL
from .hyperparameters import Hyperparameter

HYPERPARAMETERS = {
    "learning_rate": Hyperparameter(0.08, 0.01, 0.3, log=True, help="Shrinkage of each boosting step."),
    "max_iter": Hyperparameter(200, 50, 500, help="Boosting iterations at most (early stopping may stop sooner)."),
    "max_leaf_nodes": Hyperparameter(31, 8, 128, log=True, help="Leaves of each tree at most."),
    "l2_regularization": Hyperparameter(1.0, 0.0, 10.0, help="L2 penalty on the leaf values."),
}
# skops refuses HistGradientBoosting's tree nodes on load unless the model says to trust them.
SKOPS_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def make(hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    encode = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    classify = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed, **hyperparameters)
    return Pipeline([("encode", encode), ("classify", classify)])


def fit(model: Pipeline, X: pd.DataFrame, y: pd.Series) -> Pipeline:
    return model.fit(X, y)


def log(model: Pipeline, example: pd.DataFrame, metadata: dict[str, Any]) -> ModelInfo:
    return flavour.log_sklearn(model, example, metadata, skops_trusted_types=SKOPS_TRUSTED_TYPES)
