"""The loop's steps, each one job: connect to the world, read the sources, run the step's library code.

Notebooks and the CLI call these. The raw data comes only through `sources.py` (yours); while its sources are
SYNTHETIC, the synthetic generator writes them first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import uuid4

from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import inference, monitoring, promotion, registry, sources, synthetic, training
from .catalog import Catalog
from .config import FEATURE_TABLE, INFERENCE_LOG, Settings
from .errors import UserError
from .features import KEY, LABEL, build_features
from .world import World, connect, connect_mlflow


@dataclass(frozen=True)
class FeatureResult:
    table: str
    version: int
    rows: int


def features(settings: Settings, as_of: date | None = None) -> FeatureResult:
    """The feature table of every customer whose outcome is known; every run writes a new Delta version."""
    world, catalog = _connect(settings)
    day = as_of or date.today()
    synthetic.write_history(catalog, settings, day)
    known = sources.labels(catalog, day).select(KEY, F.col(LABEL).cast("int").alias(LABEL))
    table = build_features(sources.customers(catalog).join(known, KEY), sources.events(catalog), day)
    version = world.tables.write(table, FEATURE_TABLE, mode="overwrite", keys=(KEY,))
    rows = world.tables.read(FEATURE_TABLE, version).count()
    if not rows:
        raise UserError(f"no customer with a known outcome on {day}: sources.labels gave no row that matches")
    return FeatureResult(world.tables.location(FEATURE_TABLE), version, rows)


def train(settings: Settings, feature_table_version: int | None = None) -> training.TrainingResult:
    return training.train(connect(settings), settings, feature_table_version)


def promote(settings: Settings, version: str | None = None) -> promotion.Decision:
    return promotion.promote(connect(settings), settings, version)


def score(settings: Settings, batch_date: date | None = None, shift: float = 0.0) -> inference.ScoringResult:
    """Score the day's customers (`sources.to_score`); synthetic sources first get the day's new customers."""
    synthetic.check_shift(shift)
    world, catalog = _connect(settings)
    registry.require(MlflowClient(), settings.model, registry.CHAMPION, "promote a model first")
    day = batch_date or date.today()
    synthetic.write_arrivals(catalog, settings, day, shift)
    batch = build_features(sources.to_score(catalog, day), sources.events(catalog), day)
    return inference.score(world, settings, batch, batch_id=f"{day.isoformat()}-{uuid4().hex[:8]}")


def monitor(settings: Settings) -> monitoring.Monitoring:
    """Drift and quality, and whether to retrain; the outcomes come from `sources.labels`."""
    world, catalog = _connect(settings)
    if world.tables.exists(INFERENCE_LOG):
        synthetic.write_outcomes(catalog, settings, world.tables.read(INFERENCE_LOG))

    def outcomes(scored: DataFrame) -> DataFrame:
        known = sources.labels(catalog, date.today())
        return known.join(scored.select(KEY).distinct(), KEY)

    return monitoring.monitor(world, settings, outcomes)


def rollback(settings: Settings) -> promotion.Rollback:
    """Make the champion before the current one champion again (the registry alone: no Spark session)."""
    connect_mlflow()
    return promotion.rollback(MlflowClient(), settings.model)


def _connect(settings: Settings) -> tuple[World, Catalog]:
    world = connect(settings)
    return world, Catalog.of(world, sources.WHERE)
