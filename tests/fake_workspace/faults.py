"""Faults a test injects through POST /__fake__/faults.

One fault is a JSON object; which requests it hits is `match` (`method`, `path`: exact or a glob such as
`/api/2.0/workspace/*`; both optional), how often is `times` (default 1, -1 for ever) or `fail_on_call` (hit
the Nth matching call, then `times` more). What it does, in the order applied:
  `delay` (s)      wait before handling;
  `drop`           "before": close the connection without handling or answering;
                   "after": handle (the change happens), then close without answering - the lost answer;
                   true means "before";
  `status`         answer this error instead (`error_code`, `message` default to the real ones for the
                   status, `retry_after` adds a Retry-After header); with `apply: true` the request is handled
                   first and only its answer is replaced;
  `delay_after` (s) handle, then wait before answering (a slow answer to a change that already happened).
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import asdict, dataclass
from typing import Any

from .errors import DEFAULT_ERROR_CODES, ApiError, invalid

_KEYS = {
    "match",
    "method",
    "path",
    "status",
    "error_code",
    "message",
    "retry_after",
    "delay",
    "delay_after",
    "drop",
    "apply",
    "fail_on_call",
    "times",
}


@dataclass
class Fault:
    id: int
    method: str | None = None
    path: str | None = None
    status: int | None = None
    error_code: str | int | None = None
    message: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    delay_after: float = 0.0
    drop: str | None = None
    apply: bool = False
    fail_on_call: int | None = None
    times: int = 1
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not self.path or self.path == path or fnmatch.fnmatchcase(path, self.path)

    def eligible(self) -> bool:
        """Whether the call just counted in `seen` is one to hit."""
        if self.times != -1 and self.fired >= self.times:
            return False
        return self.fail_on_call is None or self.seen >= self.fail_on_call

    def error(self) -> ApiError:
        status = self.status or 500
        code, message = DEFAULT_ERROR_CODES.get(status, ("UNKNOWN", "Injected fault"))
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return ApiError(status, self.error_code or code, self.message or message, headers)

    def kind(self) -> str:
        parts = []
        if self.delay:
            parts.append(f"delay {self.delay}")
        if self.drop:
            parts.append(f"drop {self.drop}")
        if self.status:
            parts.append(f"status {self.status}" + (" applied" if self.apply else ""))
        if self.delay_after:
            parts.append(f"delay_after {self.delay_after}")
        return ", ".join(parts) or "none"


class FaultBook:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next = 0

    def add(self, spec: dict[str, Any]) -> Fault:
        unknown = set(spec) - _KEYS
        if unknown:
            raise invalid(f"unknown fault keys {sorted(unknown)}; known: {sorted(_KEYS)}")
        match = spec.get("match") or {}
        drop = spec.get("drop")
        if drop is True:
            drop = "before"
        if drop not in (None, False, "before", "after"):
            raise invalid("drop must be 'before', 'after' or true")
        times = spec.get("times", 1)
        if times is None:
            times = -1
        with self._lock:
            self._next += 1
            fault = Fault(
                id=self._next,
                method=match.get("method", spec.get("method")),
                path=match.get("path", spec.get("path")),
                status=spec.get("status"),
                error_code=spec.get("error_code"),
                message=spec.get("message"),
                retry_after=spec.get("retry_after"),
                delay=float(spec.get("delay", 0)),
                delay_after=float(spec.get("delay_after", 0)),
                drop=drop or None,
                apply=bool(spec.get("apply")),
                fail_on_call=spec.get("fail_on_call"),
                times=int(times),
            )
            if not (fault.status or fault.drop or fault.delay or fault.delay_after):
                raise invalid("a fault needs status, drop, delay or delay_after")
            self._faults.append(fault)
        return fault

    def pick(self, method: str, path: str) -> Fault | None:
        """The first fault that hits this call; every matching fault counts it."""
        chosen = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path):
                    continue
                fault.seen += 1
                if chosen is None and fault.eligible():
                    fault.fired += 1
                    chosen = fault
        return chosen

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]
