"""names.yml, the names copier.yml's validators check answers against, and how it is derived.

Regenerate it with `python3 -m uv run python -m tests.names` after a change to copier.yml's questions,
template/pyproject.toml.jinja's dependencies, the generated code's imports, runtimes.yml (its packages or the
Python of a runtime) or the locked environment; tests/test_answers.py fails, naming this command, until then.

What a generated project's package must not be called, each from its source rather than a hand-kept list:
- keywords and soft keywords: `keyword.kwlist`, `keyword.softkwlist` of each supported runtime's Python
  (runtimes.yml: 3.11 and 3.12), run here in each of those interpreters, united;
- the standard library: `sys.stdlib_module_names` of those same interpreters, united;
- the distributions the project installs: every requirement of template/pyproject.toml.jinja (dependencies,
  every extra, every dependency group, the build backend) rendered for every combination of the choice and
  yes/no answers, every package of the wheel's dependency tree on each runtime (runtimes.yml), and what those
  require in turn where they are installed here (importlib.metadata; requirements of extras left out);
- their import names: the top-level packages each installed distribution provides
  (`importlib.metadata.packages_distributions()`), the top-level packages the generated code imports, and
  the two packages a Databricks cluster's Spark provides (pyspark, delta: no file lists those);
- the generated project's own top-level folders (a package named `tests` or `src` would collide with
  them), lakeforge's own package and Python's `test` package (left out of `sys.stdlib_module_names`).
Module names are lowercased (package_name is lowercase, and on a case-insensitive file system `pil` and `PIL`
are one folder), keywords are not (`True` is no reason to refuse `true`); only names that package_name's
pattern admits are kept. A name with several reasons is listed with the first (see `package_names`).

And the questions themselves, so that the first question's validator can refuse an unknown `--data` key, a
derived value given with `--data`, and a yes/no answer that is not a boolean: the asked questions in order,
the derived ones (`when: false`) and the yes/no ones (`type: bool`).
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tests.runtimes import runtime_lines, runtimes_data

ROOT = Path(__file__).resolve().parents[1]
NAMES_FILE = ROOT / "names.yml"
COPIER_FILE = ROOT / "copier.yml"
TEMPLATE = ROOT / "template"
PYPROJECT = TEMPLATE / "pyproject.toml.jinja"
REGENERATE = "python3 -m uv run python -m tests.names"

PACKAGE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # copier.yml's package_name pattern
# A statement's top-level package: `from x.y import z` or `import x`, not prose such as "from the seed".
IMPORT = re.compile(r"^\s*(?:from\s+([A-Za-z_]\w*)[\w.]*\s+import\b|import\s+([A-Za-z_]\w*))", re.MULTILINE)
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")

# Provided by a Databricks cluster's Spark, not by a package the wheel installs, so no file here lists them.
SPARK = "provided by the Databricks runtime's Spark"
CLUSTER_PACKAGES = {"pyspark": SPARK, "delta": SPARK}
OTHER_NAMES = {
    "lakeforge": "the name of lakeforge's own package",
    "test": "the name of Python's own test package",
}
# What each supported Python says; printed as JSON by that interpreter itself.
PYTHON_NAMES = (
    "import json, keyword, sys; print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'keywords': keyword.kwlist, 'soft_keywords': keyword.softkwlist, "
    "'stdlib': sorted(sys.stdlib_module_names)}))"
)


# ---- Python: keywords and the standard library -------------------------------------------------------------
def runtime_pythons() -> list[str]:
    """The Python versions of the supported runtimes (runtimes.yml), oldest first."""
    return sorted({line["python"] for line in runtime_lines()}, key=lambda v: tuple(map(int, v.split("."))))


def _candidates(version: str) -> Iterable[str]:
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        yield sys.executable
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv:
        found = subprocess.run(
            [uv, "python", "find", "--no-project", version], capture_output=True, text=True, check=False
        )
        if found.returncode == 0 and found.stdout.strip():
            yield found.stdout.strip()
    yield from map(str, sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}")))
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield on_path


def python_names(version: str) -> dict[str, list[str]] | None:
    """Keywords, soft keywords and standard-library modules of Python `version`, or None if none is here."""
    for python in _candidates(version):
        try:
            done = subprocess.run(
                [python, "-c", PYTHON_NAMES], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            names = json.loads(done.stdout)
            if names.pop("version") == version:
                return names
    return None


# ---- the distributions the project installs, and their import names --------------------------------------
def _questions() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load(COPIER_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in spec.items() if not k.startswith("_") and isinstance(v, dict)}


@cache
def _environment() -> jinja2.Environment:
    """Jinja as copier sets it up for this template (its Ansible filters; keep_trailing_newline)."""
    return jinja2.Environment(
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"], keep_trailing_newline=True
    )


@cache
def _compiled(source: str) -> jinja2.Template:
    return _environment().from_string(source)


def _choice_values(spec: dict[str, Any], context: dict[str, Any]) -> list[Any]:
    choices = spec["choices"]
    if isinstance(choices, str):  # a Jinja string that renders to YAML, as copier reads it
        choices = yaml.safe_load(_compiled(choices).render(context))
    return list(choices.values() if isinstance(choices, dict) else choices)


def _answer_sets() -> Iterable[dict[str, Any]]:
    """Every combination of the choice and yes/no answers, each other answer its default, as copier
    computes them (in question order, defaults rendered with the answers before them)."""
    questions = _questions()
    base: dict[str, Any] = {"_external_data": {"runtimes": runtimes_data()}}
    varied = [
        n
        for n, s in questions.items()
        if s.get("when") is not False and ("choices" in s or s.get("type") == "bool")
    ]
    options = [
        _choice_values(questions[n], base) if "choices" in questions[n] else [True, False] for n in varied
    ]
    for combination in itertools.product(*options):
        answers = dict(base)
        chosen = dict(zip(varied, combination, strict=True))
        for name, spec in questions.items():
            if name in chosen:
                answers[name] = chosen[name]
                continue
            value = spec.get("default")
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                value = _compiled(value).render(answers)
                if spec.get("type") == "json":
                    value = json.loads(value)
                elif spec.get("type") == "bool":
                    value = value.strip().lower() == "true"
            answers[name] = value
        yield answers


def _requirement_name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def template_requirements() -> set[str]:
    """Every distribution template/pyproject.toml.jinja requires, whatever the answers (the project aside)."""
    template = _compiled(PYPROJECT.read_text(encoding="utf-8"))
    found: set[str] = set()
    for answers in _answer_sets():
        pyproject = tomllib.loads(template.render(answers))
        project = pyproject.get("project", {})
        texts = [
            *project.get("dependencies", []),
            *itertools.chain.from_iterable(project.get("optional-dependencies", {}).values()),
            *itertools.chain.from_iterable(pyproject.get("dependency-groups", {}).values()),
            *pyproject.get("build-system", {}).get("requires", []),
        ]
        itself = canonicalize_name(project.get("name", ""))
        found |= {name for text in texts if isinstance(text, str) and (name := _requirement_name(text))}
        found.discard(itself)
    return found


def runtime_packages() -> set[str]:
    """Every package of the wheel's dependency tree on each runtime (runtimes.yml)."""
    found: set[str] = set()
    for line in runtime_lines():
        found |= set(line.get("packages") or {})
        found |= set(line.get("not_preinstalled") or [])
    return {canonicalize_name(name) for name in found}


