"""Answers the template refuses by itself, with plain copier as with `lakeforge new`, and names.yml behind.

Tiers, cheapest first: names.yml is current (recomputed here from this interpreter, every supported runtime's
Python found here, the template's dependencies and copier.yml); copier.yml's validators rendered directly
against every keyword, standard-library module and dependency; then real runs of `copier copy --trust
--defaults` and of `lakeforge new`, one line each and nothing written; and the prompt, in a pseudo-terminal.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
import select
import subprocess
import sys
import time
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from copier.errors import DirtyLocalWarning
from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment

from tests import names as derivation
from tests.runtimes import runtime_lines, runtimes_data
from tests.template_versions import A_TAG, B_TAG, build_versions

REPO = Path(__file__).resolve().parents[1]
NAMES: dict[str, Any] = yaml.safe_load(derivation.NAMES_FILE.read_text(encoding="utf-8"))
SPEC: dict[str, Any] = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
# The Jinja copier renders validators with (its Ansible filters give regex_search).
JINJA = SandboxedEnvironment(
    extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"], keep_trailing_newline=True
)
STALE = f"names.yml is out of date: regenerate it with `{derivation.REGENERATE}`"
BOOL_WORDS = ["true", "false", "yes", "no", "y", "n", "on", "off", "1", "0"]


def admitted(names: Any, lower: bool = False) -> list[str]:
    """The names package_name's pattern admits, as names.yml keeps them: keywords as they are (`True` is not
    `true`), module names lowercased (one folder on a case-insensitive file system)."""
    cased = {name.lower() if lower else name for name in names}
    return sorted(filter(derivation.PACKAGE_NAME.match, cased))


def problem(question: str, answer: Any, data: dict[str, Any] | None = None, **answers: Any) -> str:
    """What copier.yml's validator of `question` says of `answer` (empty: accepted), `data` as --data."""
    given = {} if data is None else data
    context = {  # as copier's: the answers so far, --data included, and its settings
        **given,
        **answers,
        question: answer,
        "_external_data": {"names": NAMES, "runtimes": runtimes_data()},
        "_copier_conf": {"data": given},
    }
    return _compiled(SPEC[question]["validator"]).render(context).strip()


def derived_default(question: str, **answers: Any) -> str:
    return _compiled(SPEC[question]["default"]).render(answers)


@cache
def _compiled(source: str) -> Template:
    return JINJA.from_string(source)


# --------------------------------------------------------------------------------------------------------
# names.yml is current
# --------------------------------------------------------------------------------------------------------
def test_names_yml_is_written_by_the_script() -> None:
    text = derivation.NAMES_FILE.read_text(encoding="utf-8")
    assert text == derivation.render(NAMES), f"names.yml was edited by hand: {STALE}"


def test_names_yml_covers_what_this_machine_derives() -> None:
    found = [v for v in derivation.runtime_pythons() if derivation.python_names(v) is not None]
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in found
    now = derivation.derive(found)
    missing = sorted(set(now["package_names"]) - set(NAMES["package_names"]))
    assert not missing, f"{STALE} (package names it lacks: {', '.join(missing[:20])})"
    missing = sorted(set(now["distributions"]) - set(NAMES["distributions"]))
    assert not missing, f"{STALE} (distributions it lacks: {', '.join(missing[:20])})"
    assert NAMES["questions"] == now["questions"], f"{STALE} (copier.yml's questions changed)"


def test_this_interpreters_keywords_and_standard_library_are_all_refused() -> None:
    expected = admitted([*keyword.kwlist, *keyword.softkwlist]) + admitted(
        sys.stdlib_module_names, lower=True
    )
    missing = [name for name in expected if name not in NAMES["package_names"]]
    assert not missing, f"{STALE} (missing: {missing})"


@pytest.mark.parametrize("version", derivation.runtime_pythons())
def test_each_supported_pythons_keywords_and_standard_library_are_refused(version: str) -> None:
    names = derivation.python_names(version)
    if names is None:
        pytest.skip(f"no Python {version} here")
    expected = admitted([*names["keywords"], *names["soft_keywords"]]) + admitted(names["stdlib"], lower=True)
    missing = [name for name in expected if name not in NAMES["package_names"]]
    assert not missing, f"{STALE} (Python {version}'s, missing: {missing})"


