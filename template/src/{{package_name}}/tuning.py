"""Tuning: a seeded random search over model.py's hyperparameter ranges, judged on the validation rows.

Trial 0 is the settings' own hyperparameters (so tuning never returns worse than them on validation); the others
are drawn from the ranges in HYPERPARAMETERS. Each trial is a child run of the training run with its
hyperparameters and `validation_roc_auc`; the best trial's hyperparameters train the final model. The search stops
at the trial budget (`tuning_trials`) or, before starting a trial, once `tuning_minutes` have passed.

Why random search with scikit-learn's ParameterSampler and not Optuna: the wheel installs on every Databricks ML
runtime in runtimes.yml without changing a preinstalled package, and Optuna would add itself, alembic, colorlog,
sqlalchemy and more to that proof for each runtime; ParameterSampler ships with scikit-learn, is reproducible
from the seed, and with a few dozen trials over four hyperparameters random search finds about as good a model
as adaptive search (Bergstra and Bengio, "Random search for hyper-parameter optimization", JMLR 2012). A team
that wants Optuna's samplers can call it from here; the trial records stay the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterSampler

from . import flavour, model
from .config import Settings
from .features import FEATURES, LABEL


@dataclass(frozen=True)
class Trial:
    number: int
    hyperparameters: dict[str, Any]
    validation_roc_auc: float


@dataclass(frozen=True)
class Tuning:
    trials: list[Trial]

    @property
    def best(self) -> Trial:
        """The trial with the highest validation ROC AUC; of equal ones, the first."""
        return max(self.trials, key=lambda t: (t.validation_roc_auc, -t.number))


def candidates(settings: Settings) -> Iterator[dict[str, Any]]:
    """The settings' hyperparameters, then `tuning_trials - 1` draws from the declared ranges (seeded)."""
    yield dict(settings.hyperparameters)
    declared = model.HYPERPARAMETERS
    space = {name: h.distribution() for name, h in declared.items()}
    for drawn in ParameterSampler(space, n_iter=settings.tuning_trials - 1, random_state=settings.seed):
        yield {**settings.hyperparameters, **{name: declared[name].cast(v) for name, v in drawn.items()}}


def tune(
    settings: Settings,
    fit_rows: pd.DataFrame,
    validation_rows: pd.DataFrame,
    clock: Callable[[], float] = time.monotonic,
) -> Tuning:
    """Run the trials as child runs of the active run; needs `tuning_trials` >= 1."""
    deadline = clock() + settings.tuning_minutes * 60
    X, y = fit_rows[list(FEATURES)], fit_rows[LABEL]
    X_validation, y_validation = validation_rows[list(FEATURES)], validation_rows[LABEL]
    trials: list[Trial] = []
    for number, hyperparameters in enumerate(candidates(settings)):
        if trials and clock() >= deadline:
            break
        with mlflow.start_run(run_name=f"trial {number}", nested=True):
            fitted = model.fit(model.make(hyperparameters, settings.seed), X, y)
            score = float(roc_auc_score(y_validation, flavour.probability(fitted.predict_proba(X_validation))))
            mlflow.log_params(hyperparameters)
            mlflow.log_metric("validation_roc_auc", score)
        trials.append(Trial(number, hyperparameters, score))
    return Tuning(trials)
