"""The one contract every resource module of bootstrap and destroy keeps (cluster, libraries, workspace files,
secrets, MLflow, jobs), and the helpers they share.

A resource module has a `STEP` name and three functions, each returning an `Outcome`:

- `plan(w, desired, manifest, known)`: read the workspace, change nothing. `known` holds the outputs of the
  steps planned before it (the cluster id, once the cluster exists).
- `plan_destroy(w, desired, manifest, include_mlflow)`: what destroy would remove, only what is the project's.
- `apply(w, changes, desired, known, progress)`: carry out its changes of a plan (creates, updates, deletes),
  with `known` the outputs of the steps applied before it.

An `Outcome` holds the changes (as planned, or as done with the ids and URLs learnt), the outputs later steps
need, and what the manifest must own: of a plan, what this run may make (the intent manifest written before
the first change); of an apply, what is in place afterwards (the manifest written at the end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from databricks.sdk import WorkspaceClient

from lakeforge.changes import Change, Desired
from lakeforge.manifest import FileEntry, Manifest

T = TypeVar("T")
K = TypeVar("K")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Owned:
    """The part of the manifest one resource accounts for."""

    files: Mapping[str, FileEntry] = field(default_factory=dict)
    wheels: tuple[str, ...] = ()
    pypi: tuple[str, ...] = ()
    jobs: Mapping[str, int] = field(default_factory=dict)
    created: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outcome:
    changes: tuple[Change, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)
    owns: Owned = Owned()


class Resource(Protocol):
    """What plan.py and apply.py see of a resource module."""

    STEP: str

    def plan(
        self, w: WorkspaceClient, desired: Desired, manifest: Manifest, known: Mapping[str, Any]
    ) -> Outcome: ...

    def plan_destroy(
        self, w: WorkspaceClient, desired: Desired, manifest: Manifest, include_mlflow: bool
    ) -> Outcome: ...

    def apply(
        self,
        w: WorkspaceClient,
        changes: Sequence[Change],
        desired: Desired,
        known: Mapping[str, Any],
        progress: Progress,
    ) -> Outcome: ...


def merged(base: Manifest, parts: Iterable[Owned], replace: bool = False) -> Manifest:
    """`base` with what `parts` own added; with `replace`, the parts' files, wheels, PyPI packages and jobs
    instead of the base's (the state after an apply), the base's `created` markers kept either way."""
    files: dict[str, FileEntry] = {} if replace else dict(base.files)
    wheels: set[str] = set() if replace else set(base.wheels)
    pypi: set[str] = set() if replace else set(base.pypi)
    jobs: dict[str, int] = {} if replace else dict(base.jobs)
    created = set(base.created)
    for part in parts:
        files.update(part.files)
        wheels |= set(part.wheels)
        pypi |= set(part.pypi)
        jobs.update(part.jobs)
        created |= part.created
    return Manifest(
        files=files,
        wheels=tuple(sorted(wheels)),
        pypi=tuple(sorted(pypi)),
        jobs=jobs,
        created=frozenset(created),
        exists=base.exists,
    )


def keep_oldest(
    found: Sequence[T],
    id_of: Callable[[T], K],
    delete: Callable[[K], None],
    progress: Progress,
    step: str,
    name: str,
) -> K | None:
    """After a create: the oldest of `found` (this project's resources of one name, oldest first) is the one
    to keep; the others were made by a create the SDK retried after its answer was lost (it retries 429 and
    503 on POST too), or by a racing run, so they are lakeforge's and are deleted. None when `found` is
    empty."""
    if not found:
        return None
    keep, *extra = found
    for duplicate in extra:
        progress(f"{step}: deleting duplicate {id_of(duplicate)} of {name}")
        delete(id_of(duplicate))
    return id_of(keep)
