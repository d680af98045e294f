"""The training profile saved with every model version: what monitoring compares new batches against.

Training summarises its rows: per numeric feature the decile bin edges and the count of rows in each bin, per
categorical feature the count of each category, and the same decile bins for the model's score (the predicted
probability) on the validation rows, which it was not fitted on, as it is not on a batch. The profile is a JSON
artifact of the training run, `monitoring/baseline_profile.json`, found from a model version's run id. So
monitoring never reads an old version of the feature table: Delta keeps an old version's data files for 7 days
by default and VACUUM (predictive optimization runs it) deletes them after that.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from .errors import UserError
from .features import CATEGORICAL, NUMERIC

ARTIFACT = "monitoring/baseline_profile.json"
FORMAT = 1
BINS = 10


@dataclass(frozen=True)
class Bins:
    """A histogram over the inner edges e1 < ... < en: bins (-inf, e1], (e1, e2], ..., (en, inf)."""

    edges: list[float]
    counts: list[int]

    @classmethod
    def of(cls, values: np.ndarray, bins: int = BINS) -> Bins:
        """Edges at the values' quantiles (deciles by default, duplicates dropped); missing values are not counted."""
        values = np.asarray(values, dtype=float)
        values = values[~np.isnan(values)]
        quantiles = np.quantile(values, [i / bins for i in range(1, bins)]) if len(values) else []
        edges = sorted({float(q) for q in quantiles})
        return cls(edges, count(values, edges))


def count(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts per bin of `Bins`: a value equal to an edge falls in the bin the edge closes."""
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return [int(c) for c in np.bincount(index, minlength=len(edges) + 1)]


@dataclass(frozen=True)
class Profile:
    feature_table: str
    feature_table_version: int
    rows: int
    numeric: dict[str, Bins]
    categorical: dict[str, dict[str, int]]
    score: Bins

    @classmethod
    def of(cls, rows: pd.DataFrame, scores: np.ndarray, feature_table: str, feature_table_version: int) -> Profile:
        return cls(
            feature_table,
            int(feature_table_version),
            len(rows),
            {c: Bins.of(rows[c].to_numpy(dtype=float)) for c in NUMERIC},
            {c: {str(k): int(n) for k, n in rows[c].value_counts().items()} for c in CATEGORICAL},
            Bins.of(scores),
        )

    def to_dict(self) -> dict:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Profile:
        if data.get("format") != FORMAT:
            raise ValueError(f"baseline profile format {data.get('format')!r} is not {FORMAT}")
        return cls(
            data["feature_table"],
            int(data["feature_table_version"]),
            int(data["rows"]),
            {c: Bins(**b) for c, b in data["numeric"].items()},
            {c: dict(counts) for c, counts in data["categorical"].items()},
            Bins(**data["score"]),
        )


def log(profile: Profile) -> None:
    """Save the profile in the active MLflow run, next to the model it describes."""
    mlflow.log_dict(profile.to_dict(), ARTIFACT)


def load(run_id: str) -> Profile:
    """The profile saved by a training run, from whichever artifact repository the run uses (Databricks' too)."""
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT)
    except (MlflowException, OSError) as error:
        raise UserError(
            f"training run {run_id} has no {ARTIFACT} (a model trained before profiles were saved has none; "
            f"train and promote a new version): {error}"
        ) from None
    return Profile.from_dict(json.loads(Path(path).read_text()))
