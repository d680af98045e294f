"""The project's Model Serving endpoints, one per `databricks/serving/*.json`: each serves the model version
that holds the champion role, and is created only once there is one.

An endpoint cannot be created before a model version exists (the service refuses it; mlops-stacks#217 is the
official template's first deploy failing so), so bootstrap plans it as "waits for the first champion" until
promotion has made one; the training workflow's deploy task creates or updates it after each promotion, and
bootstrap points it at the champion it finds. As for jobs, whether an endpoint needs an update is decided
against the spec bootstrap last applied (its digest is in the endpoint's `lakeforge-spec` tag), and a
served field the workspace shows with another value is drift. An endpoint of the same name that lakeforge did
not create is left alone. Destroy deletes the endpoints that carry the project's tags.

Updates go through the endpoint's own calls: `PUT .../config` for what it serves (refused while another
update is in progress, so bootstrap waits for that one first), `PUT .../ai-gateway` for the inference table,
`PATCH .../tags` last, so that a run stopped half-way leaves the old digest and the next run updates again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceConflict
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    EndpointCoreConfigInput,
    EndpointCoreConfigOutput,
    EndpointStateConfigUpdate,
    EndpointTag,
    ServedEntityInput,
    ServingEndpointDetailed,
    ServingEndpointsAPI,
    TrafficConfig,
)

from lakeforge.changes import (
    TAG_SPEC,
    Change,
    Create,
    Delete,
    Desired,
    Unchanged,
    Update,
    failing_as,
    ownership_tags,
)
from lakeforge.config import Config, ServingFile
from lakeforge.manifest import Manifest
from lakeforge.payloads import differences, digest, fill, top_fields, typed
from lakeforge.resources import Outcome, Progress

STEP = "serving"
KIND = "serving endpoint"
CHAMPION = "champion"  # the alias (Unity Catalog) that promotion moves; the workspace registry's stage below
_CHAMPION_STAGE = "Production"


def url(host: str, name: str) -> str:
    return f"{host}/ml/endpoints/{name}"


def champion_version(w: WorkspaceClient, desired: Desired) -> str | None:
    """The version number that holds the champion role now, or None (no model yet, or none promoted)."""
    model = desired.config.target.model
    with failing_as(STEP, f"the champion of {model}"), contextlib.suppress(NotFound):
        if desired.config.registry == "unity-catalog":
            info = w.registered_models.get(model, include_aliases=True)
            return next((str(a.version_num) for a in info.aliases or [] if a.alias_name == CHAMPION), None)
        versions = w.model_registry.get_latest_versions(model, stages=[_CHAMPION_STAGE])
        return next((str(v.version) for v in versions if v.version), None)
    return None


def endpoint_template(config: Config, file: ServingFile) -> dict[str, Any]:
    """The endpoint file filled for the target, lakeforge's tags added, `${champion_version}` left to fill.

    Bootstrap also uploads it as `<workspace_root>/serving/<file>.json`: the training workflow's deploy task
    fills in the new champion and computes the spec tag as `desired_spec` does, so that an endpoint it
    updated is one bootstrap finds up to date."""
    spec = fill(dict(file.payload), config.values())
    tags = {t["key"]: t.get("value", "") for t in spec.get("tags", [])} | ownership_tags(config)
    spec["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return spec


def template_file(config: Config, file: ServingFile) -> tuple[str, bytes]:
    """Where bootstrap uploads the endpoint template (relative to the workspace root), and its content."""
    text = json.dumps(endpoint_template(config, file), indent=1, sort_keys=True) + "\n"
    return f"serving/{file.key}.json", text.encode("utf-8")


def desired_spec(desired: Desired, file: ServingFile, version: str) -> dict[str, Any]:
    """The endpoint template with the champion filled in, and last the spec tag: the digest of all the rest
    (JSON with sorted keys, sha256, the first 12 hex digits)."""
    spec = fill(endpoint_template(desired.config, file), {"champion_version": version})
    spec["tags"].append({"key": TAG_SPEC, "value": digest(spec)})
    return spec


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    if not desired.config.serving:
        return Outcome()
    version = champion_version(w, desired)
    model = desired.config.target.model
    changes: list[Change] = []
    for file in desired.config.serving:
        name = fill(file.payload["name"], desired.values())
        link = url(desired.host, name)
        with failing_as(STEP, name):
            endpoint = _get(w, name)
        spec = {"key": file.key}
        if endpoint is not None and not desired.ours(_tags(endpoint)):
            changes.append(Unchanged(STEP, KIND, name, "not created by lakeforge: left alone", link, {}))
        elif version is None:
            waiting = "waits for the first champion" if endpoint is None else "no champion now: left as it is"
            changes.append(
                Unchanged(STEP, KIND, name, f"{waiting} of {model}", link if endpoint else None, {})
            )
        elif endpoint is None:
            detail = f"serves {model} version {version}"
            changes.append(Create(STEP, KIND, name, detail, None, {**spec, "version": version}))
        else:
            detail = _update_detail(desired_spec(desired, file, version), endpoint)
            cls = Update if detail else Unchanged
            served = _served_versions(endpoint)
            shown = detail or f"serves version {', '.join(served) or '?'}"
            changes.append(cls(STEP, KIND, name, shown, link, {**spec, "version": version}))
    return Outcome(tuple(changes), {"champion_version": version})


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    """The project's endpoints (by their tags); one of the same name that is someone else's is kept."""
    changes: list[Change] = []
    for file in desired.config.serving:
        name = fill(file.payload["name"], desired.values())
        with failing_as(STEP, name):
            endpoint = _get(w, name)
        if endpoint is not None and desired.ours(_tags(endpoint)):
            changes.append(Delete(STEP, KIND, name, "", url(desired.host, name), {"name": name}))
    return Outcome(tuple(changes))


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
) -> Outcome:
    files = {file.key: file for file in desired.config.serving}
    timeout = timedelta(minutes=desired.wait_minutes)
    done: list[Change] = []
    for change in changes:
        with failing_as(STEP, change.name):
            if isinstance(change, Delete):
                progress(f"serving: deleting endpoint {change.name}")
                with contextlib.suppress(NotFound):
                    w.serving_endpoints.delete(change.spec["name"])
            elif isinstance(change, Create):
                spec = desired_spec(desired, files[change.spec["key"]], change.spec["version"])
                progress(f"serving: creating endpoint {change.name} ({change.detail})")
                with contextlib.suppress(ResourceConflict):  # made by a create whose answer was lost
                    w.serving_endpoints.create(**_arguments(spec))
                change = replace(change, url=url(desired.host, change.name))
            elif isinstance(change, Update):
                spec = desired_spec(desired, files[change.spec["key"]], change.spec["version"])
                _update(w, change.name, spec, timeout, progress)
            if desired.wait and isinstance(change, Create | Update):
                progress(f"serving: waiting for {change.name} to finish its update")
                w.serving_endpoints.wait_get_serving_endpoint_not_updating(change.name, timeout=timeout)
        done.append(change)
    return Outcome(tuple(done))


def _update(
    w: WorkspaceClient, name: str, spec: dict[str, Any], timeout: timedelta, progress: Progress
) -> None:
    endpoint = w.serving_endpoints.get(name)
    actual = endpoint.as_dict()
    if endpoint.state and endpoint.state.config_update is EndpointStateConfigUpdate.IN_PROGRESS:
        # The service refuses a config update while another is in progress.
        progress(f"serving: waiting for the update in progress on {name}")
        endpoint = w.serving_endpoints.wait_get_serving_endpoint_not_updating(name, timeout=timeout)
        actual = endpoint.as_dict()
    config = spec.get("config") or {}
    if differences(config, actual.get("config") or {}, EndpointCoreConfigOutput):
        progress(f"serving: updating {name} to serve {_entity_versions(config)}")
        w.serving_endpoints.update_config(
            name,
            served_entities=[ServedEntityInput.from_dict(e) for e in config.get("served_entities", [])],
            traffic_config=TrafficConfig.from_dict(config["traffic_config"])
            if "traffic_config" in config
            else None,
        )
    gateway = spec.get("ai_gateway")
    current = actual.get("ai_gateway") or {}
    if gateway and differences(gateway, current, AiGatewayConfig):
        progress(f"serving: setting the AI Gateway of {name} (inference table)")
        table = ("catalog_name", "schema_name", "table_name_prefix")
        wanted_table = gateway.get("inference_table_config") or {}
        current_table = current.get("inference_table_config") or {}
        if current_table.get("enabled") and any(current_table.get(k) != wanted_table.get(k) for k in table):
            # An enabled inference table cannot be moved: disable it first (databricks-sdk
            # AiGatewayInferenceTableConfig: "On update, you have to disable inference table first").
            w.serving_endpoints.put_ai_gateway(
                name, inference_table_config=AiGatewayInferenceTableConfig(enabled=False)
            )
        w.serving_endpoints.put_ai_gateway(name, **typed(gateway, AiGatewayConfig))
    wanted = {t["key"]: t.get("value", "") for t in spec["tags"]}
    have = _tags(endpoint)
    if wanted != have:
        w.serving_endpoints.patch(
            name,
            add_tags=[EndpointTag(key=k, value=v) for k, v in wanted.items() if have.get(k) != v],
            delete_tags=[k for k in have if k not in wanted] or None,
        )


def _update_detail(spec: dict[str, Any], endpoint: ServingEndpointDetailed) -> str:
    """Why the endpoint needs an update ("" when it does not): a new champion version, another spec since
    the last bootstrap, or a served field changed in the workspace (drift)."""
    actual = endpoint.as_dict()
    current = actual.get("pending_config") or actual.get("config") or {}
    compared = {k: v for k, v in spec.items() if k in ("config", "ai_gateway")}
    seen = {"config": current, "ai_gateway": actual.get("ai_gateway") or {}}
    changed = top_fields(differences(compared, seen, _Compared, echoed_only=True))
    wanted, served = _entity_versions(spec.get("config") or {}), ", ".join(_served_versions(endpoint))
    moved = f"serve {wanted} (was {served or 'nothing'})" if wanted != served else ""
    applied = _tags(endpoint).get(TAG_SPEC) == next(t["value"] for t in spec["tags"] if t["key"] == TAG_SPEC)
    if applied:
        return f"drift: update {', '.join(changed)}, changed in the workspace" if changed else ""
    return moved or f"update {', '.join(changed) or 'the spec changed since the last bootstrap'}"


@dataclass
class _Compared:
    """The parts of an endpoint that bootstrap compares, typed for `differences`."""

    config: EndpointCoreConfigOutput
    ai_gateway: AiGatewayConfig


def _served_versions(endpoint: ServingEndpointDetailed) -> list[str]:
    config = endpoint.pending_config or endpoint.config
    return [
        str(e.entity_version) for e in (config.served_entities if config else None) or [] if e.entity_version
    ]


def _entity_versions(config: dict[str, Any]) -> str:
    return ", ".join(str(e.get("entity_version")) for e in config.get("served_entities", []))


def _tags(endpoint: ServingEndpointDetailed) -> dict[str, str]:
    return {t.key: t.value or "" for t in endpoint.tags or [] if t.key}


def _get(w: WorkspaceClient, name: str) -> ServingEndpointDetailed | None:
    try:
        return w.serving_endpoints.get(name)
    except NotFound:
        return None


def _arguments(spec: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `serving_endpoints.create`: the payload's fields as the SDK's typed values."""
    arguments = typed(spec, ServingEndpointsAPI.create)
    arguments["config"] = EndpointCoreConfigInput.from_dict({"name": spec["name"], **spec.get("config", {})})
    return arguments
