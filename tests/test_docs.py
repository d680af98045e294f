"""The documentation site builds without warnings and documents every template question."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.runtimes import question_choices

ROOT = Path(__file__).resolve().parents[1]


def asked_questions() -> dict[str, dict]:
    spec = yaml.safe_load((ROOT / "copier.yml").read_text())
    return {
        name: (value if isinstance(value, dict) else {})
        for name, value in spec.items()
        if not name.startswith("_") and not (isinstance(value, dict) and value.get("when") is False)
    }


def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").is_file()
    assert (site / "questions" / "index.html").is_file()


def test_every_question_is_documented_with_its_choices() -> None:
    page = (ROOT / "docs" / "questions.md").read_text()
    questions = asked_questions()
    assert questions, "copier.yml has no questions"
    for name, spec in questions.items():
        assert f"`{name}`" in page, f"question {name} is missing from docs/questions.md"
        for value in question_choices(name, spec):
            assert f"`{value}`" in page, f"choice {value!r} of {name} is missing from docs/questions.md"


def test_readme_layout_names_every_module_of_the_command() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Repository layout") :]
    package = ROOT / "generator" / "lakeforge"
    modules = sorted(path.name for path in package.glob("*.py") if path.name != "__init__.py")
    assert modules, "generator/lakeforge has no modules"
    missing = [name for name in modules if not re.search(rf"(?<![\w/]){re.escape(name)}\b", layout)]
    assert not missing, f"README.md's repository layout does not name {missing}"


def test_the_bring_your_own_data_page_shows_the_sources_py_its_test_runs() -> None:
    """The walkthrough's sources.py is, character for character, the one the generated project's
    test_sources.py runs the loop with: the page cannot drift from what works."""
    page = (ROOT / "docs/project/bring-your-own-data.md").read_text()
    test = (ROOT / "template/tests/test_sources.py.jinja").read_text()
    own = test.split("OWN_SOURCES = '''\n", 1)[1].split("'''", 1)[0]
    assert own in re.findall(r"```python\n(.*?)```", page, re.DOTALL)
