"""Batch inference: score new customers with the champion and append every prediction to the inference log.

The log is append-only: each row keeps the features it was scored on, the model version, a batch id and
the time, so monitoring and audits can replay any day. Scoring runs in mapInPandas, so on a cluster it is
spread over the executors. Streaming scoring, in a project that has it (streaming.py), appends each micro-batch
through `log_predictions` too, so both give the same predictions in the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from mlflow.pyfunc import PyFuncModel
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import flavour, registry, threshold
from .config import INFERENCE_LOG, Settings
from .features import FEATURES, KEY, LABEL
from .tables import Tables
from .world import World


@dataclass(frozen=True)
class ScoringResult:
    batch_id: str
    rows: int
    model_version: str
    churn_rate: float
    log_version: int


@dataclass(frozen=True)
class Champion:
    """A registered model version loaded to score: its number, its pyfunc model and its decision threshold.

    Scoring loads the champion; promotion loads the challenger (and the champion) the same way."""

    version: str
    model: PyFuncModel
    threshold: float


def load(name: str, number: str) -> Champion:
    return Champion(number, flavour.load(name, number), threshold.of_version(MlflowClient(), name, number))


def load_champion(settings: Settings) -> Champion:
    champion = registry.require(MlflowClient(), settings.model, registry.CHAMPION, "promote a model first")
    return load(settings.model, champion.number)


def probability(model: PyFuncModel, rows: pd.DataFrame) -> np.ndarray:
    """P(positive class) of each row by the model (its FEATURES columns are used)."""
    return flavour.probability(model.predict(rows[list(FEATURES)]))


def score(world: World, settings: Settings, features: DataFrame, batch_id: str) -> ScoringResult:
    champion = load_champion(settings)
    log_version = log_predictions(world.tables, settings, champion, features, batch_id)
    stats = (
        world.tables.read(INFERENCE_LOG, log_version)
        .where(F.col("batch_id") == batch_id)
        .agg(F.count(F.lit(1)).alias("rows"), F.avg("prediction").alias("rate"))
        .first()
    )
    return ScoringResult(batch_id, int(stats["rows"]), champion.version, float(stats["rate"] or 0.0), log_version)


def log_predictions(tables: Tables, settings: Settings, champion: Champion, features: DataFrame, batch_id: str) -> int:
    """Score the features with the champion and append them to the inference log as one batch (one commit, one
    `scored_at`); returns the log's version after the append."""
    predictions = predict(features.drop(LABEL) if LABEL in features.columns else features, champion)
    logged = predictions.select(
        "*",
        F.lit(settings.model).alias("model_name"),
        F.lit(champion.version).alias("model_version"),
        F.lit(batch_id).alias("batch_id"),
        F.lit(datetime.now(UTC).replace(tzinfo=None)).alias("scored_at"),
    )
    return tables.write(logged, INFERENCE_LOG, mode="append")


def predict(features: DataFrame, champion: Champion) -> DataFrame:
    """The features with `probability` and `prediction` (probability >= the version's threshold) columns added."""
    columns = [KEY, *FEATURES]
    inputs = features.select(*columns).schema.fields
    schema = T.StructType(
        [*inputs, T.StructField("probability", T.DoubleType()), T.StructField("prediction", T.IntegerType())]
    )

    model, cut = champion.model, champion.threshold

    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            scores = probability(model, batch)
            yield batch.assign(probability=scores, prediction=(scores >= cut).astype("int32"))

    return features.select(*columns).mapInPandas(apply, schema)
