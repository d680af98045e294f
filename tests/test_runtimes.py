"""runtimes.yml and what the template makes of it: each supported Databricks runtime is offered, its Python
is required, and the generated wheel installs on it without changing any package the runtime preinstalls.

The proof resolves each variant's wheel with uv against PyPI (one render and one build per runtime line;
the GPU key of a line renders the same requirements as its CPU key, which is checked). `pytest -s -k proof`
prints, per runtime, the wheel's resolved requirements against the runtime's versions;
benchmarks/bench_runtimes.py prints the same table.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.runtimes import (
    default_spark_version,
    node_type,
    proof_table,
    prove,
    runtime_lines,
    runtime_of,
    spark_versions,
)

Render = Any
SPARK_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?\.x-(cpu|gpu)-ml-scala2\.1[23]$")
# The wheel's own requirements that name a package every ML runtime preinstalls (issue 10: none may change).
PINNED = [
    "mlflow-skinny",
    "scikit-learn",
    "pandas",
    "numpy",
    "pyarrow",
    "matplotlib",
    "typer",
    "databricks-sdk",
]


def _version_of(spark_version: str) -> tuple[int, int]:
    match = SPARK_VERSION.match(spark_version)
    assert match, spark_version
    return int(match[1]), int(match[2] or 0)


def _dependencies(project: Path) -> list[Requirement]:
    return [
        Requirement(r)
        for r in tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    ]


# --------------------------------------------------------------------------------------------------------
# The data file
# --------------------------------------------------------------------------------------------------------
def test_every_runtime_line_says_what_it_is_and_where_that_comes_from() -> None:
    lines = runtime_lines()
    assert len(lines) >= 4
    for line in lines:
        assert set(line) >= {"name", "cpu", "gpu", "spark", "python", "source", "packages"}, line["name"]
        assert re.fullmatch(r"\d+(\.\d+)? LTS ML", line["name"]), line["name"]
        assert "-cpu-ml-" in line["cpu"] and "-gpu-ml-" in line["gpu"], line["name"]
        assert line["cpu"].replace("-cpu-", "-gpu-") == line["gpu"], line["name"]
        assert _version_of(line["cpu"]) == tuple(
            int(p) for p in (line["name"].split()[0] + ".0").split(".")[:2]
        )
        assert re.fullmatch(r"3\.1\d", line["python"]), line["name"]
        Version(line["spark"])
        assert line["source"].startswith("https://docs.databricks.com/"), line["name"]
        assert {canonicalize_name(n) for n in line["packages"]} >= set(PINNED), line["name"]
        for name, version in line["packages"].items():
            assert isinstance(version, str) and str(Version(version)) == version, (
                f"{line['name']}: {name} {version}"
            )
    # Spark 4 runtimes are Scala 2.13 only.
    for line in lines:
        assert line["cpu"].endswith("scala2.13") == (Version(line["spark"]) >= Version("4")), line["name"]


def test_the_default_is_the_newest_lts_ml_runtime_on_cpu() -> None:
    newest = max(runtime_lines(), key=lambda line: _version_of(line["cpu"]))
    assert default_spark_version() == newest["cpu"]


def test_the_docs_table_is_the_data_files() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "questions.md").read_text()
    rows = [row for row in page.splitlines() if re.match(r"^\| \d+(\.\d+)? LTS ML \|", row)]
    assert len(rows) == len(runtime_lines())
    for row, line in zip(rows, runtime_lines(), strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        packages = line["packages"]
        expected = [line["name"], f"`{line['cpu']}`", f"`{line['gpu']}`", line["spark"], line["python"]]
        expected += [packages[n] for n in ["mlflow-skinny", "pandas", "numpy", "pyarrow", "scikit-learn"]]
        assert cells[:-1] == expected, f"docs/questions.md disagrees with runtimes.yml on {line['name']}"
        assert cells[-1] == f"[release notes]({line['source']})"


def test_the_ml_runtimes_ship_mlflow_skinny_so_the_wheel_asks_for_nothing_else(render: Render) -> None:
    for line in runtime_lines():
        assert "mlflow" not in {canonicalize_name(n) for n in line["packages"]}, line["name"]
    names = {canonicalize_name(r.name) for r in _dependencies(render({}))}
    assert "mlflow-skinny" in names and "mlflow" not in names, (
        "requiring mlflow would add a second distribution"
    )


# --------------------------------------------------------------------------------------------------------
# The template follows the data file
# --------------------------------------------------------------------------------------------------------
def test_copier_offers_exactly_the_runtimes_of_the_data_file(render_into, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ValueError) as raised:
        render_into(dest, {"databricks_runtime": "14.3.x-cpu-ml-scala2.12"})
    offered = re.findall(r"'([0-9][^']*-ml-scala2\.1[23])'", str(raised.value).split(" is not in ", 1)[1])
    assert offered == spark_versions(), str(raised.value)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("spark_version", spark_versions())
def test_each_runtime_renders_its_python_cluster_and_floors(render: Render, spark_version: str) -> None:
    line = runtime_of(spark_version)
    project = render({"databricks_runtime": spark_version, "cloud": "aws"})
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["python_version"] == line["python"], "python_version defaults to the runtime's Python"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    # The floor is the oldest supported runtime's Python (the package runs on all of them), not this one's.
    oldest = min((r["python"] for r in runtime_lines()), key=lambda v: tuple(map(int, v.split("."))))
    assert pyproject["project"]["requires-python"] == f">={oldest}"
    cluster = json.loads((project / "databricks/cluster.json").read_text())
    assert cluster["spark_version"] == spark_version
    assert cluster["node_type_id"] == node_type("aws", spark_version)
    # Each floor is exactly the runtime's version, from runtimes.yml; pandas stays below 3.
    floors = {}
    for requirement in _dependencies(project):
        lower = [s for s in requirement.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{requirement} has no single floor"
        floors[canonicalize_name(requirement.name)] = lower[0].version
    assert floors == {name: str(line["packages"][name]) for name in PINNED}
    (pandas,) = [r for r in _dependencies(project) if r.name == "pandas"]
    assert pandas.specifier == SpecifierSet(f">={line['packages']['pandas']},<3")


@pytest.mark.parametrize("cloud", ["azure", "aws", "gcp"])
def test_a_gpu_runtime_gets_a_gpu_node_of_the_cloud(render: Render, cloud: str) -> None:
    gpu = runtime_lines()[0]["gpu"]
    cluster = json.loads(
        (render({"databricks_runtime": gpu, "cloud": cloud}) / "databricks/cluster.json").read_text()
    )
    assert cluster["node_type_id"] == node_type(cloud, gpu)
    assert cluster["node_type_id"] != node_type(cloud, runtime_lines()[0]["cpu"])


@pytest.mark.parametrize("spark_version", [runtime_lines()[-1]["cpu"], runtime_lines()[0]["gpu"]])
def test_a_python_other_than_the_runtimes_is_refused_in_one_line(
    render_into, tmp_path: Path, spark_version: str
) -> None:
    line = runtime_of(spark_version)
    wrong = "3.12" if line["python"] == "3.11" else "3.11"
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ValueError) as raised:
        render_into(dest, {"databricks_runtime": spark_version, "python_version": wrong})
    message = str(raised.value)
    expected = f"python_version '{wrong}' is not allowed: {line['name']} ({spark_version})"
    assert f"{expected} runs Python {line['python']}" in message, message
    assert len(message.strip().splitlines()) == 1, message
    assert list(dest.iterdir()) == []


# --------------------------------------------------------------------------------------------------------
# The proof: the wheel changes nothing the runtime preinstalls
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line", [pytest.param(line, id=line["name"]) for line in runtime_lines()])
def test_proof_the_wheel_installs_on_its_runtime_without_changing_a_preinstalled_package(
    render: Render, tmp_path: Path, line: dict[str, Any]
) -> None:
    project = render({"databricks_runtime": line["cpu"]})
    assert _dependencies(render({"databricks_runtime": line["gpu"]})) == _dependencies(project), (
        "the GPU variant must require what the CPU variant does (one proof covers both)"
    )
    proof = prove(project, line["cpu"], tmp_path)
    print("\n" + proof_table(proof))
    assert SpecifierSet(proof.requires_python).contains(f"{line['python']}.0"), proof.requires_python
    assert not proof.not_admitted, proof.not_admitted
    assert not proof.resolve_error, (
        f"installing the wheel would change a preinstalled package: {proof.resolve_error}"
    )
    assert not proof.unknown, (
        f"the wheel's tree now has {proof.unknown}: add each to {line['name']} in runtimes.yml, with the "
        "version its release notes list (or under not_preinstalled)"
    )
    names = {row.name for row in proof.rows}
    assert set(PINNED) <= names, names
    assert [row.name for row in proof.rows if row.changed] == []
