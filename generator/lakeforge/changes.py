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
from lakeforge.payloads import fill
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
    """A file that bootstrap imports into the workspace: one of the project's, or one it makes (`content`)."""

    rel: str  # path under the workspace root: notebooks/01_feature_pipeline, src/churn_model/config.py
    local: Path  # the project's file, or the file that `content` was made from
    sha256: str
    type: str  # "notebook" or "file"
    content: bytes | None = field(default=None, repr=False)

    def read(self) -> bytes:
        return self.local.read_bytes() if self.content is None else self.content


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
        return ownership_tags(self.config)

    def values(
        self, cluster_id: str | None = None, job_ids: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """The placeholder values; `cluster_id` and the ids of jobs are known once those exist."""
        values: dict[str, Any] = {**self.config.values(), "job_cluster": self.job_cluster()}
        packages = list(self.config.pypi_packages)
        if self.wheel:
            wheel = library_path(self.wheel.workspace_path(self.root))
            # A task's libraries and a serverless environment's dependencies: the wheel, then pypi_packages.
            values["wheel"] = wheel
            values["libraries"] = [{"whl": wheel}, *({"pypi": {"package": p}} for p in packages)]
            values["dependencies"] = [wheel, *packages]
        if cluster_id:
            values["cluster_id"] = cluster_id
        for stem, job_id in (job_ids or {}).items():
            values[f"jobs.{stem}.id"] = job_id
        return values

    def job_cluster(self) -> dict[str, Any]:
        """cluster.json as a job cluster's `new_cluster`, filled for the target. Without what only an
        all-purpose cluster has: its name, auto-termination (a job cluster ends with its run), the single
        user (a job cluster runs as the job's run-as identity). And without lakeforge's tags, which mark
        the all-purpose cluster as the project's: job clusters also appear in the clusters list."""
        spec = fill(dict(self.config.cluster), self.config.values())
        for key in ("cluster_name", "autotermination_minutes", "single_user_name"):
            spec.pop(key, None)
        return spec

    def ours(self, tags: Mapping[str, str] | None) -> bool:
        """True when `tags` mark a resource of this project and target."""
        tags = tags or {}
        return (
            tags.get(TAG_PROJECT) == self.config.project and tags.get(TAG_TARGET) == self.config.target.name
        )


def ownership_tags(config: Config) -> dict[str, str]:
    """The tags that mark a resource as this project's and target's."""
    return {TAG_PROJECT: config.project, TAG_TARGET: config.target.name}


def library_path(workspace_path: str) -> str:
    """Libraries and environments name workspace files by their /Workspace path."""
    return workspace_path if workspace_path.startswith("/Workspace/") else f"/Workspace{workspace_path}"


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
