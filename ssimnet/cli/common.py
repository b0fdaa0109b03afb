"""What every command shares: the one-line error and warning."""

from __future__ import annotations

import sys

__all__ = ["CommandError", "warn"]


class CommandError(Exception):
    """A failure the command reports in one line and exits with `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def warn(message: str) -> None:
    print(f"ssimnet: warning: {message}", file=sys.stderr)

