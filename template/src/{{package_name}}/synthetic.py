"""A synthetic churn world that writes the sources `sources.py` calls SYNTHETIC, so the loop runs offline.

It plays the systems a real project reads from: a CRM with customers, a product with events, a process that
records outcomes. It writes only while all three sources are SYNTHETIC; once you point one at your own table
it writes nothing.

- `write_history` (the features step): the customers a model learns from, as of a day, with their events of the
  90 days before it and their outcomes. Written again only when the population (`customers`, `seed`) or the day
  changes, as cohort 0.
- `write_arrivals` (the score step): a new cohort of customers to score (a fifth of the population), with their
  events and no outcome yet. `shift` moves its behaviour (more payment failures, fewer sessions) for drift.
- `write_outcomes` (the monitor step): the outcomes of scored customers that have none yet. The synthetic world
  knows them as soon as they are scored; a real one learns them weeks later.

Every outcome follows one law (`churn_probability`) of what a customer did before the day, with its randomness
fixed by the customer id and the seed: the same customer always gets the same outcome. The tables are written
in chunks of customers, so memory stays bounded and no Spark Connect message grows with the data (Spark Connect
refuses a message over 128 MiB).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .catalog import Catalog
from .config import Settings
from .errors import UserError
from .features import HISTORY_DAYS, KEY, LABEL

PLANS = ("basic", "standard", "premium")
PLAN_FEES = (9.99, 15.99, 22.99)
REGIONS = ("north", "south", "east", "west")
EVENT_TYPES = ("session", "payment_failed", "support_call")
NS_PER_DAY = 86_400 * 10**9
NOISE = 0.3  # standard deviation of the churn logit's noise
CHUNK = 100_000  # customers generated and written at a time
MAX_CUSTOMERS = 10_000_000  # per cohort: the size of a cohort's block of ids
STREAM_COHORTS = 50_000  # cohorts from here on are the streaming stand-in's hourly arrivals

CUSTOMERS = "customer_id long, signup_date date, plan string, region string, monthly_fee double, cohort int, as_of date"
EVENTS = "customer_id long, event_time timestamp, event_type string, minutes double"
LABELS = "customer_id long, churned int"
# What the law reads of a customer, as the feature pipeline names it.
LAW_INPUTS = (
    "payment_failures_90d",
    "support_calls_90d",
    "sessions_30d",
    "tenure_days",
    "plan",
    "monthly_fee",
)


@dataclass(frozen=True)
class Chunk:
    customers: pd.DataFrame
    events: pd.DataFrame
    labels: pd.DataFrame


def first_id(seed: int, cohort: int) -> int:
    """Cohorts own disjoint blocks of ids, so a new cohort never reuses a customer."""
    return ((seed % 10_000) * 100_000 + cohort) * MAX_CUSTOMERS


def cohort(n: int, seed: int, index: int, as_of: date, shift: float = 0.0) -> Iterator[Chunk]:
    """`n` customers of cohort `index` as of a day, chunk by chunk; the same arguments give the same rows."""
    if not 1 <= n <= MAX_CUSTOMERS:
        raise UserError(f"customers={n} is not allowed: a synthetic cohort has 1 to {MAX_CUSTOMERS:,} customers")
    for start in range(0, n, CHUNK):
        rng = np.random.default_rng([seed, index, start])
        yield _chunk(rng, first_id(seed, index) + start, min(CHUNK, n - start), seed, index, as_of, shift)


def _chunk(rng: np.random.Generator, start: int, n: int, seed: int, index: int, as_of: date, shift: float) -> Chunk:
    ids = np.arange(start, start + n, dtype=np.int64)
    tenure = rng.integers(30, 2_000, n)
    plan = rng.choice(len(PLANS), n, p=[0.5, 0.35, 0.15])
    region = rng.choice(len(REGIONS), n)
    fee = np.round(np.asarray(PLAN_FEES)[plan] * rng.uniform(0.9, 1.1, n), 2)

    engagement = rng.gamma(2.0, 6.0, n) * (1.0 - 0.5 * shift)
    sessions = rng.poisson(engagement)
    failures = rng.poisson(0.15 + 0.6 * shift + 0.1 * (plan == 0), n)
    calls = rng.poisson(0.3 + 0.2 * (failures > 0), n)

    kinds = np.repeat(np.arange(3, dtype=np.int8), [sessions.sum(), failures.sum(), calls.sum()])
    owner = np.concatenate([np.repeat(np.arange(n), counts) for counts in (sessions, failures, calls)])
    age_days = rng.uniform(0, HISTORY_DAYS, len(kinds))
    session = kinds == 0
    # Disengaged customers' activity sits further in the past.
    age_days = np.where(session, age_days ** (1 + 0.5 / (1 + engagement[owner])), age_days)
    age_days = np.minimum(age_days, HISTORY_DAYS - 1e-6)
    minutes = np.where(session, np.round(rng.gamma(2.0, 12.0, len(kinds)), 1), 0.0)
    recent = np.bincount(owner[session & (age_days < 30)], minlength=n)

    midnight = pd.Timestamp(datetime.combine(as_of, time(), UTC))
    # Columns of a few values are categoricals (Arrow writes them as strings, fast) and dates come from a table of
    # the days a tenure can reach: building a Python object per row is what made the chunks slow.
    days_before = np.array([as_of - timedelta(days=int(d)) for d in range(tenure.max() + 1)], dtype=object)
    customers = pd.DataFrame(
        {
            KEY: ids,
            "signup_date": days_before[tenure],
            "plan": pd.Categorical.from_codes(plan, PLANS),
            "region": pd.Categorical.from_codes(region, REGIONS),
            "monthly_fee": fee,
            "cohort": np.int32(index),
            "as_of": as_of,
        }
    )
    events = pd.DataFrame(
        {
            KEY: ids[owner],
            "event_time": midnight - pd.TimedeltaIndex(_days_to_ns(age_days).view("m8[ns]")).round("s"),
            "event_type": pd.Categorical.from_codes(kinds, EVENT_TYPES),
            "minutes": minutes,
        }
    )
    probability = churn_probability(failures, calls, recent, tenure, plan == 0, fee, _noise(ids, seed))
    labels = pd.DataFrame({KEY: ids, LABEL: (_uniform(ids, seed, 2) < probability).astype(np.int32)})
    return Chunk(customers, events, labels)


def _days_to_ns(days: np.ndarray) -> np.ndarray:
    """Nanoseconds of fractional days, to the nanosecond what `pd.to_timedelta(days, unit="D")` gives (pandas'
    `cast_from_unit_vectorized`: whole days and the fraction rounded to 13 digits, each scaled), without its
    per-element loop."""
    whole = days.astype(np.int64)
    fraction = np.round(days - whole, 13)
    return whole * NS_PER_DAY + (fraction * NS_PER_DAY).astype(np.int64)


def churn_probability(
    failures: np.ndarray,
    calls: np.ndarray,
    recent_sessions: np.ndarray,
    tenure_days: np.ndarray,
    basic: np.ndarray,
    fee: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """The synthetic world's law: the chance that a customer churns, given how they behaved before the day."""
    logit = (
        -1.2
        + 2.2 * failures
        + 1.2 * calls
        - 0.32 * recent_sessions
        - 0.0018 * tenure_days
        + 1.0 * basic
        + 0.1 * (fee - 15)
        + noise
    )
    return 1 / (1 + np.exp(-logit))


