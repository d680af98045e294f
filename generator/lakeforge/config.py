"""A generated project's `[tool.lakeforge]` table, and the files it points to, as frozen dataclasses.

`load_config(project_dir, target)` is the only way in: it reads `pyproject.toml`, the cluster JSON and the job
JSON files, and rejects unknown keys, wrong types, missing files, invalid JSON and payloads the Databricks API
would refuse (a cluster without `spark_version`, an unknown Clusters or Jobs API field) with the file and
the key named, before anything talks to a workspace. Nothing past this module sees a raw TOML table.

Cluster and job payloads stay API payloads (plain JSON data), checked field by field against databricks-sdk's
own dataclasses (`compute.ClusterSpec`, `jobs.JobSettings`), so a file copied from an existing repository
works unchanged. `${name}` placeholders in them are filled per target by `fill()`.
"""

from __future__ import annotations

import json
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databricks.sdk.service import compute, dataquality, jobs
from databricks.sdk.service.serving import ServingEndpointsAPI

from lakeforge.errors import ConfigError
from lakeforge.payloads import JOB_ID, PLACEHOLDER, check_payload, check_value, describe, fill, job_references

CONFIG_VERSION = 1
REGISTRIES = ("unity-catalog", "workspace")
# Placeholders lakeforge fills in cluster and job files. `cluster_id` is known only once the cluster exists,
# `jobs.<stem>.id` once that job exists, `wheel` once the wheel is built; `job_cluster` is cluster.json as
# a job cluster's `new_cluster`. A JSON string that is exactly one placeholder becomes the value itself (an
# object for `job_cluster`, an integer for a job id), so such a string passes any field's type check.
PLACEHOLDERS = (
    "workspace_root",
    "cluster_id",
    "catalog",
    "schema",
    "experiment",
    "model",
    "target",
    "project",
    "secret_scope",
    "owner",
    "pause_status",
    "wheel",
    "libraries",
    "dependencies",
    "job_cluster",
)
# What a cluster file may not use: the values that only exist for jobs (or only once the cluster does).
_JOB_ONLY = {"cluster_id", "wheel", "libraries", "dependencies", "job_cluster"}
# The secret scope of a target unless the config names one: one scope per target, so that two targets in one
# workspace never share (or destroy) each other's secrets.
DEFAULT_SECRET_SCOPE = "${project}-${target}"
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TARGET_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True)
class Target:
    """One `[tool.lakeforge.targets.NAME]` table: where and under which names the project lives."""

    name: str
    host: str | None  # None: unified auth decides (DATABRICKS_HOST, a profile, ...)
    profile: str | None
    workspace_root: str
    catalog: str
    schema: str
    experiment: str
    model: str
    owner: str | None = None  # who hears of failed runs: the target's `owner`, else the project's
    paused: bool = False  # schedules paused (dev): the jobs run only when started

    def values(self, project: str) -> dict[str, str]:
        """The placeholder values of this target (all but those known only at bootstrap: see `Desired`)."""
        return {
            "workspace_root": self.workspace_root,
            "catalog": self.catalog,
            "schema": self.schema,
            "experiment": self.experiment,
            "model": self.model,
            "target": self.name,
            "project": project,
            "owner": self.owner or "",
            "pause_status": "PAUSED" if self.paused else "UNPAUSED",
        }


