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

import dataclasses
import enum
import json
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from databricks.sdk.service import compute, jobs

from lakeforge.errors import ConfigError

CONFIG_VERSION = 1
REGISTRIES = ("unity-catalog", "workspace")
# Placeholders lakeforge fills in cluster and job files; `cluster_id` is known only once the cluster exists.
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
)
# The secret scope of a target unless the config names one: one scope per target, so that two targets in one
# workspace never share (or destroy) each other's secrets.
DEFAULT_SECRET_SCOPE = "${project}-${target}"
# Lowercase `${name}` is lakeforge's; anything else (`${env:X}`, `${HOME}`) is left for Spark or the shell.
_PLACEHOLDER = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TARGET_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


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

    def values(self, project: str) -> dict[str, str]:
        """The placeholder values of this target (all but `cluster_id`)."""
        return {
            "workspace_root": self.workspace_root,
            "catalog": self.catalog,
            "schema": self.schema,
            "experiment": self.experiment,
            "model": self.model,
            "target": self.name,
            "project": project,
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
    "run_all": list,
    "notebooks": str,
    "pypi_packages": list,
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

    target_names, chosen = _load_target(table["targets"], target, registry, where)
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
    run_all = _load_run_all(table.get("run_all"), job_files, where)

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
        notebooks_dir=notebooks_dir,
        pypi_packages=tuple(p.strip() for p in packages),
        secrets=secrets,
        target_names=target_names,
        target=chosen,
    )


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """`value` (JSON data) with every `${name}` in its strings replaced by `values[name]`.

    A placeholder whose name is not in `values` is left as it is (plan shows `${cluster_id}` that way).
    """
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


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
        for placeholder in _PLACEHOLDER.findall(scope):
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


def _load_target(
    targets: dict, name: str | None, registry: str, where: str
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
                f"{where}: {prefix}.{key} must be {_TYPE_WORDS[expected]}, not {_describe(value)}"
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
        raise ConfigError(f"{where}: must hold a JSON object, not {_describe(data)}")
    return data


def _check_cluster(payload: dict[str, Any], where: str) -> None:
    for key in ("cluster_id", "state", "creator_user_name"):
        if key in payload:
            raise ConfigError(
                f"{where}: key '{key}' belongs to a cluster's state, not to a create payload; remove it"
            )
    _check_payload(payload, compute.ClusterSpec, where, "Clusters API", "")
    for key in ("cluster_name", "spark_version"):
        if key not in payload:
            raise ConfigError(f"{where}: key '{key}' is missing (a Clusters API create payload needs it)")
    _check_placeholders(payload, where, allowed=set(PLACEHOLDERS) - {"cluster_id"})


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
    _check_payload(rest, jobs.JobSettings, where, "Jobs API", "")
    if acl is not None:
        _check_value(acl, list[jobs.JobAccessControlRequest], where, "Jobs API", "access_control_list")
    _check_placeholders(payload, where, allowed=set(PLACEHOLDERS))
    return JobFile(key=path.stem, path=path, payload=payload)


def _load_run_all(value: list | None, job_files: tuple[JobFile, ...], where: str) -> tuple[str, ...]:
    """`run_all`: job file stems in run order; absent, every job file in name order."""
    keys = [job.key for job in job_files]
    if value is None:
        return tuple(keys)
    seen: list[str] = []
    for i, key in enumerate(value):
        if not isinstance(key, str) or key not in keys:
            raise ConfigError(
                f"{where}: tool.lakeforge.run_all[{i}] is {_describe(key)}; "
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


def _check_placeholders(value: Any, where: str, allowed: set[str], path: str = "") -> None:
    if isinstance(value, str):
        for name in _PLACEHOLDER.findall(value):
            if name not in allowed:
                raise ConfigError(
                    f"{where}: key '{path}' uses unknown placeholder ${{{name}}}; "
                    f"known: {', '.join('${' + p + '}' for p in sorted(allowed))}"
                )
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_placeholders(v, where, allowed, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_placeholders(v, where, allowed, f"{path}[{i}]")


# ---------------------------------------------------------------------------------------------------------
# API payloads checked against databricks-sdk's dataclasses: unknown keys, wrong types, unknown enum values.
# The SDK drops unknown fields and unknown enum values silently when it reads a dict, so a typo would vanish.
# ---------------------------------------------------------------------------------------------------------
@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_payload(payload: dict[str, Any], cls: type, where: str, api: str, path: str) -> None:
    hints = _hints(cls)
    for key, value in payload.items():
        key_path = f"{path}.{key}" if path else key
        if key not in hints:
            raise ConfigError(
                f"{where}: unknown key '{key_path}' (not a {api} field known to databricks-sdk)"
            )
        _check_value(value, hints[key], where, api, key_path)


def _check_value(value: Any, hint: Any, where: str, api: str, path: str) -> None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return
        hint = options[0] if len(options) == 1 else Any
        origin = typing.get_origin(hint)
    if hint is Any or value is None:
        return
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: key '{path}' must be an object, not {_describe(value)}")
        value_hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        for k, v in value.items():
            _check_value(v, value_hint, where, api, f"{path}.{k}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: key '{path}' must be an array, not {_describe(value)}")
        item_hint = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        for i, v in enumerate(value):
            _check_value(v, item_hint, where, api, f"{path}[{i}]")
        return
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: key '{path}' must be an object, not {_describe(value)}")
        _check_payload(value, hint, where, api, path)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [member.value for member in hint]
        if value not in allowed:
            raise ConfigError(
                f"{where}: key '{path}' is {_describe(value)}; allowed: {', '.join(map(str, allowed))}"
            )
        return
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    else:
        ok = True  # a type this check does not know: let the API judge
    if not ok:
        expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
        raise ConfigError(f"{where}: key '{path}' must be {expected}, not {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object/table"
    return type(value).__name__


def _display(path: Path, project_dir: Path) -> str:
    try:
        return str(path.relative_to(project_dir))
    except ValueError:
        return str(path)
