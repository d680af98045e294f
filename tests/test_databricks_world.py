"""The Databricks world, offline: a generated project's steps with MLflow in its Databricks modes.

Two generated projects (the default, Unity Catalog registry; and the workspace-registry variant of
generated_project.py's RUNS) run `features`, `train`, `promote`, `score`, `monitor`, then a second `train`,
`promote` and `score`, as subprocesses in their own .venv, with tracking URI `databricks`, registry URI
`databricks-uc` or `databricks`, and DATABRICKS_HOST / DATABRICKS_TOKEN pointing at a fake workspace
(tests/fake_workspace). MLflow's own Databricks clients run for real over HTTP: Unity Catalog model versions
created PENDING_REGISTRATION, uploaded through presigned URLs (default storage) and finalized READY; aliases
and UC's tag-key rules; the workspace registry's copy of the files, its stages and archive_existing_versions;
run and logged-model artifacts through the Files API and signed storage URLs. Tables stay local (Sail has no
catalogs): the world module's MLflow overrides (LAKEFORGE_TRACKING_URI, LAKEFORGE_REGISTRY_URI) point
only MLflow at the workspace.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fake_workspace import FakeWorkspace, MlflowServer
from tests.generated_project import RUNS, tail, uv_run
from tests.test_template import answers_of

pytestmark = pytest.mark.slow


def _run_with(registry: str) -> str:
    """The RUNS entry with this registry answer (unity-catalog is the default)."""
    return next(name for name, data in RUNS.items() if data.get("registry", "unity-catalog") == registry)


# variant -> the RUNS project it installs, and the registry URI MLflow uses
VARIANTS = {
    "unity-catalog": (_run_with("unity-catalog"), "databricks-uc"),
    "workspace": (_run_with("workspace"), "databricks"),
}
SCHEMA = "churn_model_dev"
UC_MODEL = f"main.{SCHEMA}.churn_model"
WORKSPACE_MODEL = "churn_model_dev"
EXPERIMENT = "/Shared/churn-model/dev/experiment"
# features, then the loop, then a second challenger judged against the champion
STEPS: list[tuple[str, ...]] = [
    ("features",),
    ("train",),
    ("promote",),
    ("score",),
    ("monitor",),
    ("train",),
    ("promote",),
    ("score",),
]
UC_RESERVED = re.compile(r"[.,\-=/:]")


def databricks_mode_env(
    base: dict[str, str], ws: FakeWorkspace, registry_uri: str, home: Path
) -> dict[str, str]:
    """A generated project's environment with MLflow in its Databricks mode against `ws`, tables local."""
    return {
        **base,
        **ws.env(),
        "DATABRICKS_CONFIG_FILE": str(home / "no-databrickscfg"),
        "LAKEFORGE_TRACKING_URI": "databricks",
        "LAKEFORGE_REGISTRY_URI": registry_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "LAKEFORGE_WORLD": "local",
        "LAKEHOUSE_DIR": str(home / "lakehouse"),
    }


def seed_like_bootstrap(ws: FakeWorkspace, registry_uri: str) -> None:
    """What `lakeforge bootstrap` leaves for the jobs: the dev schema (UC) and the experiment."""
    if registry_uri == "databricks-uc":
        ws.seed(catalogs={"main": [SCHEMA]})
    ws.seed(experiments=[EXPERIMENT])


@dataclass
class Loop:
    variant: str
    ws: FakeWorkspace
    project: Path
    results: list[tuple[tuple[str, ...], subprocess.CompletedProcess[str]]] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(f"$ {' '.join(s)}\n{tail(r, 3000)}" for s, r in self.results)

    def calls(self, path_part: str, method: str | None = None) -> list[dict]:
        return [
            c for c in self.ws.calls() if path_part in c["path"] and (method is None or c["method"] == method)
        ]


def run_steps(project: Path, env: dict[str, str], loop: Loop) -> Loop:
    slug = answers_of(project)["project_slug"]
    for step in STEPS:
        result = uv_run(project, env, slug, "-p", "customers=5000", *step)
        loop.results.append((step, result))
        if result.returncode != 0:
            break
    return loop