@dataclass(frozen=True)
class Secrets:
    scope: str  # the chosen target's scope, placeholders filled
    keys: Mapping[str, str]  # secret name -> name of the environment variable that holds its value
    # Other targets whose scope has the same name and that may be in the same workspace (a host unset or
    # equal): destroy keeps a scope they share.
    shared_with: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobFile:
    """One `databricks/jobs/*.json`: a Jobs API 2.2 create payload, placeholders not yet filled."""

    key: str  # the file's stem, what `lakeforge run KEY` takes
    path: Path
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class ServingFile:
    """One `databricks/serving/*.json`: a Model Serving endpoint's create payload, placeholders not yet
    filled; `${champion_version}` is the model version that holds the champion role when bootstrap runs."""

    key: str
    path: Path
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class MonitorFile:
    """One `databricks/monitors/*.json`: a data profiling monitor on a table, `{"table": ..., "output_schema":
    ..., "data_profiling_config": {...}}`, the config as databricks-sdk's `dataquality.DataProfilingConfig`
    without the ids bootstrap looks up (the output schema's)."""

    key: str
    path: Path
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Config:
    """The project and the one target a command works on."""

    project_dir: Path
    version: int
    project: str
    package: str
    registry: str
    feature_store: bool
    cluster_path: Path
    cluster: Mapping[str, Any]  # a Clusters API create payload, placeholders not yet filled
    jobs_dir: Path
    jobs: tuple[JobFile, ...]
    run_all: tuple[str, ...]  # job file stems, in the order `lakeforge run all` runs them
    serving: tuple[ServingFile, ...]  # none when the project serves no endpoint
    monitors: tuple[MonitorFile, ...]  # none when the project has no data profiling
    notebooks_dir: Path
    pypi_packages: tuple[str, ...]
    secrets: Secrets
    target_names: tuple[str, ...]
    target: Target

    @property
    def package_dir(self) -> Path:
        return self.project_dir / "src" / self.package

    def values(self) -> dict[str, str]:
        return {**self.target.values(self.project), "secret_scope": self.secrets.scope}


# ---------------------------------------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------------------------------------
_TOP_KEYS = {
    "version": int,
    "project": str,
    "package": str,
    "registry": str,
    "feature_store": bool,
    "cluster": str,
    "jobs": str,
    "serving": str,
    "monitors": str,
    "run_all": list,
    "notebooks": str,
    "pypi_packages": list,
    "owner": str,
    "secrets": dict,
    "targets": dict,
}
_REQUIRED_TOP = ("version", "project", "package", "targets")
_TARGET_KEYS = {
    "host": str,
    "profile": str,
    "secret_scope": str,
    "workspace_root": str,
    "catalog": str,
    "schema": str,
    "experiment": str,
    "model": str,
    "owner": str,
    "paused": bool,
}
_REQUIRED_TARGET = ("workspace_root", "catalog", "schema", "experiment", "model")
_SECRETS_KEYS = {"scope": str, "keys": dict}
_TYPE_WORDS = {int: "an integer", str: "a string", bool: "true or false", list: "an array", dict: "a table"}


def load_config(project_dir: Path | str, target: str | None = None) -> Config:
    """Read and validate the project in `project_dir` for `target` (the first target when None).

    Raises `ConfigError` naming the file and the key for anything wrong; touches no network.
    """
    project_dir = Path(project_dir).expanduser().resolve()
    pyproject = project_dir / "pyproject.toml"
    where = _display(pyproject, project_dir)
    if not pyproject.is_file():
        raise ConfigError(f"{pyproject} not found: give the folder of a lakeforge-generated project")
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from exc
    table = document.get("tool", {}).get("lakeforge")
    if not isinstance(table, dict):
        raise ConfigError(f"{where} has no [tool.lakeforge] table: is this a lakeforge-generated project?")

    _check_table(table, _TOP_KEYS, _REQUIRED_TOP, where, "tool.lakeforge")
    version = table["version"]
    if version != CONFIG_VERSION:
        raise ConfigError(
            f"{where}: tool.lakeforge.version is {version}; this lakeforge reads version {CONFIG_VERSION} "
            "(upgrade lakeforge, or the project with `copier update`)"
        )
    project = _matching(table["project"], _SLUG, where, "tool.lakeforge.project", "a slug like churn-model")
    package = _matching(
        table["package"], _PACKAGE, where, "tool.lakeforge.package", "a Python package name like churn_model"
    )
    registry = table.get("registry", "unity-catalog")
    if registry not in REGISTRIES:
        raise ConfigError(
            f"{where}: tool.lakeforge.registry is '{registry}'; allowed: {', '.join(REGISTRIES)}"
        )
    packages = table.get("pypi_packages", [])
    for i, requirement in enumerate(packages):
        if not isinstance(requirement, str) or not requirement.strip():
            raise ConfigError(f"{where}: tool.lakeforge.pypi_packages[{i}] must be a requirement string")

    owner = _owner(table.get("owner"), where, "tool.lakeforge.owner")
    target_names, chosen = _load_target(table["targets"], target, registry, owner, where)
    secrets = _load_secrets(table.get("secrets", {}), table["targets"], chosen.name, project, where)

    package_dir = project_dir / "src" / package
    if not package_dir.is_dir():
        raise ConfigError(f"{where}: tool.lakeforge.package is '{package}' but {package_dir} is not a folder")
    notebooks_dir = _existing(
        project_dir, table.get("notebooks", "notebooks"), where, "notebooks", folder=True
    )
    cluster_path = _existing(
        project_dir, table.get("cluster", "databricks/cluster.json"), where, "cluster", folder=False
    )
    jobs_dir = _existing(project_dir, table.get("jobs", "databricks/jobs"), where, "jobs", folder=True)

    cluster = _read_json(cluster_path, project_dir)
    _check_cluster(cluster, _display(cluster_path, project_dir))
    job_files = tuple(_load_job(path, project_dir) for path in sorted(jobs_dir.glob("*.json")))
    _check_unique_job_names(job_files, project_dir)
    _check_job_references(job_files, chosen, project_dir)
    run_all = _load_run_all(table.get("run_all"), job_files, where)
    serving = tuple(
        _load_endpoint(path, project_dir)
        for path in _optional_folder(
            project_dir, table.get("serving"), "databricks/serving", where, "serving"
        )
    )
    monitors = tuple(
        _load_monitor(path, project_dir)
        for path in _optional_folder(
            project_dir, table.get("monitors"), "databricks/monitors", where, "monitors"
        )
    )

    return Config(
        project_dir=project_dir,
        version=version,
        project=project,
        package=package,
        registry=registry,
        feature_store=table.get("feature_store", False),
        cluster_path=cluster_path,
        cluster=cluster,
        jobs_dir=jobs_dir,
        jobs=job_files,
        run_all=run_all,
        serving=serving,
        monitors=monitors,
        notebooks_dir=notebooks_dir,
        pypi_packages=tuple(p.strip() for p in packages),
        secrets=secrets,
        target_names=target_names,
        target=chosen,
    )


