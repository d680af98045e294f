"""The few model-registry look-ups the steps share (MLflow OSS, workspace registry and Unity Catalog alike)."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

# What the stores answer for a missing model or alias: OSS says INVALID_PARAMETER_VALUE, Databricks 404s.
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


@dataclass(frozen=True)
class Version:
    """A registered model version; stores disagree on whether its number is an int or a str."""

    number: str
    tags: dict[str, str]

    @classmethod
    def of(cls, found: ModelVersion) -> Version:
        return cls(str(found.version), dict(found.tags or {}))


def get(client: MlflowClient, name: str, number: str) -> Version:
    return Version.of(client.get_model_version(name, number))


def by_alias(client: MlflowClient, name: str, alias: str) -> Version | None:
    try:
        return Version.of(client.get_model_version_by_alias(name, alias))
    except MlflowException as error:
        if error.error_code in _ABSENT:
            return None
        raise


def require_alias(client: MlflowClient, name: str, alias: str, hint: str) -> Version:
    version = by_alias(client, name, alias)
    if version is None:
        raise LookupError(f"model {name} has no @{alias}; {hint}")
    return version


def load(name: str, number: str) -> Pipeline:
    return mlflow.sklearn.load_model(f"models:/{name}/{number}")
