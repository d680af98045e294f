"""Delta tables by short name, in either world: folders locally, catalog tables on Databricks.

Both kinds write Delta and report the table version each write made, which training records with the
model so any model traces back to the exact data it saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from .errors import UserError


class Tables(Protocol):
    def location(self, name: str) -> str: ...
    def exists(self, name: str) -> bool: ...
    def read(self, name: str, version: int | None = None) -> DataFrame: ...
    def read_location(self, location: str) -> DataFrame: ...
    def write(self, df: DataFrame, name: str, mode: str, keys: tuple[str, ...] = ()) -> int: ...
    def write_frame(self, frame: pd.DataFrame, name: str, schema: str, mode: str) -> None: ...
    def version(self, name: str) -> int: ...


def _check_version(location: str, version: int, latest: int) -> None:
    if not 0 <= version <= latest:
        raise UserError(f"table {location} has no version {version}; its versions are 0 to {latest}")


class PathTables:
    """Delta tables in folders under one root (Sail's catalog does not outlive the process, paths do)."""

    def __init__(self, spark: SparkSession, root: Path) -> None:
        self.spark = spark
        self.root = root

    def location(self, name: str) -> str:
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        return (self.root / name / "_delta_log").is_dir()

    def read(self, name: str, version: int | None = None) -> DataFrame:
        self._require(name)
        reader = self.spark.read.format("delta")
        if version is not None:
            _check_version(self.location(name), version, self.version(name))
            reader = reader.option("versionAsOf", version)
        return reader.load(self.location(name))

    def read_location(self, location: str) -> DataFrame:
        """A Delta folder named by its path."""
        if not (Path(location) / "_delta_log").is_dir():
            raise UserError(f"{location} is not a Delta table (it has no _delta_log folder)")
        return self.spark.read.format("delta").load(str(Path(location).resolve()))

    def write(self, df: DataFrame, name: str, mode: str, keys: tuple[str, ...] = ()) -> int:
        writer = df.write.format("delta").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        writer.save(self.location(name))
        return self.version(name)

    def write_frame(self, frame: pd.DataFrame, name: str, schema: str, mode: str) -> None:
        """A pandas frame written with deltalake, not through Spark Connect (whose messages are capped)."""
        from deltalake import write_deltalake

        table = pa.Table.from_pandas(frame, schema=arrow_schema(schema), preserve_index=False)
        write_deltalake(self.location(name), table, mode=mode, schema_mode="overwrite" if mode == "overwrite" else None)

    def version(self, name: str) -> int:
        self._require(name)
        from deltalake import DeltaTable

        return DeltaTable(self.location(name)).version()

    def _require(self, name: str) -> None:
        if not self.exists(name):
            raise UserError(f"table {name!r} does not exist yet at {self.location(name)}")


class CatalogTables:
    """Delta tables in a catalog schema (Unity Catalog, or hive_metastore with the workspace registry)."""

    def __init__(self, spark: SparkSession, catalog: str, schema: str, *, feature_store: bool) -> None:
        self.spark = spark
        self.catalog = catalog
        self.schema = schema
        self.feature_store = feature_store
        self._schema_ready = False

    def location(self, name: str) -> str:
        return f"{self.catalog}.{self.schema}.{name}"

    def exists(self, name: str) -> bool:
        return self.spark.catalog.tableExists(self.location(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        if not self.exists(name):
            raise UserError(f"table {self.location(name)} does not exist yet")
        if version is None:
            return self.spark.read.table(self.location(name))
        _check_version(self.location(name), version, self.version(name))
        return self.spark.sql(f"SELECT * FROM {self.location(name)} VERSION AS OF {int(version)}")

    def read_location(self, location: str) -> DataFrame:
        """A table named by its catalog name."""
        if not self.spark.catalog.tableExists(location):
            raise UserError(f"table {location} does not exist (or this cluster's identity cannot see it)")
        return self.spark.read.table(location)

    def write(self, df: DataFrame, name: str, mode: str, keys: tuple[str, ...] = ()) -> int:
        self._ensure_schema()
        if self.feature_store and keys:
            self._write_feature_table(df, name, mode, keys)
        else:
            df.write.format("delta").mode(mode).option("overwriteSchema", mode == "overwrite").saveAsTable(
                self.location(name)
            )
        return self.version(name)

    def write_frame(self, frame: pd.DataFrame, name: str, schema: str, mode: str) -> None:
        """A pandas frame written as one Spark write; keep frames well under Spark Connect's 128 MiB messages."""
        self._ensure_schema()
        df = self.spark.createDataFrame(frame, schema)
        df.write.format("delta").mode(mode).option("overwriteSchema", mode == "overwrite").saveAsTable(
            self.location(name)
        )

    def version(self, name: str) -> int:
        return int(self.spark.sql(f"DESCRIBE HISTORY {self.location(name)} LIMIT 1").first()["version"])

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.catalog}.{self.schema}")
            self._schema_ready = True

    def _write_feature_table(self, df: DataFrame, name: str, mode: str, keys: tuple[str, ...]) -> None:
        full_name = self.location(name)
        if self.catalog == "hive_metastore":
            from databricks.feature_store import FeatureStoreClient as Client
        else:
            from databricks.feature_engineering import FeatureEngineeringClient as Client
        client = Client()
        if not self.exists(name):
            client.create_table(name=full_name, primary_keys=list(keys), df=df, description="Model features")
        else:
            # Feature tables are upserted on their primary keys; rows of earlier runs stay readable by version.
            client.write_table(name=full_name, df=df, mode="merge")


_ARROW = {
    "long": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def arrow_schema(ddl: str) -> pa.Schema:
    """The Arrow schema of a Spark DDL string of simple types ("customer_id long, signup_date date")."""
    return pa.schema([(name, _ARROW[kind]) for name, kind in (column.split() for column in ddl.split(","))])
