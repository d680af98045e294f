"""Monitoring that closes the loop: drift, label-based quality, and whether to retrain.

Drift: for every feature and for the predicted probability, the population stability index (PSI) between the
latest batch of the inference log and the training profile saved with the model version that scored it
(`baseline.py`: bins, category counts and the score distribution of its training rows). Monitoring reads no
old table version. Results are appended to the drift table.

Quality: once the outcomes of scored customers are known (`sources.labels`), each scored batch is joined to
them. Its rows, each with its outcome (null where it has not arrived), are appended to the labelled predictions,
a row-level table a Databricks data profiling monitor can profile as an inference log (model version, time,
prediction, label); then its ROC AUC, recall and precision, rows and labelled share are computed from those rows
and appended to the quality table, per batch and model version. A batch is recorded and evaluated once, by the
first run that finds labels for it; both tables are only ever appended to.

The decision: retrain when a column of the latest batch drifts above the threshold, or when the champion's
quality on a batch evaluated by this run misses the promotion gates (`promotion.Gates`, the same settings).
Everything is written as a report with a plot, logged to MLflow.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from . import baseline, plots, registry
from .config import DRIFT_TABLE, INFERENCE_LOG, LABELLED_PREDICTIONS, QUALITY_TABLE, Settings
from .errors import UserError
from .features import KEY, LABEL
from .promotion import Gates
from .world import World

PREDICTION = "probability"


@dataclass(frozen=True)
class Drift:
    column: str
    psi: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    batch_id: str
    model_version: str
    baseline_table_version: int
    rows: int
    drift: list[Drift]

    @property
    def drifted(self) -> list[str]:
        return [d.column for d in self.drift if d.drifted]


@dataclass(frozen=True)
class Quality:
    """A scored batch measured against its known outcomes (NaN where the labelled rows cannot tell)."""

    batch_id: str
    model_version: str
    rows: int
    labelled: int
    roc_auc: float
    recall: float
    precision: float

    @property
    def labelled_share(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0

    @property
    def metrics(self) -> dict[str, float]:
        return {"roc_auc": self.roc_auc, "recall": self.recall, "precision": self.precision}


@dataclass(frozen=True)
class Monitoring:
    drift: DriftReport
    quality: list[Quality]  # the batches this run evaluated
    retrain: bool
    reason: str
    report_path: str | None = None

    @property
    def drifted(self) -> list[str]:
        return self.drift.drifted


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = 1e-4) -> float:
    """Population stability index of two histograms over the same bins (counts or shares)."""
    e = np.maximum(np.asarray(expected, dtype=float) / max(np.sum(expected), 1), floor)
    a = np.maximum(np.asarray(actual, dtype=float) / max(np.sum(actual), 1), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_histograms(df: DataFrame, edges: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Counts per bin (-inf, e1], (e1, e2], ..., (en, inf) for every column, in one pass."""
    aggregates = []
    for c, inner in edges.items():
        bounds = [-np.inf, *inner, np.inf]
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            inside = F.lit(True)
            if np.isfinite(lo):
                inside = inside & (F.col(c) > F.lit(lo))
            if np.isfinite(hi):
                inside = inside & (F.col(c) <= F.lit(hi))
            aggregates.append(F.sum(F.when(inside, 1).otherwise(0)).alias(f"{c}__{i}"))
    row = df.agg(*aggregates).first()
    return {c: np.array([row[f"{c}__{i}"] or 0 for i in range(len(inner) + 1)]) for c, inner in edges.items()}


def category_counts(df: DataFrame, column: str) -> dict[str, int]:
    counts = df.where(F.col(column).isNotNull()).groupBy(column).count().collect()
    return {str(r[column]): int(r["count"]) for r in counts}


def compare(profile: baseline.Profile, current: DataFrame, threshold: float) -> list[Drift]:
    """PSI of every profiled column, the current rows counted over the profile's own bins and categories."""
    expected = {**profile.numeric, PREDICTION: profile.score}
    actual = numeric_histograms(current, {c: bins.edges for c, bins in expected.items()})
    values = {c: psi(bins.counts, actual[c]) for c, bins in expected.items()}
    for column, before in profile.categorical.items():
        after = category_counts(current, column)
        keys = sorted(set(before) | set(after))
        values[column] = psi([before.get(k, 0) for k in keys], [after.get(k, 0) for k in keys])
    return [Drift(c, round(v, 6), v > threshold) for c, v in values.items()]


