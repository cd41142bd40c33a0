"""Data files: JSON, CSV, Parquet and NumPy archives, each written atomically.

The caller decides the content (keys, columns, rows); this module decides the bytes:

* JSON: two-space indent, a final newline, floats in Python's shortest round-trip form (so the
  same numbers give the same bytes on every run), no NaN or infinity (the caller maps them,
  e.g. :func:`emsim.solvers.records.jsonable`; one that slips through is an error, not a
  silent ``NaN`` that other JSON readers reject);
* CSV: from an array (``%.10g``, the precision the solvers' tolerances deserve) or from rows of
  Python values (floats by ``repr``: exact);
* Parquet: one typed column per name (bool, int64, float64, or string), via pyarrow;
* NumPy ``.npz``: named arrays.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pyarrow is heavy: imported where a Parquet file is written
    import pyarrow as pa

from .atomic import atomic_file, write_text

__all__ = ["json_text", "write_csv_array", "write_csv_rows", "write_json", "write_npz", "write_parquet"]


def json_text(data: Any, *, sort_keys: bool = False) -> str:
    """The JSON text emsim writes for plain data (indent 2, final newline, no NaN)."""
    return json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"


def write_json(path: str | Path, data: Any, *, sort_keys: bool = False) -> Path:
    """Write plain JSON data (dicts, lists, str, int, float, bool, None) atomically."""
    return write_text(path, json_text(data, sort_keys=sort_keys))


def write_csv_array(path: str | Path, header: Sequence[str], rows: np.ndarray, *, fmt: str = "%.10g") -> Path:
    """Write a numeric table (a header line, then ``fmt`` values, comma-separated) atomically."""
    buf = io.StringIO()
    np.savetxt(buf, rows, fmt=fmt, delimiter=",", header=",".join(header), comments="")
    return write_text(path, buf.getvalue())


def write_csv_rows(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV table of Python values atomically: None as empty, floats by ``repr`` (exact)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row])
    return write_text(path, buf.getvalue())


def _column_type(values: Sequence[object]) -> pa.DataType:
    import pyarrow as pa  # local: pyarrow is heavy, and only Parquet needs it

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.float64() if any(isinstance(v, float) for v in present) else pa.int64()
    return pa.string()


def write_parquet(path: str | Path, columns: Mapping[str, Sequence[Any]]) -> Path:
    """Write columns of Python values as a Parquet table atomically.

    Each column's type follows its values: all bool -> bool; all numbers -> int64, or float64
    when one is a float; anything else -> string (``str`` of each value). None is a null.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name, values in columns.items():
        kind = _column_type(values)
        if kind == pa.string():
            values = [None if v is None else str(v) for v in values]
        elif kind == pa.float64():
            values = [None if v is None else float(v) for v in values]
        arrays[name] = pa.array(values, type=kind)
    with atomic_file(path) as tmp:
        pq.write_table(pa.table(arrays), tmp)
    return Path(path)


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write named arrays as an uncompressed NumPy archive (``.npz``) atomically."""
    with atomic_file(path) as tmp:
        # the temporary keeps the .npz extension: numpy adds none. The ignore: numpy's stub types
        # **kwds against its own allow_pickle: bool, so no mapping of arrays type-checks here
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
    return Path(path)
