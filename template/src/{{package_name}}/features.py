"""The feature pipeline: raw customers and events in, one row of features per customer out."""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

KEY = "customer_id"
LABEL = "churned"
CATEGORICAL = ("plan", "region")
NUMERIC = (
    "tenure_days",
    "monthly_fee",
    "sessions_30d",
    "minutes_30d",
    "avg_session_minutes",
    "payment_failures_90d",
    "support_calls_90d",
    "days_since_last_session",
)
FEATURES = CATEGORICAL + NUMERIC
HISTORY_DAYS = 90  # how far back events count


def build_features(customers: DataFrame, events: DataFrame, as_of: date) -> DataFrame:
    """Features as of a date, from the customers who signed up before it and their events of the 90 days before
    it; the label column is kept when the customers have one."""
    day = F.lit(as_of)
    age_days = F.datediff(day, F.to_date("event_time"))
    customers = customers.where(F.col("signup_date") < day)
    events = events.where((F.col("event_time") < F.lit(as_of).cast("timestamp")) & (age_days <= HISTORY_DAYS))
    session = F.col("event_type") == "session"
    recent_session = session & (age_days < 30)

    activity = events.groupBy(KEY).agg(
        F.sum(F.when(recent_session, 1).otherwise(0)).alias("sessions_30d"),
        F.sum(F.when(recent_session, F.col("minutes")).otherwise(0.0)).alias("minutes_30d"),
        F.avg(F.when(session, F.col("minutes"))).alias("avg_session_minutes"),
        F.sum(F.when(F.col("event_type") == "payment_failed", 1).otherwise(0)).alias("payment_failures_90d"),
        F.sum(F.when(F.col("event_type") == "support_call", 1).otherwise(0)).alias("support_calls_90d"),
        F.min(F.when(session, age_days)).alias("days_since_last_session"),
    )
    label = [F.col(LABEL).cast("int").alias(LABEL)] if LABEL in customers.columns else []
    return customers.join(activity, on=KEY, how="left").select(
        F.col(KEY),
        *[F.col(c) for c in CATEGORICAL],
        F.datediff(day, F.col("signup_date")).cast("double").alias("tenure_days"),
        F.col("monthly_fee").cast("double"),
        F.coalesce(F.col("sessions_30d"), F.lit(0)).cast("double").alias("sessions_30d"),
        F.coalesce(F.col("minutes_30d"), F.lit(0.0)).cast("double").alias("minutes_30d"),
        F.coalesce(F.col("avg_session_minutes"), F.lit(0.0)).cast("double").alias("avg_session_minutes"),
        F.coalesce(F.col("payment_failures_90d"), F.lit(0)).cast("double").alias("payment_failures_90d"),
        F.coalesce(F.col("support_calls_90d"), F.lit(0)).cast("double").alias("support_calls_90d"),
        F.coalesce(F.col("days_since_last_session"), F.lit(HISTORY_DAYS))
        .cast("double")
        .alias("days_since_last_session"),
        *label,
    )


def holdout() -> Column:
    """The rows every model is judged on: a fixed fifth of customers, the same on every engine and run."""
    return F.col(KEY) % 5 == 0
