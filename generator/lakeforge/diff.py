"""Compare a desired API payload with what the workspace reports, on the fields the payload specifies.

The rule follows the SDK's types: a map (`Dict[str, str]`: custom_tags, spark_conf, tags) belongs to the user,
so it must be equal; an object (a dataclass: autoscale, azure_attributes, notebook_task) may carry fields the
server filled in, so only the keys the desired side gives are compared; a list is compared item by item and
must have the same length. Keys the desired side does not give are the server's and never count.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def differences(desired: Any, actual: Any, cls: Any, path: str = "") -> list[str]:
    """Paths (like `autoscale.max_workers`) where `actual` does not match `desired`; empty when equal."""
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
                if not _empty(value):
                    found.append(sub)
                continue
            found += differences(value, actual[key], hints.get(key, Any), sub)
        return found
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return [path or "."]
        item = typing.get_args(cls)[1] if origin is dict and typing.get_args(cls) else Any
        found = [f"{path}.{key}" for key in actual if key not in desired]
        for key, value in desired.items():
            sub = f"{path}.{key}"
            found += differences(value, actual[key], item, sub) if key in actual else [sub]
        return found
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return [path or "."]
        item = typing.get_args(cls)[0] if origin is list and typing.get_args(cls) else Any
        found = []
        for i, (want, have) in enumerate(zip(desired, actual, strict=True)):
            found += differences(want, have, item, f"{path}[{i}]")
        return found
    return [] if _same_scalar(desired, actual) else [path or "."]


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