def test_every_dependency_of_the_template_and_of_each_runtime_is_a_refused_distribution() -> None:
    required = derivation.template_requirements() | derivation.runtime_packages()
    assert {"mlflow-skinny", "scikit-learn", "pyspark-client", "pytest", "hatchling"} <= required
    missing = sorted(required - set(NAMES["distributions"]))
    assert not missing, f"{STALE} (missing: {missing})"
    unrefused = sorted(d for d in required if d.replace("-", "_") not in NAMES["package_names"])
    assert not unrefused, f"{STALE} (not refused as package names: {unrefused})"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("sklearn", "(from scikit-learn)"),
        ("pyspark", "(from pyspark-client)"),
        ("databricks", "(from databricks-sdk)"),
        ("mlflow", "mlflow-skinny"),
        ("yaml", "(from pyyaml)"),
        ("click", "(from click)"),  # typer's, and mlflow's
        ("requests", "(from requests)"),
        ("delta", "Databricks runtime's Spark"),
        ("scikit_learn", "the name of scikit-learn, a distribution the project installs"),
        ("tests", "a folder of the generated project"),
        ("notebooks", "a folder of the generated project"),
        ("src", "a folder of the generated project"),
        ("lakeforge", "lakeforge's own package"),
    ],
)
def test_the_import_names_of_dependencies_are_refused_with_where_they_come_from(
    name: str, reason: str
) -> None:
    assert reason in NAMES["package_names"].get(name, ""), NAMES["package_names"].get(name)


# --------------------------------------------------------------------------------------------------------
# The validators, rendered directly: every name
# --------------------------------------------------------------------------------------------------------
# The list copier.yml's package_name validator held by hand before names.yml: every name of it stays refused.
FORMERLY_REFUSED = [
    "mlflow",
    "pyspark",
    "pysail",
    "sklearn",
    "pandas",
    "numpy",
    "delta",
    "deltalake",
    "databricks",
    "typer",
    "test",
    "tests",
    "src",
    "notebooks",
    "lakeforge",
    "and",
    "as",
    "class",
    "def",
    "from",
    "import",
    "in",
    "is",
    "lambda",
    "not",
    "or",
    "pass",
    "return",
    "with",
    "yield",
]


def test_every_name_refused_before_names_yml_still_is() -> None:
    assert [name for name in FORMERLY_REFUSED if name not in NAMES["package_names"]] == []


@pytest.mark.parametrize("name", admitted(keyword.kwlist))
def test_every_keyword_is_refused_as_package_name(name: str) -> None:
    assert problem("package_name", name) == (
        f"package_name '{name}' is not allowed: it is a Python keyword, "
        f"so `from {name}.cli import app` would be a syntax error"
    )


@pytest.mark.parametrize("name", admitted(keyword.softkwlist))
def test_every_soft_keyword_is_refused_as_package_name(name: str) -> None:
    assert (
        problem("package_name", name) == f"package_name '{name}' is not allowed: it is a Python soft keyword"
    )


def test_every_standard_library_module_is_refused_as_package_name() -> None:
    reason = "it is a module of Python's standard library, which the package would shadow"
    wrong = {}
    for name in admitted(sys.stdlib_module_names, lower=True):
        message = problem("package_name", name)
        if message != f"package_name '{name}' is not allowed: {reason}":
            wrong[name] = message
    assert not wrong, wrong


