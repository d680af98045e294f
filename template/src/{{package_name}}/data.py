"""The raw data: a deterministic synthetic churn dataset, so the whole loop runs offline.

Replace `load_raw` with your own source (for example `spark.read.table("main.crm.customers")`): this file
is yours, template updates never change it. The rest of the loop only needs the two DataFrames' columns:

customers: customer_id long, signup_date date, plan string, region string, monthly_fee double,
           churned int (observed after `as_of`; absent for customers still to be scored)
events:    customer_id long, event_time timestamp, event_type string ('session', 'payment_failed',
           'support_call'), minutes double
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
    logit = (
        -1.2
        + 2.2 * failures
        + 1.2 * calls
        - 0.32 * recent
        - 0.0018 * tenure
        + 1.0 * (plan == 0)
        + 0.1 * (fee - 15)
        + rng.normal(0, 0.3, n)
    )
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int32)

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
