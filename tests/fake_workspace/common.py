"""What every API module of the fake shares: the parsed request, the settings tests change, ids, paging."""

from __future__ import annotations

import base64
import json
import random
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid, missing_field

WORKSPACE_ID = "1234567890123456"
OTHER_USER = "someone.else@example.com"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    raw: bytes = b""  # the body as sent, for the storage endpoint (not JSON)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, or else a body field (the SDK sends GET parameters in the query)."""
        values = self.query.get(name)
        if values:
            return values[0]
        value = self.body.get(name, default)
        return value if value is None else str(value)

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str) -> bool:
        value = self.arg(name)
        return str(value).lower() == "true"

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise invalid(f"Invalid value for {name}: {value!r} is not an integer") from None

    def need(self, name: str) -> Any:
        """A required body (or query) field."""
        value = self.body.get(name)
        if value is None:
            value = self.arg(name)
        if value is None or value == "":
            raise missing_field(name)
        return value


@dataclass
class Raw:
    """A non-JSON answer (a direct download)."""

    content: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class Settings:
    """Knobs a test changes through POST /__fake__/config; read under the state lock."""

    def __init__(self, token: str, user: str):
        self.token = token
        self.user = user
        self.client_id = "fake-client-id"
        self.client_secret = "fake-client-secret"
        self.latency = 0.0
        self.cluster_start_seconds = 0.5
        self.cluster_restart_seconds = 0.5
        self.cluster_stop_seconds = 0.2
        self.library_install_seconds = 0.2
        self.run_pending_seconds = 0.2
        self.run_seconds = 0.5
        self.max_page_size = 100
        self.presigned_url_seconds = 900  # how long a presigned storage URL stays valid
        self.files_api = True  # False: /api/2.0/fs/* answers 404 ENDPOINT_NOT_FOUND (but for /Models/ paths)
        # job name or str(job_id) -> "FAILED" | "TIMEDOUT" ...: the whole run's result, all tasks alike
        self.job_results: dict[str, str] = {}
        # job name or str(job_id) -> {task_key: "FAILED" | "TIMEDOUT"}: one task's result; the rest follow
        self.task_results: dict[str, dict[str, str]] = {}
        # job name or str(job_id) -> {task_key: {key: value}}: what dbutils.jobs.taskValues.set would have set
        self.task_values: dict[str, dict[str, dict[str, Any]]] = {}
        self.serverless = True  # False: a workspace without serverless jobs (a task needs a cluster)
        # dotted key names ("notebook_task.source") removed wherever they occur in jobs/clusters get and list
        self.drop_fields: list[str] = []
        self.serving_update_seconds = 0.5  # a serving endpoint's config update settles after this
        # endpoint name -> "UPDATE_FAILED" | "UPDATE_CANCELED": how that endpoint's config updates end
        self.serving_results: dict[str, str] = {}
        self.monitor_pending_seconds = 0.2  # a data profiling monitor is PENDING this long, then ACTIVE

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self, key) or key.startswith("_"):
                raise invalid(f"unknown fake setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, (dict, list)) and not isinstance(value, type(current)):
                raise invalid(f"fake setting {key!r} must be a {type(current).__name__}, got {value!r}")
            if key == "drop_fields" and not all(isinstance(name, str) and name for name in value):
                raise invalid(f"drop_fields must be a list of dotted key names, got {value!r}")
            if isinstance(current, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif isinstance(current, float):
                value = float(value)
            elif isinstance(current, int):
                value = int(value)
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("token", "client_secret")}


class Context:
    """The state lock, the settings and the id counters, handed to every API module."""

    def __init__(self, settings: Settings, base_url: str = ""):
        self.lock = threading.RLock()
        self.settings = settings
        self.base_url = base_url
        self._next_id = 1000
        self._random = random.Random()

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def big_id(self) -> int:
        """Jobs and runs have large numeric ids in real workspaces."""
        return 100_000_000_000_000 + self._random.randrange(10**12) * 1000 + self.next_id() % 1000

    def cluster_id(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        suffix = "".join(self._random.choice(alphabet) for _ in range(8))
        return time.strftime("%m%d-%H%M%S-", time.gmtime()) + suffix


def now_ms() -> int:
    return int(time.time() * 1000)


def drop_fields(answer: Any, names: list[str]) -> Any:
    """Remove every key path in `names` ("notebook_task.source", "data_security_mode") wherever it occurs.

    What an emulator that does not return some fields answers (issue 12: one drops notebook_task.source and
    data_security_mode), so a client's diff can be tested against it."""
    paths = [name.split(".") for name in names]

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for path in paths:
                parent = node
                for key in path[:-1]:
                    parent = parent.get(key) if isinstance(parent, dict) else None
                if isinstance(parent, dict):
                    parent.pop(path[-1], None)
            for value in node.values():
                walk(value)

    walk(answer)
    return answer


def page(items: list, token: str | None, size: int) -> tuple[list, str | None, str | None]:
    """Slice `items` from an opaque `token`; returns (page, next_token, prev_token)."""
    start = 0
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()).decode())["offset"])
        except (ValueError, KeyError, TypeError):
            raise invalid(f"Invalid page token: {token}") from None
    end = start + size

    def encode(offset: int) -> str:
        return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()

    next_token = encode(end) if end < len(items) else None
    prev_token = encode(max(0, start - size)) if start > 0 else None
    return items[start:end], next_token, prev_token
