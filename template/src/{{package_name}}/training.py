"""Training: fit on a recorded version of the feature table, track it in MLflow, register the challenger."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.inspection import permutation_importance
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.pipeline import Pipeline

from . import baseline, flavour, plots, registry
from .config import FEATURE_TABLE, Settings
from .features import FEATURES, LABEL, holdout
from .world import World


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    model_version: str
    feature_table_version: int
    metrics: dict[str, float]


def evaluate(model: Pipeline, rows: pd.DataFrame) -> dict[str, float]:
    """Quality metrics on labelled rows; promotion compares models with exactly these."""
    y = rows[LABEL].to_numpy()
    scores = model.predict_proba(rows[list(FEATURES)])[:, 1]
    predicted = (scores >= 0.5).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "log_loss": float(log_loss(y, scores, labels=[0, 1])),
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
    }


def train(world: World, settings: Settings, feature_table_version: int | None = None) -> TrainingResult:
    version = world.tables.version(FEATURE_TABLE) if feature_table_version is None else feature_table_version
    table = world.tables.read(FEATURE_TABLE, version)
    train_rows = table.where(~holdout()).toPandas()
    test_rows = table.where(holdout()).toPandas()
    if train_rows.empty or test_rows.empty:
        raise ValueError(f"feature table version {version} has no rows to train or test on")

    with mlflow.start_run(run_name="training") as run:
        model = flavour.make(seed=settings.seed)
        X = train_rows[list(FEATURES)]
        model.fit(X, train_rows[LABEL])
        metrics = evaluate(model, test_rows)

        source = world.tables.location(FEATURE_TABLE)
        mlflow.log_params({**flavour.HYPERPARAMETERS, "feature_table": source, "feature_table_version": version})
        mlflow.log_params({"train_rows": len(train_rows), "holdout_rows": len(test_rows)})
        with warnings.catch_warnings():
            # The dataset's integer key and label are never missing; MLflow's hint about that is noise here.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            dataset = mlflow.data.from_pandas(train_rows, name=f"{FEATURE_TABLE}@v{version}", targets=LABEL)
            mlflow.log_input(dataset, context="training")
        mlflow.log_metrics(metrics)
        _log_figures(model, test_rows, settings.seed)
        # What monitoring compares batches with, saved now: the table version it describes may be vacuumed later.
        baseline.log(baseline.Profile.of(train_rows, model.predict_proba(X)[:, 1], source, version))
        info = flavour.log(model, X.head(5))
    # Registered apart from log_model: MLflow 2.x's ModelInfo has no registered_model_version.
    model_version = str(mlflow.register_model(info.model_uri, settings.model).version)
    client = MlflowClient()
    registry.set_tags(
        client, settings.model, model_version, {"feature_table": source, "feature_table_version": str(version)}
    )
    registry.set_challenger(client, settings.model, model_version)
    return TrainingResult(run.info.run_id, model_version, version, metrics)


def _log_figures(model: Pipeline, test_rows: pd.DataFrame, seed: int) -> None:
    y = test_rows[LABEL].to_numpy()
    X = test_rows[list(FEATURES)]
    scores = model.predict_proba(X)[:, 1]
    sample = test_rows.sample(n=min(2_000, len(test_rows)), random_state=seed)
    importance = permutation_importance(
        model, sample[list(FEATURES)], sample[LABEL], scoring="roc_auc", n_repeats=3, random_state=seed
    )
    figures = {
        "roc_curve.png": plots.roc_curve(y, scores),
        "confusion_matrix.png": plots.confusion_matrix(y, (scores >= 0.5).astype(int)),
        "feature_importance.png": plots.bars(
            dict(zip(FEATURES, np.round(importance.importances_mean, 5), strict=True)),
            "Permutation importance (ROC AUC drop)",
        ),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plt.close(figure)