@pytest.fixture(scope="module")
def loop(
    installed: Callable, mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Loop]]:
    """`loop(variant)`: that variant's project installed once, its steps run once against a fresh fake."""
    done: dict[str, Loop] = {}
    started: list[FakeWorkspace] = []

    def _loop(variant: str) -> Loop:
        if variant not in done:
            run, registry_uri = VARIANTS[variant]
            project, base = installed(run)
            mlflow_server.wait_ready()
            ws = FakeWorkspace.start(mlflow_url=mlflow_server.url)
            started.append(ws)
            seed_like_bootstrap(ws, registry_uri)
            env = databricks_mode_env(base, ws, registry_uri, tmp_path_factory.mktemp(f"world-{variant}"))
            done[variant] = run_steps(project, env, Loop(variant, ws, project))
        return done[variant]

    yield _loop
    for ws in started:
        ws.stop()


def rest(ws: FakeWorkspace, path: str, **query: str) -> dict[str, Any]:
    url = f"{ws.url}{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ws.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def storage_keys(ws: FakeWorkspace, prefix: str) -> list[str]:
    return [k for k in ws.state()["storage"] if k.startswith(prefix)]


# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_step_runs_with_mlflow_in_its_databricks_mode(loop: Callable, variant: str) -> None:
    ran = loop(variant)
    failed = [(s, r) for s, r in ran.results if r.returncode != 0]
    assert not failed and len(ran.results) == len(STEPS), ran.output()
    # nothing of MLflow stayed local: no sqlite store, every run is the workspace's
    assert not (ran.project / "lakehouse" / "mlflow.db").exists()
    assert ran.calls("/api/2.0/mlflow/runs/create", "POST"), ran.output()


def test_unity_catalog_versions_are_uploaded_through_presigned_urls_and_finalized(loop: Callable) -> None:
    ran = loop("unity-catalog")
    registry = ran.ws.state()["unity_catalog"]["registry"].get(UC_MODEL)
    assert registry, ran.output()
    versions = registry["versions"]
    assert sorted(versions) == ["1", "2"], ran.output()
    assert {v["status"] for v in versions.values()} == {"READY"}
    calls = ran.ws.calls()

    def first(predicate: Callable[[dict], bool]) -> int:
        return next(i for i, c in enumerate(calls) if predicate(c))

    create = first(lambda c: c["path"].endswith("/unity-catalog/model-versions/create"))
    upload = first(lambda c: c["method"] == "PUT" and c["path"].endswith(f"/{SCHEMA}/churn_model/1/MLmodel"))
    finalize = first(lambda c: c["path"].endswith("/unity-catalog/model-versions/finalize"))
    assert create < upload < finalize
    assert calls[finalize]["body"] == {"name": UC_MODEL, "version": "1"}
    # every file came in through a signed URL, none through a workspace API
    model_files = storage_keys(ran.ws, f"Models/main/{SCHEMA}/churn_model/1/")
    assert f"Models/main/{SCHEMA}/churn_model/1/MLmodel" in model_files
    assert all(c["status"] == 200 for c in ran.calls("/fake-cloud-storage/Models/", "PUT"))


def test_unity_catalog_champion_alias_and_tags_unity_catalog_accepts(loop: Callable) -> None:
    ran = loop("unity-catalog")
    # the second train's registered-models/create answers RESOURCE_ALREADY_EXISTS, which MLflow expects
    refused = [c for c in ran.calls("/unity-catalog/") if c["status"] == 400]
    assert [c["path"].rsplit("/", 2)[-2:] for c in refused] == [["registered-models", "create"]], refused
    registry = ran.ws.state()["unity_catalog"]["registry"][UC_MODEL]
    assert registry["aliases"].get("champion") == 1, registry["aliases"]
    assert registry["aliases"].get("challenger") == 2, registry["aliases"]
    for number, version in registry["versions"].items():
        keys = [t["key"] for t in version["tags"]]
        assert keys, f"version {number} has no tags"
        assert not [k for k in keys if UC_RESERVED.search(k)], keys
    decisions = {n: {t["key"]: t["value"] for t in v["tags"]} for n, v in registry["versions"].items()}
    decision_key = next(k for k in decisions["1"] if k.endswith("decision"))
    assert decisions["1"][decision_key] == "promoted"
    assert decisions["2"][decision_key] in {"promoted", "rejected"}
    # the same model through the Unity Catalog API bootstrap uses
    model = rest(ran.ws, f"/api/2.1/unity-catalog/models/{UC_MODEL}", include_aliases="true")
    assert {"alias_name": "champion", "version_num": 1} in model["aliases"]


