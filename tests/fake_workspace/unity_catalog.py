"""The Unity Catalog part bootstrap uses: catalogs and schemas (read, create a schema with its comment and
properties) and registered models.

Names are case-insensitive (kept lower-case). A fresh fake has catalog `main` with schema `default`; more can
be seeded. Errors as the real service: 404 CATALOG_DOES_NOT_EXIST / SCHEMA_DOES_NOT_EXIST /
RESOURCE_DOES_NOT_EXIST, 409 ALREADY_EXISTS for an existing model (the SDK maps it to AlreadyExists, a
ResourceConflict).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from .common import Context, Request, now_ms, page
from .errors import ApiError, does_not_exist, invalid

METASTORE_ID = "11111111-2222-3333-4444-555555555555"
MODELS = "/api/2.1/unity-catalog/models"


class UnityCatalog:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.catalogs: dict[str, dict] = {}
        self.schemas: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        # Set by uc_registry.py, which holds the models' versions and aliases.
        self.aliases_of: Callable[[str], list[dict]] = lambda full_name: []
        self.on_model_deleted: Callable[[str], None] = lambda full_name: None
        self.add_catalog("main")
        self.add_schema("main", "default")

    def routes(self):
        return [
            ("GET", "/api/2.1/unity-catalog/catalogs", self.list_catalogs),
            ("POST", "/api/2.1/unity-catalog/schemas", self.create_schema),
            ("POST", MODELS, self.create_model),
            ("GET", MODELS, self.list_models),
        ]

    def prefix_routes(self):
        return [
            ("GET", "/api/2.1/unity-catalog/catalogs/", self.get_catalog),
            ("GET", "/api/2.1/unity-catalog/schemas/", self.get_schema),
            ("GET", MODELS + "/", self.get_model),
            ("PATCH", MODELS + "/", self.update_model),
            ("DELETE", MODELS + "/", self.delete_model),
        ]

    # ---- catalogs and schemas -------------------------------------------------------------------------
    def add_catalog(self, name: str) -> dict:
        name = name.lower()
        info = {
            "name": name,
            "full_name": name,
            "owner": self.ctx.settings.user,
            "catalog_type": "MANAGED_CATALOG",
            "metastore_id": METASTORE_ID,
            "created_at": now_ms(),
            "created_by": self.ctx.settings.user,
            "securable_type": "CATALOG",
            "isolation_mode": "OPEN",
        }
        self.catalogs.setdefault(name, info)
        return self.catalogs[name]

    def add_schema(
        self, catalog: str, name: str, comment: str | None = None, properties: dict[str, str] | None = None
    ) -> dict:
        catalog, name = catalog.lower(), name.lower()
        self._catalog(catalog)
        full_name = f"{catalog}.{name}"
        if full_name in self.schemas:
            raise ApiError(409, "SCHEMA_ALREADY_EXISTS", f"Schema '{full_name}' already exists")
        info = {
            "name": name,
            "catalog_name": catalog,
            "full_name": full_name,
            "owner": self.ctx.settings.user,
            "metastore_id": METASTORE_ID,
            "schema_id": str(uuid.uuid4()),
            "created_at": now_ms(),
            "created_by": self.ctx.settings.user,
            "securable_type": "SCHEMA",
        }
        if comment:
            info["comment"] = comment
        if properties:
            info["properties"] = {str(k): str(v) for k, v in properties.items()}
        self.schemas[full_name] = info
        return info

    def list_catalogs(self, req: Request) -> dict:
        return {"catalogs": list(self.catalogs.values())}

    def get_catalog(self, req: Request, name: str) -> dict:
        return self._catalog(name.lower())

    def create_schema(self, req: Request) -> dict:
        catalog, name = str(req.need("catalog_name")), str(req.need("name"))
        return self.add_schema(catalog, name, req.body.get("comment"), req.body.get("properties"))

    def get_schema(self, req: Request, full_name: str) -> dict:
        return self._schema(full_name.lower())

    # ---- registered models ----------------------------------------------------------------------------
    def create_model(self, req: Request) -> dict:
        catalog, schema, name = (str(req.need(k)).lower() for k in ("catalog_name", "schema_name", "name"))
        return self.add_model(catalog, schema, name, req.body.get("comment"))

    def add_model(self, catalog: str, schema: str, name: str, comment: str | None = None) -> dict:
        self._schema(f"{catalog}.{schema}")
        if "." in name or "/" in name:
            raise invalid(f"Invalid name '{name}': a model name cannot contain '.' or '/'.")
        full_name = f"{catalog}.{schema}.{name}"
        if full_name in self.models:
            raise ApiError(409, "ALREADY_EXISTS", f"Registered model '{full_name}' already exists")
        now, user = now_ms(), self.ctx.settings.user
        info: dict[str, Any] = {
            "name": name,
            "catalog_name": catalog,
            "schema_name": schema,
            "full_name": full_name,
            "owner": user,
            "created_at": now,
            "created_by": user,
            "updated_at": now,
            "updated_by": user,
            "metastore_id": METASTORE_ID,
            "securable_type": "FUNCTION",
            "storage_location": f"s3://fake-metastore/models/{uuid.uuid4()}",
        }
        if comment:
            info["comment"] = comment
        self.models[full_name] = info
        return info

    def get_model(self, req: Request, full_name: str) -> dict:
        info = dict(self._model(full_name))
        if req.flag("include_aliases"):
            info["aliases"] = self.aliases_of(info["full_name"])
        return info

    def update_model(self, req: Request, full_name: str) -> dict:
        info = self._model(full_name)
        for key in ("comment", "owner"):
            if key in req.body:
                info[key] = req.body[key]
        info["updated_at"] = now_ms()
        return dict(info)

    def delete_model(self, req: Request, full_name: str) -> dict:
        info = self._model(full_name)
        del self.models[info["full_name"]]
        self.on_model_deleted(info["full_name"])
        return {}

    def list_models(self, req: Request) -> dict:
        catalog, schema = req.arg("catalog_name"), req.arg("schema_name")
        rows = [
            m
            for _, m in sorted(self.models.items())
            if (not catalog or m["catalog_name"] == catalog.lower())
            and (not schema or m["schema_name"] == schema.lower())
        ]
        size = min(
            req.int_arg("max_results", 0) or self.ctx.settings.max_page_size, self.ctx.settings.max_page_size
        )
        chunk, next_token, _ = page(rows, req.arg("page_token"), size)
        answer: dict[str, Any] = {"registered_models": chunk}
        if next_token:
            answer["next_page_token"] = next_token
        return answer

    # ---- helpers --------------------------------------------------------------------------------------
    def _catalog(self, name: str) -> dict:
        found = self.catalogs.get(name)
        if found is None:
            raise ApiError(404, "CATALOG_DOES_NOT_EXIST", f"Catalog '{name}' does not exist.")
        return found

    def _schema(self, full_name: str) -> dict:
        catalog = full_name.split(".", 1)[0]
        self._catalog(catalog)
        found = self.schemas.get(full_name)
        if found is None:
            raise ApiError(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{full_name}' does not exist.")
        return found

    def _model(self, full_name: str) -> dict:
        found = self.models.get(full_name.lower())
        if found is None:
            raise does_not_exist(f"Routine or Model '{full_name}' does not exist.")
        return found

    def dump(self) -> dict:
        return {
            "catalogs": sorted(self.catalogs),
            "schemas": sorted(self.schemas),
            "models": dict(self.models),
        }
