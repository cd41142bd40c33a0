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
        super().__init__(f"{field} = {value!r}: {allowed}")


class CaseFileError(EmsimError):
    """A case file cannot be read (missing, not TOML, unknown keys)."""


class MeshError(EmsimError):
    """gmsh could not build or tag the geometry."""


class SolverError(EmsimError):
    """A linear solve did not converge or a result failed its own checks."""


class VerificationError(EmsimError):
    """A verification case exceeded its tolerance."""
