"""Training: fit on a recorded version of the feature table, track it in MLflow, register the challenger.

The rows a model learns from are the table's rows outside the holdout (`features.holdout`, which promotion judges
on), sorted by key, so the same table version, settings and seed give the same model and metrics whatever the
table's physical row order. A fixed quarter of them by key, the validation rows, is kept out of fitting: tuning
compares trials on it and the decision threshold is chosen on it. The model is then logged, loaded back through
pyfunc as scoring will load it, and measured on the holdout at its threshold.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.inspection import permutation_importance

from . import baseline, flavour, model, plots, registry, threshold, tuning
from .config import FEATURE_TABLE, Settings
from .errors import UserError
from .features import FEATURES, KEY, LABEL, holdout
from .metrics import evaluate
from .world import World


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    model_version: str
    feature_table_version: int
    metrics: dict[str, float]


def split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows to fit on and the validation rows: a quarter of the keys, by a hash that is the same everywhere
    (pandas' `hash_pandas_object` has a fixed key), so the split follows the customers, not the row order."""
    validation = pd.util.hash_pandas_object(rows[KEY], index=False).to_numpy() % 4 == 0
    return rows[~validation].reset_index(drop=True), rows[validation].reset_index(drop=True)


def train(world: World, settings: Settings, feature_table_version: int | None = None) -> TrainingResult:
    version = world.tables.version(FEATURE_TABLE) if feature_table_version is None else feature_table_version
    table = world.tables.read(FEATURE_TABLE, version)
    train_rows = _by_key(table.where(~holdout()).toPandas())
    test_rows = _by_key(table.where(holdout()).toPandas())
    fit_rows, validation_rows = split(train_rows)
    if fit_rows.empty or validation_rows.empty or test_rows.empty:
        raise UserError(
            f"feature table version {version} has too few rows to train on: {len(fit_rows)} to fit, "
            f"{len(validation_rows)} to validate, {len(test_rows)} in the holdout; every part needs some"
        )

    with mlflow.start_run(run_name="training") as run:
        hyperparameters, tuned = _hyperparameters(settings, fit_rows, validation_rows)
        X = fit_rows[list(FEATURES)]
        fitted = model.fit(model.make(hyperparameters, settings.seed), X, fit_rows[LABEL])
        validation_scores = _scores(fitted, validation_rows)
        cut = threshold.choose(validation_rows[LABEL].to_numpy(), validation_scores, settings.cost_ratio)

        source = world.tables.location(FEATURE_TABLE)
        mlflow.log_params({**hyperparameters, **tuned, "feature_table": source, "feature_table_version": version})
        mlflow.log_params(
            {
                "train_rows": len(train_rows),
                "fit_rows": len(fit_rows),
                "validation_rows": len(validation_rows),
                "holdout_rows": len(test_rows),
                "seed": settings.seed,
                "threshold_rule": f"cost_ratio {settings.cost_ratio:g}" if settings.cost_ratio > 0 else "f1",
                threshold.TAG: cut,
            }
        )
        with warnings.catch_warnings():
            # The dataset's integer key and label are never missing; MLflow's hint about that is noise here.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            dataset = mlflow.data.from_pandas(train_rows, name=f"{FEATURE_TABLE}@v{version}", targets=LABEL)
            mlflow.log_input(dataset, context="training")
        info = model.log(fitted, X.head(5), {threshold.TAG: cut})
        # The holdout metrics are the logged model's, loaded as scoring and promotion load it.
        logged = mlflow.pyfunc.load_model(info.model_uri)
        test_scores = flavour.probability(logged.predict(test_rows[list(FEATURES)]))
        metrics = evaluate(test_rows[LABEL].to_numpy(), test_scores, cut)
        validation_auc = evaluate(validation_rows[LABEL].to_numpy(), validation_scores, cut)["roc_auc"]
        mlflow.log_metrics({**metrics, "validation_roc_auc": validation_auc})
        _log_figures(fitted, test_rows, test_scores, cut, settings.seed)
        # What monitoring compares batches with, saved now: the table version it describes may be vacuumed later.
        # Scores of rows the model was not fitted on, as a batch's are: fitted rows' scores are more extreme.
        baseline.log(baseline.Profile.of(train_rows, validation_scores, source, version))
    # Registered apart from log_model: MLflow 2.x's ModelInfo has no registered_model_version.
    model_version = str(mlflow.register_model(info.model_uri, settings.model).version)
    client = MlflowClient()
    tags = {"feature_table": source, "feature_table_version": str(version), threshold.TAG: repr(cut)}
    registry.set_tags(client, settings.model, model_version, tags)
    registry.set_challenger(client, settings.model, model_version)
    return TrainingResult(run.info.run_id, model_version, version, metrics)


def _hyperparameters(
    settings: Settings, fit_rows: pd.DataFrame, validation_rows: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hyperparameters to fit with (the best trial's when tuning) and what tuning adds to the run's params."""
    if settings.tuning_trials == 0:
        return dict(settings.hyperparameters), {}
    found = tuning.tune(settings, fit_rows, validation_rows)
    best = found.best
    return best.hyperparameters, {"tuning_trials": len(found.trials), "tuning_best_trial": best.number}


def _by_key(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.sort_values(KEY, kind="stable").reset_index(drop=True)


def _scores(fitted: Any, rows: pd.DataFrame) -> np.ndarray:
    return flavour.probability(fitted.predict_proba(rows[list(FEATURES)]))


def _log_figures(fitted: Any, test_rows: pd.DataFrame, scores: np.ndarray, cut: float, seed: int) -> None:
    y = test_rows[LABEL].to_numpy()
    sample = test_rows.sample(n=min(2_000, len(test_rows)), random_state=seed)
    importance = permutation_importance(
        fitted, sample[list(FEATURES)], sample[LABEL], scoring="roc_auc", n_repeats=3, random_state=seed
    )
    figures = {
        "roc_curve.png": plots.roc_curve(y, scores),
        "confusion_matrix.png": plots.confusion_matrix(y, (scores >= cut).astype(int)),
        "feature_importance.png": plots.bars(
            dict(zip(FEATURES, np.round(importance.importances_mean, 5), strict=True)),
            "Permutation importance (ROC AUC drop)",
        ),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plt.close(figure)
