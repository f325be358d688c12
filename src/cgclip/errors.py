"""User-facing errors.

Every problem caused by the user's input (a missing or corrupt file, a malformed annotation, an unknown checkpoint
format, a query set with no valid match, ...) raises :class:`CgclipError` with a one-line message that names the file
(and line, where there is one) and says what is expected. The CLI prints that line and exits with status 2 instead
of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class CgclipError(Exception):
    """An error the user can act on; its message is a single line naming the file and the fix."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class DataError(CgclipError):
    """Malformed or missing dataset files."""


class ConfigError(CgclipError):
    """Invalid configuration value or preset."""


class CheckpointError(CgclipError):
    """A checkpoint or model directory that cannot be loaded."""


class EvaluationError(CgclipError):
    """An evaluation that cannot produce a meaningful number (e.g. no query has a valid match)."""


class ResultsError(CgclipError):
    """A results file cgclip cannot read: an unknown schema version or unit (see :mod:`cgclip.eval.results`)."""
