"""Batch inference: score new customers with the champion and append every prediction to the inference log.

The log is append-only: each row keeps the features it was scored on, the model version, a batch id and
the time, so monitoring and audits can replay any day. Scoring runs in mapInPandas, so on a cluster it is
spread over the executors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import registry
from .config import INFERENCE_LOG, Settings
from .features import FEATURES, KEY, LABEL
from .flavour import load
from .world import World

THRESHOLD = 0.5


@dataclass(frozen=True)
class ScoringResult:
    batch_id: str
    rows: int
    model_version: str
    churn_rate: float
    log_version: int


def score(world: World, settings: Settings, features: DataFrame, batch_id: str) -> ScoringResult:
    client = MlflowClient()
    champion = registry.require(client, settings.model, registry.CHAMPION, "promote a model first")
    model = load(settings.model, champion.number)
    predictions = predict(features.drop(LABEL) if LABEL in features.columns else features, model)
    logged = predictions.select(
        "*",
        F.lit(settings.model).alias("model_name"),
        F.lit(champion.number).alias("model_version"),
        F.lit(batch_id).alias("batch_id"),
        F.lit(datetime.now(UTC).replace(tzinfo=None)).alias("scored_at"),
    )
    log_version = world.tables.write(logged, INFERENCE_LOG, mode="append")
    stats = (
        world.tables.read(INFERENCE_LOG, log_version)
        .where(F.col("batch_id") == batch_id)
        .agg(F.count(F.lit(1)).alias("rows"), F.avg("prediction").alias("rate"))
        .first()
    )
    return ScoringResult(batch_id, int(stats["rows"]), champion.number, float(stats["rate"] or 0.0), log_version)


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