def _load_secrets(table: Any, targets: dict, chosen: str, project: str, where: str) -> Secrets:
    _check_table(table, _SECRETS_KEYS, (), where, "tool.lakeforge.secrets")
    scopes = {name: _scope_of(table, targets[name], name, project, where) for name in targets}
    scope = scopes[chosen]
    hosts = {name: (_host_of(spec) or "").lower() for name, spec in targets.items()}
    shared = tuple(
        name
        for name, other in scopes.items()
        if name != chosen
        and other == scope
        and not (hosts[chosen] and hosts[name] and hosts[chosen] != hosts[name])
    )
    keys = table.get("keys", {})
    for name, env in keys.items():
        key = f"tool.lakeforge.secrets.keys.{name}"
        if not _SECRET_NAME.match(name):
            raise ConfigError(f"{where}: {key}: a secret name is letters, digits, '-', '_', '.' (1-128)")
        if not isinstance(env, str) or not _ENV_VAR.match(env):
            raise ConfigError(
                f"{where}: {key} must name an environment variable (a string like SOURCE_DB_PASSWORD)"
            )
    return Secrets(scope=scope, keys=types.MappingProxyType(dict(keys)), shared_with=shared)


def _scope_of(secrets: dict, target: dict, name: str, project: str, where: str) -> str:
    """A target's secret scope: its own `secret_scope`, else `secrets.scope` with `${project}` and
    `${target}` filled, else `<project>-<target>`."""
    if "secret_scope" in target:
        key, scope = f"tool.lakeforge.targets.{name}.secret_scope", target["secret_scope"]
    else:
        key, scope = "tool.lakeforge.secrets.scope", secrets.get("scope", DEFAULT_SECRET_SCOPE)
        for placeholder in PLACEHOLDER.findall(scope):
            if placeholder not in ("project", "target"):
                raise ConfigError(
                    f"{where}: {key} uses unknown placeholder ${{{placeholder}}}; "
                    "known: ${project}, ${target}"
                )
        scope = fill(scope, {"project": project, "target": name})
    if not _SECRET_NAME.match(scope):
        raise ConfigError(f"{where}: {key} '{scope}' is not allowed: letters, digits, '-', '_', '.' (1-128)")
    return scope


def _host_of(target: dict) -> str | None:
    """A target's `host` as given, without spaces or a trailing slash; None when unset (unified auth)."""
    host = target.get("host", "")
    return (host.strip().rstrip("/") or None) if isinstance(host, str) else None


