"""How model.py declares a hyperparameter: its default and the range it may take, which is also its tuning range.

The declarations make the hyperparameters settings (`-p learning_rate=0.05`, job parameters, widgets): config.py
parses them by these types and ranges without naming them, and tuning.py samples within the same ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .errors import UserError


@dataclass(frozen=True)
class Hyperparameter:
    """A whole number (an int default) or a number (a float default) in [low, high]; `log` samples its range on a
    log scale when tuning (for rates and penalties, whose effect is multiplicative)."""

    default: int | float
    low: int | float
    high: int | float
    log: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.default, bool) or not isinstance(self.default, int | float):
            raise TypeError(f"a hyperparameter's default is an int or a float, not {self.default!r}")
        if not self.low <= self.default <= self.high:
            raise ValueError(f"default {self.default!r} is outside its range [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range starts above 0, not at {self.low}")

    @property
    def kind(self) -> type:
        return type(self.default)

    def allowed(self) -> str:
        return f"{'a whole number' if self.kind is int else 'a number'} in [{self.low}, {self.high}]"

    def parse(self, name: str, value: Any) -> int | float:
        """The value as this hyperparameter's type, or a one-line UserError naming it and what is allowed."""
        try:
            parsed = self.kind(value) if isinstance(value, int | float) else self.kind(str(value).strip())
        except ValueError:
            raise UserError(f"parameter {name}={value!r} is not allowed: use {self.allowed()}") from None
        if isinstance(value, float) and self.kind is int and parsed != value:
            raise UserError(f"parameter {name}={value!r} is not allowed: use {self.allowed()}")
        if not self.low <= parsed <= self.high:
            raise UserError(f"parameter {name}={value!r} is not allowed: use {self.allowed()}")
        return parsed

    def distribution(self) -> Any:
        """What tuning samples from (anything with scipy's `rvs(random_state=...)`, as ParameterSampler takes)."""
        if self.kind is float:
            return stats.loguniform(self.low, self.high) if self.log else stats.uniform(self.low, self.high - self.low)
        if self.log:
            return _WholeLogUniform(int(self.low), int(self.high))
        return stats.randint(int(self.low), int(self.high) + 1)

    def cast(self, value: Any) -> int | float:
        """A sampled value (a numpy scalar) as the plain Python type the estimator and MLflow expect."""
        return int(round(float(value))) if self.kind is int else float(value)


@dataclass(frozen=True)
class _WholeLogUniform:
    low: int
    high: int

    def rvs(self, random_state: Any = None) -> int:
        value = stats.loguniform(self.low, self.high + 1).rvs(random_state=random_state)
        return int(np.clip(np.floor(value), self.low, self.high))
