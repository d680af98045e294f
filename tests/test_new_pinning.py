"""`lakeforge new` and `lakeforge update` render this lakeforge's own release of the template by default.

lakeforge X.Y.Z pins the template to tag vX.Y.Z (`template.RELEASE_TAG`), so that the CLI that generates,
updates and bootstraps a project agree. A one-question template in a throwaway git repository stands in for
the real one: release v0.1.0, this lakeforge's release, then an untagged development commit on top.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lakeforge.template import RELEASE_TAG, TEMPLATE_ENV, Pin, pin_ref

from tests.lakeforge_cli import run_lakeforge
from tests.template_versions import git

OLD_TAG = "v0.1.0"


def tiny_template(repo: Path, tags: list[str]) -> Path:
    """Three commits, README "release one", "release two", "development"; the first two tagged `tags`."""
    (repo / "template").mkdir(parents=True)
    (repo / "copier.yml").write_text(
        "_subdirectory: template\nproject_name:\n  type: str\n  default: Churn Model\n  help: name\n"
    )
    (repo / "template" / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers | to_nice_yaml }}"
    )
    git(repo, "init", "-q")
    texts = ["release one", "release two", "development"]
    for text, tag in zip(texts, [*tags, *[None] * (len(texts) - len(tags))], strict=True):
        (repo / "template" / "README.md.jinja").write_text(f"# {{{{ project_name }}}}: {text}\n")
        git(repo, "add", "--all")
        git(repo, "commit", "-q", "-m", text)
        if tag:
            git(repo, "tag", tag)
    return repo


@pytest.fixture
def released(tmp_path: Path) -> Path:
    assert RELEASE_TAG != OLD_TAG, "these tests need a release after v0.1.0"
    return tiny_template(tmp_path / "released", [OLD_TAG, RELEASE_TAG])


@pytest.fixture
def development(tmp_path: Path) -> Path:
    """A checkout that has older releases but not this lakeforge's tag."""
    return tiny_template(tmp_path / "development", [OLD_TAG])


def readme(project: Path) -> str:
    return (project / "README.md").read_text()


def commit_of(project: Path) -> str:
    return str(yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"])


# --------------------------------------------------------------------------------------------------------
# pin_ref
# --------------------------------------------------------------------------------------------------------
def test_an_explicit_ref_always_wins(released: Path) -> None:
    assert pin_ref(str(released), "v0.1.0") == Pin("v0.1.0")
    assert pin_ref("https://example.com/lakeforge.git", "main") == Pin("main")


def test_a_git_url_is_pinned_to_this_release(tmp_path: Path) -> None:
    assert pin_ref("https://github.com/example/lakeforge.git") == Pin(RELEASE_TAG)
    assert pin_ref("gh:example/lakeforge") == Pin(RELEASE_TAG)
    assert pin_ref(str(tmp_path / "lakeforge.bundle")) == Pin(RELEASE_TAG)


def test_a_folder_with_the_release_tag_is_pinned_to_it_even_with_later_commits(released: Path) -> None:
    assert pin_ref(str(released)) == Pin(RELEASE_TAG)


def test_a_development_checkout_renders_head_and_says_why(development: Path) -> None:
    pin = pin_ref(str(development))
    assert pin.ref == "HEAD"
    assert pin.note and f"no tag {RELEASE_TAG}" in pin.note and "uncommitted" not in pin.note
    (development / "template" / "README.md.jinja").write_text("# work in progress\n")
    assert "uncommitted changes (a project made from them cannot be updated)" in (
        pin_ref(str(development)).note or ""
    )


def test_a_folder_outside_git_renders_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "copier.yml").write_text("project_name: x\n")
    pin = pin_ref(str(tmp_path))
    assert pin.ref is None and pin.note and "not a git repository" in pin.note


