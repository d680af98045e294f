"""Data profiling monitors (Lakehouse Monitoring's new name) through the data quality API, and the Unity
Catalog tables they profile.

Which API: the docs' "Create a data profile using the API" (docs.databricks.com/lakehouse-monitoring/
create-monitor-api) is written for the data quality API (`w.data_quality`, databricks-sdk >= 0.68) and calls
`quality_monitors` (`/api/2.1/unity-catalog/tables/{name}/monitor`) deprecated; quality-monitor-v2 is
deprecated too. So this is `/api/data-quality/v1/monitors` as databricks-sdk 0.162 `service/dataquality.py`
calls it: `create_monitor` (POST), `get_monitor` / `delete_monitor` (`/{object_type}/{object_id}`). A table
monitor names its table by `table_id` and its output schema by `output_schema_id`, so the fake also answers
`GET /api/2.1/unity-catalog/tables/{full_name}` (and `/exists`) for the tables it knows: seeded ones and the
AI Gateway payload tables of its serving endpoints.

Tables are local to the tests (no contents here): a monitor is checked against what the request carries and,
where a table was seeded with columns, against those column names. Status: DATA_PROFILING_STATUS_PENDING,
then ACTIVE after `monitor_pending_seconds`.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from .common import Context, Request, now_ms
from .errors import ApiError, does_not_exist, invalid
from .unity_catalog import METASTORE_ID, UnityCatalog

PREFIX = "/api/data-quality/v1/monitors"
TABLES = "/api/2.1/unity-catalog/tables/"

# service/dataquality.py: AggregationGranularity and InferenceProblemType.
GRANULARITIES = tuple(
    f"AGGREGATION_GRANULARITY_{g}"
    for g in (
        "5_MINUTES",
        "30_MINUTES",
        "1_HOUR",
        "1_DAY",
        "1_WEEK",
        "2_WEEKS",
        "3_WEEKS",
        "4_WEEKS",
        "1_MONTH",
        "1_YEAR",
    )
)
PROBLEM_TYPES = ("INFERENCE_PROBLEM_TYPE_CLASSIFICATION", "INFERENCE_PROBLEM_TYPE_REGRESSION")
ANALYSES = ("snapshot", "time_series", "inference_log")
# InferenceLogConfig's required fields (label_column is optional), and TimeSeriesConfig's.
REQUIRED = {
    "inference_log": (
        "problem_type",
        "timestamp_column",
        "granularities",
        "prediction_column",
        "model_id_column",
    ),
    "time_series": ("timestamp_column", "granularities"),
    "snapshot": (),
}
COLUMNS = ("timestamp_column", "prediction_column", "model_id_column", "label_column")
# Set by the service, never taken from a request (DataProfilingConfig's output-only fields).
OUTPUT_ONLY = (
    "dashboard_id",
    "drift_metrics_table_name",
    "effective_warehouse_id",
    "latest_monitor_failure_message",
    "monitor_version",
    "monitored_table_name",
    "profile_metrics_table_name",
    "status",
)


class Profiling:
    def __init__(self, ctx: Context, uc: UnityCatalog):
        self.ctx = ctx
        self.uc = uc
        self.tables: dict[str, dict] = {}  # full name -> TableInfo
        self.monitors: dict[str, dict] = {}  # table_id -> Monitor
        self._active_at: dict[str, float] = {}

    def routes(self):
        return [("POST", PREFIX, self.create)]

    def prefix_routes(self):
        return [
            ("GET", PREFIX + "/", self.get),
            ("DELETE", PREFIX + "/", self.delete),
            ("GET", TABLES, self.get_table),
        ]

    # ---- tables ---------------------------------------------------------------------------------------
    def add_table(self, full_name: str, columns: list[dict] | None = None) -> dict:
        """A Delta table registered in Unity Catalog (seeding); `columns` as ColumnInfo (name, type_name)."""
        parts = full_name.lower().split(".")
        if len(parts) != 3 or not all(parts):
            raise invalid(f"Invalid table name '{full_name}': use <catalog>.<schema>.<table>.")
        catalog, schema, name = parts
        self.uc._schema(f"{catalog}.{schema}")
        full_name = ".".join(parts)
        if full_name in self.tables:
            return self.tables[full_name]
        user = self.ctx.settings.user
        info: dict[str, Any] = {
            "name": name,
            "catalog_name": catalog,
            "schema_name": schema,
            "full_name": full_name,
            "table_type": "MANAGED",
            "data_source_format": "DELTA",
            "table_id": str(uuid.uuid4()),
            "owner": user,
            "created_by": user,
            "created_at": now_ms(),
            "metastore_id": METASTORE_ID,
        }
        if columns:
            info["columns"] = [
                {"name": str(c["name"]), "type_name": str(c.get("type_name", "STRING")), "position": i}
                for i, c in enumerate(columns)
            ]
        self.tables[full_name] = info
        return info

    def get_table(self, req: Request, rest: str) -> dict:
        full_name, _, what = rest.partition("/")
        if what not in ("", "exists"):
            raise ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No API found for 'GET {req.path.removeprefix('/api')}'"
            )
        info = self.tables.get(full_name.lower())
        if what == "exists":
            return {"table_exists": info is not None}
        if info is None:
            raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table '{full_name}' does not exist.")
        return copy.deepcopy(info)

    # ---- monitors -------------------------------------------------------------------------------------
    def create(self, req: Request) -> dict:
        object_type, object_id = str(req.need("object_type")), str(req.need("object_id"))
        if object_type not in ("table", "schema"):
            raise invalid(f"Invalid object_type '{object_type}': must be one of table, schema.")
        if object_type == "schema":
            raise invalid("Schema monitors (anomaly detection) are not served by this fake workspace.")
        table = self._table_by_id(object_id)
        if object_id in self.monitors:
            raise ApiError(
                409, "RESOURCE_ALREADY_EXISTS", f"A monitor already exists for table '{table['full_name']}'."
            )
        if req.body.get("anomaly_detection_config") is not None:
            raise invalid("anomaly_detection_config applies to schema monitors only, not to a table.")
        config = req.body.get("data_profiling_config")
        if not isinstance(config, dict):
            raise invalid("Missing required field: data_profiling_config")
        answer_config = self._profiling_config(config, table)
        monitor = {"object_type": "table", "object_id": object_id, "data_profiling_config": answer_config}
        self.monitors[object_id] = monitor
        self._active_at[object_id] = time.monotonic() + float(self.ctx.settings.monitor_pending_seconds)
        return self._monitor(object_id)

    def get(self, req: Request, rest: str) -> dict:
        return self._monitor(self._monitor_id(rest))

    def delete(self, req: Request, rest: str) -> dict:
        object_id = self._monitor_id(rest)
        del self.monitors[object_id]
        self._active_at.pop(object_id, None)
        return {}

    def dump(self) -> dict:
        return {
            "tables": sorted(self.tables),
            "monitors": {
                m["data_profiling_config"]["monitored_table_name"]: self._monitor(object_id)
                for object_id, m in sorted(self.monitors.items())
            },
        }

    # ---- helpers --------------------------------------------------------------------------------------
    def _profiling_config(self, config: dict, table: dict) -> dict:
        given = [a for a in ANALYSES if config.get(a) is not None]
        if len(given) != 1:
            # Monitor.data_profiling_config: "Exactly one Analysis Configuration must be present."
            raise invalid(
                f"Exactly one of {', '.join(ANALYSES)} must be set in data_profiling_config, got "
                f"{', '.join(given) or 'none'}."
            )
        analysis = given[0]
        spec = config[analysis]
        if not isinstance(spec, dict):
            raise invalid(f"Invalid value for data_profiling_config.{analysis}: expected an object")
        for key in REQUIRED[analysis]:
            if spec.get(key) in (None, "", []):
                raise invalid(f"Missing required field: data_profiling_config.{analysis}.{key}")
        if "problem_type" in spec and spec["problem_type"] not in PROBLEM_TYPES:
            raise invalid(
                f"Invalid problem_type {spec['problem_type']!r}: must be one of {', '.join(PROBLEM_TYPES)}."
            )
        granularities = spec.get("granularities", [])
        if not isinstance(granularities, list):
            raise invalid("Invalid value for granularities: expected a list")
        for granularity in granularities:
            if granularity not in GRANULARITIES:
                raise invalid(
                    f"Invalid granularity {granularity!r}: must be one of {', '.join(GRANULARITIES)}."
                )
        if len(set(granularities)) != len(granularities):
            raise invalid(f"Duplicate granularities in {granularities}.")
        known = {c["name"].lower() for c in table.get("columns", [])}
        for key in COLUMNS:
            column = spec.get(key)
            if column is not None and known and str(column).lower() not in known:
                raise invalid(
                    f"Column '{column}' ({analysis}.{key}) does not exist in table '{table['full_name']}'."
                )
        schema = self._schema_by_id(str(config.get("output_schema_id") or ""))
        baseline = config.get("baseline_table_name")
        if baseline and str(baseline).lower() not in self.tables:
            raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table '{baseline}' does not exist.")
        answer = {k: copy.deepcopy(v) for k, v in config.items() if k not in OUTPUT_ONLY and v is not None}
        output = f"{schema['full_name']}.{table['name']}"
        # The metric tables are <output schema>.<table>_profile_metrics and _drift_metrics (data profiling
        # docs, "Monitor metric tables").
        answer.update(
            {
                "monitored_table_name": table["full_name"],
                "profile_metrics_table_name": f"{output}_profile_metrics",
                "drift_metrics_table_name": f"{output}_drift_metrics",
                "monitor_version": 1,
            }
        )
        if not config.get("skip_builtin_dashboard"):
            answer["dashboard_id"] = uuid.uuid4().hex
        return answer

    def _monitor(self, object_id: str) -> dict:
        monitor = copy.deepcopy(self.monitors[object_id])
        ready = time.monotonic() >= self._active_at.get(object_id, 0.0)
        status = "DATA_PROFILING_STATUS_ACTIVE" if ready else "DATA_PROFILING_STATUS_PENDING"
        monitor["data_profiling_config"]["status"] = status
        return monitor

    def _monitor_id(self, rest: str) -> str:
        object_type, _, object_id = rest.partition("/")
        if object_type not in ("table", "schema") or not object_id or "/" in object_id:
            raise invalid(f"Invalid monitor path '{rest}': use <object_type>/<object_id>, object_type table.")
        if object_id not in self.monitors or object_type != "table":
            raise does_not_exist(f"No monitor exists for {object_type} with id '{object_id}'.")
        return object_id

    def _table_by_id(self, table_id: str) -> dict:
        for info in self.tables.values():
            if info["table_id"] == table_id:
                return info
        raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table with id '{table_id}' does not exist.")

    def _schema_by_id(self, schema_id: str) -> dict:
        if not schema_id:
            raise invalid("Missing required field: data_profiling_config.output_schema_id")
        for info in self.uc.schemas.values():
            if info["schema_id"] == schema_id:
                return info
        raise ApiError(404, "SCHEMA_DOES_NOT_EXIST", f"Schema with id '{schema_id}' does not exist.")