def test_unity_catalog_scoring_downloads_the_champion_through_signed_urls(loop: Callable) -> None:
    ran = loop("unity-catalog")
    reads = ran.calls(f"/fake-cloud-storage/Models/main/{SCHEMA}/churn_model/1/", "GET")
    assert any(c["path"].endswith("/MLmodel") and c["status"] == 200 for c in reads), ran.output()
    assert ran.calls("/api/2.0/fs/create-download-url", "POST")
    alias = "/api/2.0/mlflow/unity-catalog/registered-models/alias"
    by_alias = rest(ran.ws, alias, name=UC_MODEL, alias="champion")
    assert by_alias["model_version"]["version"] == "1"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_run_and_logged_model_artifacts_are_in_workspace_storage(loop: Callable, variant: str) -> None:
    ran = loop(variant)
    storage = ran.ws.state()["storage"]
    runs = {k.split("/")[1] for k in storage if k.startswith("runs/")}
    logged_models = {k.split("/")[1] for k in storage if k.startswith("logged_models/")}
    assert len(logged_models) >= 2, sorted(storage)
    assert any(k.startswith("logged_models/") and k.endswith("/MLmodel") for k in storage)
    # monitoring's drift report, logged to a run of the experiment
    assert any("/drift_report/report.md" in k for k in storage if k.startswith("runs/")), sorted(storage)
    assert runs
    experiment = rest(ran.ws, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=EXPERIMENT)
    location = experiment["experiment"]["artifact_location"]
    assert location == f"dbfs:/databricks/mlflow-tracking/{experiment['experiment']['experiment_id']}"


def test_workspace_registry_champion_is_production_challenger_is_staging(loop: Callable) -> None:
    ran = loop("workspace")
    versions = {
        v["version"]: v
        for v in rest(ran.ws, "/api/2.0/mlflow/model-versions/search", filter=f"name='{WORKSPACE_MODEL}'")[
            "model_versions"
        ]
    }
    assert sorted(versions) == ["1", "2"], ran.output()
    assert {v["status"] for v in versions.values()} == {"READY"}
    assert versions["1"]["current_stage"] == "Production", versions
    assert versions["2"]["current_stage"] in {"Staging", "Production"}, versions
    if versions["2"]["current_stage"] == "Production":  # promoted: the old champion was archived
        assert versions["1"]["current_stage"] == "Archived"
    transitions = ran.calls("/api/2.0/mlflow/model-versions/transition-stage", "POST")
    assert transitions and all(c["status"] == 200 for c in transitions), transitions
    assert not ran.calls("/registered-models/alias"), "aliases do not exist in the workspace registry"


def test_workspace_registry_copies_the_files_and_serves_them_signed(loop: Callable) -> None:
    ran = loop("workspace")
    copied = storage_keys(ran.ws, f"model-registry/{WORKSPACE_MODEL}/1/")
    assert f"model-registry/{WORKSPACE_MODEL}/1/MLmodel" in copied, ran.output()
    assert ran.calls("/api/2.0/mlflow/model-versions/get-signed-download-uri", "GET")
    reads = ran.calls(f"/fake-cloud-storage/model-registry/{WORKSPACE_MODEL}/", "GET")
    assert any(c["path"].endswith("/MLmodel") and c["status"] == 200 for c in reads)
