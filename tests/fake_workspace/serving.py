"""Model Serving endpoints, `/api/2.0/serving-endpoints`: create, get, list, delete, config, ai-gateway, tags.

Sources: databricks-sdk 0.162 `service/serving.py` (paths, shapes, the `*_and_wait` waiters, enums) and the
REST reference (docs.databricks.com/api/workspace/servingendpoints); databricks/cli's own test server,
`libs/testserver/serving_endpoints.go` (the backend's name rule and wording, the duplicate and not-found
errors, the default traffic route, no ai_gateway without a config).

Life of an endpoint, as the real service shows it (docs "Manage model serving endpoints": `pending_config` is
the config being rolled out and disappears once it is served): create answers NOT_READY / IN_PROGRESS with the
config in `pending_config`; after `serving_update_seconds` it serves it (READY / NOT_UPDATING, `config`).
An update keeps serving the old `config` while the new one is pending; a second update meanwhile is refused
(the SDK: "An endpoint that already has an update in progress can not be updated until the current update
completes or fails"). `serving_results: {endpoint: "UPDATE_FAILED" | "UPDATE_CANCELED"}` makes that
endpoint's updates end so: the pending config is dropped and the old one stays served.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import Context, Request, now_ms
from .errors import ApiError, does_not_exist, invalid
from .mlflow_backend import MlflowBackend
from .uc_registry import UcRegistry
from .unity_catalog import UnityCatalog

PREFIX = "/api/2.0/serving-endpoints"
# Settings this module adds to POST /__fake__/config.

# databricks/cli libs/testserver/serving_endpoints.go: "the backend's own constraint and wording".
NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$")
NAME_MESSAGE = (
    "Endpoint name must be maximum 63 characters, and alphanumeric with hyphens and underscores allowed "
    "in between."
)
# ServedEntityInput.name: "alphanumeric characters, dashes, and underscores".
ENTITY_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
# ServedEntityInput.workload_size: 'Valid workload sizes are "Small", "Medium", and "Large"' (custom sizes
# exist only where a workspace has them; this one has none).
WORKLOAD_SIZES = ("Small", "Medium", "Large")
# ServingModelWorkloadType in service/serving.py.
WORKLOAD_TYPES = (
    "CPU",
    "CPU_LARGE",
    "CPU_MEDIUM",
    "GPU_LARGE",
    "GPU_MEDIUM",
    "GPU_SMALL",
    "GPU_XLARGE",
    "GPU_XLARGE_8",
    "MULTIGPU_MEDIUM",
)
MAX_SERVED_ENTITIES = 10  # ServingEndpointsAPI: "A serving endpoint can have at most ten served entities."
FAILURES = ("UPDATE_FAILED", "UPDATE_CANCELED")  # EndpointStateConfigUpdate's end states other than success
# Docs, "Enable inference tables on model serving endpoints using the API" (legacy): "Starting February 20,
# 2026, legacy inference tables can not be enabled on new or existing model serving endpoints." The wording of
# the refusal below is the fake's; the docs give none.
LEGACY_INFERENCE_TABLES = (
    "Legacy inference tables (auto_capture_config) can no longer be enabled on new or existing serving "
    "endpoints. Use AI Gateway inference tables (ai_gateway.inference_table_config) instead."
)


def conflict(message: str) -> ApiError:
    return ApiError(409, "RESOURCE_CONFLICT", message)


@dataclass
class Endpoint:
    name: str
    body: dict[str, Any]  # the ServingEndpointDetailed fields other than config, pending_config and state
    config: dict | None = None
    pending: dict | None = None
    update_state: str = "IN_PROGRESS"
    settles_at: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)


class Serving:
    def __init__(
        self,
        ctx: Context,
        uc: UnityCatalog,
        registry: UcRegistry,
        mlflow: MlflowBackend,
        add_table: Callable[[str], Any],
    ):
        self.ctx = ctx
        self.uc = uc
        self.registry = registry
        self.mlflow = mlflow
        self.add_table = add_table  # registers a Unity Catalog table (profiling.py): the payload tables
        self.endpoints: dict[str, Endpoint] = {}

    def routes(self):
        return [("POST", PREFIX, self.create), ("GET", PREFIX, self.list)]

    def prefix_routes(self):
        return [("*", PREFIX + "/", self.dispatch)]

    def dispatch(self, req: Request, rest: str) -> dict:
        name, _, what = rest.partition("/")
        handler = {
            ("GET", ""): self.get,
            ("DELETE", ""): self.delete,
            ("PUT", "config"): self.update_config,
            ("PUT", "ai-gateway"): self.put_ai_gateway,
            ("PATCH", "tags"): self.patch_tags,
        }.get((req.method, what))
        if handler is None or not name:
            raise ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path.removeprefix('/api')}'"
            )
        return handler(req, name)

    # ---- the API --------------------------------------------------------------------------------------
    def create(self, req: Request) -> dict:
        name = str(req.body.get("name") or "")
        if not NAME.match(name):
            raise invalid(NAME_MESSAGE)
        if name in self.endpoints:
            # databricks/cli libs/testserver/serving_endpoints.go
            raise ApiError(
                409, "RESOURCE_ALREADY_EXISTS", f"Serving endpoint with name {name} already exists"
            )
        config = req.body.get("config")
        if config is None:
            for key, given in (
                ("ai_gateway", req.body.get("ai_gateway") is not None),
                ("rate_limits", bool(req.body.get("rate_limits"))),
            ):
                if given:
                    raise invalid(f"Cannot specify {key} when creating endpoints without a config.")
        pending = self._config(config, 1) if config is not None else None
        ai_gateway = self._ai_gateway(req.body.get("ai_gateway"), None) if "ai_gateway" in req.body else None
        now, user = now_ms(), self.ctx.settings.user
        body: dict[str, Any] = {
            "name": name,
            "id": uuid.uuid4().hex,
            "creator": user,
            "creation_timestamp": now,
            "last_updated_timestamp": now,
            "permission_level": "CAN_MANAGE",
            "route_optimized": bool(req.body.get("route_optimized", False)),
            "description": str(req.body.get("description") or ""),
        }
        for key in ("budget_policy_id", "email_notifications", "telemetry_config"):
            if req.body.get(key) is not None:
                body[key] = copy.deepcopy(req.body[key])
        if ai_gateway is not None:
            body["ai_gateway"] = ai_gateway
        endpoint = Endpoint(name, body, tags=_tags(req.body.get("tags")))
        if pending is not None:
            self._start_update(endpoint, pending)
        else:
            endpoint.update_state = "NOT_UPDATING"
        self.endpoints[name] = endpoint
        return self._detailed(endpoint)

    def get(self, req: Request, name: str) -> dict:
        return self._detailed(self._find(name))

    def list(self, req: Request) -> dict:
        return {"endpoints": [self._summary(self._find(n)) for n in sorted(self.endpoints)]}

    def delete(self, req: Request, name: str) -> dict:
        self._find(name)
        del self.endpoints[name]
        return {}

    def update_config(self, req: Request, name: str) -> dict:
        endpoint = self._find(name)
        if endpoint.update_state == "IN_PROGRESS":
            # The status and code are those Databricks' own test server gives a concurrent telemetry update
            # (databricks/cli libs/testserver/serving_endpoints.go); the wording is the fake's.
            raise conflict(
                f"Endpoint {name} is currently updating. Wait for the current config update to complete or "
                "fail before updating its config again."
            )
        version = _version(endpoint.config) + 1
        self._start_update(endpoint, self._config(req.body, version))
        return self._detailed(endpoint)

    def put_ai_gateway(self, req: Request, name: str) -> dict:
        endpoint = self._find(name)
        gateway = self._ai_gateway(req.body, endpoint.body.get("ai_gateway"))
        if gateway:
            endpoint.body["ai_gateway"] = gateway
        else:
            endpoint.body.pop("ai_gateway", None)
        endpoint.body["last_updated_timestamp"] = now_ms()
        self._payload_table(endpoint)
        return copy.deepcopy(gateway)

    def patch_tags(self, req: Request, name: str) -> dict:
        endpoint = self._find(name)
        endpoint.tags.update(_tags(req.body.get("add_tags")))
        for key in req.body.get("delete_tags") or []:
            endpoint.tags.pop(str(key), None)
        return {"tags": _tag_list(endpoint.tags)}

    # ---- state ----------------------------------------------------------------------------------------
    def _start_update(self, endpoint: Endpoint, pending: dict) -> None:
        endpoint.pending = pending
        endpoint.update_state = "IN_PROGRESS"
        endpoint.settles_at = time.monotonic() + float(self.ctx.settings.serving_update_seconds)
        endpoint.body["last_updated_timestamp"] = now_ms()

    def _advance(self, endpoint: Endpoint) -> None:
        if endpoint.update_state != "IN_PROGRESS" or time.monotonic() < endpoint.settles_at:
            return
        outcome = str((self.ctx.settings.serving_results or {}).get(endpoint.name, "NOT_UPDATING")).upper()
        if outcome not in (*FAILURES, "NOT_UPDATING"):
            outcome = "UPDATE_FAILED"
        if outcome == "NOT_UPDATING":
            config = endpoint.pending or {}
            config.pop("start_time", None)
            for entity in config.get("served_entities", []):
                entity["state"] = {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""}
            endpoint.config = config
            self._payload_table(endpoint)
        endpoint.pending = None
        endpoint.update_state = outcome

    def _payload_table(self, endpoint: Endpoint) -> None:
        """Once the endpoint serves, an enabled AI Gateway inference table logs to
        <catalog>.<schema>.<prefix>_payload (the suffix as databricks/cli libs/testserver names it). Without
        a prefix no table is made: the default name has no source here."""
        table = (endpoint.body.get("ai_gateway") or {}).get("inference_table_config") or {}
        if endpoint.config is not None and table.get("enabled") and table.get("table_name_prefix"):
            prefix = table["table_name_prefix"]
            self.add_table(f"{table['catalog_name']}.{table['schema_name']}.{prefix}_payload")

    def _find(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            # databricks/cli libs/testserver/serving_endpoints.go
            raise does_not_exist(f"Serving endpoint with name {name} not found")
        self._advance(endpoint)
        return endpoint

    def _state(self, endpoint: Endpoint) -> dict:
        # EndpointState.ready: "READY if all of the served entities in its active configuration are ready".
        return {
            "ready": "READY" if endpoint.config is not None else "NOT_READY",
            "config_update": endpoint.update_state,
        }

    def _detailed(self, endpoint: Endpoint) -> dict:
        answer = copy.deepcopy(endpoint.body)
        answer["state"] = self._state(endpoint)
        if endpoint.config is not None:
            answer["config"] = copy.deepcopy(endpoint.config)
        if endpoint.pending is not None:
            answer["pending_config"] = copy.deepcopy(endpoint.pending)
        if endpoint.tags:
            answer["tags"] = _tag_list(endpoint.tags)
        return answer

    def _summary(self, endpoint: Endpoint) -> dict:
        """ServingEndpoint, as `list` answers: the served entities' names and versions only."""
        keep = ("name", "id", "creator", "creation_timestamp", "last_updated_timestamp", "description")
        answer = {k: endpoint.body[k] for k in keep if k in endpoint.body}
        if "ai_gateway" in endpoint.body:
            answer["ai_gateway"] = copy.deepcopy(endpoint.body["ai_gateway"])
        answer["state"] = self._state(endpoint)
        if endpoint.config is not None:
            answer["config"] = {
                "served_entities": [
                    {k: e[k] for k in ("name", "entity_name", "entity_version") if k in e}
                    for e in endpoint.config.get("served_entities", [])
                ]
            }
        if endpoint.tags:
            answer["tags"] = _tag_list(endpoint.tags)
        return answer

    def dump(self) -> dict:
        return {name: self._detailed(self._find(name)) for name in sorted(self.endpoints)}

    # ---- validation -----------------------------------------------------------------------------------
    def _config(self, body: Any, version: int) -> dict:
        """An EndpointCoreConfigInput checked and turned into the EndpointPendingConfig it becomes."""
        if not isinstance(body, dict):
            raise invalid("Invalid value for config: expected an object")
        capture = body.get("auto_capture_config")
        if capture is not None and (
            not isinstance(capture, dict) or capture.get("enabled", True) is not False
        ):
            raise invalid(LEGACY_INFERENCE_TABLES)
        if body.get("served_models"):
            raise invalid(
                "served_models is deprecated and not served by this fake workspace: use served_entities."
            )
        entities = body.get("served_entities") or []
        if not isinstance(entities, list) or not entities:
            raise invalid("Invalid value for config: at least one served entity is required.")
        if len(entities) > MAX_SERVED_ENTITIES:
            raise invalid(f"A serving endpoint can have at most {MAX_SERVED_ENTITIES} served entities.")
        now, user = now_ms(), self.ctx.settings.user
        served = [self._entity(entity, now, user) for entity in entities]
        names = [e["name"] for e in served]
        if len(set(names)) != len(names):
            raise invalid(f"Served entity names must be unique within an endpoint config, got {names}.")
        config: dict[str, Any] = {
            "served_entities": served,
            "traffic_config": _traffic(body.get("traffic_config"), names),
            "config_version": version,
            "start_time": now,
        }
        return config

    def _entity(self, entity: Any, now: int, user: str) -> dict:
        if not isinstance(entity, dict):
            raise invalid("Invalid value for served_entities: each served entity is an object")
        if entity.get("external_model") is not None or entity.get("foundation_model") is not None:
            raise invalid("External and foundation models are not served by this fake workspace.")
        name = str(entity.get("entity_name") or "")
        version = str(entity.get("entity_version") or "")
        if not name:
            raise invalid("Missing required field: served_entities.entity_name")
        if not version:
            raise invalid(f"Missing required field: served_entities.entity_version (for entity {name})")
        self._check_version(name, version)
        size = entity.get("workload_size")
        if size is not None and size not in WORKLOAD_SIZES:
            raise invalid(f"Invalid workload_size {size!r}: must be one of {', '.join(WORKLOAD_SIZES)}.")
        kind = entity.get("workload_type", "CPU")
        if kind not in WORKLOAD_TYPES:
            raise invalid(f"Invalid workload_type {kind!r}: must be one of {', '.join(WORKLOAD_TYPES)}.")
        scale_to_zero = entity.get("scale_to_zero_enabled", False)
        if not isinstance(scale_to_zero, bool):
            raise invalid(f"Invalid scale_to_zero_enabled {scale_to_zero!r}: must be true or false.")
        concurrency = [
            k for k in ("min_provisioned_concurrency", "max_provisioned_concurrency") if k in entity
        ]
        if size is not None and concurrency:
            # ServedEntityInput.workload_size: "Do not use if min_provisioned_concurrency and
            # max_provisioned_concurrency are specified."
            raise invalid(f"workload_size cannot be used together with {' and '.join(concurrency)}.")
        # ServedEntityInput.name: "defaults to entity_name-entity_version"; a UC name keeps its last part.
        served_name = str(entity.get("name") or f"{name.split('.')[-1]}-{version}")
        if not ENTITY_NAME.match(served_name):
            raise invalid(
                f"Invalid served entity name {served_name!r}: use alphanumeric characters, dashes and "
                "underscores."
            )
        served = {
            k: copy.deepcopy(v)
            for k, v in entity.items()
            if k not in ("name", "burst_scaling_enabled") and v is not None
        }
        served.update(
            {
                "name": served_name,
                "entity_name": name,
                "entity_version": version,
                "workload_type": kind,
                "scale_to_zero_enabled": scale_to_zero,
                "creator": user,
                "creation_timestamp": now,
                "state": {"deployment": "DEPLOYMENT_CREATING", "deployment_state_message": ""},
            }
        )
        return served

    def _check_version(self, name: str, version: str) -> None:
        """The model version must exist and be READY: an endpoint cannot be created for a model version that
        is not registered yet (databricks/mlops-stacks#217). The wording is the registries' own."""
        if "." in name:
            full_name = name.lower()
            if len(full_name.split(".")) != 3:
                raise invalid(
                    f"Invalid entity_name '{name}': a Unity Catalog model is <catalog>.<schema>.<model>."
                )
            self.uc._model(full_name)
            found = self.registry._version(full_name, version)
            status = found["status"]
        else:
            status = self._workspace_version_status(name, version)
        if status != "READY":
            raise invalid(
                f"Model version {version} of '{name}' is {status}: only a READY version can be served."
            )

    def _workspace_version_status(self, name: str, version: str) -> str:
        """Ask the MLflow server behind the fake (the workspace registry); the lock is held, the server does
        not call back."""
        if not self.mlflow.url:
            raise does_not_exist(f"RegisteredModel '{name}' does not exist. It might have been deleted.")
        query = {"name": [name], "version": [version]}
        answer = self.mlflow.forward("GET", "/api/2.0/mlflow/model-versions/get", query)
        if answer.status != 200:
            raise does_not_exist(f"Model Version (name={name}, version={version}) not found")
        return json.loads(answer.content)["model_version"].get("status", "READY")

    def _ai_gateway(self, body: Any, current: dict | None) -> dict:
        if not isinstance(body, dict):
            raise invalid("Invalid value for ai_gateway: expected an object")
        gateway = {k: copy.deepcopy(v) for k, v in body.items() if v is not None}
        table = gateway.get("inference_table_config")
        if table is not None:
            gateway["inference_table_config"] = self._inference_table(
                table, (current or {}).get("inference_table_config")
            )
        return gateway

    def _inference_table(self, table: Any, current: dict | None) -> dict:
        """AiGatewayInferenceTableConfig: catalog and schema "Required when enabling inference tables"; they
        and the prefix can change only after the table is disabled (the SDK's field docs). The schema must
        exist in Unity Catalog (the docs' requirements: USE SCHEMA and CREATE TABLE on it)."""
        if not isinstance(table, dict):
            raise invalid("Invalid value for inference_table_config: expected an object")
        table = dict(table)
        if not table.get("enabled"):
            return table
        for key in ("catalog_name", "schema_name"):
            if not table.get(key):
                raise invalid(f"Missing required field: inference_table_config.{key} (required when enabled)")
        self.uc._schema(f"{table['catalog_name']}.{table['schema_name']}".lower())
        if current and current.get("enabled"):
            for key in ("catalog_name", "schema_name", "table_name_prefix"):
                if key in table and table.get(key) != current.get(key):
                    raise invalid(
                        f"Cannot change inference_table_config.{key} from {current.get(key)!r} to "
                        f"{table.get(key)!r} while the inference table is enabled: disable it first."
                    )
        return table


