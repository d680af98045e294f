"""Clusters API 2.1 and Libraries API 2.0.

A cluster keeps the spec the user sent (create or edit replaces it whole) and answers get/list with that spec
plus what the real service adds: ids, state, default tags, cloud attribute defaults, `driver_node_type_id`,
`spec`, ... so a client must diff on the fields it specifies. States move on with time:
PENDING -> RUNNING (create, start), RUNNING -> RESTARTING -> RUNNING (edit of a running cluster, restart),
TERMINATING -> TERMINATED (delete). Libraries install once the cluster runs.

A job run makes a cluster per job_cluster_key (`cluster_source: JOB`, named `job-<job id>-run-<run id>`) that
terminates when the run ends, as the real clusters list shows job clusters. `apply_policy_default_values` is
answered only under `spec`, never at the top level (databricks/cli#6112: "clusters return
apply_policy_default_values under .spec"; compute.ClusterDetails has no such field).
"""

from __future__ import annotations

import copy
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .common import Context, Request, drop_fields, now_ms, page
from .errors import ApiError, invalid, invalid_state, missing_field

SPARK_VERSIONS = {
    "13.3.x-scala2.12": "13.3 LTS (includes Apache Spark 3.4.1, Scala 2.12)",
    "14.3.x-scala2.12": "14.3 LTS (includes Apache Spark 3.5.0, Scala 2.12)",
    "15.4.x-scala2.12": "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)",
    "15.4.x-cpu-ml-scala2.12": "15.4 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)",
    "16.4.x-scala2.12": "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)",
    "16.4.x-cpu-ml-scala2.12": "16.4 LTS ML (includes Apache Spark 3.5.2, Scala 2.12)",
    "17.3.x-scala2.13": "17.3 LTS (includes Apache Spark 4.0.0, Scala 2.13)",
    "17.3.x-cpu-ml-scala2.13": "17.3 LTS ML (includes Apache Spark 4.0.0, Scala 2.13)",
    "18.x-cpu-ml-scala2.13": "18 LTS ML (includes Apache Spark 4.1.0, Scala 2.13)",
    "18.x-gpu-ml-scala2.13": "18 LTS ML GPU (includes Apache Spark 4.1.0, Scala 2.13)",
}
_SPARK_VERSION = re.compile(r"^\d+(\.\d+)?\.x-[a-z0-9-]*scala\d+\.\d+$")

NODE_TYPES = {
    "i3.xlarge": (4, 31232, "Storage Optimized"),
    "i3.2xlarge": (8, 62464, "Storage Optimized"),
    "m5d.large": (2, 8192, "General Purpose"),
    "m5d.xlarge": (4, 16384, "General Purpose"),
    "r5d.xlarge": (4, 32768, "Memory Optimized"),
    "Standard_DS3_v2": (4, 14336, "General Purpose"),
    "Standard_D4ds_v5": (4, 16384, "General Purpose"),
    "Standard_E8ds_v4": (8, 65536, "Memory Optimized"),
    "n2-highmem-4": (4, 32768, "Memory Optimized"),
    "n2-standard-4": (4, 16384, "General Purpose"),
}

_CLOUD_DEFAULTS = (
    (
        re.compile(r"^Standard_"),
        "azure_attributes",
        {"first_on_demand": 1, "availability": "ON_DEMAND_AZURE", "spot_bid_max_price": -1.0},
    ),
    (
        re.compile(r"^[a-z]\d[a-z]?-"),
        "gcp_attributes",
        {"availability": "ON_DEMAND_GCP", "use_preemptible_executors": False, "zone_id": "HA"},
    ),
    (
        re.compile(r"^[a-z]+\d+[a-z]*\.\w+$"),
        "aws_attributes",
        {
            "first_on_demand": 1,
            "availability": "SPOT_WITH_FALLBACK",
            "zone_id": "auto",
            "spot_bid_price_percent": 100,
            "ebs_volume_count": 0,
        },
    ),
)

_LIBRARY_KINDS = ("jar", "egg", "whl", "pypi", "maven", "cran", "requirements")
# States in which edit/start are refused, as by the real service.
_BUSY = {
    "PENDING": "Pending",
    "RESTARTING": "Restarting",
    "RESIZING": "Resizing",
    "TERMINATING": "Terminating",
}