def outcomes(scored: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The outcomes of scored customers (customer_id, churned): the law applied to the features they were scored
    on, with each customer's own randomness, so a drifted batch gets the outcomes of its drifted behaviour."""
    rows = scored.drop_duplicates(KEY)
    ids = rows[KEY].to_numpy(dtype=np.int64)
    probability = churn_probability(
        rows["payment_failures_90d"].to_numpy(dtype=float),
        rows["support_calls_90d"].to_numpy(dtype=float),
        rows["sessions_30d"].to_numpy(dtype=float),
        rows["tenure_days"].to_numpy(dtype=float),
        (rows["plan"] == PLANS[0]).to_numpy(),
        rows["monthly_fee"].to_numpy(dtype=float),
        _noise(ids, seed),
    )
    return pd.DataFrame({KEY: ids, LABEL: (_uniform(ids, seed, 2) < probability).astype(np.int32)})


def write_history(catalog: Catalog, settings: Settings, as_of: date) -> bool:
    """Write the population a model learns from, unless the tables already hold it; whether it wrote."""
    if not catalog.synthetic or _has_history(catalog, settings, as_of):
        return False
    _write(catalog, cohort(settings.customers, settings.seed, 0, as_of), labelled=True, mode="overwrite")
    return True


def write_arrivals(catalog: Catalog, settings: Settings, day: date, shift: float = 0.0) -> int:
    """Append a new cohort of customers to score (no outcomes); its size, 0 when the sources are not synthetic."""
    check_shift(shift)
    if not catalog.synthetic:
        if shift:
            raise UserError(f"shift={shift:g} needs the synthetic sources; sources.py points them elsewhere")
        return 0
    tables = catalog.world.tables
    if not tables.exists("customers"):
        raise UserError("there are no synthetic customers yet; run the features step first")
    index = int(tables.read("customers").agg(F.max("cohort")).first()[0]) + 1
    n = max(settings.customers // 5, 1)
    _write(catalog, cohort(n, settings.seed, index, day, shift), labelled=False, mode="append")
    return n


def check_shift(shift: float) -> None:
    if not 0.0 <= shift <= 1.0:
        raise UserError(f"shift={shift:g} is not allowed: use 0 (like the training population) to 1 (drifted)")


def write_outcomes(catalog: Catalog, settings: Settings, scored: DataFrame) -> int:
    """Append the outcomes of scored customers that have none yet; how many."""
    if not catalog.synthetic:
        return 0
    tables = catalog.world.tables
    pending = scored.select(KEY, *LAW_INPUTS).join(tables.read("labels").select(KEY), KEY, "left_anti")
    rows = pending.dropDuplicates([KEY]).toPandas()
    if rows.empty:
        return 0
    tables.write_frame(outcomes(rows, settings.seed), "labels", LABELS, mode="append")
    return len(rows)


def _write(catalog: Catalog, chunks: Iterator[Chunk], *, labelled: bool, mode: str) -> None:
    """Each chunk appended as it is made (a partly written history is found incomplete and written again)."""
    tables = catalog.world.tables
    for i, chunk in enumerate(chunks):
        how = mode if i == 0 else "append"
        tables.write_frame(chunk.customers, "customers", CUSTOMERS, mode=how)
        tables.write_frame(chunk.events, "events", EVENTS, mode=how)
        if labelled:
            tables.write_frame(chunk.labels, "labels", LABELS, mode=how)


def _has_history(catalog: Catalog, settings: Settings, as_of: date) -> bool:
    tables = catalog.world.tables
    if not all(tables.exists(name) for name in ("customers", "events", "labels")):
        return False
    found = (
        tables.read("customers")
        .where(F.col("cohort") == 0)
        .agg(F.count(F.lit(1)).alias("n"), F.min(KEY).alias("first"), F.max("as_of").alias("as_of"))
        .first()
    )
    return (found["n"], found["first"], found["as_of"]) == (
        settings.customers,
        first_id(settings.seed, 0),
        as_of,
    )


def _noise(ids: np.ndarray, seed: int) -> np.ndarray:
    """Each customer's noise on the law's logit: a normal from two of its uniforms (Box-Muller)."""
    u_radius, u_angle = _uniform(ids, seed, 0), _uniform(ids, seed, 1)
    return NOISE * np.sqrt(-2 * np.log1p(-u_radius)) * np.cos(2 * np.pi * u_angle)


def _uniform(ids: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """A number in [0, 1) per id that depends only on the id, the seed and the stream (SplitMix64's mixer)."""
    x = ids.astype(np.uint64) * np.uint64(4) + np.uint64(stream)
    x ^= np.array([seed % 2**64], dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x = (x ^ (x >> np.uint64(shift))) * np.uint64(factor)
    return ((x ^ (x >> np.uint64(31))) >> np.uint64(11)) / float(2**53)


def streaming_cohort(at: datetime) -> tuple[int, date]:
    """The cohort index and day of the streaming stand-in's arrivals in the hour of `at`."""
    hour = int(at.timestamp() // 3600)
    return STREAM_COHORTS + hour % STREAM_COHORTS, datetime.fromtimestamp(hour * 3600, UTC).date()
