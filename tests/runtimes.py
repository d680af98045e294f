"""runtimes.yml, the supported Databricks runtimes, as the tests and benchmarks read it; and the proof that a
generated project's wheel installs on its runtime without changing a preinstalled package.

The proof, per runtime: build the wheel (`uv build --wheel`), read its Requires-Dist, then (a) check with
`packaging` that every requirement naming a preinstalled package admits the runtime's version, and (b) resolve
the requirements with uv's resolver for the runtime's Python against the runtime's versions as `==`
constraints: a resolution exists only if installing the wheel there can leave every preinstalled package as it
is, and each package of the resolved tree must be one runtimes.yml knows (preinstalled, or listed as not).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES_FILE = ROOT / "runtimes.yml"


@cache
def runtimes_data() -> dict[str, Any]:
    return yaml.safe_load(RUNTIMES_FILE.read_text())


def runtime_lines() -> list[dict[str, Any]]:
    """One entry per runtime line (e.g. 17.3 LTS ML), newest first, as in the file."""
    return runtimes_data()["runtimes"]


def spark_versions() -> list[str]:
    """Every supported `spark_version` key, CPU then GPU per line: the runtime question's choices."""
    return [key for line in runtime_lines() for key in (line["cpu"], line["gpu"])]


def default_spark_version() -> str:
    return runtimes_data()["default"]


def runtime_of(spark_version: str) -> dict[str, Any]:
    (line,) = [line for line in runtime_lines() if spark_version in (line["cpu"], line["gpu"])]
    return line


def node_type(cloud: str, spark_version: str) -> str:
    kind = "gpu" if "-gpu-ml-" in spark_version else "cpu"
    return runtimes_data()["node_types"][kind][cloud]


def question_choices(name: str, spec: dict[str, Any]) -> list[str]:
    """A copier question's choice values; the runtime question's come from runtimes.yml (a Jinja string)."""
    choices = spec.get("choices") or []
    if isinstance(choices, str):
        assert name == "databricks_runtime", f"{name}: templated choices the tests do not know"
        return spark_versions()
    return list(choices.values() if isinstance(choices, dict) else choices)


# ---- the proof ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One package of the wheel's resolved tree on one runtime."""

    name: str
    requirement: str  # the wheel's own requirement on it, "" for a package only depended on transitively
    runtime: str | None  # the preinstalled version, None if the runtime does not have it
    resolved: str

    @property
    def changed(self) -> bool:
        """A preinstalled package that installing the wheel would replace."""
        return self.runtime is not None and Version(self.resolved) != Version(self.runtime)

    @property
    def added(self) -> bool:
        """A package the runtime lacks, that installing the wheel would add."""
        return self.runtime is None


@dataclass
class Proof:
    spark_version: str
    python: str
    requires_python: str
    requirements: list[str]  # the wheel's Requires-Dist, base only (no extra)
    not_admitted: list[str] = field(default_factory=list)  # (a): requirement vs preinstalled version
    resolve_error: str = ""  # (b): uv's explanation when no resolution keeps every preinstalled version
    unknown: list[str] = field(default_factory=list)  # resolved packages runtimes.yml does not list
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.not_admitted or self.resolve_error or self.unknown or any(r.changed for r in self.rows)
        )


