"""The decision threshold: the probability from which a row is predicted positive, chosen on validation rows.

By default the threshold maximises F1 on the validation rows (precision and recall weighed alike). With a cost
ratio (`-p cost_ratio=5`: a missed positive costs five times a false alarm) it minimises
cost_ratio × missed positives + false alarms instead. Training stores it with the model version (the tag
`decision_threshold`, and the logged model's metadata); scoring, promotion and serving read it from the tag.
"""

from __future__ import annotations

import numpy as np
from mlflow.tracking import MlflowClient

from . import registry
from .errors import UserError

TAG = "decision_threshold"
# The threshold of a version trained before thresholds were chosen (no tag): the one it was always used with.
UNRECORDED = 0.5


def choose(y: np.ndarray, scores: np.ndarray, cost_ratio: float = 0.0) -> float:
    """The cut t (predict positive when score >= t) among the rows' scores, by F1 or, with cost_ratio > 0, cost;
    of equally good cuts, the highest."""
    y = np.asarray(y, dtype=int)
    scores = np.asarray(scores, dtype=float)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise UserError(
            f"the {len(y)} validation rows hold {positives} positive labels; a threshold needs both classes"
        )
    order = np.argsort(-scores, kind="stable")
    ordered, labels = scores[order], y[order]
    # Cutting at each distinct score predicts every row with at least that score positive.
    last = np.append(ordered[1:] != ordered[:-1], True)
    true_positives = np.cumsum(labels)[last]
    false_alarms = np.cumsum(1 - labels)[last]
    missed = positives - true_positives
    cuts = ordered[last]
    if cost_ratio > 0:
        best = int(np.argmin(cost_ratio * missed + false_alarms))
    else:
        best = int(np.argmax(2 * true_positives / (2 * true_positives + false_alarms + missed)))
    return float(cuts[best])


def of_version(client: MlflowClient, name: str, number: str) -> float:
    """The threshold recorded on a model version."""
    recorded = registry.tags(client, name, number).get(TAG)
    return float(recorded) if recorded else UNRECORDED
