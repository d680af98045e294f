"""Delta tables by short name, in either world: folders locally, catalog tables on Databricks.

Both kinds write Delta and report the table version each write made, which training records with the
model so any model traces back to the exact data it saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pyspark.sql import DataFrame, SparkSession


class Tables(Protocol):
    def location(self, name: str) -> str: ...
    def exists(self, name: str) -> bool: ...
    def read(self, name: str, version: int | None = None) -> DataFrame: ...
    def write(self, df: DataFrame, name: str, mode: str, keys: tuple[str, ...] = ()) -> int: ...
    def version(self, name: str) -> int: ...


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
            reader = reader.option("versionAsOf", version)
        return reader.load(self.location(name))

    def write(self, df: DataFrame, name: str, mode: str, keys: tuple[str, ...] = ()) -> int:
        writer = df.write.format("delta").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        writer.save(self.location(name))
        return self.version(name)

    def version(self, name: str) -> int:
        self._require(name)
        from deltalake import DeltaTable

        return DeltaTable(self.location(name)).version()

    def _require(self, name: str) -> None:
        if not self.exists(name):
            raise LookupError(f"table {name!r} does not exist yet at {self.location(name)}")


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
        if version is None:
            return self.spark.read.table(self.location(name))
        return self.spark.sql(f"SELECT * FROM {self.location(name)} VERSION AS OF {int(version)}")

    def write(self, df: DataFrame, name: str, mode: str, keys: tuple[str, ...] = ()) -> int:
        if not self._schema_ready:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.catalog}.{self.schema}")
            self._schema_ready = True
        if self.feature_store and keys:
            self._write_feature_table(df, name, mode, keys)
        else:
            df.write.format("delta").mode(mode).option("overwriteSchema", mode == "overwrite").saveAsTable(
                self.location(name)
            )
        return self.version(name)

    def version(self, name: str) -> int:
        return int(self.spark.sql(f"DESCRIBE HISTORY {self.location(name)} LIMIT 1").first()["version"])

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
