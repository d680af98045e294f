"""MLflow's Unity Catalog model registry (registry URI `databricks-uc`): `/api/2.0/mlflow/unity-catalog/*`.

MLflow 3.17's client for it is mlflow/store/_unity_catalog/registry/rest_store.py (UcModelRegistryStore; the
endpoints are those of mlflow/protos/databricks_uc_registry_service.proto; the `/api/2.1` "native" variant is
used only with MLFLOW_ENABLE_UC_NATIVE_MODEL_REGISTRY, off by default). What it does, and this fake answers:

- `registered-models/create` (400 RESOURCE_ALREADY_EXISTS when it exists: `mlflow.register_model` accepts that
  and ALREADY_EXISTS, mlflow/tracking/_model_registry/fluent.py), `get`, `update`, `delete`, `search`,
  `set-tag`, `delete-tag`; `alias` POST / GET / DELETE.
- `model-versions/create` answers a version in PENDING_REGISTRATION; the client then asks
  `registered-models:is-databricks-sdk-models-artifact-repository-enabled` (false here) and
  `model-versions/generate-temporary-credentials`, which answers `storage_mode: DEFAULT_STORAGE`: MLflow then
  uploads through PresignedUrlArtifactRepository and the Files API's presigned URLs (artifacts.py) rather
  than with AWS/Azure/GCP credentials, which would need boto3 / azure-storage / google-cloud-storage
  (`_get_artifact_repo`, mlflow/utils/_unity_catalog_utils.py `get_artifact_repo_from_storage_info`). Then
  `model-versions/finalize` turns it READY. Reading a version (models:/name/1 or @alias) asks for READ
  credentials and downloads the same way (unity_catalog_models_artifact_repo.py).
- `model-versions/get`, `get-download-uri`, `search`, `update`, `delete`, `set-tag`, `delete-tag`.

Tag keys: Unity Catalog refuses model and model-version tag keys containing any of `. , - = / :` with 400
INVALID_PARAMETER_VALUE "Tag name <key> contains one or more of the reserved characters: List(., ,, -, =, /,
:)" (the wording as real workspaces answer it: mlflow/recipes-examples#58 for a model version tag set by
MLflow, databricks-demos/dbdemos#250 for UC tags in general).

Registered models are Unity Catalog securables, shared with unity_catalog.py
(`/api/2.1/unity-catalog/models`): a model made by bootstrap through the SDK is the model MLflow registers
versions in.
"""

from __future__ import annotations

import re
from typing import Any

from .common import Context, Request, now_ms
from .errors import ApiError, does_not_exist, invalid, invalid_state
from .unity_catalog import UnityCatalog

PREFIX = "/api/2.0/mlflow/unity-catalog/"
RESERVED = re.compile(r"[.,\-=/:]")
RESERVED_MESSAGE = "Tag name {key} contains one or more of the reserved characters: List(., ,, -, =, /, :)"
STATUSES = ("PENDING_REGISTRATION", "READY", "FAILED_REGISTRATION")


def check_tag_key(key: Any) -> str:
    if not key:
        raise invalid("Missing required field: key")
    if RESERVED.search(str(key)):
        raise invalid(RESERVED_MESSAGE.format(key=key))
    return str(key)