def _traffic(body: Any, names: list[str]) -> dict:
    """TrafficConfig: routes to served entities of this config, adding up to 100. Without one, a single
    entity gets all the traffic and more than one is refused (databricks/cli libs/testserver)."""
    if body is None:
        if len(names) != 1:
            raise invalid(
                "traffic_config is required when an endpoint config has more than one served entity."
            )
        return {
            "routes": [
                {"served_model_name": names[0], "served_entity_name": names[0], "traffic_percentage": 100}
            ]
        }
    routes = body.get("routes") if isinstance(body, dict) else None
    if not isinstance(routes, list) or not routes:
        raise invalid("Invalid value for traffic_config: routes must be a non-empty list.")
    total = 0
    out = []
    for route in routes:
        target = route.get("served_entity_name") or route.get("served_model_name")
        if target not in names:
            raise invalid(
                f"Invalid traffic_config route to {target!r}: it names no served entity of this config "
                f"({', '.join(names)})."
            )
        percentage = route.get("traffic_percentage")
        if not isinstance(percentage, int) or isinstance(percentage, bool) or not 0 <= percentage <= 100:
            raise invalid(f"Invalid traffic_percentage {percentage!r}: an integer between 0 and 100.")
        total += percentage
        out.append(
            {"served_model_name": target, "served_entity_name": target, "traffic_percentage": percentage}
        )
    if total != 100:
        raise invalid(f"The traffic_config routes add up to {total}%, not 100%.")
    return {"routes": out}


def _version(config: dict | None) -> int:
    return int(config["config_version"]) if config else 0


def _tags(tags: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags or []:
        if not isinstance(tag, dict) or not tag.get("key"):
            raise invalid("Invalid value for tags: each tag has a non-empty key")
        out[str(tag["key"])] = str(tag.get("value", ""))
    return out


def _tag_list(tags: dict[str, str]) -> list[dict]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]