@dataclass
class _Library:
    spec: dict
    added_at: float
    uninstall_on_restart: bool = False


@dataclass
class Cluster:
    cluster_id: str
    spec: dict
    creator: str
    state: str
    state_message: str
    start_time: int
    phases: list[tuple[float, str, str]] = field(default_factory=list)
    running_since: float | None = None
    spark_context_id: int | None = None
    last_restarted_time: int | None = None
    terminated_time: int | None = None
    termination_reason: dict | None = None
    libraries: list[_Library] = field(default_factory=list)
    pinned: bool = False
    source: str = "API"
    job_tags: dict[str, str] = field(
        default_factory=dict
    )  # JobId, RunName: the default tags of a job cluster


class Clusters:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.clusters: dict[str, Cluster] = {}

    def routes(self):
        return [
            ("POST", "/api/2.1/clusters/create", self.create),
            ("POST", "/api/2.1/clusters/edit", self.edit),
            ("GET", "/api/2.1/clusters/get", self.get),
            ("GET", "/api/2.1/clusters/list", self.list),
            ("POST", "/api/2.1/clusters/start", self.start),
            ("POST", "/api/2.1/clusters/restart", self.restart),
            ("POST", "/api/2.1/clusters/delete", self.delete),
            ("POST", "/api/2.1/clusters/permanent-delete", self.permanent_delete),
            ("GET", "/api/2.1/clusters/spark-versions", self.spark_versions),
            ("GET", "/api/2.1/clusters/list-node-types", self.list_node_types),
            ("POST", "/api/2.0/libraries/install", self.install),
            ("POST", "/api/2.0/libraries/uninstall", self.uninstall),
            ("GET", "/api/2.0/libraries/cluster-status", self.cluster_status),
            ("GET", "/api/2.0/libraries/all-cluster-statuses", self.all_cluster_statuses),
        ]

    # ---- clusters -------------------------------------------------------------------------------------
    def create(self, req: Request) -> dict:
        spec = validated_spec(req.body)
        return {"cluster_id": self.add(spec, self.ctx.settings.user).cluster_id}

    def add(self, spec: dict, creator: str, state: str = "PENDING") -> Cluster:
        now = time.monotonic()
        cluster = Cluster(
            self.ctx.cluster_id(), spec, creator, "PENDING", "Finding instances for new nodes", now_ms()
        )
        self.clusters[cluster.cluster_id] = cluster
        if state == "PENDING":
            cluster.phases = [(now + self.ctx.settings.cluster_start_seconds, "RUNNING", "")]
        elif state == "RUNNING":
            self._enter(cluster, "RUNNING", "", now)
        elif state == "TERMINATED":
            self._enter(cluster, "TERMINATED", "Terminated by user", now)
        else:
            raise invalid(f"cannot seed a cluster in state {state}")
        return cluster

    def edit(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"))
        spec = validated_spec(req.body)
        self._advance(cluster)
        if cluster.state in _BUSY:
            raise invalid_state(
                f"Cluster {cluster.cluster_id} is in unexpected state {_BUSY[cluster.state]}."
            )
        cluster.spec = spec
        if cluster.state == "RUNNING":  # the real service restarts a running cluster to apply the new spec
            self._schedule_restart(cluster)
        return {}

    def get(self, req: Request) -> dict:
        return drop_fields(self.details(self._find(req.need("cluster_id"))), self.ctx.settings.drop_fields)

    def list(self, req: Request) -> dict:
        states = set(req.args("filter_by.cluster_states"))
        sources = set(req.args("filter_by.cluster_sources"))
        pinned = req.arg("filter_by.is_pinned")
        policy = req.arg("filter_by.policy_id")
        rows = []
        for cluster in sorted(self.clusters.values(), key=lambda c: c.start_time, reverse=True):
            self._advance(cluster)
            if states and cluster.state not in states:
                continue
            if sources and cluster.source not in sources:
                continue
            if pinned is not None and cluster.pinned != (pinned == "true"):
                continue
            if policy and cluster.spec.get("policy_id") != policy:
                continue
            rows.append(cluster)
        size = min(
            req.int_arg("page_size", 0) or self.ctx.settings.max_page_size, self.ctx.settings.max_page_size
        )
        chunk, next_token, prev_token = page(rows, req.arg("page_token"), size)
        answer: dict[str, Any] = {}
        if chunk:
            answer["clusters"] = drop_fields([self.details(c) for c in chunk], self.ctx.settings.drop_fields)
        if next_token:
            answer["next_page_token"] = next_token
        if prev_token:
            answer["prev_page_token"] = prev_token
        return answer

    def start(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"))
        self._advance(cluster)
        if cluster.state != "TERMINATED":
            raise invalid_state(
                f"Cluster {cluster.cluster_id} is in unexpected state {cluster.state.capitalize()}."
            )
        self._drop_uninstalled(cluster)
        cluster.state, cluster.state_message = "PENDING", "Starting Spark"
        cluster.running_since = None
        cluster.phases = [(time.monotonic() + self.ctx.settings.cluster_start_seconds, "RUNNING", "")]
        return {}

    def restart(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"))
        self._advance(cluster)
        if cluster.state != "RUNNING":
            raise invalid_state(
                f"Cluster {cluster.cluster_id} is in unexpected state {cluster.state.capitalize()}."
            )
        self._schedule_restart(cluster)
        return {}

    def delete(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"))
        self._advance(cluster)
        if cluster.state in ("TERMINATED", "TERMINATING"):
            return {}
        cluster.state, cluster.state_message = "TERMINATING", "Terminating the cluster"
        cluster.phases = [
            (time.monotonic() + self.ctx.settings.cluster_stop_seconds, "TERMINATED", "Terminated by user")
        ]
        cluster.termination_reason = {
            "code": "USER_REQUEST",
            "type": "SUCCESS",
            "parameters": {"username": self.ctx.settings.user},
        }
        return {}

    def permanent_delete(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"))
        del self.clusters[cluster.cluster_id]
        return {}

    def spark_versions(self, req: Request) -> dict:
        return {"versions": [{"key": k, "name": v} for k, v in SPARK_VERSIONS.items()]}

    def list_node_types(self, req: Request) -> dict:
        return {
            "node_types": [
                {
                    "node_type_id": k,
                    "instance_type_id": k,
                    "num_cores": float(c),
                    "memory_mb": m,
                    "category": cat,
                    "description": k,
                    "is_deprecated": False,
                    "node_instance_type": {
                        "instance_type_id": k,
                        "local_disks": 1,
                        "local_disk_size_gb": 150,
                    },
                }
                for k, (c, m, cat) in NODE_TYPES.items()
            ]
        }

    # ---- libraries ------------------------------------------------------------------------------------
    def install(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"), for_libraries=True)
        libraries = req.need("libraries")
        for library in libraries:
            _validate_library(library)
        for library in libraries:
            existing = next((lib for lib in cluster.libraries if lib.spec == library), None)
            if existing is None:
                cluster.libraries.append(_Library(copy.deepcopy(library), time.monotonic()))
            elif existing.uninstall_on_restart:
                existing.uninstall_on_restart = False
        return {}

    def uninstall(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"), for_libraries=True)
        for library in req.need("libraries"):
            for lib in cluster.libraries:
                if lib.spec == library:
                    lib.uninstall_on_restart = True
        return {}

    def cluster_status(self, req: Request) -> dict:
        cluster = self._find(req.need("cluster_id"), for_libraries=True)
        return self._library_statuses(cluster)

    def all_cluster_statuses(self, req: Request) -> dict:
        statuses = [self._library_statuses(c) for c in self.clusters.values() if c.libraries]
        return {"statuses": statuses} if statuses else {}

    def _library_statuses(self, cluster: Cluster) -> dict:
        self._advance(cluster)
        answer: dict[str, Any] = {"cluster_id": cluster.cluster_id}
        rows = []
        now = time.monotonic()
        for lib in cluster.libraries:
            if lib.uninstall_on_restart:
                status = "UNINSTALL_ON_RESTART"
            elif cluster.state == "RUNNING" and cluster.running_since is not None:
                ready = max(cluster.running_since, lib.added_at) + self.ctx.settings.library_install_seconds
                status = "INSTALLED" if now >= ready else "INSTALLING"
            else:
                status = "PENDING"
            rows.append(
                {"library": copy.deepcopy(lib.spec), "status": status, "is_library_for_all_clusters": False}
            )
        if rows:
            answer["library_statuses"] = rows
        return answer

    # ---- job clusters ---------------------------------------------------------------------------------
    def add_job_cluster(
        self, spec: dict, creator: str, at: float, tags: dict[str, str], libraries: list[dict]
    ) -> Cluster:
        """The cluster a job run starts at monotonic time `at` for one of its job_cluster_keys."""
        spec = copy.deepcopy(spec)
        if spec.get("data_security_mode") == "SINGLE_USER":
            spec.setdefault("single_user_name", creator)
        cluster = Cluster(
            self.ctx.cluster_id(),
            spec,
            creator,
            "PENDING",
            "Finding instances for new nodes",
            now_ms() - int((time.monotonic() - at) * 1000),
            phases=[(at + self.ctx.settings.cluster_start_seconds, "RUNNING", "")],
            source="JOB",
            job_tags=dict(tags),
        )
        for library in libraries:
            if all(lib.spec != library for lib in cluster.libraries):
                cluster.libraries.append(_Library(copy.deepcopy(library), at))
        self.clusters[cluster.cluster_id] = cluster
        return cluster

    def end_job_cluster(self, cluster_id: str, at: float) -> None:
        """The run that made the cluster ended at monotonic time `at`: it terminates then."""
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            return
        self._advance(cluster, until=at)
        cluster.phases = [
            (at, "TERMINATING", "Terminating the cluster"),
            (at + self.ctx.settings.cluster_stop_seconds, "TERMINATED", "Job finished"),
        ]
        cluster.termination_reason = {"code": "JOB_FINISHED", "type": "SUCCESS"}

    # ---- helpers --------------------------------------------------------------------------------------
    def _find(self, cluster_id: str, for_libraries: bool = False) -> Cluster:
        cluster = self.clusters.get(str(cluster_id))
        if cluster is None:
            raise invalid(f"Cluster {cluster_id} does not exist")
        return cluster

    def _schedule_restart(self, cluster: Cluster) -> None:
        self._drop_uninstalled(cluster)
        cluster.state, cluster.state_message = "RESTARTING", "Restarting Spark"
        cluster.running_since = None
        cluster.phases = [(time.monotonic() + self.ctx.settings.cluster_restart_seconds, "RUNNING", "")]
        cluster.last_restarted_time = now_ms()

    @staticmethod
    def _drop_uninstalled(cluster: Cluster) -> None:
        cluster.libraries = [lib for lib in cluster.libraries if not lib.uninstall_on_restart]

    def _advance(self, cluster: Cluster, until: float | None = None) -> None:
        now = time.monotonic() if until is None else until
        while cluster.phases and cluster.phases[0][0] <= now:
            at, state, message = cluster.phases.pop(0)
            self._enter(cluster, state, message, at)

    def _enter(self, cluster: Cluster, state: str, message: str, at: float) -> None:
        cluster.state, cluster.state_message = state, message
        if state == "RUNNING":
            cluster.running_since = at
            cluster.spark_context_id = random.randrange(10**18)
            cluster.terminated_time = None
            cluster.termination_reason = None
        elif state == "TERMINATED":
            cluster.running_since = None
            cluster.spark_context_id = None
            cluster.terminated_time = now_ms() - int(max(0.0, time.monotonic() - at) * 1000)
            cluster.termination_reason = cluster.termination_reason or {
                "code": "USER_REQUEST",
                "type": "SUCCESS",
                "parameters": {"username": cluster.creator},
            }

    def details(self, cluster: Cluster) -> dict:
        """What get/list answer: the user's spec plus the fields the service fills in."""
        self._advance(cluster)
        spec = copy.deepcopy(cluster.spec)
        out = copy.deepcopy(spec)
        out.pop("apply_policy_default_values", None)
        node_type = spec.get("node_type_id")
        if node_type:
            out.setdefault("driver_node_type_id", node_type)
            for pattern, key, defaults in _CLOUD_DEFAULTS:
                if pattern.match(node_type):
                    out[key] = {**defaults, **spec.get(key, {})}
                    break
        cores, memory, _ = NODE_TYPES.get(node_type or "", (4, 16384, ""))
        workers = (
            spec.get("num_workers", 0) if "autoscale" not in spec else spec["autoscale"].get("min_workers", 0)
        )
        out.update(
            {
                "cluster_id": cluster.cluster_id,
                "creator_user_name": cluster.creator,
                "state": cluster.state,
                "state_message": cluster.state_message,
                "start_time": cluster.start_time,
                "cluster_source": cluster.source,
                "default_tags": {
                    "Vendor": "Databricks",
                    "Creator": cluster.creator,
                    "ClusterName": spec.get("cluster_name", ""),
                    "ClusterId": cluster.cluster_id,
                    **cluster.job_tags,
                },
                "enable_elastic_disk": spec.get("enable_elastic_disk", True),
                "enable_local_disk_encryption": spec.get("enable_local_disk_encryption", False),
                "disk_spec": spec.get("disk_spec", {}),
                "init_scripts_safe_mode": False,
                "effective_spark_version": spec.get("spark_version"),
                "runtime_engine": spec.get("runtime_engine", "STANDARD"),
                "cluster_memory_mb": memory * (workers + 1),
                "cluster_cores": float(cores * (workers + 1)),
                "jdbc_port": 10000,
                "last_state_loss_time": 0,
                "spec": spec,
            }
        )
        if "autoscale" not in spec:
            out.setdefault("num_workers", 0)
        if cluster.spark_context_id is not None:
            out["spark_context_id"] = cluster.spark_context_id
            out["last_activity_time"] = now_ms()
        if cluster.last_restarted_time:
            out["last_restarted_time"] = cluster.last_restarted_time
        if cluster.terminated_time:
            out["terminated_time"] = cluster.terminated_time
        if cluster.termination_reason and cluster.state in ("TERMINATED", "TERMINATING"):
            out["termination_reason"] = cluster.termination_reason
        return out

    def dump(self) -> dict:
        out = {}
        for cluster_id, cluster in self.clusters.items():
            out[cluster_id] = {
                **self.details(cluster),
                "libraries": self._library_statuses(cluster).get("library_statuses", []),
            }
        return out


def validated_spec(body: dict, for_job: bool = False) -> dict:
    """The spec of clusters/create or edit, or of a job's new_cluster (`for_job`): that one may leave out
    single_user_name, the run's identity is the single user (databricks/cli testserver: a job's new_cluster
    gets data_security_mode SINGLE_USER as "server-side default" with no single_user_name)."""
    spec = {k: copy.deepcopy(v) for k, v in body.items() if k != "cluster_id"}
    version = spec.get("spark_version")
    if not version:
        raise missing_field("spark_version")
    if version not in SPARK_VERSIONS and not _SPARK_VERSION.match(str(version)):
        raise invalid(f"Invalid spark version {version}.")
    if not (spec.get("node_type_id") or spec.get("instance_pool_id") or spec.get("policy_id")):
        raise invalid("The cluster must specify node_type_id or instance_pool_id.")
    if "num_workers" in spec and (not isinstance(spec["num_workers"], int) or spec["num_workers"] < 0):
        raise invalid(f"Invalid num_workers: {spec['num_workers']!r}")
    autoscale = spec.get("autoscale")
    if autoscale is not None:
        low, high = autoscale.get("min_workers"), autoscale.get("max_workers")
        if not isinstance(low, int) or not isinstance(high, int) or low < 0 or high < low:
            raise invalid("Autoscale max_workers must be at least min_workers and min_workers at least 0.")
    minutes = spec.get("autotermination_minutes")
    if minutes is not None and minutes != 0 and not (10 <= int(minutes) <= 43200):
        raise invalid(f"Autotermination minutes must be 0 or between 10 and 43200, got {minutes}.")
    for key in ("custom_tags", "spark_conf", "spark_env_vars"):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            raise invalid(f"{key} must be a map from string to string")
    if spec.get("data_security_mode") == "SINGLE_USER" and not spec.get("single_user_name") and not for_job:
        raise invalid("single_user_name must be set when data_security_mode is SINGLE_USER.")
    return spec


def _validate_library(library: Any) -> None:
    if not isinstance(library, dict):
        raise invalid(f"Invalid library: {library!r}")
    kinds = [k for k in _LIBRARY_KINDS if k in library]
    if len(kinds) != 1:
        raise invalid(f"Exactly one library type must be specified, got {sorted(library)}")
    if kinds[0] in ("pypi", "maven", "cran"):
        key = "coordinates" if kinds[0] == "maven" else "package"
        if not isinstance(library[kinds[0]], dict) or not library[kinds[0]].get(key):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {kinds[0]}.{key}")
