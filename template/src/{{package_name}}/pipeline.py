"""The loop's steps, each one job: connect to the world, run the step's library code, return its result.

Notebooks and the CLI call these; everything they call takes its inputs as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import uuid4

from mlflow.tracking import MlflowClient

from . import data, inference, monitoring, promotion, training
from .config import FEATURE_TABLE, Settings
from .data import load_raw
from .features import KEY, build_features
from .world import connect, connect_mlflow


@dataclass(frozen=True)
class FeatureResult:
    table: str
    version: int
    rows: int


def features(settings: Settings, as_of: date | None = None) -> FeatureResult:
    """Build the feature table from the raw source; every run writes a new Delta version."""
    world = connect(settings)
    raw = load_raw(world.spark, customers=settings.customers, seed=settings.seed, as_of=as_of or date.today())
    table = build_features(raw.customers, raw.events, raw.as_of)
    version = world.tables.write(table, FEATURE_TABLE, mode="overwrite", keys=(KEY,))
    rows = world.tables.read(FEATURE_TABLE, version).count()
    return FeatureResult(world.tables.location(FEATURE_TABLE), version, rows)


def train(settings: Settings, feature_table_version: int | None = None) -> training.TrainingResult:
    return training.train(connect(settings), settings, feature_table_version)


def promote(settings: Settings, version: str | None = None) -> promotion.Decision:
    return promotion.promote(connect(settings), settings, version)


def score(settings: Settings, batch_date: date | None = None, shift: float = 0.0) -> inference.ScoringResult:
    """Score one day's batch of customers (synthetic here: a fifth of the training population's size)."""
    world = connect(settings)
    day = batch_date or date.today()
    raw = load_raw(
        world.spark,
        customers=max(settings.customers // 5, 1),
        seed=settings.seed + day.toordinal() % 10_000,
        as_of=day,
        shift=shift,
        labelled=False,
    )
    batch = build_features(raw.customers, raw.events, raw.as_of)
    return inference.score(world, settings, batch, batch_id=f"{day.isoformat()}-{uuid4().hex[:8]}")


def monitor(settings: Settings) -> monitoring.Monitoring:
    """Drift and quality, and whether to retrain. The outcomes come from `data.load_labels`."""
    world = connect(settings)
    # data.py is the project's own (copier skips it on update): one made before load_labels existed has none,
    # and monitoring then measures drift alone.
    source = getattr(data, "load_labels", None)
    labels = (lambda scored: source(world.spark, scored, seed=settings.seed)) if source else None
    return monitoring.monitor(world, settings, labels)


def rollback(settings: Settings) -> promotion.Rollback:
    """Make the champion before the current one champion again (the registry alone: no Spark session)."""
    connect_mlflow()
    return promotion.rollback(MlflowClient(), settings.model)