def _requires(name: str) -> list[str] | None:
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_tree(roots: Iterable[str]) -> set[str]:
    """`roots` and every distribution they require, followed where it is installed here. Environment
    markers are ignored (a requirement for another platform or Python counts); those of an extra are not."""
    seen: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in _requires(name) or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and "extra" in str(requirement.marker):
                continue
            todo.append(canonicalize_name(requirement.name))
    return seen


def distributions() -> set[str]:
    """Every distribution the project installs, as far as this machine can tell."""
    return installed_tree(template_requirements() | runtime_packages())


def generated_imports() -> set[str]:
    """The top-level packages the generated code imports (its own package aside: that one is Jinja)."""
    found: set[str] = set()
    for path in TEMPLATE.rglob("*"):
        if path.is_file() and path.name.endswith((".py", ".py.jinja")):
            found |= {module or bare for module, bare in IMPORT.findall(path.read_text(encoding="utf-8"))}
    return found


def import_names(dists: set[str], stdlib: set[str]) -> dict[str, str]:
    """Lowercased import name -> where it comes from ("from scikit-learn"), for every package the project
    has: what the installed distributions provide, then what the generated code imports besides."""
    providers: dict[str, set[str]] = {}
    for top, names in importlib.metadata.packages_distributions().items():
        for dist in map(canonicalize_name, names):
            if dist in dists:
                providers.setdefault(top.lower(), set()).add(dist)
    found = {name: "from " + ", ".join(sorted(by)) for name, by in providers.items()}
    for name in map(str.lower, generated_imports()):
        if name not in stdlib and name != "__future__":
            # Not installed here: the distribution whose name starts with it, e.g. pyspark-client for pyspark.
            by = sorted(d for d in dists if d.replace("-", "_").startswith(name))
            found.setdefault(name, "from " + ", ".join(by) if by else "imported by the generated code")
    for name, origin in CLUSTER_PACKAGES.items():
        found.setdefault(name, origin)
    return {name: found[name] for name in sorted(found) if PACKAGE_NAME.match(name)}


