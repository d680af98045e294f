"""The project's own wheel: built with `uv build --wheel`, versioned and named by a hash of its content.

The hash covers the names and bytes of the wheel's members, not the zip file, so the same sources give the
same hash whatever timestamps a build writes. It goes into two places:

- the wheel's version, as a PEP 440 local version label: `0.1.0` is deployed as `0.1.0+<16 hex digits>`.
  A cluster installs a wheel library with pip, and pip skips a wheel whose name and version are already
  installed ("Requirement already satisfied"), while uninstalling an old library takes effect only at the
  next restart. With the content in the version, a changed wheel is a different version, which pip installs
  over the old one; an unchanged wheel keeps its version and is skipped.
- its workspace path, `<workspace_root>/dist/<16 hex digits>/<wheel>`.

The label is set on the built wheel, not in the project: the version the project's `pyproject.toml` declares
(static or dynamic) is kept, the `.dist-info` folder, `METADATA` and `RECORD` are rewritten as the binary
distribution format specifies, and nothing is written into the project.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lakeforge.errors import LakeforgeError

LABEL_LENGTH = 16  # hex digits of the content hash in the version label and the workspace path


@dataclass(frozen=True)
class Wheel:
    filename: str  # with the local version label: churn_model-0.1.0+1a2b3c4d5e6f7a8b-py3-none-any.whl
    digest: str  # sha256 of the members of the wheel as built (before the label is added), hex
    content: bytes = field(repr=False)
    version: str = ""  # the deployed version: the project's version, plus +<digest[:16]>

    def workspace_path(self, workspace_root: str) -> str:
        return f"{workspace_root}/dist/{self.digest[:LABEL_LENGTH]}/{self.filename}"


def find_uv() -> str | None:
    """The uv binary: the one installed with lakeforge, else one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def build_wheel(project_dir: Path) -> Wheel:
    """Build the project's wheel in a temporary folder (nothing is left in the project)."""
    uv = find_uv()
    if uv is None:
        raise LakeforgeError("cannot build the project's wheel: uv is not installed (pip install uv)")
    with tempfile.TemporaryDirectory(prefix="lakeforge-wheel-") as out:
        # Built with the interpreter lakeforge runs on: the wheel is pure Python, and uv would otherwise look
        # for (or download) one matching the project's requires-python, the cluster's Python.
        command = [uv, "build", "--wheel", "--quiet", "--python", sys.executable, "--out-dir", out]
        result = subprocess.run(
            [*command, str(project_dir)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        built = sorted(Path(out).glob("*.whl"))
        if result.returncode != 0 or len(built) != 1:
            detail = " ".join((result.stderr or result.stdout).split())[-300:]
            raise LakeforgeError(f"wheel: `uv build --wheel` failed in {project_dir}: {detail}")
        path = built[0]
        digest = content_digest(path)
        filename, version, content = with_local_version(path, digest[:LABEL_LENGTH])
        return Wheel(filename=filename, digest=digest, content=content, version=version)


def content_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(archive.read(name)).digest())
    return digest.hexdigest()


def with_local_version(path: Path, label: str) -> tuple[str, str, bytes]:
    """The wheel at `path` with `label` added to its version as a PEP 440 local version label.

    Returns the new file name, the new version and the new wheel's bytes. `1.0` becomes `1.0+label`, and a
    version that already has a local label, `1.0+cpu`, becomes `1.0+cpu.label`. The `.dist-info` (and any
    `.data`) folder is renamed, the `Version:` field of `METADATA` changed and `RECORD` written again with
    every member's sha256 and size; members keep their order, timestamps and permissions, so the same wheel
    and label always give the same bytes.
    """
    with zipfile.ZipFile(path) as source:
        members = source.infolist()
        infos = [
            m for m in members if m.filename.count("/") == 1 and m.filename.endswith(".dist-info/METADATA")
        ]
        if len(infos) != 1:
            raise LakeforgeError(f"wheel: {path.name} has no single .dist-info/METADATA")
        dist_info = infos[0].filename.split("/")[0]
        name, _, version = dist_info.removesuffix(".dist-info").partition("-")
        if not path.name.startswith(f"{name}-{version}-"):
            raise LakeforgeError(f"wheel: {path.name} does not match its metadata folder {dist_info}")
        new_version = f"{version}{'.' if '+' in version else '+'}{label}"
        renames = {
            f"{name}-{version}.dist-info/": f"{name}-{new_version}.dist-info/",
            f"{name}-{version}.data/": f"{name}-{new_version}.data/",
        }
        record_name = f"{name}-{new_version}.dist-info/RECORD"
        out = io.BytesIO()
        records: list[tuple[str, str, str]] = []
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
            record_info: zipfile.ZipInfo | None = None
            for member in members:
                new_name = member.filename
                for old, new in renames.items():
                    if new_name.startswith(old):
                        new_name = new + new_name[len(old) :]
                info = zipfile.ZipInfo(new_name, date_time=member.date_time)
                info.external_attr = member.external_attr
                info.compress_type = zipfile.ZIP_DEFLATED
                if new_name == record_name:
                    record_info = info
                    continue
                data = source.read(member)
                if new_name == f"{name}-{new_version}.dist-info/METADATA":
                    data = _set_metadata_version(data, version, new_version, path.name)
                target.writestr(info, data)
                if not new_name.endswith("/"):
                    records.append((new_name, f"sha256={_record_hash(data)}", str(len(data))))
            if record_info is None:
                raise LakeforgeError(f"wheel: {path.name} has no {dist_info}/RECORD")
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerows([*records, (record_name, "", "")])
            target.writestr(record_info, text.getvalue().encode("utf-8"))
    filename = f"{name}-{new_version}-" + path.name.removeprefix(f"{name}-{version}-")
    return filename, new_version, out.getvalue()


def _set_metadata_version(data: bytes, old: str, new: str, wheel: str) -> bytes:
    headers, sep, body = data.partition(b"\n\n")
    lines = headers.split(b"\n")
    at = [i for i, line in enumerate(lines) if line.rstrip(b"\r") == f"Version: {old}".encode()]
    if len(at) != 1:
        raise LakeforgeError(f"wheel: the METADATA of {wheel} has no single 'Version: {old}' field")
    lines[at[0]] = f"Version: {new}".encode()
    return b"\n".join(lines) + sep + body


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
