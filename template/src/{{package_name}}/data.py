"""The raw data: a deterministic synthetic churn dataset, so the whole loop runs offline.

Replace `load_raw` with your own source (for example `spark.read.table("main.crm.customers")`): this file
is yours, template updates never change it. The rest of the loop only needs the two DataFrames' columns:

customers: customer_id long, signup_date date, plan string, region string, monthly_fee double,
           churned int (observed after `as_of`; absent for customers still to be scored)
events:    customer_id long, event_time timestamp, event_type string ('session', 'payment_failed',
           'support_call'), minutes double

Monitoring also asks `load_labels` for the outcomes of customers that were scored (customer_id long, churned
int), to measure the champion's quality once they are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

PLANS = ("basic", "standard", "premium")
PLAN_FEES = (9.99, 15.99, 22.99)
REGIONS = ("north", "south", "east", "west")
HISTORY_DAYS = 90
NOISE = 0.3  # standard deviation of the churn logit's noise


@dataclass(frozen=True)
class RawData:
    customers: DataFrame
    events: DataFrame
    as_of: date


def load_raw(
    spark: SparkSession, *, customers: int, seed: int, as_of: date, shift: float = 0.0, labelled: bool = True
) -> RawData:
    """A reproducible batch: the same arguments give the same rows on every engine.

    `shift` moves the population (more payment failures, fewer sessions) to exercise drift monitoring.
    """
    customers_pdf, events_pdf = synthesize(customers, seed, as_of, shift)
    if not labelled:
        customers_pdf = customers_pdf.drop(columns="churned")
    return RawData(spark.createDataFrame(customers_pdf), spark.createDataFrame(events_pdf), as_of)


def synthesize(n: int, seed: int, as_of: date, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.arange(seed * 10_000_000, seed * 10_000_000 + n, dtype=np.int64)
    tenure = rng.integers(30, 2_000, n)
    plan = rng.choice(len(PLANS), n, p=[0.5, 0.35, 0.15])
    region = rng.choice(len(REGIONS), n)
    fee = np.round(np.asarray(PLAN_FEES)[plan] * rng.uniform(0.9, 1.1, n), 2)

    engagement = rng.gamma(2.0, 6.0, n) * (1.0 - 0.5 * shift)
    sessions = rng.poisson(engagement)
    failures = rng.poisson(0.15 + 0.6 * shift + 0.1 * (plan == 0), n)
    calls = rng.poisson(0.3 + 0.2 * (failures > 0), n)

    kinds = np.repeat(["session", "payment_failed", "support_call"], [sessions.sum(), failures.sum(), calls.sum()])
    owner = np.concatenate([np.repeat(np.arange(n), counts) for counts in (sessions, failures, calls)])
    age_days = rng.uniform(0, HISTORY_DAYS, len(kinds))
    # Disengaged customers' activity sits further in the past.
    age_days = np.where(kinds == "session", age_days ** (1 + 0.5 / (1 + engagement[owner])), age_days)
    age_days = np.minimum(age_days, HISTORY_DAYS - 1e-6)
    minutes = np.where(kinds == "session", np.round(rng.gamma(2.0, 12.0, len(kinds)), 1), 0.0)

    recent = np.bincount(owner[(kinds == "session") & (age_days < 30)], minlength=n)
    probability = churn_probability(failures, calls, recent, tenure, plan == 0, fee, rng.normal(0, NOISE, n))
    churned = (rng.uniform(size=n) < probability).astype(np.int32)

    midnight = datetime.combine(as_of, time())
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": [as_of - timedelta(days=int(d)) for d in tenure],
            "plan": np.asarray(PLANS)[plan],
            "region": np.asarray(REGIONS)[region],
            "monthly_fee": fee,
            "churned": churned,
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": ids[owner],
            "event_time": pd.Timestamp(midnight) - pd.to_timedelta(age_days, unit="D").round("s"),
            "event_type": kinds,
            "minutes": minutes,
        }
    )
    return customers, events


def churn_probability(
    failures: np.ndarray,
    calls: np.ndarray,
    recent_sessions: np.ndarray,
    tenure_days: np.ndarray,
    basic: np.ndarray,
    fee: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """The synthetic world's law: the chance that a customer churns, given how they behaved before `as_of`."""
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


def load_labels(spark: SparkSession, scored: DataFrame, *, seed: int) -> DataFrame:
    """The outcomes known so far of scored customers: customer_id long, churned int; no row while unknown.

    `scored` holds rows of the inference log (the customer id and the features each customer was scored on).
    With your own data this reads the table where outcomes land, by name, and keeps the scored customers, e.g.
    `spark.read.table("main.crm.churn_outcomes").join(scored.select("customer_id").distinct(), "customer_id")`:
    on Databricks that is a Unity Catalog (or hive_metastore) table your CRM process writes, in the same
    workspace as the inference log.

    The synthetic source knows every outcome as soon as a batch is scored (a real one learns it weeks later): it
    draws each customer's churn from the law of the training labels (`churn_probability`) applied to the
    features the customer was scored on, with the randomness fixed by the customer id and the seed, so the same
    customer always gets the same outcome and a drifted batch gets the outcomes of its drifted behaviour.
    """
    rows = (
        scored.select(
            "customer_id",
            "payment_failures_90d",
            "support_calls_90d",
            "sessions_30d",
            "tenure_days",
            "plan",
            "monthly_fee",
        )
        .dropDuplicates(["customer_id"])
        .toPandas()
    )
    ids = rows["customer_id"].to_numpy(dtype=np.int64)
    u_noise, u_angle, u_outcome = (_uniform(ids, seed, stream) for stream in range(3))
    # Box-Muller: a standard normal from two uniforms, then the law's noise.
    noise = NOISE * np.sqrt(-2 * np.log1p(-u_noise)) * np.cos(2 * np.pi * u_angle)
    probability = churn_probability(
        rows["payment_failures_90d"].to_numpy(dtype=float),
        rows["support_calls_90d"].to_numpy(dtype=float),
        rows["sessions_30d"].to_numpy(dtype=float),
        rows["tenure_days"].to_numpy(dtype=float),
        (rows["plan"] == PLANS[0]).to_numpy(),
        rows["monthly_fee"].to_numpy(dtype=float),
        noise,
    )
    labels = pd.DataFrame({"customer_id": ids, "churned": (u_outcome < probability).astype(np.int32)})
    return spark.createDataFrame(labels, "customer_id long, churned int")


def _uniform(ids: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """A number in [0, 1) per id that depends only on the id, the seed and the stream (SplitMix64's mixer)."""
    x = ids.astype(np.uint64) * np.uint64(4) + np.uint64(stream)
    x ^= np.array([seed % 2**64], dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x = (x ^ (x >> np.uint64(shift))) * np.uint64(factor)
    return ((x ^ (x >> np.uint64(31))) >> np.uint64(11)) / float(2**53)
