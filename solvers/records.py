"""Typed metric records: every number named with its unit and carrying its definition once.

A record is a frozen dataclass whose fields are declared with :func:`metric`: the field name
is the key in ``metrics.json`` (units in the name), the metadata holds the unit, the definition
(written into the ``definitions`` block of ``metrics.json``) and, for the numbers people read
first, a label for the command line's table. ``metrics.json`` and the table are generated from
the records (:func:`record_values`, :func:`record_definitions`, :func:`summary_rows`); nothing
restates a key.

A metric that cannot be computed for a case is an :class:`Absent` value with its reason: it is
left out of the values and listed, with the reason, under ``absent``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the standard library's stubs name "any dataclass instance"
    from _typeshed import DataclassInstance

__all__ = [
    "Absent",
    "is_present",
    "jsonable",
    "metric",
    "record_absent",
    "record_definitions",
    "record_values",
    "summary_rows",
]


@dataclass(frozen=True, slots=True)
class Absent:
    """A metric that cannot be computed for this case, and why.

    Attributes:
        reason: a sentence a user can act on, e.g. "the case has no target muscle layer".
    """

    reason: str


def is_present(value: object) -> bool:
    """True unless ``value`` is :class:`Absent`."""
    return not isinstance(value, Absent)


def metric(
    unit: str, definition: str, *, label: str | None = None, scale: float = 1.0, shown_unit: str | None = None,
    key: str | None = None,
) -> Any:  # fmt: skip
    """A record field: its unit, its definition and (optionally) its row in the summary table.

    Args:
        unit: SI unit of the value (``"ohm"``, ``"A/m^2"``, ``"-"``).
        definition: what the number is, precisely enough to recompute it.
        label: row label in the command line's summary table (None: not shown there).
        scale: factor applied for the table (1e3 to show A as mA).
        shown_unit: the unit shown in the table (default ``unit``).
        key: its key in ``metrics.json`` when it cannot be the field's name (``pass``).
    """
    meta = {
        "unit": unit, "definition": definition, "label": label, "scale": scale, "shown_unit": shown_unit or unit,
        "key": key,
    }  # fmt: skip
    return field(metadata={"metric": meta})


def _metric_fields(record: DataclassInstance) -> Iterator[tuple[str, dict[str, Any], Any]]:
    for f in fields(record):
        meta = f.metadata.get("metric")
        if meta is not None:
            yield meta["key"] or f.name, meta, getattr(record, f.name)


def jsonable(value: object) -> Any:
    """Plain JSON data from numpy scalars and arrays, tuples and nested mappings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if is_dataclass(value) and not isinstance(value, type):
        return record_values(value)
    return value


def record_values(record: DataclassInstance) -> dict[str, Any]:
    """The present metrics of a record as JSON data, by key (declaration order)."""
    return {name: jsonable(v) for name, _, v in _metric_fields(record) if is_present(v)}


def record_definitions(record: DataclassInstance) -> dict[str, str]:
    """Definition of every metric of a record (present or not), with its unit, by key."""
    return {name: f"[{meta['unit']}] {meta['definition']}" for name, meta, _ in _metric_fields(record)}


def record_absent(record: DataclassInstance) -> dict[str, str]:
    """The reason of every absent metric of a record, by key."""
    return {name: v.reason for name, _, v in _metric_fields(record) if not is_present(v)}


def summary_rows(record: DataclassInstance) -> list[tuple[str, Any, str]]:
    """(label, value, unit) rows for the summary table; mappings give one row per entry."""
    rows: list[tuple[str, Any, str]] = []
    for _, meta, value in _metric_fields(record):
        if meta["label"] is None:
            continue
        if not is_present(value):
            rows.append((meta["label"], f"absent: {value.reason}", ""))
            continue
        scale, unit = meta["scale"], meta["shown_unit"]
        if isinstance(value, dict):
            rows += [(f"{meta['label']} {k}", _scaled(v, scale), unit) for k, v in value.items()]
        else:
            rows.append((meta["label"], _scaled(value, scale), unit))
    return rows


def _scaled(value: object, scale: float) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value if scale == 1.0 else value * scale
