"""The fake's cloud storage: a blob store behind presigned URLs, as S3 serves them.

MLflow's Databricks clients never write artifacts through the workspace API: they ask it for a URL signed for
one method, one object and a short time, then PUT or GET the bytes there without workspace credentials
(mlflow/store/artifact/databricks_artifact_repo.py `_signed_url_upload_file`, `_download_from_cloud`;
presigned_url_artifact_repo.py `_upload_to_cloud`). Of the credential types MLflow knows
(`ArtifactCredentialType` in mlflow/protos/databricks_artifacts.proto), the fake hands out
`AWS_PRESIGNED_URL`: its client is a plain HTTP PUT/GET
(mlflow.utils.request_utils.cloud_storage_http_request), no cloud SDK; Azure SAS URIs need MLflow's
block-list protocol and GCP the same plain HTTP, so nothing more would be exercised.

URLs look like S3 query-string authentication
(https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html): `X-Amz-Date`, `X-Amz-Expires`,
`X-Amz-Signature`, the signature covering method, object key, date and expiry (an HMAC with a secret of this
fake only). A wrong signature, a URL used for another method or object, or an expired one is refused with 403
and S3's XML error body (`SignatureDoesNotMatch`, `AccessDenied` "Request has expired"); a missing object is
404 `NoSuchKey` (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html). The bucket is
`fake-cloud-storage` on the fake's own host and port, so the fake sees (and logs) every transfer.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import secrets
import time
import urllib.parse
from dataclasses import dataclass

from .common import Context, Raw, Request, now_ms

PREFIX = "/fake-cloud-storage/"
_XML = "application/xml"


@dataclass
class Blob:
    data: bytes
    modified_ms: int


class BlobStore:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.blobs: dict[str, Blob] = {}
        self._secret = secrets.token_bytes(32)

    # ---- for the API modules (under the state lock) -------------------------------------------------
    def sign(self, method: str, key: str, seconds: int | None = None) -> str:
        """A URL that allows `method` on object `key` for `seconds` (settings.presigned_url_seconds)."""
        key = key.lstrip("/")
        expires = int(seconds if seconds is not None else self.ctx.settings.presigned_url_seconds)
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(method, key, date, str(expires)),
        }
        path = urllib.parse.quote(PREFIX + key)
        return f"{self.ctx.base_url}{path}?{urllib.parse.urlencode(query)}"

    def put(self, key: str, data: bytes) -> None:
        self.blobs[key.lstrip("/")] = Blob(bytes(data), now_ms())

    def get(self, key: str) -> Blob | None:
        return self.blobs.get(key.lstrip("/"))

    def children(self, prefix: str) -> dict[str, Blob | None] | None:
        """The children of folder `prefix`: name -> Blob (a file) or None (a folder); None if absent."""
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        found: dict[str, Blob | None] = {}
        for key, blob in self.blobs.items():
            if not key.startswith(prefix):
                continue
            head, sep, _ = key[len(prefix) :].partition("/")
            if sep:
                found.setdefault(head, None)
            else:
                found[head] = blob
        return found if found else None

    def files_under(self, prefix: str) -> dict[str, Blob]:
        """Every object below folder `prefix`, by path relative to it."""
        prefix = prefix.strip("/") + "/"
        return {k[len(prefix) :]: b for k, b in self.blobs.items() if k.startswith(prefix)}

    def listing(self, root: str, path: str) -> list[dict]:
        """MLflow's ListArtifacts rows: the children of `path` (relative to `root`), or that one file."""
        path = path.strip("/")
        blob = self.get(f"{root}/{path}") if path else None
        if blob is not None:
            return [{"path": path, "is_dir": False, "file_size": len(blob.data)}]
        rows = []
        for name, child in sorted((self.children(f"{root}/{path}" if path else root) or {}).items()):
            row: dict = {"path": f"{path}/{name}" if path else name, "is_dir": child is None}
            if child is not None:
                row["file_size"] = len(child.data)
            rows.append(row)
        return rows

    def copy_tree(self, source: str, target: str) -> int:
        files = self.files_under(source)
        for relative, blob in files.items():
            self.blobs[f"{target.strip('/')}/{relative}"] = Blob(blob.data, now_ms())
        return len(files)

    def dump(self) -> dict[str, dict]:
        return {
            key: {"size": len(b.data), "sha256": hashlib.sha256(b.data).hexdigest()}
            for key, b in sorted(self.blobs.items())
        }

    # ---- the storage endpoint itself ------------------------------------------------------------------
    def handle(self, req: Request) -> Raw:
        key = urllib.parse.unquote(req.path[len(PREFIX) :])
        refused = self._refusal(req, key)
        if refused is not None:
            return refused
        if req.method == "PUT":
            with self.ctx.lock:
                self.put(key, req.raw)
            return Raw(b"", "application/octet-stream", 200)
        if req.method in ("GET", "HEAD"):
            with self.ctx.lock:
                blob = self.get(key)
            if blob is None:
                return _s3_error(404, "NoSuchKey", "The specified key does not exist.", key)
            return Raw(blob.data, "application/octet-stream", 200)
        message = "The specified method is not allowed against this resource."
        return _s3_error(405, "MethodNotAllowed", message)

    def _refusal(self, req: Request, key: str) -> Raw | None:
        date, expires, signature = (req.arg(k) for k in ("X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature"))
        if not (date and expires and signature):
            return _s3_error(403, "AccessDenied", "Access Denied")
        method = "GET" if req.method == "HEAD" else req.method
        expected = self._signature(method, key, date, expires)
        if not hmac.compare_digest(expected, signature):
            return _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        try:
            signed_at = calendar.timegm(time.strptime(date, "%Y%m%dT%H%M%SZ"))
            expired = time.time() > signed_at + int(expires)
        except ValueError:
            expired = True
        if expired:
            return _s3_error(403, "AccessDenied", "Request has expired")
        return None

    def _signature(self, method: str, key: str, date: str, expires: str) -> str:
        text = f"{method.upper()}\n/{key.lstrip('/')}\n{date}\n{expires}".encode()
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()


def _s3_error(status: int, code: str, message: str, key: str | None = None) -> Raw:
    extra = f"<Key>{key}</Key>" if key else ""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Raw(body.encode(), _XML, status)
