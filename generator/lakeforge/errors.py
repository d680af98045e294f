"""The one error type of lakeforge: raised by the library, printed by the CLI without a traceback.

Subclasses say which kind of failure it was, so that the CLI can pick an exit code and tests can tell them
apart; every message is one line a user can act on.
"""


class LakeforgeError(Exception):
    """Something the user can act on; the message says what was wrong and what is allowed."""


class ConfigError(LakeforgeError):
    """The `[tool.lakeforge]` table, or a file it points to, is not valid. Raised before any API call."""


class AuthError(LakeforgeError):
    """No credentials for the workspace, or the workspace rejected them. The message carries the fix."""


class StepError(LakeforgeError):
    """A workspace call failed while planning or applying; the message names the step and resource."""

    def __init__(self, step: str, resource: str, detail: str) -> None:
        self.step = step
        self.resource = resource
        self.detail = detail
        super().__init__(f"{step}: {resource}: {detail}")


class Cancelled(LakeforgeError):
    """The user pressed Ctrl-C; what the command had started is undone. The CLI exits 130 (128 + SIGINT)."""


class Refused(LakeforgeError):
    """The user declined, or there was nobody to ask and no --yes."""


class RunFailed(LakeforgeError):
    """A job run ended in another state than SUCCESS."""