def project_folders() -> set[str]:
    """The generated project's top-level folders, as named once rendered (conditional names included)."""
    return {JINJA.sub("", path.name) for path in TEMPLATE.iterdir() if path.is_dir()}


# ---- the questions ---------------------------------------------------------------------------------------
def questions() -> dict[str, list[str]]:
    spec = _questions()
    return {
        "asked": [n for n, s in spec.items() if s.get("when") is not False],
        "derived": [n for n, s in spec.items() if s.get("when") is False],
        "bool": [n for n, s in spec.items() if s.get("when") is not False and s.get("type") == "bool"],
    }


# ---- all of it -------------------------------------------------------------------------------------------
def package_names(
    keywords: set[str], soft: set[str], stdlib: set[str], packages: dict[str, str], dists: set[str]
) -> dict[str, str]:
    """Every name package_name must not take -> why, worded to follow "it is" in a validator's message. A name
    with several reasons gets the first of: keyword, soft keyword, standard library, a package the project
    has, a distribution it installs, a folder of the project (or lakeforge, or Python's test package)."""
    reasons: dict[str, str] = {}
    for name in keywords:
        reasons.setdefault(name, f"a Python keyword, so `from {name}.cli import app` would be a syntax error")
    for name in soft:
        reasons.setdefault(name, "a Python soft keyword")
    for name in stdlib:
        reasons.setdefault(name, "a module of Python's standard library, which the package would shadow")
    for name, origin in packages.items():
        reasons.setdefault(
            name, f"the name of a package the project already has ({origin}), which this one would shadow"
        )
    for dist in dists:
        reasons.setdefault(dist.replace("-", "_"), f"the name of {dist}, a distribution the project installs")
    for name in project_folders():
        reasons.setdefault(name, "the name of a folder of the generated project")
    for name, reason in OTHER_NAMES.items():
        reasons.setdefault(name, reason)
    return {name: reasons[name] for name in sorted(reasons) if PACKAGE_NAME.match(name)}


def derive(pythons: Iterable[str] | None = None) -> dict[str, Any]:
    """The content of names.yml, from the interpreters of `pythons` (default: every supported runtime's).
    Raises SystemExit naming a Python that is not installed here."""
    keywords: set[str] = set()
    soft: set[str] = set()
    stdlib: set[str] = set()
    for version in runtime_pythons() if pythons is None else pythons:
        names = python_names(version)
        if names is None:
            raise SystemExit(f"no Python {version} found here (uv python find, ~/.pyenv, PATH): install it")
        keywords |= set(names["keywords"])
        soft |= set(names["soft_keywords"])
        stdlib |= {name.lower() for name in names["stdlib"]}
    dists = distributions()
    return {
        "version": 1,
        "package_names": package_names(keywords, soft, stdlib, import_names(dists, stdlib), dists),
        "distributions": sorted(dists),
        "questions": questions(),
    }


HEADER = f"""\
# Written by `{REGENERATE}`; do not edit (tests/names.py says where each name comes from).
# Read by copier.yml (_external_data: names). `package_names`: what package_name must not be, and why
# (project_name and project_slug are refused when the package name made from them is one); `distributions`:
# what the project installs, which project_slug must not be; `questions`: the asked, derived and yes/no
# questions, for the check of the --data answers in project_name's validator. tests/test_answers.py proves
# this file current.
"""


def _scalar(text: str) -> str:
    """`text` as YAML: plain when it reads back as itself (a name), else double-quoted (JSON is YAML)."""
    if re.fullmatch(r"[A-Za-z0-9_.-]+", text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(key: str, items: list[str], indent: str = "") -> list[str]:
    text = "[" + ", ".join(map(_scalar, items)) + "]"
    return textwrap.wrap(
        f"{indent}{key}: {text}", width=110, subsequent_indent=indent + "  ", break_on_hyphens=False
    )


def render(names: dict[str, Any]) -> str:
    """names.yml's text: one line per refused name, lists in flow style."""
    lines = [f"version: {names['version']}", "package_names:"]
    lines += [f"  {_scalar(name)}: {_scalar(why)}" for name, why in names["package_names"].items()]
    lines += _flow("distributions", names["distributions"])
    lines.append("questions:")
    for kind, items in names["questions"].items():
        lines += _flow(kind, items, indent="  ")
    return HEADER + "\n".join(lines) + "\n"


def main() -> None:
    NAMES_FILE.write_text(render(derive()), encoding="utf-8")
    print(f"wrote {NAMES_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
