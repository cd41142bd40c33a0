"""Exceptions raised by emsim, all in one module.

Every error a user can cause derives from :class:`EmsimError`; the command line
prints its message on one line and exits non-zero, without a traceback.
"""

from __future__ import annotations

__all__ = [
    "CaseFileError",
    "EmsimError",
    "InputError",
    "MeshError",
    "SolverError",
    "VerificationError",
    "echo",
]


class EmsimError(Exception):
    """Base class of every error emsim raises on purpose."""


class InputError(EmsimError, ValueError):
    """A value given by the user is outside what is allowed.

    The message names the field, the value and the allowed range, e.g.
    ``layer[1].thickness_mm = -2.0: must be > 0``.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field} = {echo(value)}: {allowed}")


#: Longest value an error message repeats in full [characters]; a longer one is summarised.
ECHO_CHARS = 200
#: Items of a long list (or keys of a long table) an error message shows before the count.
ECHO_ITEMS = 5


def echo(value: object) -> str:
    """``repr(value)`` for an error message, summarised when long.

    A 10,000-item list is shown as its first items and its length, a long string as its start
    and its length, so that one bad value cannot make a 59 kB error line.
    """
    text = repr(value)
    if len(text) <= ECHO_CHARS:
        return text
    if isinstance(value, (list, tuple)):
        head = ", ".join(echo(v)[: ECHO_CHARS // ECHO_ITEMS] for v in value[:ECHO_ITEMS])
        return f"[{head}, ... ({len(value)} items)]"
    if isinstance(value, dict):
        keys = ", ".join(repr(k)[: ECHO_CHARS // ECHO_ITEMS] for k in list(value)[:ECHO_ITEMS])
        return f"{{{keys}, ... ({len(value)} keys)}}"
    if isinstance(value, str):
        return f"{value[: ECHO_CHARS - 40]!r}... ({len(value)} characters)"
    return text[: ECHO_CHARS - 3] + "..."


class CaseFileError(EmsimError):
    """A case file cannot be read (missing, not TOML, unknown keys).

    Attributes:
        reason: the message without the file's name, for callers that name it themselves
            (empty when not given).
    """

    reason: str = ""


class MeshError(EmsimError):
    """gmsh could not build or tag the geometry."""


class SolverError(EmsimError):
    """A linear solve did not converge or a result failed its own checks."""


class VerificationError(EmsimError):
    """A verification case exceeded its tolerance."""
