"""API payloads as plain JSON data, and the four things lakeforge does with them, each checked against
databricks-sdk's own dataclasses (`compute.ClusterSpec`, `jobs.JobSettings`, ...):

- `check_payload`: unknown keys, wrong types, unknown enum values, with the key path named. The SDK drops
  unknown fields and enum values silently when it reads a dict, so a typo would otherwise vanish.
- `fill`: `${name}` placeholders replaced by a target's values.
- `digest`: the short hash of a filled payload, kept in a tag on what bootstrap made (the spec last applied).
- `differences`: where a workspace's answer differs from a payload, on the fields the payload gives.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from lakeforge.errors import ConfigError

# Lowercase `${name}` is lakeforge's; anything else (`${env:X}`, `${HOME}`) is left for Spark or the shell.
PLACEHOLDER = re.compile(r"\$\{(jobs\.[A-Za-z0-9_-]+\.id|[a-z_][a-z0-9_]*)\}")
JOB_ID = re.compile(r"^jobs\.([A-Za-z0-9_-]+)\.id$")


def fill(value: Any, values: Mapping[str, Any]) -> Any:
    """`value` (JSON data) with every `${name}` in its strings replaced by `values[name]`.

    A string that is exactly one placeholder becomes the value itself, whatever its type (`"${job_cluster}"`
    an object, `"${jobs.training.id}"` an integer); elsewhere values are spliced in as text. A placeholder
    whose name is not in `values` is left as it is (plan shows `${cluster_id}` that way).
    """
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole[1] in values:
            return copy.deepcopy(values[whole[1]])
        return PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def job_references(payload: Any) -> set[str]:
    """The job file stems that `${jobs.<stem>.id}` placeholders in `payload` name."""
    found: set[str] = set()
    if isinstance(payload, str):
        found |= {m[1] for m in (JOB_ID.match(name) for name in PLACEHOLDER.findall(payload)) if m}
    elif isinstance(payload, dict):
        for v in payload.values():
            found |= job_references(v)
    elif isinstance(payload, list):
        for v in payload:
            found |= job_references(v)
    return found


def digest(payload: Any) -> str:
    """A short, stable hash of JSON data (key order does not count)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


@cache
def _hints(cls: Any) -> dict[str, Any]:
    """A dataclass's fields, or a method's parameters (payloads with no dataclass of their own, such as a
    serving endpoint's create call), with their types."""
    hints = typing.get_type_hints(cls)
    hints.pop("return", None)
    return hints


def check_payload(payload: dict[str, Any], cls: Any, where: str, api: str, path: str) -> None:
    hints = _hints(cls)
    for key, value in payload.items():
        key_path = f"{path}.{key}" if path else key
        if key not in hints:
            raise ConfigError(
                f"{where}: unknown key '{key_path}' (not a {api} field known to databricks-sdk)"
            )
        check_value(value, hints[key], where, api, key_path)


def check_value(value: Any, hint: Any, where: str, api: str, path: str) -> None:
    if isinstance(value, str) and PLACEHOLDER.fullmatch(value):
        return  # replaced by a value of the field's own type (see PLACEHOLDERS)
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
            raise ConfigError(f"{where}: key '{path}' must be an object, not {describe(value)}")
        value_hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        for k, v in value.items():
            check_value(v, value_hint, where, api, f"{path}.{k}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: key '{path}' must be an array, not {describe(value)}")
        item_hint = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        for i, v in enumerate(value):
            check_value(v, item_hint, where, api, f"{path}[{i}]")
        return
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: key '{path}' must be an object, not {describe(value)}")
        check_payload(value, hint, where, api, path)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [member.value for member in hint]
        if value not in allowed:
            raise ConfigError(
                f"{where}: key '{path}' is {describe(value)}; allowed: {', '.join(map(str, allowed))}"
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
        raise ConfigError(f"{where}: key '{path}' must be {expected}, not {describe(value)}")


def describe(value: Any) -> str:
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


def typed(payload: dict[str, Any], cls: Any) -> dict[str, Any]:
    """Each field of `payload` as the SDK type that `cls` (a dataclass or a method) declares for it: keyword
    arguments for an SDK call."""
    hints = _hints(cls)
    arguments: dict[str, Any] = {}
    for key, value in payload.items():
        hint = _unwrap(hints[key])
        item = _unwrap(typing.get_args(hint)[0]) if typing.get_origin(hint) is list else None
        if isinstance(value, list) and hasattr(item, "from_dict"):
            arguments[key] = [item.from_dict(v) for v in value]
        elif isinstance(value, dict) and hasattr(hint, "from_dict"):
            arguments[key] = hint.from_dict(value)
        elif isinstance(hint, type) and issubclass(hint, enum.Enum) and value is not None:
            arguments[key] = hint(value)
        else:
            arguments[key] = value
    return arguments


def differences(desired: Any, actual: Any, cls: Any, path: str = "", echoed_only: bool = False) -> list[str]:
    """Paths (like `autoscale.max_workers`) where `actual` does not match `desired`; empty when equal.

    The rule follows the SDK's types: a map (`Dict[str, str]`: custom_tags, spark_conf, tags) belongs to the
    user, so it must be equal; an object (a dataclass: autoscale, notebook_task) may carry fields the server
    filled in, so only the keys the desired side gives are compared; a list is compared item by item and must
    have the same length. With `echoed_only`, a key of an object that the answer leaves out does not count
    either: servers do not echo every field they accept (the Clusters API never returns
    `apply_policy_default_values`), so only a field shown with another value is a difference (drift).
    """
    cls = _unwrap(cls)
    origin = typing.get_origin(cls)
    if isinstance(desired, dict) and dataclasses.is_dataclass(cls):
        if not isinstance(actual, dict):
            return [path or "."]
        hints = _hints(cls)
        found: list[str] = []
        for key, value in desired.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                if not _empty(value) and not echoed_only:
                    found.append(sub)
                continue
            found += differences(value, actual[key], hints.get(key, Any), sub, echoed_only)
        return found
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return [path or "."]
        item = typing.get_args(cls)[1] if origin is dict and typing.get_args(cls) else Any
        found = [f"{path}.{key}" for key in actual if key not in desired]
        for key, value in desired.items():
            sub = f"{path}.{key}"
            found += differences(value, actual[key], item, sub, echoed_only) if key in actual else [sub]
        return found
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return [path or "."]
        item = typing.get_args(cls)[0] if origin is list and typing.get_args(cls) else Any
        found = []
        for i, (want, have) in enumerate(zip(desired, actual, strict=True)):
            found += differences(want, have, item, f"{path}[{i}]", echoed_only)
        return found
    return [] if _same_scalar(desired, actual) else [path or "."]


def top_fields(paths: list[str]) -> list[str]:
    """The top-level fields of difference paths: `tasks[0].libraries` -> `tasks`."""
    return sorted({p.split(".")[0].split("[")[0] for p in paths})


def _unwrap(cls: Any) -> Any:
    if typing.get_origin(cls) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(cls) if a is not type(None)]
        return options[0] if len(options) == 1 else Any
    return cls


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value is False


def _same_scalar(desired: Any, actual: Any) -> bool:
    if isinstance(desired, bool) or isinstance(actual, bool):
        return type(desired) is type(actual) and desired == actual
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        return float(desired) == float(actual)
    return desired == actual
