"""Expected failures, shown to the user as one line (never a traceback)."""


class LrcalError(Exception):
    """A failure the user can act on. The CLI prints `Error: <message>` and exits 1."""

    exit_code = 1


class UsageError(LrcalError):
    """Bad command-line input (exit code 2, like click's own usage errors)."""

    exit_code = 2


class NotFound(LrcalError):
    """A named thing (model, set, router version) does not exist."""
