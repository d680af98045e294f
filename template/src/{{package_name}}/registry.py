"""The model registry as the steps see it: versions, their tags, and two roles, the champion and the challenger.

How a role is marked depends on the registry, and only here:
- Unity Catalog (and MLflow OSS): model version aliases, `@champion` and `@challenger`.
- The Workspace Model Registry has no aliases (MLflow's client raises "unsupported for models in the Workspace
  Model Registry", `store/model_registry/databricks_workspace_model_registry_rest_store.py`); it has stages:
  champion = `Production`, challenger = `Staging`, and a transition archives the version that held the stage.
The choice follows the project's `registry` answer (`config.REGISTRY`), not the world, so the local sqlite store
of a workspace-registry project uses stages too and its tests run the path Databricks runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .config import REGISTRY
from .errors import UserError

CHAMPION = "champion"
CHALLENGER = "challenger"

# What the stores answer for a missing model, version or alias. MLflow's sqlite store (sqlalchemy_store.py):
# RESOURCE_DOES_NOT_EXIST for a model or version, INVALID_PARAMETER_VALUE for an alias or a version that is not a
# number. The REST stores (Workspace registry, Unity Catalog) raise the error code the workspace answers
# (utils/rest_utils.py `verify_rest_response`, exceptions.py `RestException`): RESOURCE_DOES_NOT_EXIST, or
# NOT_FOUND, the generic code of a Databricks 404 (databricks-sdk errors/platform.py).
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}
# Unity Catalog refuses tag keys with any of these (INVALID_PARAMETER_VALUE "... reserved characters").
UC_RESERVED = frozenset(".,-=/:")


@dataclass(frozen=True)
class Version:
    """A registered model version; stores disagree on whether its number is an int or a str."""

    number: str
    run_id: str  # the training run, which holds the model's baseline profile

    @classmethod
    def of(cls, found: ModelVersion) -> Version:
        return cls(str(found.version), found.run_id)


class Aliases:
    """Unity Catalog: a role is the alias of that name; one version may hold both."""

    def label(self, role: str) -> str:
        return f"@{role}"

    def uri(self, name: str, role: str) -> str:
        return f"models:/{name}@{role}"

    def find(self, client: MlflowClient, name: str, role: str) -> ModelVersion | None:
        return client.get_model_version_by_alias(name, role)

    def assign(self, client: MlflowClient, name: str, role: str, number: str) -> None:
        client.set_registered_model_alias(name, role, number)


class Stages:
    """The Workspace Model Registry: a role is a stage; promoting moves the challenger from Staging to Production."""

    STAGES = {CHAMPION: "Production", CHALLENGER: "Staging"}

    def label(self, role: str) -> str:
        return f"stage {self.STAGES[role]}"

    def uri(self, name: str, role: str) -> str:
        return f"models:/{name}/{self.STAGES[role]}"

    def find(self, client: MlflowClient, name: str, role: str) -> ModelVersion | None:
        with _stages_api():
            found = client.get_latest_versions(name, stages=[self.STAGES[role]])
        return found[0] if found else None

    def assign(self, client: MlflowClient, name: str, role: str, number: str) -> None:
        with _stages_api():
            client.transition_model_version_stage(name, number, self.STAGES[role], archive_existing_versions=True)


ROLES: Aliases | Stages = Stages() if REGISTRY == "workspace" else Aliases()


def get(client: MlflowClient, name: str, number: str) -> Version:
    """The version of that number; a UserError naming the versions that exist when it is not one of them."""
    try:
        return Version.of(client.get_model_version(name, number))
    except MlflowException as error:
        if error.error_code not in _ABSENT:
            raise
    numbers = numbers_of(client, name)
    existing = f"its versions: {', '.join(numbers)}" if numbers else "it has no versions yet"
    raise UserError(f"model {name} has no version {number}; {existing}")


def numbers_of(client: MlflowClient, name: str) -> list[str]:
    """The model's version numbers in order, none when the model does not exist."""
    try:
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        if error.error_code in _ABSENT:
            return []
        raise
    return sorted((str(v.version) for v in found), key=int)


def find(client: MlflowClient, name: str, role: str) -> Version | None:
    """The version holding the role, or None when the model or the role does not exist yet."""
    try:
        found = ROLES.find(client, name, role)
    except MlflowException as error:
        if error.error_code in _ABSENT:
            return None
        raise
    return Version.of(found) if found is not None else None


def require(client: MlflowClient, name: str, role: str, hint: str) -> Version:
    version = find(client, name, role)
    if version is None:
        raise UserError(f"model {name} has no {role} ({ROLES.label(role)}); {hint}")
    return version


def champion(client: MlflowClient, name: str) -> Version | None:
    return find(client, name, CHAMPION)


def set_champion(client: MlflowClient, name: str, number: str) -> None:
    ROLES.assign(client, name, CHAMPION, number)


def set_challenger(client: MlflowClient, name: str, number: str) -> None:
    ROLES.assign(client, name, CHALLENGER, number)


def champion_uri(name: str) -> str:
    """The champion as a model URI: `models:/<name>@champion`, or `models:/<name>/Production` for stages."""
    return ROLES.uri(name, CHAMPION)


def tags(client: MlflowClient, name: str, number: str) -> dict[str, str]:
    return dict(client.get_model_version(name, number).tags)


def set_tags(client: MlflowClient, name: str, number: str, tags: dict[str, str]) -> None:
    """Tag a version; keys that Unity Catalog would refuse are refused here too, in every registry and world."""
    refused = sorted(key for key in tags if UC_RESERVED & set(key))
    if refused:
        reserved = " ".join(sorted(UC_RESERVED))
        raise ValueError(f"tag keys {refused} contain characters Unity Catalog reserves: {reserved}")
    for key, value in tags.items():
        client.set_model_version_tag(name, number, key, value)


@contextmanager
def _stages_api() -> Iterator[None]:
    # MLflow deprecates stages (FutureWarning since 2.9) in favour of aliases, which this registry does not have.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield
