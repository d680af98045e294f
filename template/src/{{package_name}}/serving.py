"""Serving the champion locally: MLflow's scoring server, the REST protocol Databricks Model Serving speaks.

The server runs in this process rather than as `mlflow models serve`, which runs `bash -c "exec uvicorn ..."`
(mlflow/pyfunc/backend.py `serve`, mlflow/pyfunc/scoring_server/__init__.py `get_cmd`): that finds uvicorn by
name on PATH, so it fails unless the virtualenv's bin is on it, and a signal to the command that started it
never reaches it. In this process uvicorn stops on SIGINT and SIGTERM itself (uvicorn/server.py
`capture_signals`). `scoring_server.init` builds MLflow 3's FastAPI app (2.x built a Flask one), so serving
needs the local extra's MLflow; on Databricks, Model Serving serves the champion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow
from mlflow.pyfunc import PyFuncModel
from mlflow.tracking import MlflowClient

from . import registry, threshold
from .config import Settings
from .world import connect_mlflow

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Champion:
    role_uri: str
    version: str
    model: PyFuncModel
    threshold: float  # the version's decision threshold: a caller predicts positive when P(positive) >= it


def champion(settings: Settings) -> Champion:
    """The champion's pyfunc model, loaded by its version so that a promotion meanwhile cannot swap it."""
    connect_mlflow()
    client = MlflowClient()
    version = registry.require(client, settings.model, registry.CHAMPION, "promote a model first")
    model = mlflow.pyfunc.load_model(f"models:/{settings.model}/{version.number}")
    cut = threshold.of_version(client, settings.model, version.number)
    return Champion(registry.champion_uri(settings.model), version.number, model, cut)


def request_example(model: PyFuncModel) -> str | None:
    """A body for POST /invocations: the first row of the input example logged with the model, if any."""
    if model.input_example is None:
        return None
    return json.dumps({"dataframe_records": model.input_example.head(1).to_dict(orient="records")})


def run(model: PyFuncModel, port: int) -> None:
    """Serve the model on HOST until SIGINT or SIGTERM."""
    import uvicorn  # a dependency of MLflow 3 (mlflow-skinny too), not of the 2.x some runtimes ship
    from mlflow.pyfunc import scoring_server

    uvicorn.run(scoring_server.init(model), host=HOST, port=port)
