"""Drift monitoring: compare what the champion sees in production with what it was trained on.

For every feature and for the predicted probability, the population stability index (PSI) between the
latest batch of the inference log and the training profile saved with the model version that scored it
(`baseline.py`: bins, category counts and the score distribution of its training rows). Monitoring reads no
old table version. Results are appended to a drift table and written as a report with a plot, logged to
MLflow; drift above the threshold is flagged.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import baseline, plots, registry
from .config import DRIFT_TABLE, INFERENCE_LOG, Settings
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
    report_path: str | None

    @property
    def drifted(self) -> list[str]:
        return [d.column for d in self.drift if d.drifted]


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


def monitor(world: World, settings: Settings) -> DriftReport:
    if not world.tables.exists(INFERENCE_LOG):
        raise LookupError(f"the inference log {world.tables.location(INFERENCE_LOG)} is empty; score a batch first")
    log = world.tables.read(INFERENCE_LOG)
    latest = log.agg(F.max("scored_at").alias("at")).first()["at"]
    batch = log.where(F.col("scored_at") == F.lit(latest))
    head = batch.select("batch_id", "model_version").first()
    batch_id, model_version = head["batch_id"], head["model_version"]

    version = registry.get(MlflowClient(), settings.model, model_version)
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
    report = DriftReport(batch_id, model_version, baseline_version, rows, drift, None)
    return _publish(world, report, settings.drift_threshold, at)


def _publish(world: World, report: DriftReport, threshold: float, at: datetime) -> DriftReport:
    """Write the report (markdown, JSON, plot) and log it to an MLflow run; keep a copy locally."""
    stamp = at.strftime("%Y%m%dT%H%M%S")
    folder = world.reports_dir / f"drift-{stamp}" if world.reports_dir else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    figure = plots.bars({d.column: d.psi for d in report.drift}, "Population stability index", threshold)
    figure.savefig(folder / "psi.png", dpi=110)
    plt.close(figure)
    (folder / "drift.json").write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    lines = [
        f"# Drift report {stamp}",
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
    ]
    (folder / "report.md").write_text("\n".join(lines))
    with mlflow.start_run(run_name=f"monitoring {stamp}"):
        mlflow.set_tags({"batch_id": report.batch_id, "model_version": report.model_version})
        mlflow.log_metrics({f"psi_{d.column}": d.psi for d in report.drift})
        mlflow.log_metric("drifted_columns", len(report.drifted))
        mlflow.log_artifacts(str(folder), artifact_path="drift_report")
    path = str(folder / "report.md") if world.reports_dir else None
    return replace(report, report_path=path)
