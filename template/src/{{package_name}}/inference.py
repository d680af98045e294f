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
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import registry
from .config import INFERENCE_LOG, Settings
from .features import FEATURES, KEY, LABEL
from .flavour import load
from .tables import Tables
from .world import World

THRESHOLD = 0.5


@dataclass(frozen=True)
class ScoringResult:
    batch_id: str
    rows: int
    model_version: str
    churn_rate: float
    log_version: int


@dataclass(frozen=True)
class Champion:
    """The model that holds the champion role, loaded, and its version number."""

    version: str
    model: Any


def load_champion(settings: Settings) -> Champion:
    champion = registry.require(MlflowClient(), settings.model, registry.CHAMPION, "promote a model first")
    return Champion(champion.number, load(settings.model, champion.number))


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
    predictions = predict(features.drop(LABEL) if LABEL in features.columns else features, champion.model)
    logged = predictions.select(
        "*",
        F.lit(settings.model).alias("model_name"),
        F.lit(champion.version).alias("model_version"),
        F.lit(batch_id).alias("batch_id"),
        F.lit(datetime.now(UTC).replace(tzinfo=None)).alias("scored_at"),
    )
    return tables.write(logged, INFERENCE_LOG, mode="append")


def predict(features: DataFrame, model) -> DataFrame:
    """The features with `probability` and `prediction` columns added by the given sklearn model."""
    columns = [KEY, *FEATURES]
    inputs = features.select(*columns).schema.fields
    schema = T.StructType(
        [*inputs, T.StructField("probability", T.DoubleType()), T.StructField("prediction", T.IntegerType())]
    )

    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            probability = model.predict_proba(batch[list(FEATURES)])[:, 1]
            yield batch.assign(probability=probability, prediction=(probability >= THRESHOLD).astype("int32"))

    return features.select(*columns).mapInPandas(apply, schema)