def measure(batch_id: str, model_version: str, rows: int, scored: pd.DataFrame) -> Quality:
    """Quality of one batch from its labelled rows (`probability`, `prediction`, the label)."""
    y = scored[LABEL].to_numpy(dtype=int)
    predicted = scored["prediction"].to_numpy(dtype=int)
    true_positives = int(((y == 1) & (predicted == 1)).sum())
    both_classes = len(set(y)) == 2
    return Quality(
        batch_id,
        model_version,
        rows,
        len(scored),
        float(roc_auc_score(y, scored["probability"])) if both_classes else math.nan,
        true_positives / int(y.sum()) if y.sum() else math.nan,
        true_positives / int(predicted.sum()) if predicted.sum() else math.nan,
    )


def record_labels(world: World, load_labels: Callable[[DataFrame], DataFrame]) -> list[str]:
    """Append every row of each batch whose first labels arrived to the labelled predictions; the batch ids.

    A batch is appended once, by the first run that finds a label for it, with all its rows: the label where it
    arrived, null where it did not. Batches already there are not looked up again (one appended by a run that
    stopped before its quality was written is measured by the next).
    """
    pending = world.tables.read(INFERENCE_LOG)
    for table in (QUALITY_TABLE, LABELLED_PREDICTIONS):
        if world.tables.exists(table):
            pending = pending.join(world.tables.read(table).select("batch_id").distinct(), "batch_id", "left_anti")
    labels = load_labels(pending).select(KEY, F.col(LABEL).cast("int").alias(LABEL))
    rows = pending.join(labels, KEY, "left").select(
        KEY,
        "batch_id",
        F.col("model_version").cast("string").alias("model_version"),
        "scored_at",
        "probability",
        "prediction",
        LABEL,
    )
    counts = rows.groupBy("batch_id").agg(F.count(LABEL).alias("labelled")).where(F.col("labelled") > 0)
    arrived = sorted(r["batch_id"] for r in counts.collect())
    if arrived:
        world.tables.write(rows.where(F.col("batch_id").isin(arrived)), LABELLED_PREDICTIONS, mode="append")
    return arrived


def measure_new_batches(world: World, load_labels: Callable[[DataFrame], DataFrame]) -> list[Quality]:
    """Record the labels that arrived, then measure every labelled batch not measured yet, appending it to the
    quality table. The metrics come from the labelled predictions as written, so both tables agree."""
    record_labels(world, load_labels)
    if not world.tables.exists(LABELLED_PREDICTIONS):
        return []
    unmeasured = world.tables.read(LABELLED_PREDICTIONS)
    if world.tables.exists(QUALITY_TABLE):
        done = world.tables.read(QUALITY_TABLE).select("batch_id").distinct()
        unmeasured = unmeasured.join(done, "batch_id", "left_anti")
    rows = unmeasured.select("batch_id", "model_version", "scored_at", "probability", "prediction", LABEL).toPandas()
    measured, records = [], []
    at = datetime.now(UTC).replace(tzinfo=None)
    for (batch_id, model_version), batch in rows.groupby(["batch_id", "model_version"], sort=True):
        quality = measure(str(batch_id), str(model_version), len(batch), batch[batch[LABEL].notna()])
        measured.append(quality)
        records.append(
            {
                **asdict(quality),
                "labelled_share": quality.labelled_share,
                "scored_at": batch["scored_at"].max().to_pydatetime(),
                "evaluated_at": at,
            }
        )
    if records:
        schema = (
            "batch_id string, model_version string, rows long, labelled long, roc_auc double, recall double, "
            "precision double, labelled_share double, scored_at timestamp, evaluated_at timestamp"
        )
        world.tables.write(world.spark.createDataFrame(pd.DataFrame(records), schema), QUALITY_TABLE, mode="append")
    return measured


def decide(
    drift: DriftReport, quality: list[Quality], champion: str | None, gates: Gates, threshold: float
) -> tuple[bool, str]:
    """Whether to retrain, and why in one line: drift in the latest batch, or the champion below the gates."""
    reasons = []
    if drift.drifted:
        reasons.append(f"drift above PSI {threshold:g} in {', '.join(drift.drifted)} (batch {drift.batch_id})")
    judged = [q for q in quality if q.model_version == champion]
    for q in judged:
        if failed := gates.failures(q.metrics):
            reasons.append(f"champion version {q.model_version} on batch {q.batch_id}: {', '.join(failed)}")
    if reasons:
        return True, "; ".join(reasons)
    if judged:
        return (
            False,
            f"no drift above PSI {threshold:g}; the champion passes the gates on {len(judged)} labelled batch(es)",
        )
    return False, f"no drift above PSI {threshold:g}; no labelled batch of the champion to judge yet"