def uv_binary() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def build_wheel(project: Path, out: Path) -> Path:
    """The project's wheel, built with this interpreter (a pure-Python wheel needs no other)."""
    subprocess.run(
        [
            uv_binary(),
            "build",
            "--wheel",
            "--quiet",
            "--python",
            sys.executable,
            "--out-dir",
            str(out),
            str(project),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def wheel_metadata(wheel: Path) -> tuple[str, list[str]]:
    """(Requires-Python, Requires-Dist) of a wheel, read from its METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    headers = text.split("\n\n", 1)[0].splitlines()
    requires_python = next(
        (h.split(":", 1)[1].strip() for h in headers if h.startswith("Requires-Python:")), ""
    )
    requires = [h.split(":", 1)[1].strip() for h in headers if h.startswith("Requires-Dist:")]
    return requires_python, requires


def base_requirements(requires: list[str], python: str) -> list[Requirement]:
    """What installing the wheel itself installs: no extra, markers evaluated for the runtime's Python."""
    environment = {**default_environment(), "python_version": python, "python_full_version": f"{python}.0"}
    environment.update(sys_platform="linux", platform_system="Linux", os_name="posix", extra="")
    return [r for r in map(Requirement, requires) if r.marker is None or r.marker.evaluate(environment)]


def prove(project: Path, spark_version: str, scratch: Path) -> Proof:
    line = runtime_of(spark_version)
    packages = {canonicalize_name(n): str(v) for n, v in line["packages"].items()}
    absent = {canonicalize_name(n) for n in line.get("not_preinstalled", [])}
    wheel = build_wheel(project, scratch / "dist")
    requires_python, requires = wheel_metadata(wheel)
    requirements = base_requirements(requires, line["python"])
    proof = Proof(spark_version, line["python"], requires_python, [str(r) for r in requirements])

    # (a) every requirement on a preinstalled package admits the runtime's version.
    for requirement in requirements:
        version = packages.get(canonicalize_name(requirement.name))
        if version is not None and not requirement.specifier.contains(version, prereleases=True):
            proof.not_admitted.append(
                f"{requirement} does not admit the runtime's {requirement.name} {version}"
            )

    # (b) the real resolver, the runtime's versions as == constraints.
    requirements_in = scratch / "requirements.in"
    requirements_in.write_text("".join(f"{r}\n" for r in proof.requirements))
    constraints = scratch / "runtime.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(packages.items())))
    resolved_txt = scratch / "resolved.txt"
    done = subprocess.run(
        [
            uv_binary(), "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--no-config",
            "--python-version", line["python"], "--python-platform", "x86_64-manylinux_2_28",
            "--constraint", str(constraints), "--output-file", str(resolved_txt), str(requirements_in),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        proof.resolve_error = " ".join(done.stderr.split())[-1500:]
        return proof
    own = {canonicalize_name(r.name): str(r) for r in requirements}
    for item in resolved_txt.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", item)
        if not match:
            continue
        name, resolved = canonicalize_name(match[1]), match[2]
        if name not in packages and name not in absent:
            proof.unknown.append(f"{name}=={resolved}")
        proof.rows.append(Row(name, own.get(name, ""), packages.get(name), resolved))
    proof.rows.sort(key=lambda row: (row.requirement == "", row.name))
    return proof


def proof_table(proof: Proof) -> str:
    """The figures: for each package of the resolved tree, the wheel's requirement, the runtime's version and
    the resolved one."""
    line = runtime_of(proof.spark_version)
    head = f"{line['name']} ({proof.spark_version}): Python {proof.python}, wheel {proof.requires_python}"
    rows = [f"  {'package':<34} {'wheel requires':<28} {'runtime':<14} {'resolved':<14} changed"]
    for row in proof.rows:
        flag = "YES" if row.changed else "added" if row.added else "no"
        rows.append(
            f"  {row.name:<34} {row.requirement.split(';')[0] or '(transitive)':<28} "
            f"{row.runtime or '-':<14} {row.resolved:<14} {flag}"
        )
    changed = sum(row.changed for row in proof.rows)
    summary = f"  {len(proof.rows)} packages resolved, {changed} changed"
    problems = [*proof.not_admitted, *(f"not in runtimes.yml: {u}" for u in proof.unknown)]
    if proof.resolve_error:
        problems.append(f"no resolution keeps the runtime's versions: {proof.resolve_error}")
    return "\n".join([head, *rows, summary, *(f"  PROBLEM: {p}" for p in problems)])


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lakeforge-runtime-"))
