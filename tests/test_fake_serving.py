"""Model Serving endpoints and data profiling monitors in the fake workspace, driven by databricks-sdk.

Everything goes through `WorkspaceClient` over HTTP to the fake's own process, as lakeforge will call it:
`serving_endpoints.create` / `update_config` (and their `*_and_wait` waiters), `put_ai_gateway`, `patch`,
`tables.get` and `data_quality.create_monitor` / `get_monitor` / `delete_monitor`.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    OperationFailed,
    ResourceAlreadyExists,
    ResourceConflict,
)
from databricks.sdk.service import dataquality as dq
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    AutoCaptureConfigInput,
    EndpointCoreConfigInput,
    EndpointTag,
    Route,
    ServedEntityInput,
    TrafficConfig,
)

from tests.fake_workspace import FakeWorkspace

UC = "/api/2.0/mlflow/unity-catalog"
MODEL = "main.default.churn_model"
ENDPOINT = "churn-model-serving"
NAME_RULE = (
    "Endpoint name must be maximum 63 characters, and alphanumeric with hyphens and underscores allowed "
    "in between."
)


@pytest.fixture
def ws(fake_workspace: FakeWorkspace) -> FakeWorkspace:
    """Updates settle after a second: the SDK's waiter polls at once, then after 1-2 s."""
    fake_workspace.configure(serving_update_seconds=1.0, monitor_pending_seconds=0.3)
    return fake_workspace


@pytest.fixture
def w(ws: FakeWorkspace) -> WorkspaceClient:
    return ws.client()


def _register_version(w: WorkspaceClient, name: str = MODEL, finalize: bool = True) -> str:
    """A Unity Catalog model version as MLflow registers it (create, then finalize to READY)."""
    with contextlib.suppress(ResourceAlreadyExists):
        w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": name})
    created = w.api_client.do(
        "POST", f"{UC}/model-versions/create", body={"name": name, "source": "models:/m"}
    )
    version = created["model_version"]["version"]
    if finalize:
        w.api_client.do("POST", f"{UC}/model-versions/finalize", body={"name": name, "version": version})
    return version


def _entity(version: str, **extra) -> ServedEntityInput:
    return ServedEntityInput(
        entity_name=MODEL, entity_version=version, workload_size="Small", scale_to_zero_enabled=True, **extra
    )


def _served_versions(config) -> list[str]:
    return [e.entity_version for e in config.served_entities] if config else []


# ---- serving endpoints ------------------------------------------------------------------------------------
def test_an_endpoint_cannot_be_created_before_its_model_version_exists(w: WorkspaceClient, ws: FakeWorkspace):
    config = EndpointCoreConfigInput(name=ENDPOINT, served_entities=[_entity("1")])
    with pytest.raises(NotFound, match="does not exist"):  # no such model yet
        w.serving_endpoints.create(ENDPOINT, config=config)
    w.api_client.do("POST", f"{UC}/registered-models/create", body={"name": MODEL})
    with pytest.raises(NotFound, match="Model version 1 of 'main.default.churn_model' does not exist"):
        w.serving_endpoints.create(ENDPOINT, config=config)
    _register_version(w, finalize=False)
    with pytest.raises(InvalidParameterValue, match="PENDING_REGISTRATION"):
        w.serving_endpoints.create(ENDPOINT, config=config)
    assert ws.state()["serving_endpoints"] == {}