def monitor(
    world: World, settings: Settings, load_labels: Callable[[DataFrame], DataFrame] | None = None
) -> Monitoring:
    """Drift of the latest batch, quality of the batches whose labels arrived (none without `load_labels`)."""
    if not world.tables.exists(INFERENCE_LOG):
        raise UserError(f"the inference log {world.tables.location(INFERENCE_LOG)} is empty; score a batch first")
    log = world.tables.read(INFERENCE_LOG)
    latest = log.agg(F.max("scored_at").alias("at")).first()["at"]
    batch = log.where(F.col("scored_at") == F.lit(latest))
    head = batch.select("batch_id", "model_version").first()
    batch_id, model_version = head["batch_id"], head["model_version"]

    client = MlflowClient()
    version = registry.get(client, settings.model, model_version)
    profile = baseline.load(version.run_id)
    baseline_version = profile.feature_table_version

    drift = compare(profile, batch, settings.drift_threshold)
    rows = batch.count()
    at = datetime.now(UTC).replace(tzinfo=None)
    records = [
        {
            **asdict(d),
            "kind": "prediction" if d.column == PREDICTION else "feature",
            "batch_id": batch_id,
            "model_version": model_version,
            "baseline_table_version": baseline_version,
            "rows": rows,
            "threshold": settings.drift_threshold,
            "monitored_at": at,
        }
        for d in drift
    ]
    world.tables.write(world.spark.createDataFrame(records), DRIFT_TABLE, mode="append")
    report = DriftReport(batch_id, model_version, baseline_version, rows, drift)

    quality = measure_new_batches(world, load_labels) if load_labels else []
    champion = registry.champion(client, settings.model)
    retrain, reason = decide(
        report,
        quality,
        champion.number if champion else None,
        Gates.from_settings(settings),
        settings.drift_threshold,
    )
    return _publish(world, Monitoring(report, quality, retrain, reason), settings.drift_threshold, at)


def _publish(world: World, result: Monitoring, threshold: float, at: datetime) -> Monitoring:
    """Write the report (markdown, JSON, plot) and log it to an MLflow run; keep a copy locally."""
    report = result.drift
    stamp = at.strftime("%Y%m%dT%H%M%S")
    folder = world.reports_dir / f"drift-{stamp}" if world.reports_dir else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    figure = plots.bars({d.column: d.psi for d in report.drift}, "Population stability index", threshold)
    figure.savefig(folder / "psi.png", dpi=110)
    plt.close(figure)
    (folder / "monitoring.json").write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")
    lines = [
        f"# Monitoring report {stamp}",
        "",
        f"**Retrain: {'yes' if result.retrain else 'no'}**: {result.reason}.",
        "",
        "## Drift",
        "",
        f"Batch `{report.batch_id}` ({report.rows} rows) scored by model version {report.model_version}, "
        f"against its training profile (feature table version {report.baseline_table_version}). "
        f"Threshold PSI {threshold:g}.",
        "",
        "| column | PSI | drifted |",
        "|---|---:|---|",
        *[f"| {d.column} | {d.psi:.4f} | {'**yes**' if d.drifted else 'no'} |" for d in report.drift],
        "",
        "![PSI per column](psi.png)",
        "",
        "## Quality",
        "",
    ]
    if result.quality:
        lines += [
            "Batches whose outcomes arrived since the last run.",
            "",
            "| batch | model version | rows | labelled | ROC AUC | recall | precision |",
            "|---|---|---:|---:|---:|---:|---:|",
            *[
                f"| {q.batch_id} | {q.model_version} | {q.rows} | {q.labelled_share:.0%} | {q.roc_auc:.4f} "
                f"| {q.recall:.4f} | {q.precision:.4f} |"
                for q in result.quality
            ],
            "",
        ]
    else:
        lines += ["No batch got its outcomes since the last run.", ""]
    (folder / "report.md").write_text("\n".join(lines))
    with mlflow.start_run(run_name=f"monitoring {stamp}"):
        mlflow.set_tags(
            {
                "batch_id": report.batch_id,
                "model_version": report.model_version,
                "retrain_reason": result.reason,
            }
        )
        mlflow.log_metrics({f"psi_{d.column}": d.psi for d in report.drift})
        mlflow.log_metric("drifted_columns", len(report.drifted))
        mlflow.log_metric("retrain", int(result.retrain))
        for step, q in enumerate(result.quality):
            mlflow.log_metrics({f"quality_{k}": v for k, v in q.metrics.items() if not math.isnan(v)}, step=step)
        mlflow.log_artifacts(str(folder), artifact_path="drift_report")
    path = str(folder / "report.md") if world.reports_dir else None
    return replace(result, report_path=path)
