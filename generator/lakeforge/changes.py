"""The vocabulary of plans: what one resource needs (`Create`, `Update`, `Unchanged`, `Delete`), the desired
state the resource modules plan against, and how a failed API call becomes one line naming step and resource.

Changes are inert data: planning makes them, `apply` carries them out, `render` shows them. None of them
does I/O.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from databricks.sdk.errors import DatabricksError, OperationFailed

from lakeforge.config import Config
from lakeforge.errors import LakeforgeError, StepError
from lakeforge.wheel import Wheel

TAG_PROJECT = "lakeforge-project"
TAG_TARGET = "lakeforge-target"
TAG_SPEC = "lakeforge-spec"  # a hash of the desired spec: a key removed from a file is a change too
UNKNOWN = "(known after apply)"


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"

    @property
    def past(self) -> str:
        return {"create": "created", "update": "updated", "unchanged": "unchanged", "delete": "deleted"}[self]


@dataclass(frozen=True)
class Change:
    """One resource and what bootstrap or destroy does to it.

    `spec` holds what apply needs (a payload, an id); it is never rendered, and never holds a secret value.
    """

    step: str  # identity, cluster, libraries, workspace, secrets, mlflow, jobs
    kind: (
        str  # cluster, wheel file, library, notebook, file, secret scope, secret, experiment, model, job, ...
    )
    name: str
    detail: str = ""
    url: str | None = None
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    action: ClassVar[Action]


@dataclass(frozen=True)
class Create(Change):
    action: ClassVar[Action] = Action.CREATE


@dataclass(frozen=True)
class Update(Change):
    action: ClassVar[Action] = Action.UPDATE


@dataclass(frozen=True)
class Unchanged(Change):
    action: ClassVar[Action] = Action.UNCHANGED


@dataclass(frozen=True)
class Delete(Change):
    action: ClassVar[Action] = Action.DELETE


@dataclass(frozen=True)
class LocalFile:
    """A file of the project that bootstrap imports into the workspace."""

    rel: str  # path under the workspace root: notebooks/01_feature_pipeline, src/churn_model/config.py
    local: Path
    sha256: str
    type: str  # "notebook" or "file"


@dataclass(frozen=True)
class Desired:
    """What the project wants in the target's workspace, computed locally before any change."""

    config: Config
    host: str
    user: str
    wheel: Wheel | None
    files: tuple[LocalFile, ...] = ()
    rotate_secrets: bool = False
    wait: bool = False
    wait_minutes: int = 20

    @property
    def root(self) -> str:
        return self.config.target.workspace_root

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_PROJECT: self.config.project, TAG_TARGET: self.config.target.name}

    def values(self, cluster_id: str | None = None) -> dict[str, str]:
        values = self.config.values()
        if cluster_id:
            values["cluster_id"] = cluster_id
        return values

    def ours(self, tags: Mapping[str, str] | None) -> bool:
        """True when `tags` mark a resource of this project and target."""
        tags = tags or {}
        return (
            tags.get(TAG_PROJECT) == self.config.project and tags.get(TAG_TARGET) == self.config.target.name
        )


def workspace_url(host: str, path: str) -> str:
    """The UI address of a workspace path (the UI spells paths without the /Workspace prefix)."""
    shown = path.removeprefix("/Workspace") if path.startswith("/Workspace/") else path
    return f"{host}/#workspace{shown}"


@contextlib.contextmanager
def failing_as(step: str, resource: str) -> Iterator[None]:
    """Turn what an API call raises into a `StepError` naming `step` and `resource`."""
    try:
        yield
    except LakeforgeError:
        raise
    except (DatabricksError, OperationFailed) as exc:
        raise StepError(step, resource, _one_line(exc)) from exc
    except (OSError, TimeoutError) as exc:  # connection refused/reset, the SDK's retry deadline
        raise StepError(step, resource, f"cannot reach the workspace: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
