"""Promotion: the challenger becomes champion only if it passes the gates and beats the champion.

Both models are scored on the same holdout rows, each at its own decision threshold (the one chosen with it in
training, `threshold.py`): the fixed fifth of customers that no model is trained on
(`features.holdout`), read from the feature table's current version. No step reads an old table version, whose
data files VACUUM removes after the retention period; the version used is recorded with the decision. The
decision and its numbers are written on the challenger's model version as tags, whether it is promoted or
not, so the registry says why every version is or is not serving.

A rollback undoes a promotion: the champion gives the role back to the version it replaced, the one its own
promotion record names (`promotion_champion_version`). It is recorded with the same tags on both versions, and
needs only the registry (no Spark, no evaluation), so a deploy task can call it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from mlflow.tracking import MlflowClient

from . import inference, registry
from .config import FEATURE_TABLE, Settings
from .errors import UserError
from .features import LABEL, holdout
from .metrics import evaluate
from .world import World

# The tag of a judged version that names the champion of the time: for a promoted one, where a rollback goes.
PREVIOUS_CHAMPION = "promotion_champion_version"


@dataclass(frozen=True)
class Gates:
    min_roc_auc: float
    min_recall: float
    margin: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Gates:
        return cls(settings.min_roc_auc, settings.min_recall, settings.promotion_margin)

    def failures(self, metrics: dict[str, float]) -> list[str]:
        """The absolute gates a model's metrics miss; monitoring holds the champion's live quality to them too."""
        failed = []
        if metrics["roc_auc"] < self.min_roc_auc:
            failed.append(f"roc_auc {metrics['roc_auc']:.4f} < gate {self.min_roc_auc:.4f}")
        if metrics["recall"] < self.min_recall:
            failed.append(f"recall {metrics['recall']:.4f} < gate {self.min_recall:.4f}")
        return failed


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger_version: str
    challenger: dict[str, float]
    champion_version: str | None = None
    champion: dict[str, float] | None = None


def decide(
    challenger_version: str,
    challenger: dict[str, float],
    gates: Gates,
    champion_version: str | None = None,
    champion: dict[str, float] | None = None,
) -> Decision:
    """The rule itself, free of MLflow and Spark: strict by default, every failed check named."""
    failed = gates.failures(challenger)
    if champion is not None:
        needed = champion["roc_auc"] + gates.margin
        if challenger["roc_auc"] < needed:
            failed.append(
                f"roc_auc {challenger['roc_auc']:.4f} does not beat champion v{champion_version} "
                f"{champion['roc_auc']:.4f} by the margin {gates.margin:g}"
            )
    if failed:
        reason = "; ".join(failed)
    elif champion is None:
        reason = "passes the gates; there is no champion yet"
    else:
        reason = f"passes the gates and beats champion v{champion_version} by at least {gates.margin:g}"
    return Decision(not failed, reason, challenger_version, challenger, champion_version, champion)


def promote(world: World, settings: Settings, version: str | None = None) -> Decision:
    """Judge a model version (default: the challenger) against the champion and record the outcome."""
    client = MlflowClient()
    name = settings.model
    if version:
        challenger = registry.get(client, name, version)
    else:
        challenger = registry.require(client, name, registry.CHALLENGER, "train a model first")
    champion = registry.champion(client, name)
    if champion is not None and champion.number == challenger.number:
        return Decision(False, "already the champion", challenger.number, {}, champion.number, None)

    data_version = world.tables.version(FEATURE_TABLE)
    rows = world.tables.read(FEATURE_TABLE, data_version).where(holdout()).toPandas()
    challenger_metrics = _measure(inference.load(name, challenger.number), rows)
    champion_metrics = _measure(inference.load(name, champion.number), rows) if champion else None
    decision = decide(
        challenger.number,
        challenger_metrics,
        Gates.from_settings(settings),
        champion.number if champion else None,
        champion_metrics,
    )
    registry.set_tags(client, name, decision.challenger_version, record(decision, data_version))
    if decision.promote:
        registry.set_champion(client, name, challenger.number)
    return decision


def _measure(version: inference.Champion, rows: pd.DataFrame) -> dict[str, float]:
    return evaluate(rows[LABEL].to_numpy(), inference.probability(version.model, rows), version.threshold)


@dataclass(frozen=True)
class Rollback:
    restored_version: str  # the champion again
    rolled_back_version: str  # the champion it replaces
    reason: str


def rollback(client: MlflowClient, name: str) -> Rollback:
    """Give the champion role back to the version the current champion replaced; refuse if there is none.

    Rolling back twice walks further back: the restored version keeps its own promotion record, which names the
    champion before it.
    """
    current = registry.require(client, name, registry.CHAMPION, "promote a model first")
    previous = registry.tags(client, name, current.number).get(PREVIOUS_CHAMPION)
    if not previous:
        raise UserError(
            f"model {name} has no champion before version {current.number} ({PREVIOUS_CHAMPION} is not recorded "
            "on it); nothing to roll back to"
        )
    at = _now()
    reason = f"rolled back to version {previous}, the champion before it"
    registry.set_tags(client, name, current.number, _decided("rolled_back", reason, at))
    restored = f"champion again: version {current.number} was rolled back"
    registry.set_tags(client, name, previous, _decided("restored", restored, at))
    registry.set_champion(client, name, previous)
    return Rollback(previous, current.number, reason)


def _decided(decision: str, reason: str, at: str) -> dict[str, str]:
    return {"promotion_decision": decision, "promotion_reason": reason, "promotion_decided_at": at}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record(decision: Decision, data_version: int) -> dict[str, str]:
    """The decision as model version tags (keys Unity Catalog accepts: no dots, dashes, colons...)."""
    tags = {
        **_decided("promoted" if decision.promote else "rejected", decision.reason, _now()),
        "promotion_holdout_table_version": str(data_version),
        "promotion_challenger_roc_auc": f"{decision.challenger['roc_auc']:.6f}",
        "promotion_challenger_recall": f"{decision.challenger['recall']:.6f}",
    }
    if decision.champion is not None:
        tags[PREVIOUS_CHAMPION] = str(decision.champion_version)
        tags["promotion_champion_roc_auc"] = f"{decision.champion['roc_auc']:.6f}"
    return tags
