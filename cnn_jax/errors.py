"""Errors a user can cause and fix; the CLI prints their one sentence and exits non-zero."""

import difflib


class UserError(Exception):
    """A problem in what the user asked for, stated as one sentence with the fix."""

    exit_code = 2


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3


def did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
