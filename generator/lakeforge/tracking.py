"""MLflow in the workspace: the target's experiment, and its registered model in Unity Catalog (with the
schema it lives in) or in the workspace model registry. Each is created when absent and otherwise left alone:
bootstrap never changes a model's versions, aliases or an experiment's runs.

What bootstrap creates carries its mark, written by the create call itself so that no crash separates the two,
and destroy deletes only what carries it: the experiment's tags and the workspace registry model's tags
(`lakeforge-project`, `lakeforge-target`), the schema's properties (the same pairs), and the Unity Catalog
model's comment (`COMMENT`: the SDK's `registered_models.create`, POST /api/2.1/unity-catalog/models, takes no
tags, and Unity Catalog refuses `-` in a model tag key). The marks live on the objects, not in the manifest,
because destroy deletes the manifest and keeps MLflow unless asked, and the next bootstrap finds the objects
there and creates nothing: they must still be recognised after any number of destroys and bootstraps.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceConflict
from databricks.sdk.service.ml import Experiment, ExperimentTag, ModelTag

from lakeforge.changes import Change, Create, Delete, Desired, Unchanged, Update, failing_as
from lakeforge.manifest import Manifest
from lakeforge.resources import Outcome, Progress

T = TypeVar("T")
STEP = "mlflow"
COMMENT = "Managed by lakeforge (project {project}, target {target})"
_FOREIGN = "not created by lakeforge"


def _experiment_url(host: str, experiment_id: str | None) -> str | None:
    return f"{host}/#mlflow/experiments/{experiment_id}" if experiment_id else None


def _model_url(desired: Desired) -> str:
    model = desired.config.target.model
    if desired.config.registry == "unity-catalog":
        return f"{desired.host}/explore/data/models/{model.replace('.', '/')}"
    return f"{desired.host}/#mlflow/models/{model}"


def _schema_url(desired: Desired) -> str:
    target = desired.config.target
    return f"{desired.host}/explore/data/{target.catalog}/{target.schema}"


def plan(w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]) -> Outcome:
    target = desired.config.target
    host = desired.host
    changes: list[Change] = []
    with failing_as(STEP, f"experiment {target.experiment}"):
        experiment = _experiment_by_name(w, target.experiment)
    if experiment is None:
        changes.append(Create(STEP, "experiment", target.experiment, "", None, {}))
    elif experiment.lifecycle_stage == "deleted":
        changes.append(
            Update(
                STEP,
                "experiment",
                target.experiment,
                "restore from trash",
                _experiment_url(host, experiment.experiment_id),
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
                _experiment_url(host, experiment.experiment_id),
                {"id": experiment.experiment_id},
            )
        )

    schema_exists = True  # the workspace registry has no schema
    if desired.config.registry == "unity-catalog":
        schema = f"{target.catalog}.{target.schema}"
        with failing_as(STEP, f"schema {schema}"):
            schema_exists = _absent_as_none(lambda: w.schemas.get(schema)) is not None
        cls = Unchanged if schema_exists else Create
        changes.append(cls(STEP, "schema", schema, "", _schema_url(desired), {}))
    with failing_as(STEP, f"model {target.model}"):
        model_exists = schema_exists and _model_ours(w, desired) is not None
    cls = Unchanged if model_exists else Create
    changes.append(cls(STEP, "model", target.model, desired.config.registry, _model_url(desired), {}))
    return Outcome(tuple(changes))


def apply(
    w: WorkspaceClient,
    changes: Sequence[Change],
    desired: Desired,
    known: Mapping[str, Any],
    progress: Progress,
) -> Outcome:
    """Create or restore (bootstrap), or delete what destroy was asked to; the changes come back with URLs."""
    target = desired.config.target
    tags = desired.tags
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
                change = replace(change, url=_experiment_url(desired.host, experiment_id))
            elif change.kind == "experiment" and isinstance(change, Update):
                progress(f"mlflow: restoring experiment {change.name}")
                w.experiments.restore_experiment(change.spec["id"])
            elif change.kind == "schema" and isinstance(change, Create):
                progress(f"mlflow: creating schema {change.name}")
                with contextlib.suppress(ResourceConflict):
                    w.schemas.create(
                        target.schema,
                        target.catalog,
                        comment=_comment(desired),
                        properties=tags,
                    )
            elif change.kind == "model" and isinstance(change, Create):
                progress(f"mlflow: creating model {change.name}")
                comment = _comment(desired)
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
            elif isinstance(change, Delete):
                progress(f"mlflow: deleting {change.kind} {change.name}")
                _delete(w, desired, change)
        done.append(change)
    return Outcome(tuple(done))


def _delete(w: WorkspaceClient, desired: Desired, change: Change) -> None:
    name = desired.config.target.model
    with contextlib.suppress(NotFound):
        if change.kind == "experiment":
            w.experiments.delete_experiment(change.spec["id"])
        elif desired.config.registry == "unity-catalog":
            w.registered_models.delete(full_name=name)
        else:
            w.model_registry.delete_model(name=name)


def plan_destroy(w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool) -> Outcome:
    """The experiment and the model are deleted only with --include-mlflow, and only if they carry bootstrap's
    mark; the schema never (it holds the project's tables). What is missing, or in the trash, is not shown."""
    target = desired.config.target
    changes: list[Change] = []
    with failing_as(STEP, f"experiment {target.experiment}"):
        experiment = _experiment_by_name(w, target.experiment)
    if experiment is not None and experiment.lifecycle_stage != "deleted":
        ours = desired.ours(_tags(experiment.tags))
        link = _experiment_url(desired.host, experiment.experiment_id)
        spec = {"id": experiment.experiment_id}
        changes.append(
            _kept_or_deleted(
                "experiment", target.experiment, "with its runs", link, spec, ours, include_mlflow
            )
        )
    if desired.config.registry == "unity-catalog":
        schema = f"{target.catalog}.{target.schema}"
        with failing_as(STEP, f"schema {schema}"):
            info = _absent_as_none(lambda: w.schemas.get(schema))
        if info is None:
            return Outcome(tuple(changes))
        why = "kept: it holds the project's tables" if desired.ours(info.properties) else _FOREIGN
        changes.append(Unchanged(STEP, "schema", schema, why, _schema_url(desired), {}))
    with failing_as(STEP, f"model {target.model}"):
        ours = _model_ours(w, desired)
    if ours is not None:
        link = _model_url(desired)
        changes.append(
            _kept_or_deleted("model", target.model, "with all its versions", link, {}, ours, include_mlflow)
        )
    return Outcome(tuple(changes))


def _kept_or_deleted(
    kind: str, name: str, what: str, link: str | None, spec: dict[str, str | None], ours: bool, include: bool
) -> Change:
    if ours and include:
        return Delete(STEP, kind, name, what, link, spec)
    return Unchanged(STEP, kind, name, "kept (--include-mlflow deletes it)" if ours else _FOREIGN, link, {})


def _model_ours(w: WorkspaceClient, desired: Desired) -> bool | None:
    """Whether the target's model carries bootstrap's mark; None when there is no such model."""
    name = desired.config.target.model
    if desired.config.registry == "unity-catalog":
        info = _absent_as_none(lambda: w.registered_models.get(full_name=name))
        return None if info is None else info.comment == _comment(desired)
    found = _absent_as_none(lambda: w.model_registry.get_model(name=name))
    if found is None:
        return None
    model = found.registered_model_databricks
    return desired.ours(_tags(model.tags if model else None))


def _tags(tags: Sequence[ExperimentTag | ModelTag] | None) -> dict[str, str]:
    return {t.key: t.value or "" for t in tags or [] if t.key}


def _comment(desired: Desired) -> str:
    return COMMENT.format(project=desired.config.project, target=desired.config.target.name)


def _absent_as_none(get: Callable[[], T]) -> T | None:
    try:
        return get()
    except NotFound:
        return None


def _experiment_by_name(w: WorkspaceClient, name: str) -> Experiment | None:
    found = _absent_as_none(lambda: w.experiments.get_by_name(name))
    return found.experiment if found else None