# --------------------------------------------------------------------------------------------------------
# lakeforge new
# --------------------------------------------------------------------------------------------------------
def test_new_renders_this_release_not_the_newest_commit(released: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    result = run_lakeforge("new", project, "--defaults", "--template", released)
    assert result.returncode == 0, result.stderr
    assert readme(project) == "# Churn Model: release two\n"
    assert commit_of(project) == RELEASE_TAG
    assert "lakeforge:" not in result.stderr, "no note when the release is rendered"


def test_new_pins_the_template_of_the_environment_too(released: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    result = run_lakeforge("new", project, "--defaults", env={TEMPLATE_ENV: str(released)})
    assert result.returncode == 0, result.stderr
    assert commit_of(project) == RELEASE_TAG


def test_new_vcs_ref_overrides_the_pin(released: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    result = run_lakeforge("new", project, "--defaults", "--template", released, "--vcs-ref", OLD_TAG)
    assert result.returncode == 0, result.stderr
    assert readme(project) == "# Churn Model: release one\n"
    assert commit_of(project) == OLD_TAG


def test_new_from_a_development_checkout_renders_head_and_says_so_on_stderr(
    development: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    result = run_lakeforge("new", project, "--defaults", "--template", development)
    assert result.returncode == 0, result.stderr
    assert readme(project) == "# Churn Model: development\n"
    assert f"has no tag {RELEASE_TAG} (a development checkout): rendering its HEAD" in result.stderr
    assert "rendering its HEAD" not in result.stdout


def test_a_missing_release_tag_is_one_clear_line(tmp_path: Path, development: Path) -> None:
    """A source that is no folder (a URL, here a git bundle) is trusted to have the tag; if not, one line."""
    bundle = tmp_path / "lakeforge.bundle"
    git(development, "bundle", "create", "-q", str(bundle), "--all")
    result = run_lakeforge("new", tmp_path / "p", "--defaults", "--template", bundle)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message == f"lakeforge: template {bundle} has no tag, branch or commit {RELEASE_TAG}: " + (
        "choose one it has"
    )


# --------------------------------------------------------------------------------------------------------
# lakeforge update
# --------------------------------------------------------------------------------------------------------
def generated_at_old_release(template: Path, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    result = run_lakeforge("new", project, "--defaults", "--template", template, "--vcs-ref", OLD_TAG)
    assert result.returncode == 0, result.stderr
    git(project, "init", "-q")  # the tiny template has no first-commit task
    git(project, "add", "--all")
    git(project, "commit", "-q", "-m", "generated")
    return project


def test_update_goes_to_this_release_by_default(released: Path, tmp_path: Path) -> None:
    project = generated_at_old_release(released, tmp_path)
    result = run_lakeforge("update", project)
    assert result.returncode == 0, result.stderr
    assert readme(project) == "# Churn Model: release two\n"
    assert commit_of(project) == RELEASE_TAG
    assert f"template {OLD_TAG} -> {RELEASE_TAG}" in result.stdout
    assert " M README.md" in result.stdout


def test_update_to_overrides_the_pin(released: Path, tmp_path: Path) -> None:
    project = generated_at_old_release(released, tmp_path)
    result = run_lakeforge("update", project, "--to", "HEAD")
    assert result.returncode == 0, result.stderr
    assert readme(project) == "# Churn Model: development\n"
    assert commit_of(project).startswith(f"{RELEASE_TAG}-1-g")


def test_update_of_an_up_to_date_project_changes_nothing(released: Path, tmp_path: Path) -> None:
    project = generated_at_old_release(released, tmp_path)
    result = run_lakeforge("update", project, "--to", OLD_TAG)
    assert result.returncode == 0, result.stderr
    assert "is up to date with template v0.1.0; nothing changed." in result.stdout
    assert git(project, "status", "--porcelain") == ""


def test_update_from_a_development_checkout_says_it_renders_head(development: Path, tmp_path: Path) -> None:
    project = generated_at_old_release(development, tmp_path)
    result = run_lakeforge("update", project)
    assert result.returncode == 0, result.stderr
    assert readme(project) == "# Churn Model: development\n"
    assert f"has no tag {RELEASE_TAG}" in result.stderr
