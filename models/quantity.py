"""Fields with a case-file key, a unit and an allowed range, stated once on the dataclasses.

A model dataclass declares each number with :func:`quantity`: the key it has in a case file
(units in the name, e.g. ``width_mm``), the factor that turns the file's unit into SI, and the
allowed range. From that one statement

* :func:`check_fields` (called by ``__post_init__``) validates a value however the object was
  built, from a file or from Python, and names the field by its case-file key and value;
* :func:`numbers_from_table` reads the keys of a case-file table into SI keyword arguments;
* :func:`numbers_to_table` writes the canonical case-file form back (see ``Case.to_dict``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:  # the standard library's stubs name "any dataclass instance"
    from _typeshed import DataclassInstance

__all__ = [
    "Quantity",
    "check_fields",
    "file_value",
    "numbers_from_table",
    "numbers_to_table",
    "quantity",
    "renamed",
]


@dataclass(frozen=True, slots=True)
class Quantity:
    """How one numeric field appears in a case file and which values it may take.

    Attributes:
        key: the case-file key, with its unit (``thickness_mm``).
        to_si: factor from the file's unit to SI (1e-3 for mm).
        low: lower bound in the file's unit, or None.
        high: upper bound in the file's unit, or None.
        low_open: the lower bound itself is excluded (``> low``) when True, allowed when False.
        integer: the value must be a whole number.
    """

    key: str
    to_si: float = 1.0
    low: float | None = None
    high: float | None = None
    low_open: bool = True
    integer: bool = False

    def allowed(self) -> str:
        """The allowed range in words, in the file's unit."""
        kind = "an integer" if self.integer else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        return f"must be {kind}" + (" " + " and ".join(parts) if parts else "")

    def check(self, value_si: object, where: str) -> None:
        """Raise :class:`InputError` unless ``value_si`` (SI) is a number in range."""
        name = f"{where}.{self.key}" if where else self.key
        if isinstance(value_si, bool) or not isinstance(value_si, (int, float)) or not math.isfinite(value_si):
            raise InputError(name, value_si, self.allowed())
        v = file_value(value_si, self.to_si)
        if self.integer and v != int(v):
            raise InputError(name, v, self.allowed())
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            raise InputError(name, v, self.allowed())
        if self.high is not None and v > self.high:
            raise InputError(name, v, self.allowed())


def quantity(
    key: str,
    *,
    to_si: float = 1.0,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
    integer: bool = False,
    default: Any = MISSING,
) -> Any:
    """A dataclass field carrying its :class:`Quantity` (case-file key, unit factor, range)."""
    spec = Quantity(key=key, to_si=to_si, low=low, high=high, low_open=low_open, integer=integer)
    return field(default=default, metadata={"quantity": spec})


def file_value(value_si: float, to_si: float) -> float | int:
    """An SI value in the file's unit, rounded to 15 significant digits (15 mm, not 14.999...)."""
    v = float(f"{value_si / to_si:.15g}")
    return int(v) if to_si == 1.0 and isinstance(value_si, int) else v


def _quantities(obj_or_cls: DataclassInstance | type[DataclassInstance]) -> Iterator[tuple[str, Quantity]]:
    for f in fields(obj_or_cls):
        spec = f.metadata.get("quantity")
        if spec is not None:
            yield f.name, spec


def check_fields(obj: DataclassInstance, where: str) -> None:
    """Check every :func:`quantity` field of ``obj``; None passes for optional ones.

    Raises:
        InputError: naming ``where.key``, the value in the file's unit and the allowed range.
    """
    for f in fields(obj):
        spec = f.metadata.get("quantity")
        if spec is None:
            continue
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        spec.check(value, where)


def numbers_from_table(cls: type[DataclassInstance], table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """SI keyword arguments for ``cls`` from the :func:`quantity` keys present in ``table``.

    Only converts: ranges are checked by the dataclass itself. A value that is not a number
    is reported here, since it cannot be converted.
    """
    out: dict[str, Any] = {}
    for name, spec in _quantities(cls):
        if spec.key not in table:
            continue
        value = table[spec.key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{where}.{spec.key}" if where else spec.key, value, spec.allowed())
        out[name] = int(value) if spec.integer else float(value) * spec.to_si
    return out


def numbers_to_table(obj: DataclassInstance) -> dict[str, Any]:
    """The :func:`quantity` fields of ``obj`` as case-file keys and values (None omitted)."""
    out: dict[str, Any] = {}
    for name, spec in _quantities(obj):
        value = getattr(obj, name)
        if value is None:
            continue
        out[spec.key] = int(value) if spec.integer else file_value(float(value), spec.to_si)
    return out


@contextmanager
def renamed(old: str, new: str) -> Iterator[None]:
    """Re-raise an :class:`InputError` whose field starts with ``old`` under ``new`` instead.

    The dataclasses name their fields as a Python user knows them (``layer[fat]``); the parser
    names them as the file has them (``layer[1]``).
    """
    try:
        yield
    except InputError as err:
        if old and err.field.startswith(old) and old != new:
            raise InputError(new + err.field[len(old) :], err.value, err.allowed) from None
        raise
