"""The one error a user can fix: a bad value, a missing version or table, a role nobody holds yet.

The CLI prints its message (one line: the bad value and what is allowed) and exits 1; any other exception is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix; the message is one line that names the bad value and what is allowed."""