class UcRegistry:
    def __init__(self, ctx: Context, uc: UnityCatalog):
        self.ctx = ctx
        self.uc = uc
        # full name -> {version number: model version}, {alias: number}, {tag key: value}
        self.versions: dict[str, dict[int, dict]] = {}
        self.aliases: dict[str, dict[str, int]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        uc.aliases_of = self._alias_list
        uc.on_model_deleted = self._forget

    def routes(self):
        p = PREFIX
        return [
            ("POST", p + "registered-models/create", self.create_model),
            ("GET", p + "registered-models/get", self.get_model),
            ("PATCH", p + "registered-models/update", self.update_model),
            ("DELETE", p + "registered-models/delete", self.delete_model),
            ("GET", p + "registered-models/search", self.search_models),
            ("POST", p + "registered-models/set-tag", self.set_model_tag),
            ("DELETE", p + "registered-models/delete-tag", self.delete_model_tag),
            ("POST", p + "registered-models/alias", self.set_alias),
            ("GET", p + "registered-models/alias", self.get_by_alias),
            ("DELETE", p + "registered-models/alias", self.delete_alias),
            (
                "GET",
                p + "registered-models:is-databricks-sdk-models-artifact-repository-enabled",
                self.sdk_repo_enabled,
            ),
            ("POST", p + "model-versions/create", self.create_version),
            ("POST", p + "model-versions/generate-temporary-credentials", self.credentials),
            ("POST", p + "model-versions/finalize", self.finalize),
            ("GET", p + "model-versions/get", self.get_version),
            ("GET", p + "model-versions/get-download-uri", self.download_uri),
            ("GET", p + "model-versions/search", self.search_versions),
            ("PATCH", p + "model-versions/update", self.update_version),
            ("DELETE", p + "model-versions/delete", self.delete_version),
            ("POST", p + "model-versions/set-tag", self.set_version_tag),
            ("DELETE", p + "model-versions/delete-tag", self.delete_version_tag),
        ]

    # ---- registered models ----------------------------------------------------------------------------
    def create_model(self, req: Request) -> dict:
        catalog, schema, name = self._split(str(req.need("name")))
        tags = {check_tag_key(t.get("key")): str(t.get("value", "")) for t in req.body.get("tags") or []}
        full_name = f"{catalog}.{schema}.{name}"
        if full_name in self.uc.models:
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Registered model '{full_name}' already exists.")
        self.uc.add_model(catalog, schema, name, req.body.get("description"))
        self.tags[full_name] = tags
        return {"registered_model": self._model_json(full_name)}

    def get_model(self, req: Request) -> dict:
        return {"registered_model": self._model_json(self._model(req)["full_name"])}

    def update_model(self, req: Request) -> dict:
        info = self._model(req)
        if "description" in req.body:
            info["comment"] = req.body["description"]
        info["updated_at"] = now_ms()
        return {"registered_model": self._model_json(info["full_name"])}

    def delete_model(self, req: Request) -> dict:
        info = self._model(req)
        del self.uc.models[info["full_name"]]
        self._forget(info["full_name"])
        return {}

    def search_models(self, req: Request) -> dict:
        return {"registered_models": [self._model_json(n) for n in sorted(self.uc.models)]}

    def set_model_tag(self, req: Request) -> dict:
        info = self._model(req)
        key = check_tag_key(req.body.get("key"))
        self.tags.setdefault(info["full_name"], {})[key] = str(req.body.get("value", ""))
        return {}

    def delete_model_tag(self, req: Request) -> dict:
        info = self._model(req)
        key = req.arg("key")
        if key not in self.tags.get(info["full_name"], {}):
            raise does_not_exist(f"Tag '{key}' does not exist on registered model '{info['full_name']}'.")
        del self.tags[info["full_name"]][key]
        return {}

    def sdk_repo_enabled(self, req: Request) -> dict:
        return {"is_databricks_sdk_models_artifact_repository_enabled": False}

    # ---- aliases --------------------------------------------------------------------------------------
    def set_alias(self, req: Request) -> dict:
        info = self._model(req)
        alias = str(req.need("alias"))
        version = self._version(info["full_name"], req.need("version"))
        self.aliases.setdefault(info["full_name"], {})[alias.lower()] = int(version["version"])
        self._touch(info["full_name"])
        return {}

    def get_by_alias(self, req: Request) -> dict:
        info = self._model(req)
        alias = str(req.need("alias")).lower()
        number = self.aliases.get(info["full_name"], {}).get(alias)
        if number is None:
            raise does_not_exist(f"Alias '{alias}' does not exist on registered model '{info['full_name']}'.")
        return {"model_version": self._version_json(info["full_name"], number)}

    def delete_alias(self, req: Request) -> dict:
        info = self._model(req)
        alias = str(req.need("alias")).lower()
        if self.aliases.get(info["full_name"], {}).pop(alias, None) is None:
            raise does_not_exist(f"Alias '{alias}' does not exist on registered model '{info['full_name']}'.")
        return {}

    # ---- model versions -------------------------------------------------------------------------------
    def create_version(self, req: Request) -> dict:
        info = self._model(req)
        full_name = info["full_name"]
        source = str(req.need("source"))
        tags = {check_tag_key(t.get("key")): str(t.get("value", "")) for t in req.body.get("tags") or []}
        versions = self.versions.setdefault(full_name, {})
        number = max(versions, default=0) + 1
        now = now_ms()
        versions[number] = {
            "name": full_name,
            "version": str(number),
            "creation_timestamp": now,
            "last_updated_timestamp": now,
            "user_id": self.ctx.settings.user,
            "description": req.body.get("description") or "",
            "source": source,
            "run_id": req.body.get("run_id") or "",
            "run_tracking_server_id": req.body.get("run_tracking_server_id") or "",
            "model_id": req.body.get("model_id") or "",
            "status": "PENDING_REGISTRATION",
            "storage_location": f"{info['storage_location']}/versions/{number}",
            "_tags": tags,
        }
        return {"model_version": self._version_json(full_name, number)}

    def credentials(self, req: Request) -> dict:
        info = self._model(req)
        version = self._version(info["full_name"], req.need("version"))
        operation = str(req.arg("operation") or "")
        if operation == "MODEL_VERSION_OPERATION_READ_WRITE" and version["status"] != "PENDING_REGISTRATION":
            # The fake's rule (as storage is immutable once a version is READY): writes only while pending.
            raise invalid_state(
                f"Model version {version['version']} of '{info['full_name']}' is {version['status']}: "
                "its files can no longer be written."
            )
        expiry = now_ms() + self.ctx.settings.presigned_url_seconds * 1000
        return {"credentials": {"storage_mode": "DEFAULT_STORAGE", "expiration_time": expiry}}

    def finalize(self, req: Request) -> dict:
        info = self._model(req)
        version = self._version(info["full_name"], req.need("version"))
        if version["status"] == "PENDING_REGISTRATION":
            version["status"] = "READY"
            version["last_updated_timestamp"] = now_ms()
        return {"model_version": self._version_json(info["full_name"], int(version["version"]))}

    def get_version(self, req: Request) -> dict:
        info = self._model(req)
        version = self._version(info["full_name"], req.need("version"))
        return {"model_version": self._version_json(info["full_name"], int(version["version"]))}

    def download_uri(self, req: Request) -> dict:
        info = self._model(req)
        return {"artifact_uri": self._version(info["full_name"], req.need("version"))["storage_location"]}

    def search_versions(self, req: Request) -> dict:
        wanted = re.search(r"name\s*=\s*['\"]([^'\"]+)['\"]", req.arg("filter") or "")
        names = [wanted.group(1).lower()] if wanted else sorted(self.versions)
        rows = [
            self._version_json(name, number)
            for name in names
            for number in sorted(self.versions.get(name, {}), reverse=True)
        ]
        return {"model_versions": rows}

    def update_version(self, req: Request) -> dict:
        info = self._model(req)
        version = self._version(info["full_name"], req.need("version"))
        if "description" in req.body:
            version["description"] = req.body["description"]
        version["last_updated_timestamp"] = now_ms()
        return {"model_version": self._version_json(info["full_name"], int(version["version"]))}

    def delete_version(self, req: Request) -> dict:
        info = self._model(req)
        version = self._version(info["full_name"], req.need("version"))
        number = int(version["version"])
        del self.versions[info["full_name"]][number]
        aliases = self.aliases.get(info["full_name"], {})
        for alias in [a for a, n in aliases.items() if n == number]:
            del aliases[alias]
        return {}

    def set_version_tag(self, req: Request) -> dict:
        info = self._model(req)
        version = self._version(info["full_name"], req.need("version"))
        key = check_tag_key(req.body.get("key"))
        version["_tags"][key] = str(req.body.get("value", ""))
        version["last_updated_timestamp"] = now_ms()
        return {}

    def delete_version_tag(self, req: Request) -> dict:
        info = self._model(req)
        version = self._version(info["full_name"], req.need("version"))
        key = req.arg("key")
        if version["_tags"].pop(key, None) is None:
            raise does_not_exist(f"Tag '{key}' does not exist on model version {version['version']}.")
        return {}

    # ---- for the Files API (artifacts.py) -------------------------------------------------------------
    def check_writable(self, path: str) -> None:
        """Raise unless `Models/<catalog>/<schema>/<model>/<version>/...` names a version being registered."""
        parts = path.strip("/").split("/")
        if len(parts) < 6 or parts[0] != "Models":
            raise ApiError(403, "PERMISSION_DENIED", f"Writing to '/{path}' is not allowed.")
        full_name = ".".join(parts[1:4]).lower()
        if full_name not in self.uc.models:
            raise does_not_exist(f"Routine or Model '{full_name}' does not exist.")
        version = self._version(full_name, parts[4])
        if version["status"] != "PENDING_REGISTRATION":
            raise invalid_state(
                f"Model version {version['version']} of '{full_name}' is {version['status']}: "
                "its files can no longer be written."
            )

    def dump(self) -> dict:
        return {
            name: {
                "versions": {str(n): self._version_json(name, n) for n in sorted(versions)},
                "aliases": dict(self.aliases.get(name, {})),
                "tags": dict(self.tags.get(name, {})),
            }
            for name, versions in sorted(self.versions.items())
        }

    # ---- helpers --------------------------------------------------------------------------------------
    def _split(self, full_name: str) -> tuple[str, str, str]:
        parts = full_name.lower().split(".")
        if len(parts) != 3 or not all(parts):
            raise invalid(
                f"Invalid model name '{full_name}': please specify all three levels of the name "
                "(<catalog>.<schema>.<model>)."
            )
        self.uc._schema(f"{parts[0]}.{parts[1]}")
        return parts[0], parts[1], parts[2]

    def _model(self, req: Request) -> dict:
        name = str(req.need("name"))
        catalog, schema, model = self._split(name)
        return self.uc._model(f"{catalog}.{schema}.{model}")

    def _version(self, full_name: str, number: Any) -> dict:
        try:
            found = self.versions.get(full_name, {}).get(int(str(number)))
        except ValueError:
            raise invalid(f"Invalid model version '{number}': a version is a positive integer.") from None
        if found is None:
            raise does_not_exist(f"Model version {number} of '{full_name}' does not exist.")
        return found

    def _touch(self, full_name: str) -> None:
        self.uc.models[full_name]["updated_at"] = now_ms()

    def _alias_list(self, full_name: str) -> list[dict]:
        return [
            {"alias_name": alias, "version_num": number}
            for alias, number in sorted(self.aliases.get(full_name, {}).items())
        ]

    def _forget(self, full_name: str) -> None:
        for table in (self.versions, self.aliases, self.tags):
            table.pop(full_name, None)

    def _model_json(self, full_name: str) -> dict:
        info = self.uc.models[full_name]
        return {
            "name": full_name,
            "creation_timestamp": info["created_at"],
            "last_updated_timestamp": info["updated_at"],
            "user_id": info["created_by"],
            "description": info.get("comment", ""),
            "aliases": [
                {"alias": a, "version": str(n)} for a, n in sorted(self.aliases.get(full_name, {}).items())
            ],
            "tags": [{"key": k, "value": v} for k, v in sorted(self.tags.get(full_name, {}).items())],
        }

    def _version_json(self, full_name: str, number: int) -> dict:
        version = self.versions[full_name][number]
        answer = {k: v for k, v in version.items() if not k.startswith("_")}
        answer["tags"] = [{"key": k, "value": v} for k, v in sorted(version["_tags"].items())]
        aliases = sorted(self.aliases.get(full_name, {}).items())
        answer["aliases"] = [{"alias": a, "version": str(n)} for a, n in aliases if n == number]
        return answer