def test_create_serves_v1_then_an_update_rolls_out_v2(w: WorkspaceClient, ws: FakeWorkspace):
    _register_version(w)
    waiter = w.serving_endpoints.create(
        ENDPOINT, config=EndpointCoreConfigInput(name=ENDPOINT, served_entities=[_entity("1")])
    )
    created = waiter.response
    assert (created.state.ready.value, created.state.config_update.value) == ("NOT_READY", "IN_PROGRESS")
    assert created.config is None and _served_versions(created.pending_config) == ["1"]
    ready = waiter.result()
    assert (ready.state.ready.value, ready.state.config_update.value) == ("READY", "NOT_UPDATING")
    assert _served_versions(ready.config) == ["1"] and ready.pending_config is None
    served = ready.config.served_entities[0]
    assert served.name == "churn_model-1" and served.state.deployment.value == "DEPLOYMENT_READY"
    assert ready.config.traffic_config.routes[0].traffic_percentage == 100
    assert ready.config.config_version == 1

    _register_version(w)
    updating = w.serving_endpoints.update_config(ENDPOINT, served_entities=[_entity("2")])
    in_flight = updating.response
    assert in_flight.state.config_update.value == "IN_PROGRESS" and in_flight.state.ready.value == "READY"
    assert _served_versions(in_flight.config) == ["1"]  # the old config serves until the new one is ready
    assert _served_versions(in_flight.pending_config) == ["2"]
    with pytest.raises(ResourceConflict, match="currently updating"):
        w.serving_endpoints.update_config(ENDPOINT, served_entities=[_entity("1")])
    done = updating.result()
    assert _served_versions(done.config) == ["2"] and done.pending_config is None
    assert done.config.config_version == 2 and done.state.config_update.value == "NOT_UPDATING"

    # rollback is one more update, to the old version
    back = w.serving_endpoints.update_config_and_wait(ENDPOINT, served_entities=[_entity("1")])
    assert _served_versions(back.config) == ["1"] and back.config.config_version == 3
    state = ws.state()["serving_endpoints"][ENDPOINT]
    assert state["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert "pending_config" not in state


def test_a_failed_update_keeps_serving_the_old_config(w: WorkspaceClient, ws: FakeWorkspace):
    _register_version(w)
    _register_version(w)
    w.serving_endpoints.create_and_wait(
        ENDPOINT, config=EndpointCoreConfigInput(name=ENDPOINT, served_entities=[_entity("1")])
    )
    ws.configure(serving_results={ENDPOINT: "UPDATE_FAILED"})
    with pytest.raises(OperationFailed, match="UPDATE_FAILED"):
        w.serving_endpoints.update_config_and_wait(ENDPOINT, served_entities=[_entity("2")])
    failed = w.serving_endpoints.get(ENDPOINT)
    assert (failed.state.ready.value, failed.state.config_update.value) == ("READY", "UPDATE_FAILED")
    assert _served_versions(failed.config) == ["1"] and failed.pending_config is None

    ws.configure(serving_results={})
    retried = w.serving_endpoints.update_config_and_wait(ENDPOINT, served_entities=[_entity("2")])
    assert _served_versions(retried.config) == ["2"]


def test_legacy_inference_tables_are_refused(w: WorkspaceClient, ws: FakeWorkspace):
    _register_version(w)
    capture = AutoCaptureConfigInput(catalog_name="main", schema_name="default", enabled=True)
    config = EndpointCoreConfigInput(
        name=ENDPOINT, served_entities=[_entity("1")], auto_capture_config=capture
    )
    with pytest.raises(InvalidParameterValue, match="Legacy inference tables"):
        w.serving_endpoints.create(ENDPOINT, config=config)
    w.serving_endpoints.create_and_wait(
        ENDPOINT, config=EndpointCoreConfigInput(name=ENDPOINT, served_entities=[_entity("1")])
    )
    with pytest.raises(InvalidParameterValue, match="Legacy inference tables"):
        w.serving_endpoints.update_config(
            ENDPOINT, served_entities=[_entity("1")], auto_capture_config=capture
        )
    assert w.serving_endpoints.get(ENDPOINT).state.config_update.value == "NOT_UPDATING"


def test_names_duplicates_and_served_entity_values(w: WorkspaceClient, ws: FakeWorkspace):
    _register_version(w)
    config = EndpointCoreConfigInput(name=ENDPOINT, served_entities=[_entity("1")])
    for bad in ["-churn", "churn-", "churn.model", "a" * 64, ""]:
        with pytest.raises(InvalidParameterValue) as refused:
            w.serving_endpoints.create(bad, config=config)
        assert str(refused.value) == NAME_RULE
    w.serving_endpoints.create(ENDPOINT, config=config)
    with pytest.raises(ResourceAlreadyExists, match=f"Serving endpoint with name {ENDPOINT} already exists"):
        w.serving_endpoints.create(ENDPOINT, config=config)

    def refused(entity: dict, **body) -> str:
        payload = {"name": "other", "config": {"served_entities": [entity], **body}}
        with pytest.raises(BadRequest) as caught:
            w.api_client.do("POST", "/api/2.0/serving-endpoints", body=payload)
        return str(caught.value)

    good = {"entity_name": MODEL, "entity_version": "1", "workload_size": "Small"}
    assert "Invalid workload_size 'Tiny'" in refused({**good, "workload_size": "Tiny"})
    assert "Invalid workload_type 'TPU'" in refused({**good, "workload_type": "TPU"})
    assert "Invalid scale_to_zero_enabled 'yes'" in refused({**good, "scale_to_zero_enabled": "yes"})
    assert "entity_version" in refused({k: v for k, v in good.items() if k != "entity_version"})
    routes = {"routes": [{"served_entity_name": "churn_model-1", "traffic_percentage": 60}]}
    assert "add up to 60%" in refused(good, traffic_config=routes)
    routes = {"routes": [{"served_entity_name": "nope", "traffic_percentage": 100}]}
    assert "names no served entity" in refused(good, traffic_config=routes)
    with pytest.raises(
        InvalidParameterValue, match="Cannot specify ai_gateway when creating endpoints without"
    ):
        w.serving_endpoints.create("other", ai_gateway=AiGatewayConfig())
    assert set(ws.state()["serving_endpoints"]) == {ENDPOINT}


def test_two_served_versions_split_the_traffic(w: WorkspaceClient):
    _register_version(w)
    _register_version(w)
    entities = [_entity("1", name="champion"), _entity("2", name="challenger")]
    with pytest.raises(InvalidParameterValue, match="traffic_config is required"):
        w.serving_endpoints.create(
            ENDPOINT, config=EndpointCoreConfigInput(name=ENDPOINT, served_entities=entities)
        )
    traffic = TrafficConfig(
        routes=[
            Route(served_entity_name="champion", traffic_percentage=90),
            Route(served_entity_name="challenger", traffic_percentage=10),
        ]
    )
    config = EndpointCoreConfigInput(name=ENDPOINT, served_entities=entities, traffic_config=traffic)
    ready = w.serving_endpoints.create_and_wait(ENDPOINT, config=config)
    assert [(r.served_entity_name, r.traffic_percentage) for r in ready.config.traffic_config.routes] == [
        ("champion", 90),
        ("challenger", 10),
    ]


def test_ai_gateway_inference_table_is_stored_and_echoed(w: WorkspaceClient, ws: FakeWorkspace):
    _register_version(w)
    config = EndpointCoreConfigInput(name=ENDPOINT, served_entities=[_entity("1")])
    missing = AiGatewayInferenceTableConfig(catalog_name="main", schema_name="ml", enabled=True)
    with pytest.raises(NotFound, match="Schema 'main.ml' does not exist"):
        w.serving_endpoints.create(
            ENDPOINT, config=config, ai_gateway=AiGatewayConfig(inference_table_config=missing)
        )
    table = AiGatewayInferenceTableConfig(
        catalog_name="main", schema_name="default", table_name_prefix="churn", enabled=True
    )
    ready = w.serving_endpoints.create_and_wait(
        ENDPOINT, config=config, ai_gateway=AiGatewayConfig(inference_table_config=table)
    )
    assert ready.ai_gateway.inference_table_config == table
    assert w.serving_endpoints.get(ENDPOINT).ai_gateway.inference_table_config == table
    # once the endpoint serves, the payload table is in Unity Catalog
    assert w.tables.exists("main.default.churn_payload").table_exists

    w.schemas.create(name="ml", catalog_name="main")
    moved = AiGatewayInferenceTableConfig(
        catalog_name="main", schema_name="ml", table_name_prefix="churn", enabled=True
    )
    with pytest.raises(InvalidParameterValue, match="disable it first"):
        w.serving_endpoints.put_ai_gateway(ENDPOINT, inference_table_config=moved)
    off = AiGatewayInferenceTableConfig(enabled=False)
    assert (
        w.serving_endpoints.put_ai_gateway(ENDPOINT, inference_table_config=off).inference_table_config == off
    )
    answer = w.serving_endpoints.put_ai_gateway(ENDPOINT, inference_table_config=moved)
    assert answer.inference_table_config == moved
    assert ws.state()["serving_endpoints"][ENDPOINT]["ai_gateway"] == {
        "inference_table_config": moved.as_dict()
    }


def test_list_tags_and_delete(w: WorkspaceClient, ws: FakeWorkspace):
    _register_version(w)
    config = EndpointCoreConfigInput(name=ENDPOINT, served_entities=[_entity("1")])
    w.serving_endpoints.create_and_wait(
        ENDPOINT, config=config, tags=[EndpointTag(key="project", value="churn")]
    )
    [listed] = w.serving_endpoints.list()
    assert listed.name == ENDPOINT and listed.state.ready.value == "READY"
    assert [(e.entity_name, e.entity_version) for e in listed.config.served_entities] == [(MODEL, "1")]
    tags = w.serving_endpoints.patch(
        ENDPOINT, add_tags=[EndpointTag(key="owner", value="ml")], delete_tags=["project"]
    )
    assert [(t.key, t.value) for t in tags.tags] == [("owner", "ml")]
    w.serving_endpoints.delete(ENDPOINT)
    with pytest.raises(NotFound, match=f"Serving endpoint with name {ENDPOINT} not found"):
        w.serving_endpoints.get(ENDPOINT)
    with pytest.raises(NotFound):
        w.serving_endpoints.update_config(ENDPOINT, served_entities=[_entity("1")])
    assert w.serving_endpoints.list() == [] and ws.state()["serving_endpoints"] == {}


def test_a_workspace_registry_version_must_exist_too(w: WorkspaceClient, ws: FakeWorkspace, mlflow_server):
    mlflow_server.wait_ready()
    ws.seed(registered_models=["churn"])
    served = ServedEntityInput(entity_name="churn", entity_version="1", workload_size="Small")
    with pytest.raises(NotFound, match="not found"):
        w.serving_endpoints.create(
            ENDPOINT, config=EndpointCoreConfigInput(name=ENDPOINT, served_entities=[served])
        )


# ---- data profiling monitors ------------------------------------------------------------------------------
INFERENCE_LOG = "main.default.churn_inference_log"
COLUMNS = [
    {"name": "scored_at", "type_name": "TIMESTAMP"},
    {"name": "prediction", "type_name": "INT"},
    {"name": "model_version", "type_name": "STRING"},
    {"name": "churned", "type_name": "INT"},
]


def _inference_log(**overrides) -> dq.InferenceLogConfig:
    fields = {
        "problem_type": dq.InferenceProblemType.INFERENCE_PROBLEM_TYPE_CLASSIFICATION,
        "timestamp_column": "scored_at",
        "granularities": [dq.AggregationGranularity.AGGREGATION_GRANULARITY_1_DAY],
        "prediction_column": "prediction",
        "model_id_column": "model_version",
        "label_column": "churned",
        **overrides,
    }
    return dq.InferenceLogConfig(**fields)


def test_inference_log_monitor_life_cycle(w: WorkspaceClient, ws: FakeWorkspace):
    ws.seed(tables={INFERENCE_LOG: COLUMNS})
    table_id = w.tables.get(INFERENCE_LOG).table_id
    schema_id = w.schemas.get("main.default").schema_id
    config = dq.DataProfilingConfig(output_schema_id=schema_id, inference_log=_inference_log())
    created = w.data_quality.create_monitor(
        dq.Monitor(object_type="table", object_id=table_id, data_profiling_config=config)
    )
    profile = created.data_profiling_config
    assert profile.status == dq.DataProfilingStatus.DATA_PROFILING_STATUS_PENDING
    assert profile.monitored_table_name == INFERENCE_LOG
    assert profile.profile_metrics_table_name == f"{INFERENCE_LOG}_profile_metrics"
    assert profile.drift_metrics_table_name == f"{INFERENCE_LOG}_drift_metrics"
    assert profile.inference_log == _inference_log()
    with pytest.raises(ResourceAlreadyExists):
        w.data_quality.create_monitor(
            dq.Monitor(object_type="table", object_id=table_id, data_profiling_config=config)
        )
    time.sleep(0.4)
    got = w.data_quality.get_monitor("table", table_id)
    assert got.data_profiling_config.status == dq.DataProfilingStatus.DATA_PROFILING_STATUS_ACTIVE
    assert ws.state()["data_profiling"]["monitors"][INFERENCE_LOG]["data_profiling_config"][
        "inference_log"
    ] == (_inference_log().as_dict())
    w.data_quality.delete_monitor("table", table_id)
    with pytest.raises(NotFound):
        w.data_quality.get_monitor("table", table_id)
    assert ws.state()["data_profiling"]["monitors"] == {}


def test_inference_log_monitor_refusals(w: WorkspaceClient, ws: FakeWorkspace):
    ws.seed(tables={INFERENCE_LOG: COLUMNS})
    table_id = w.tables.get(INFERENCE_LOG).table_id
    schema_id = w.schemas.get("main.default").schema_id
    with pytest.raises(NotFound, match="Table 'main.default.nope' does not exist"):
        w.tables.get("main.default.nope")

    def refused(monitor: dict) -> str:
        with pytest.raises((BadRequest, NotFound)) as caught:
            w.api_client.do("POST", "/api/data-quality/v1/monitors", body=monitor)
        return str(caught.value)

    def monitor(log: dict | None = None, **config) -> dict:
        profiling = {"output_schema_id": schema_id, **config}
        if log is not None:
            profiling["inference_log"] = log
        return {"object_type": "table", "object_id": table_id, "data_profiling_config": profiling}

    good = _inference_log().as_dict()
    assert "Invalid problem_type 'CLASSIFICATION'" in refused(
        monitor({**good, "problem_type": "CLASSIFICATION"})
    )
    assert "Invalid granularity '1 day'" in refused(monitor({**good, "granularities": ["1 day"]}))
    assert "inference_log.model_id_column" in refused(
        monitor({k: v for k, v in good.items() if k != "model_id_column"})
    )
    assert "Column 'score'" in refused(monitor({**good, "prediction_column": "score"}))
    assert "Exactly one of" in refused(monitor(good, snapshot={}))
    assert "Exactly one of" in refused(monitor())
    assert "Schema with id 'nope'" in refused(monitor(good, output_schema_id="nope"))
    assert "output_schema_id" in refused(monitor(good, output_schema_id=""))
    assert "Table with id 'nope'" in refused({**monitor(good), "object_id": "nope"})
    assert "Invalid object_type 'view'" in refused({**monitor(good), "object_type": "view"})
    assert ws.state()["data_profiling"]["monitors"] == {}
