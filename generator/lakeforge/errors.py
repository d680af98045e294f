"""The one error type of lakeforge: raised by the library, printed by the CLI without a traceback."""


class LakeforgeError(Exception):
    """Something the user can act on; the message says what was wrong and what is allowed."""
