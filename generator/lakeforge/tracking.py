"""MLflow in the workspace: the target's experiment, and its registered model in Unity Catalog (with the
schema it lives in) or in the workspace model registry. Each is created when absent and otherwise left alone:
bootstrap never changes a model's versions, aliases or an experiment's runs.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import replace

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceConflict
from databricks.sdk.service.ml import ExperimentTag, ModelTag

from lakeforge.changes import Change, Create, Desired, Unchanged, Update, failing_as

STEP = "mlflow"
COMMENT = "Managed by lakeforge (project {project}, target {target})"


def experiment_url(host: str, experiment_id: str | None) -> str | None:
    return f"{host}/#mlflow/experiments/{experiment_id}" if experiment_id else None


def model_url(desired: Desired) -> str:
    model = desired.config.target.model
    if desired.config.registry == "unity-catalog":
        return f"{desired.host}/explore/data/models/{model.replace('.', '/')}"
    return f"{desired.host}/#mlflow/models/{model}"


def plan(w: WorkspaceClient, desired: Desired) -> list[Change]:
    target = desired.config.target
    host = desired.host
    changes: list[Change] = []
    with failing_as(STEP, f"experiment {target.experiment}"):
        experiment = experiment_by_name(w, target.experiment)
    if experiment is None:
        changes.append(Create(STEP, "experiment", target.experiment, "", None, {}))
    elif experiment.lifecycle_stage == "deleted":
        changes.append(
            Update(
                STEP,
                "experiment",
                target.experiment,
                "restore from trash",
                experiment_url(host, experiment.experiment_id),
                {"id": experiment.experiment_id},
            )
        )
    else:
        changes.append(
            Unchanged(
                STEP,
                "experiment",
                target.experiment,
                "",
                experiment_url(host, experiment.experiment_id),
                {"id": experiment.experiment_id},
            )
        )

    if desired.config.registry == "unity-catalog":
        schema = f"{target.catalog}.{target.schema}"
        with failing_as(STEP, f"schema {schema}"):
            schema_exists = exists(lambda: w.schemas.get(schema))
        schema_url = f"{host}/explore/data/{target.catalog}/{target.schema}"
        cls = Unchanged if schema_exists else Create
        changes.append(cls(STEP, "schema", schema, "", schema_url, {}))
        with failing_as(STEP, f"model {target.model}"):
            model_exists = schema_exists and exists(lambda: w.registered_models.get(target.model))
    else:
        with failing_as(STEP, f"model {target.model}"):
            model_exists = exists(lambda: w.model_registry.get_model(target.model))
    cls = Unchanged if model_exists else Create
    changes.append(cls(STEP, "model", target.model, desired.config.registry, model_url(desired), {}))
    return changes


def apply(
    w: WorkspaceClient, changes: Sequence[Change], desired: Desired, progress: Callable[[str], None]
) -> tuple[list[Change], set[str]]:
    """Create or restore; returns the changes with URLs and the kinds this run created."""
    target = desired.config.target
    tags = desired.tags
    created: set[str] = set()
    done: list[Change] = []
    for change in changes:
        with failing_as(STEP, f"{change.kind} {change.name}"):
            if change.kind == "experiment" and isinstance(change, Create):
                progress(f"mlflow: creating experiment {change.name}")
                w.workspace.mkdirs(posixpath.dirname(change.name))
                try:
                    experiment_id = w.experiments.create_experiment(
                        change.name, tags=[ExperimentTag(key=k, value=v) for k, v in tags.items()]
                    ).experiment_id
                except ResourceConflict:  # a create whose answer was lost
                    experiment_id = w.experiments.get_by_name(change.name).experiment.experiment_id
                created.add("experiment")
                change = replace(change, url=experiment_url(desired.host, experiment_id))
            elif change.kind == "experiment" and isinstance(change, Update):
                progress(f"mlflow: restoring experiment {change.name}")
                w.experiments.restore_experiment(change.spec["id"])
            elif change.kind == "schema" and isinstance(change, Create):
                progress(f"mlflow: creating schema {change.name}")
                with contextlib.suppress(ResourceConflict):
                    w.schemas.create(
                        target.schema,
                        target.catalog,
                        comment=COMMENT.format(project=desired.config.project, target=target.name),
                        properties=tags,
                    )
                created.add("schema")
            elif change.kind == "model" and isinstance(change, Create):
                progress(f"mlflow: creating model {change.name}")
                comment = COMMENT.format(project=desired.config.project, target=target.name)
                try:
                    if desired.config.registry == "unity-catalog":
                        catalog, schema, name = target.model.split(".")
                        w.registered_models.create(
                            catalog_name=catalog, schema_name=schema, name=name, comment=comment
                        )
                    else:
                        w.model_registry.create_model(
                            target.model,
                            description=comment,
                            tags=[ModelTag(key=k, value=v) for k, v in tags.items()],
                        )
                except ResourceConflict:
                    pass
                created.add("model")
        done.append(change)
    return done, created


def experiment_by_name(w: WorkspaceClient, name: str):
    try:
        return w.experiments.get_by_name(name).experiment
    except NotFound:
        return None


def exists(get: Callable[[], object]) -> bool:
    try:
        get()
        return True
    except NotFound:
        return False