def test_every_distribution_is_refused_as_project_slug_and_its_import_names_as_package_name() -> None:
    slugs = [d for d in NAMES["distributions"] if re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", d)]
    assert "scikit-learn" in slugs and "matplotlib" in slugs
    for slug in slugs:
        assert problem("project_slug", slug) == (
            f"project_slug '{slug}' is not allowed: it is the name of a distribution the project installs, "
            "so the project would depend on itself"
        )
    for name, reason in NAMES["package_names"].items():
        assert problem("package_name", name) == f"package_name '{name}' is not allowed: it is {reason}"


@pytest.mark.parametrize(
    "name", ["churn_model", "fraud_ml", "json_tools", "my_sklearn", "ifs", "typed_things"]
)
def test_a_good_package_name_is_accepted(name: str) -> None:
    assert problem("package_name", name) == ""


@pytest.mark.parametrize(
    ("project_name", "made", "value"),
    [
        ("If", "package_name", "if"),
        ("Async", "package_name", "async"),
        ("Json", "package_name", "json"),
        ("Match", "package_name", "match"),
        ("Tests", "package_name", "tests"),
        ("Matplotlib", "project_slug", "matplotlib"),
        ("Scikit Learn", "project_slug", "scikit-learn"),
        ("Scikit_Learn", "project_slug", "scikit-learn"),
        ("Click", "project_slug", "click"),
        ("Sklearn", "package_name", "sklearn"),
    ],
)
def test_a_project_name_is_refused_when_a_name_made_from_it_is(
    project_name: str, made: str, value: str
) -> None:
    slug = derived_default("project_slug", project_name=project_name)
    assert value == (slug if made == "project_slug" else derived_default("package_name", project_slug=slug))
    message = problem("project_name", project_name)
    assert message.startswith(
        f"project_name '{project_name}' is not allowed: the {made} made from it, '{value}', is "
    ), message
    assert f"or set {made} with --data" in message
    # Given the made name explicitly, the project name is fine (that answer's own validator judges it).
    if made == "package_name":
        assert problem("project_name", project_name, {"package_name": "churn_model"}) == ""
    assert problem("project_name", project_name, {"project_slug": "churn-model"}) == ""


def test_a_project_name_is_judged_with_the_names_already_answered() -> None:
    """On `copier update` the answers file has them, not --data: project "Json" with package json_tools."""
    assert problem("project_name", "Json", project_slug="json-tools", package_name="json_tools") == ""
    assert problem("project_slug", "json", package_name="json_tools") == ""


def test_a_project_slug_is_refused_when_the_package_name_made_from_it_is() -> None:
    assert problem("project_slug", "json").startswith(
        "project_slug 'json' is not allowed: the package_name made from it, 'json', is a module of "
    )
    assert problem("project_slug", "json", {"package_name": "json_tools"}) == ""
    assert problem("project_slug", "json-tools") == ""


@pytest.mark.parametrize("line", runtime_lines(), ids=lambda line: line["name"])
def test_python_version_must_be_the_runtimes(line: dict[str, Any]) -> None:
    for spark_version in (line["cpu"], line["gpu"]):
        assert problem("python_version", line["python"], databricks_runtime=spark_version) == ""
        for wrong in sorted({"3.10", "3.11", "3.12", "3.13"} - {line["python"]}):
            assert problem("python_version", wrong, databricks_runtime=spark_version) == (
                f"python_version '{wrong}' is not allowed: {line['name']} ({spark_version}) runs Python "
                f"{line['python']}, so answer {line['python']} or choose another runtime"
            )


# --------------------------------------------------------------------------------------------------------
# The --data answers as given, checked by the first question
# --------------------------------------------------------------------------------------------------------
QUESTIONS = ", ".join(NAMES["questions"]["asked"])


@pytest.mark.parametrize(
    ("key", "guess"),
    [
        ("projet_name", "project_name"),
        ("project-name", "project_name"),
        ("feature_stor", "feature_store"),
        ("hostdev", "host_dev"),
        ("packagename", "package_name"),
        ("python", "python_version"),
        ("colour", None),
        ("x", None),
    ],
)
def test_an_unknown_data_key_is_refused_with_the_questions(key: str, guess: str | None) -> None:
    hint = f" (did you mean {guess}?)" if guess else ""
    assert problem("project_name", "Churn Model", {key: "X"}) == (
        f"unknown question '{key}' in --data{hint}; the questions are: {QUESTIONS}"
    )


@pytest.mark.parametrize("key", ["node_type", "runtime", "uc"])
def test_a_derived_value_in_data_is_refused(key: str) -> None:
    assert problem("project_name", "Churn Model", {key: "x"}) == (
        f"'{key}' is derived from other answers and cannot be set with --data"
    )


def test_the_derived_and_yes_no_questions_are_copier_ymls() -> None:
    assert NAMES["questions"]["derived"] == [
        n for n, s in SPEC.items() if isinstance(s, dict) and s.get("when") is False
    ]
    assert NAMES["questions"]["bool"] == ["feature_store", "serving", "streaming", "data_profiling"]


@pytest.mark.parametrize("value", ["maybe", "", "2", "ja", "truee", "None"])
def test_a_yes_no_answer_that_is_not_a_boolean_is_refused(value: str) -> None:
    assert problem("project_name", "Churn Model", {"feature_store": value}) == (
        f"feature_store '{value}' is not allowed: answer true or false (or yes/no, y/n, on/off, 1/0)"
    )


@pytest.mark.parametrize(
    "value", [*BOOL_WORDS, *(w.upper() for w in BOOL_WORDS), "Yes", " off ", True, False, 1, 0]
)
def test_every_boolean_spelling_is_accepted(value: Any) -> None:
    assert problem("project_name", "Churn Model", {"feature_store": value}) == ""


def test_copiers_own_keys_and_every_question_are_accepted_as_data() -> None:
    """`copier update` renders with the recorded answers as data: _commit, _src_path and each question."""
    data = {"_commit": "v0.2.0", "_src_path": "/somewhere"}
    data |= {name: False for name in NAMES["questions"]["bool"]}
    data |= {name: "x" for name in NAMES["questions"]["asked"] if name not in data}
    data |= {"project_slug": "churn-model", "package_name": "churn_model"}
    assert problem("project_name", "Churn Model", data) == ""


@pytest.mark.parametrize("name", ["Churn Model", "Fraud_Detector", "Json Tools", "Match Maker", "X1"])
def test_a_name_answered_at_the_prompt_is_judged_on_itself(name: str) -> None:
    """At the prompt no --data is given: a good name is accepted whatever the data check looks for."""
    assert problem("project_name", name, {}) == ""


# --------------------------------------------------------------------------------------------------------
# Plain copier, as the README gives it
# --------------------------------------------------------------------------------------------------------
def copier_copy(dest: Path, *data: str, defaults: bool = True) -> subprocess.CompletedProcess[str]:
    """`copier copy --trust [--defaults] --data ... <this checkout> dest` in its own process, no terminal."""
    args = [sys.executable, "-m", "copier", "copy", "--trust", "--quiet", "--skip-tasks", "--vcs-ref", "HEAD"]
    args += ["--defaults"] if defaults else []
    for item in data:
        args += ["--data", item]
    return subprocess.run(
        [*args, str(REPO), str(dest)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )


REFUSED = [
    pytest.param(
        ["project_name=If"],
        "project_name",
        "project_name 'If' is not allowed: the package_name made from it, 'if', is a Python keyword",
        id="if",
    ),
    pytest.param(["project_name=Async"], "project_name", "'async', is a Python keyword", id="async"),
    pytest.param(
        ["project_name=Json"], "project_name", "'json', is a module of Python's standard library", id="json"
    ),
    pytest.param(
        ["project_name=Matplotlib"],
        "project_name",
        "the project_slug made from it, 'matplotlib', is the name of a distribution",
        id="matplotlib",
    ),
    pytest.param(
        ["project_name=Scikit Learn"],
        "project_name",
        "project_name 'Scikit Learn' is not allowed: the project_slug made from it, 'scikit-learn'",
        id="scikit-learn",
    ),
    pytest.param(
        ["package_name=json"],
        "package_name",
        "package_name 'json' is not allowed: it is a module of Python's standard library",
        id="package-json",
    ),
    pytest.param(
        ["package_name=sklearn"],
        "package_name",
        "package_name 'sklearn' is not allowed: it is the name of a package the project already has "
        "(from scikit-learn)",
        id="package-sklearn",
    ),
    pytest.param(
        ["feature_store=maybe"],
        "project_name",
        "feature_store 'maybe' is not allowed: answer true or false",
        id="bool",
    ),
    pytest.param(
        ["projet_name=X"],
        "project_name",
        "unknown question 'projet_name' in --data (did you mean project_name?); "
        "the questions are: project_name, ",
        id="unknown",
    ),
    pytest.param(
        ["node_type=x"],
        "project_name",
        "'node_type' is derived from other answers and cannot be set with --data",
        id="derived",
    ),
    pytest.param(
        ["databricks_runtime=15.4.x-cpu-ml-scala2.12", "python_version=3.12"],
        "python_version",
        "python_version '3.12' is not allowed: 15.4 LTS ML (15.4.x-cpu-ml-scala2.12) runs Python 3.11",
        id="python",
    ),
]


@pytest.mark.parametrize(("data", "question", "expected"), REFUSED)
def test_plain_copier_refuses_in_one_line_and_writes_nothing(
    tmp_path: Path, data: list[str], question: str, expected: str
) -> None:
    dest = tmp_path / "project"
    result = copier_copy(dest, *data)
    assert result.returncode != 0, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ValueError: Validation error for question '{question}': "), last
    assert expected in last, last
    assert not dest.exists()


def test_plain_copier_leaves_an_empty_destination_empty(tmp_path: Path) -> None:
    result = copier_copy(tmp_path, "project_name=If")
    assert result.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_plain_copier_refuses_bad_data_before_the_first_question(tmp_path: Path) -> None:
    """Without --defaults (and here without a terminal) the data is refused before anything is asked."""
    result = copier_copy(tmp_path / "project", "feature_store=maybe", defaults=False)
    assert result.returncode != 0
    assert "feature_store 'maybe' is not allowed" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize(("value", "expected"), [("Yes", True), ("OFF", False), ("1", True)])
def test_plain_copier_takes_every_boolean_spelling(tmp_path: Path, value: str, expected: bool) -> None:
    dest = tmp_path / "project"
    result = copier_copy(dest, f"feature_store={value}")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((dest / ".copier-answers.yml").read_text())["feature_store"] is expected


def test_copier_update_keeps_its_answers_past_the_data_check(tmp_path: Path) -> None:
    """Update renders the old and the new release with the recorded answers as --data (_commit and
    _src_path among them): none of them is refused, nor a name kept from the answers file."""
    versions = build_versions(tmp_path / "lakeforge")
    project = tmp_path / "json-tools"
    data = {"project_name": "Json", "project_slug": "json-tools", "feature_store": "yes"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(
            str(versions), str(project), data=data, defaults=True, unsafe=True, vcs_ref=A_TAG, quiet=True
        )
        copier.run_update(str(project), defaults=True, unsafe=True, overwrite=True, vcs_ref=B_TAG, quiet=True)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == B_TAG
    assert (answers["project_name"], answers["package_name"], answers["feature_store"]) == (
        "Json",
        "json_tools",
        True,
    )


# --------------------------------------------------------------------------------------------------------
# The prompt: a refused name is refused there, and asked again
# --------------------------------------------------------------------------------------------------------
def _read_until(fd: int, needle: str, seen: list[str], timeout: float = 60) -> bool:
    """Read the terminal's output into `seen` until its text (escape codes dropped) holds `needle`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            seen.append(chunk.decode(errors="replace"))
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r", "", "".join(seen))
        if needle in text:
            return True
    return False


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_refused_name_typed_at_the_prompt_is_asked_again(tmp_path: Path) -> None:
    import pty

    dest = tmp_path / "project"
    command = [sys.executable, "-m", "copier", "copy", "--trust", "--skip-tasks", "--vcs-ref", "HEAD"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: copier on the terminal
        os.environ.update(TERM="xterm", COLUMNS="400", LINES="50")
        os.execv(sys.executable, [*command, str(REPO), str(dest)])
    seen: list[str] = []
    try:
        assert _read_until(fd, "Project name", seen), "".join(seen)
        os.write(fd, b"\x15Json\r")  # Ctrl-U clears the default
        assert _read_until(fd, "project_name 'Json' is not allowed", seen), "".join(seen)
        os.write(fd, b"\x15Json Tools\r")
        assert _read_until(fd, "Distribution and folder name", seen), "".join(seen)
        os.write(fd, b"\r")
        assert _read_until(fd, "Python package name", seen), "".join(seen)
        os.write(fd, b"\x15json\r")
        assert _read_until(fd, "package_name 'json' is not allowed", seen), "".join(seen)
        os.write(fd, b"\x15json_tools\r")
        assert _read_until(fd, "One-line description", seen), "".join(seen)
        os.write(fd, b"\x03")  # Ctrl-C: nothing written
        _read_until(fd, "never-printed", seen, timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    assert not dest.exists()