def _owner(value: str | None, where: str, key: str) -> str | None:
    if value is None:
        return None
    if not _EMAIL.match(value):
        raise ConfigError(
            f"{where}: {key} '{value}' is not allowed: it must be an address like team@example.com"
        )
    return value


def _load_target(
    targets: dict, name: str | None, registry: str, owner: str | None, where: str
) -> tuple[tuple[str, ...], Target]:
    if not targets:
        raise ConfigError(
            f"{where}: [tool.lakeforge.targets] defines no target; add e.g. [tool.lakeforge.targets.dev]"
        )
    for target_name, table in targets.items():
        key = f"tool.lakeforge.targets.{target_name}"
        if not _TARGET_NAME.match(target_name):
            raise ConfigError(f"{where}: {key}: a target name is lowercase letters, digits, '-' and '_'")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {key} must be a table")
        _check_table(table, _TARGET_KEYS, _REQUIRED_TARGET, where, key)
    names = tuple(targets)
    chosen = name or names[0]
    if chosen not in targets:
        raise ConfigError(
            f"{where}: no target '{chosen}' in [tool.lakeforge.targets]; the targets are: {', '.join(names)}"
        )
    table = targets[chosen]
    key = f"tool.lakeforge.targets.{chosen}"
    host = _host_of(table)
    if host and not re.match(r"^https?://[^\s/]+$", host):
        raise ConfigError(
            f"{where}: {key}.host '{host}' must be a workspace URL like https://adb-123.azuredatabricks.net"
        )
    profile = table.get("profile", "").strip() or None
    root = table["workspace_root"].rstrip("/")
    if not root.startswith("/") or "//" in root or not root.strip("/") or ".." in root.split("/"):
        raise ConfigError(
            f"{where}: {key}.workspace_root '{table['workspace_root']}' must be an absolute workspace folder"
        )
    experiment = table["experiment"]
    if not experiment.startswith("/") or experiment.endswith("/"):
        raise ConfigError(f"{where}: {key}.experiment '{experiment}' must be an absolute workspace path")
    catalog = _matching(table["catalog"], _IDENTIFIER, where, f"{key}.catalog", "a catalog name")
    schema = _matching(table["schema"], _IDENTIFIER, where, f"{key}.schema", "a schema name")
    model = table["model"]
    parts = model.split(".")
    if registry == "unity-catalog":
        if len(parts) != 3 or not all(_IDENTIFIER.match(p) for p in parts):
            raise ConfigError(
                f"{where}: {key}.model '{model}' must be catalog.schema.name with the unity-catalog registry"
            )
        if catalog == "hive_metastore":
            raise ConfigError(
                f"{where}: {key}.catalog is hive_metastore, which the unity-catalog registry cannot use"
            )
    elif not model.strip() or len(parts) == 3:
        raise ConfigError(
            f"{where}: {key}.model '{model}' must be a plain model name with the workspace registry "
            '(catalog.schema.name is for registry = "unity-catalog")'
        )
    target = Target(
        name=chosen,
        host=host,
        profile=profile,
        workspace_root=root,
        catalog=catalog,
        schema=schema,
        experiment=experiment,
        model=model,
        owner=_owner(table.get("owner"), where, f"{key}.owner") or owner,
        paused=table.get("paused", False),
    )
    return names, target


def _check_table(
    table: Any, spec: dict[str, type], required: tuple[str, ...], where: str, prefix: str
) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {prefix} must be a table")
    for key, value in table.items():
        if key not in spec:
            raise ConfigError(f"{where}: unknown key {prefix}.{key}; allowed: {', '.join(spec)}")
        expected = spec[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{where}: {prefix}.{key} must be {_TYPE_WORDS[expected]}, not {describe(value)}"
            )
    for key in required:
        if key not in table:
            raise ConfigError(f"{where}: {prefix}.{key} is missing")


def _matching(value: str, pattern: re.Pattern[str], where: str, key: str, what: str) -> str:
    if not pattern.match(value):
        raise ConfigError(f"{where}: {key} '{value}' is not allowed: it must be {what}")
    return value


