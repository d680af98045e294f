"""Secrets API 2.0: scopes and keys. Values are kept but never answered (the state dump shows a sha256)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from .common import Context, Request, now_ms
from .errors import already_exists, does_not_exist, invalid

_NAME = re.compile(r"^[\w.@-]{1,128}$")
MAX_VALUE = 128 * 1024


class Secrets:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        # scope -> {"backend_type": ..., "secrets": {key: (value bytes, last_updated_timestamp)}}
        self.scopes: dict[str, dict] = {}

    def routes(self):
        return [
            ("POST", "/api/2.0/secrets/scopes/create", self.create_scope),
            ("GET", "/api/2.0/secrets/scopes/list", self.list_scopes),
            ("POST", "/api/2.0/secrets/scopes/delete", self.delete_scope),
            ("POST", "/api/2.0/secrets/put", self.put),
            ("GET", "/api/2.0/secrets/list", self.list),
            ("POST", "/api/2.0/secrets/delete", self.delete),
        ]

    def create_scope(self, req: Request) -> dict:
        scope = str(req.need("scope"))
        if not _NAME.match(scope):
            raise invalid(
                "Scope name must consist of alphanumeric characters, dashes, underscores, periods, and "
                "at signs, and may not exceed 128 characters."
            )
        backend = req.body.get("scope_backend_type") or "DATABRICKS"
        if backend != "DATABRICKS":
            raise invalid(f"The fake workspace supports only DATABRICKS-backed scopes, not {backend}.")
        self.add_scope(scope)
        return {}

    def add_scope(self, scope: str) -> None:
        if scope in self.scopes:
            raise already_exists(f"Scope {scope} already exists!")
        self.scopes[scope] = {"backend_type": "DATABRICKS", "secrets": {}}

    def list_scopes(self, req: Request) -> dict:
        scopes = [
            {"name": name, "backend_type": s["backend_type"]} for name, s in sorted(self.scopes.items())
        ]
        return {"scopes": scopes} if scopes else {}

    def delete_scope(self, req: Request) -> dict:
        scope = str(req.need("scope"))
        self._scope(scope)
        del self.scopes[scope]
        return {}

    def put(self, req: Request) -> dict:
        scope, key = str(req.need("scope")), str(req.need("key"))
        string_value, bytes_value = req.body.get("string_value"), req.body.get("bytes_value")
        if (string_value is None) == (bytes_value is None):
            raise invalid("Exactly one of string_value or bytes_value must be specified.")
        if string_value is not None:
            value = str(string_value).encode()
        else:
            try:
                value = base64.b64decode(str(bytes_value), validate=True)
            except (binascii.Error, ValueError):
                raise invalid("bytes_value is not valid base64.") from None
        self.put_value(scope, key, value)
        return {}

    def put_value(self, scope: str, key: str, value: bytes) -> None:
        if not _NAME.match(key):
            raise invalid(
                "Secret key must consist of alphanumeric characters, dashes, underscores, and periods, "
                "and may not exceed 128 characters."
            )
        if len(value) > MAX_VALUE:
            raise invalid(f"Secret value exceeds the maximum size of {MAX_VALUE} bytes.")
        self._scope(scope)["secrets"][key] = (value, now_ms())

    def list(self, req: Request) -> dict:
        secrets = self._scope(str(req.need("scope")))["secrets"]
        rows = [{"key": key, "last_updated_timestamp": ts} for key, (_, ts) in sorted(secrets.items())]
        return {"secrets": rows} if rows else {}

    def delete(self, req: Request) -> dict:
        scope, key = str(req.need("scope")), str(req.need("key"))
        secrets = self._scope(scope)["secrets"]
        if key not in secrets:
            raise does_not_exist(f"Secret {key} does not exist in scope {scope}!")
        del secrets[key]
        return {}

    def _scope(self, scope: str) -> dict:
        found = self.scopes.get(scope)
        if found is None:
            raise does_not_exist(f"Scope {scope} does not exist!")
        return found

    def dump(self) -> dict:
        return {
            name: {
                key: {"sha256": hashlib.sha256(value).hexdigest(), "last_updated_timestamp": ts}
                for key, (value, ts) in s["secrets"].items()
            }
            for name, s in self.scopes.items()
        }
