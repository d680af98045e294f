"""The project's own wheel: built with `uv build --wheel`, named on the workspace by a hash of its content.

The hash covers the names and bytes of the wheel's members, not the zip file, so the same sources give the
same hash whatever timestamps a build writes; a changed wheel gets a new workspace path, so a cluster never
keeps a stale copy under an old name.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lakeforge.errors import LakeforgeError


@dataclass(frozen=True)
class Wheel:
    filename: str
    digest: str  # sha256 of the members, hex
    content: bytes = field(repr=False)

    def workspace_path(self, workspace_root: str) -> str:
        return f"{workspace_root}/dist/{self.digest[:16]}/{self.filename}"


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
        result = subprocess.run(
            [uv, "build", "--wheel", "--quiet", "--out-dir", out, str(project_dir)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        built = sorted(Path(out).glob("*.whl"))
        if result.returncode != 0 or len(built) != 1:
            detail = " ".join((result.stderr or result.stdout).split())[-300:]
            raise LakeforgeError(f"wheel: `uv build --wheel` failed in {project_dir}: {detail}")
        path = built[0]
        return Wheel(filename=path.name, digest=content_digest(path), content=path.read_bytes())


def content_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(archive.read(name)).digest())
    return digest.hexdigest()
