"""Where the loop's raw data comes from, per world, and whom it scores. This file is yours: template updates
never change it.

The loop reads three sources, each a table, only through the functions below. Each returns a DataFrame with
(at least) these columns; `docs/project/bring-your-own-data.md` walks through pointing them at your own tables:

- customers: customer_id long, signup_date date, plan string, region string, monthly_fee double; one row each
- events:    customer_id long, event_time timestamp, event_type string ('session', 'payment_failed',
             'support_call'), minutes double
- labels:    customer_id long, churned int; the outcomes known so far, no row while a customer's is unknown

`WHERE` names each source's table per world: a Unity Catalog (or hive_metastore) name on Databricks, e.g.
"main.crm.events", a Delta folder locally. `SYNTHETIC` is the project's own table of that name, in its schema on
Databricks and in the lakehouse locally, which the synthetic generator (`synthetic.py`) writes before a step
reads it: so the whole loop runs before you point it at your data.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame

from .catalog import SYNTHETIC, Catalog

WHERE = {
    "databricks": {"customers": SYNTHETIC, "events": SYNTHETIC, "labels": SYNTHETIC},
    "local": {"customers": SYNTHETIC, "events": SYNTHETIC, "labels": SYNTHETIC},
}


def customers(catalog: Catalog) -> DataFrame:
    return catalog.read("customers")


def events(catalog: Catalog) -> DataFrame:
    return catalog.read("events")


def labels(catalog: Catalog, as_of: date) -> DataFrame:
    """The outcomes known on `as_of`. A label window goes here, e.g. churned within 30 days after `as_of`."""
    return catalog.read("labels")


def to_score(catalog: Catalog, day: date) -> DataFrame:
    """Whom to score on `day`: every customer whose outcome is not known yet."""
    known = labels(catalog, day).select("customer_id")
    return customers(catalog).join(known, "customer_id", "left_anti")