def _existing(project_dir: Path, relative: str, where: str, key: str, folder: bool) -> Path:
    path = (project_dir / relative).resolve()
    ok = path.is_dir() if folder else path.is_file()
    if not ok:
        kind = "folder" if folder else "file"
        raise ConfigError(f"{where}: tool.lakeforge.{key} points to {relative}, which is not a {kind}")
    return path


def _read_json(path: Path, project_dir: Path) -> dict[str, Any]:
    where = _display(path, project_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must hold a JSON object, not {describe(data)}")
    return data


def _check_cluster(payload: dict[str, Any], where: str) -> None:
    for key in ("cluster_id", "state", "creator_user_name"):
        if key in payload:
            raise ConfigError(
                f"{where}: key '{key}' belongs to a cluster's state, not to a create payload; remove it"
            )
    check_payload(payload, compute.ClusterSpec, where, "Clusters API", "")
    for key in ("cluster_name", "spark_version"):
        if key not in payload:
            raise ConfigError(f"{where}: key '{key}' is missing (a Clusters API create payload needs it)")
    _check_placeholders(payload, where, allowed=set(PLACEHOLDERS) - _JOB_ONLY)


def _load_job(path: Path, project_dir: Path) -> JobFile:
    where = _display(path, project_dir)
    payload = _read_json(path, project_dir)
    if "settings" in payload or "job_id" in payload:
        raise ConfigError(
            f"{where}: key '{'job_id' if 'job_id' in payload else 'settings'}' belongs to a job's state; "
            "the file must be a Jobs API create payload (the object under 'settings')"
        )
    if path.stem == "all":
        raise ConfigError(
            f"{where}: a job file cannot be named all.json (`lakeforge run all` runs every job)"
        )
    if not isinstance(payload.get("name"), str) or not payload["name"].strip():
        raise ConfigError(f"{where}: key 'name' is missing (lakeforge finds the job by its name)")
    acl = payload.get("access_control_list")
    rest = {k: v for k, v in payload.items() if k != "access_control_list"}
    check_payload(rest, jobs.JobSettings, where, "Jobs API", "")
    if acl is not None:
        check_value(acl, list[jobs.JobAccessControlRequest], where, "Jobs API", "access_control_list")
    _check_placeholders(payload, where, allowed=set(PLACEHOLDERS), job_ids=True)
    return JobFile(key=path.stem, path=path, payload=payload)


def _optional_folder(
    project_dir: Path, relative: str | None, default: str, where: str, key: str
) -> list[Path]:
    """The JSON files of the folder `tool.lakeforge.<key>` names, or of `default` when that exists."""
    if relative is None and not (project_dir / default).is_dir():
        return []
    folder = _existing(project_dir, relative or default, where, key, folder=True)
    return sorted(folder.glob("*.json"))


_MONITOR_KEYS = {"table": str, "output_schema": str, "data_profiling_config": dict}


def _load_monitor(path: Path, project_dir: Path) -> MonitorFile:
    where = _display(path, project_dir)
    payload = _read_json(path, project_dir)
    _check_table(payload, _MONITOR_KEYS, tuple(_MONITOR_KEYS), where, "monitor")
    config = payload["data_profiling_config"]
    if "output_schema_id" in config:
        raise ConfigError(
            f"{where}: key 'data_profiling_config.output_schema_id' is looked up by bootstrap from "
            "'output_schema'; remove it"
        )
    check_payload(config, dataquality.DataProfilingConfig, where, "Data Quality API", "data_profiling_config")
    _check_placeholders(payload, where, allowed=set(PLACEHOLDERS) - _JOB_ONLY)
    return MonitorFile(key=path.stem, path=path, payload=payload)


def _load_endpoint(path: Path, project_dir: Path) -> ServingFile:
    where = _display(path, project_dir)
    payload = _read_json(path, project_dir)
    if not isinstance(payload.get("name"), str) or not payload["name"].strip():
        raise ConfigError(f"{where}: key 'name' is missing (lakeforge finds the endpoint by its name)")
    check_payload(payload, ServingEndpointsAPI.create, where, "Serving Endpoints API", "")
    if (payload.get("config") or {}).get("auto_capture_config"):
        # Legacy inference tables can no longer be enabled (Databricks docs, "Inference tables for
        # monitoring and debugging models": since 2026-02-20); AI Gateway inference tables replace them.
        raise ConfigError(
            f"{where}: key 'config.auto_capture_config' enables legacy inference tables, which Databricks no "
            "longer allows; log traffic with 'ai_gateway.inference_table_config' instead"
        )
    _check_placeholders(payload, where, allowed=(set(PLACEHOLDERS) - _JOB_ONLY) | {"champion_version"})
    return ServingFile(key=path.stem, path=path, payload=payload)


def _load_run_all(value: list | None, job_files: tuple[JobFile, ...], where: str) -> tuple[str, ...]:
    """`run_all`: job file stems in run order; absent, every job file in name order."""
    keys = [job.key for job in job_files]
    if value is None:
        return tuple(keys)
    seen: list[str] = []
    for i, key in enumerate(value):
        if not isinstance(key, str) or key not in keys:
            raise ConfigError(
                f"{where}: tool.lakeforge.run_all[{i}] is {describe(key)}; "
                f"it must name a job file of the jobs folder: {', '.join(keys)}"
            )
        if key in seen:
            raise ConfigError(f"{where}: tool.lakeforge.run_all names '{key}' twice")
        seen.append(key)
    return tuple(seen)


def _check_unique_job_names(job_files: tuple[JobFile, ...], project_dir: Path) -> None:
    seen: dict[str, Path] = {}
    for job in job_files:
        name = job.payload["name"]
        if name in seen:
            raise ConfigError(
                f"{_display(job.path, project_dir)}: key 'name' '{name}' is also the name of "
                f"{_display(seen[name], project_dir)}; job names must be unique"
            )
        seen[name] = job.path


def _check_placeholders(
    value: Any, where: str, allowed: set[str], path: str = "", job_ids: bool = False
) -> None:
    if isinstance(value, str):
        for name in PLACEHOLDER.findall(value):
            if name not in allowed and not (job_ids and JOB_ID.match(name)):
                known = sorted("${" + p + "}" for p in allowed)
                known += ["${jobs.<job file>.id}"] if job_ids else []
                raise ConfigError(
                    f"{where}: key '{path}' uses unknown placeholder ${{{name}}}; known: {', '.join(known)}"
                )
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_placeholders(v, where, allowed, f"{path}.{k}" if path else k, job_ids)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_placeholders(v, where, allowed, f"{path}[{i}]", job_ids)


def _check_job_references(job_files: tuple[JobFile, ...], target: Target, project_dir: Path) -> None:
    """`${jobs.<stem>.id}` names a job file, and no job needs its own id, directly or through others
    (bootstrap creates a job after those it names); `${owner}` needs an owner."""
    stems = {job.key for job in job_files}
    needs = {job.key: job_references(job.payload) for job in job_files}
    for job in job_files:
        where = _display(job.path, project_dir)
        for stem in sorted(needs[job.key] - stems):
            raise ConfigError(
                f"{where}: ${{jobs.{stem}.id}} names no job file; "
                f"the job files are: {', '.join(sorted(stems))}"
            )
        if "${owner}" in json.dumps(job.payload) and not target.owner:
            raise ConfigError(
                f"{where} uses ${{owner}}, but neither tool.lakeforge.owner nor "
                f"tool.lakeforge.targets.{target.name}.owner is set"
            )
    order_by_references(job_files)  # raises on a cycle


def order_by_references(job_files: tuple[JobFile, ...]) -> list[str]:
    """Job file stems, each after the jobs its `${jobs.<stem>.id}` placeholders name (else in file order).

    Raises `ConfigError` on a cycle."""
    needs = {job.key: job_references(job.payload) for job in job_files}
    ordered: list[str] = []
    visiting: list[str] = []

    def visit(stem: str) -> None:
        if stem in ordered:
            return
        if stem in visiting:
            cycle = " -> ".join([*visiting[visiting.index(stem) :], stem])
            raise ConfigError(f"job files name each other's ids in a cycle: {cycle}")
        visiting.append(stem)
        for other in sorted(needs[stem] & needs.keys()):
            visit(other)
        visiting.pop()
        ordered.append(stem)

    for job in job_files:
        visit(job.key)
    return ordered


def _display(path: Path, project_dir: Path) -> str:
    try:
        return str(path.relative_to(project_dir))
    except ValueError:
        return str(path)
