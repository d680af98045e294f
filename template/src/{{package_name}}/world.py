"""Which world the code runs in, and what that world provides: a Spark session, tables, an MLflow store.

This is the only module that asks. On Databricks (DATABRICKS_RUNTIME_VERSION is set) it uses the cluster's
Spark session, Unity Catalog or hive_metastore tables and the workspace's MLflow. Anywhere else it starts
Sail, an embedded Spark Connect server, and keeps Delta tables and a sqlite MLflow store in a local folder.
LAKEFORGE_WORLD=local|databricks overrides the guess; LAKEHOUSE_DIR moves the local folder.

LAKEFORGE_TRACKING_URI and LAKEFORGE_REGISTRY_URI, when set, override the world's MLflow URIs (and nothing else):
a local run keeps its Sail tables and tracks in a workspace, e.g. `LAKEFORGE_TRACKING_URI=databricks` with
DATABRICKS_HOST and DATABRICKS_TOKEN. A tracking URI without a registry URI brings its usual registry: after
`databricks`, the project's own (`databricks-uc` for Unity Catalog, `databricks` for the workspace registry),
else the tracking URI itself. They are not MLflow's MLFLOW_* variables because `mlflow.set_tracking_uri` writes
those into the environment, so a second `connect()` in one process would take the first one's store.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import mlflow
from pyspark.sql import SparkSession

from .config import REGISTRY, Settings
from .errors import UserError
from .tables import CatalogTables, PathTables, Tables

# The workspace's registry that the project's `registry` answer names (config.REGISTRY).
WORKSPACE_REGISTRY_URI = "databricks-uc" if REGISTRY == "unity-catalog" else "databricks"


@dataclass(frozen=True)
class World:
    name: str
    spark: SparkSession
    tables: Tables
    tracking_uri: str
    registry_uri: str
    home: Path | None = None

    @property
    def reports_dir(self) -> Path | None:
        return self.home / "reports" if self.home else None


def on_databricks() -> bool:
    forced = os.environ.get("LAKEFORGE_WORLD", "").strip().lower()
    if forced and forced not in {"local", "databricks"}:
        raise UserError(f"LAKEFORGE_WORLD={forced!r} is not allowed: use local or databricks")
    if forced:
        return forced == "databricks"
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def local_home() -> Path:
    """The git-ignored folder that holds local tables, the MLflow store and reports."""
    if configured := os.environ.get("LAKEHOUSE_DIR"):
        return Path(configured).resolve()
    here = Path.cwd().resolve()
    root = next((p for p in (here, *here.parents) if (p / "pyproject.toml").is_file()), here)
    return root / "lakehouse"


def connect(settings: Settings) -> World:
    """The world this process runs in, with MLflow pointed at its store and the settings' experiment."""
    tracking, registry = connect_mlflow()
    world = _databricks(settings, tracking, registry) if on_databricks() else _local(tracking, registry)
    _use_experiment(settings.experiment, world)
    return world


def connect_mlflow() -> tuple[str, str]:
    """MLflow pointed at this world's tracking server and registry, without starting Spark (enough to load a
    model); returns their URIs."""
    if on_databricks():
        tracking, registry = "databricks", WORKSPACE_REGISTRY_URI
    else:
        home = local_home()
        home.mkdir(parents=True, exist_ok=True)
        tracking = registry = f"sqlite:///{home / 'mlflow.db'}"
    tracking, registry = _with_mlflow_overrides(tracking, registry)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    return tracking, registry


def _with_mlflow_overrides(tracking: str, registry: str) -> tuple[str, str]:
    tracking_override = os.environ.get("LAKEFORGE_TRACKING_URI", "").strip()
    registry_override = os.environ.get("LAKEFORGE_REGISTRY_URI", "").strip()
    if tracking_override and not registry_override:
        on_workspace = tracking_override == "databricks" or tracking_override.startswith("databricks://")
        registry_override = WORKSPACE_REGISTRY_URI if on_workspace else tracking_override
    return tracking_override or tracking, registry_override or registry


def _databricks(settings: Settings, tracking: str, registry: str) -> World:
    spark = SparkSession.builder.getOrCreate()
    tables = CatalogTables(spark, settings.catalog, settings.schema, feature_store=settings.feature_store)
    return World("databricks", spark, tables, tracking, registry)


def _local(tracking: str, registry: str) -> World:
    home = local_home()
    spark = local_spark()
    return World("local", spark, PathTables(spark, home / "tables"), tracking, registry, home)


@cache
def local_spark() -> SparkSession:
    """A Spark Connect session on an embedded Sail server, started once per process."""
    os.environ.setdefault("RUST_LOG", "error")
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    host, port = server.listening_address
    spark = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    atexit.register(server.stop)
    atexit.register(spark.stop)
    return spark


def _use_experiment(name: str, world: World) -> None:
    local_store = world.tracking_uri.startswith("sqlite:")
    if local_store and world.home is not None and mlflow.get_experiment_by_name(name) is None:
        # Without an explicit location a sqlite store puts artifacts in ./mlruns of whatever the cwd is.
        mlflow.create_experiment(name, artifact_location=(world.home / "artifacts").as_uri())
    mlflow.set_experiment(name)
