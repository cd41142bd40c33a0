"""A small TOML writer for case tables (the standard library reads TOML but does not write it).

Covers what case files hold: scalars, arrays of scalars, inline tables, tables, tables of
tables (``[material.NAME]``) and arrays of tables (``[[layer]]``). Output reads back with
:mod:`tomllib` to the same table.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["dumps"]


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return repr(v)


def _key(k: str) -> str:
    bare = k and all(c.isalnum() or c in "-_" for c in k)
    return k if bare else _value(k)


def _is_table_array(v: object) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps(table: dict[str, Any]) -> str:
    """TOML text of ``table``: scalars first, then tables, tables of tables and arrays of tables."""
    lines: list[str] = []
    for k, v in table.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in table.items():
        if isinstance(v, dict):
            if v and all(isinstance(x, dict) for x in v.values()):
                for sub, subt in v.items():
                    lines.append(f"\n[{_key(k)}.{_key(sub)}]")
                    lines += [f"{_key(a)} = {_value(b)}" for a, b in subt.items()]
            else:
                lines.append(f"\n[{_key(k)}]")
                lines += [f"{_key(a)} = {_value(b)}" for a, b in v.items()]
        elif _is_table_array(v):
            for row in v:
                lines.append(f"\n[[{_key(k)}]]")
                lines += [f"{_key(a)} = {_value(b)}" for a, b in row.items()]
    return "\n".join(lines) + "\n"
