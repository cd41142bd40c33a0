#!/usr/bin/env python3
"""Compare two runs' metrics to a relative tolerance: ``metrics.json`` / ``validation.json`` trees.

Usage::

    python scripts/compare_metrics.py BEFORE AFTER [--rtol 1e-12] [--ignore KEY ...]

BEFORE and AFTER are two files, or two folders: every ``metrics.json`` and ``validation.json``
under BEFORE is compared with the file at the same relative path under AFTER (a file missing on
either side is a difference). Numbers are compared by their relative difference
``|a - b| / max(|a|, |b|)`` (0 when equal, so an exact zero must stay zero), strings, booleans
and nulls exactly, mappings key by key and lists entry by entry. Keys that differ from run to run
(wall times) are ignored: ``timings_s``, ``seconds`` and whatever ``--ignore`` adds.

Prints the largest relative difference and where it is; exits 0 when every difference is within
``--rtol``, 1 otherwise, 2 on bad input. Used to show that a refactoring changed no metric
(issue 16) and by ``tests/test_pipeline.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Keys never compared: wall times differ from run to run.
VOLATILE_KEYS = ("timings_s", "seconds")
#: The files compared in a folder tree.
FILE_NAMES = ("metrics.json", "validation.json")


@dataclass
class Comparison:
    """The outcome of a comparison.

    Attributes:
        max_relative: the largest relative difference of two numbers [-].
        where: the path of that number (file: key/index/...).
        numbers: how many pairs of numbers were compared.
        mismatches: structural or non-numeric differences (missing keys, other strings, ...).
    """

    max_relative: float = 0.0
    where: str = ""
    numbers: int = 0
    mismatches: list[str] = field(default_factory=list)

    def ok(self, rtol: float) -> bool:
        """True when nothing mismatched and every number is within ``rtol``."""
        return not self.mismatches and self.max_relative <= rtol


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)``; 0 for equal values (infinities and NaN included)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare_values(a: object, b: object, where: str, out: Comparison, ignore: tuple[str, ...]) -> None:
    """Compare two JSON values into ``out``."""
    if _is_number(a) and _is_number(b):
        rel = relative_difference(float(a), float(b))  # type: ignore[arg-type]
        out.numbers += 1
        if rel > out.max_relative or not out.where:
            out.max_relative, out.where = rel, where
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in ignore:
                continue
            if k not in a or k not in b:
                out.mismatches.append(f"{where}/{k}: only in {'after' if k in b else 'before'}")
                continue
            compare_values(a[k], b[k], f"{where}/{k}", out, ignore)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.mismatches.append(f"{where}: {len(a)} entries before, {len(b)} after")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            compare_values(x, y, f"{where}[{i}]", out, ignore)
        return
    if a != b:
        out.mismatches.append(f"{where}: {a!r} before, {b!r} after")


def _pairs(before: Path, after: Path) -> Iterator[tuple[str, Path | None, Path | None]]:
    if before.is_file() or after.is_file():
        yield before.name, before if before.is_file() else None, after if after.is_file() else None
        return
    names = {p.relative_to(before) for n in FILE_NAMES for p in before.rglob(n)}
    names |= {p.relative_to(after) for n in FILE_NAMES for p in after.rglob(n)}
    for rel in sorted(names):
        a, b = before / rel, after / rel
        yield str(rel), a if a.is_file() else None, b if b.is_file() else None


def compare_paths(before: Path, after: Path, ignore: tuple[str, ...] = VOLATILE_KEYS) -> Comparison:
    """Compare two files, or the metrics and validation files of two folder trees."""
    out = Comparison()
    found = False
    for rel, a, b in _pairs(before, after):
        found = True
        if a is None or b is None:
            out.mismatches.append(f"{rel}: missing {'before' if a is None else 'after'}")
            continue
        compare_values(json.loads(a.read_text("utf-8")), json.loads(b.read_text("utf-8")), rel, out, ignore)
    if not found:
        out.mismatches.append(f"no {' or '.join(FILE_NAMES)} under {before} or {after}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: compare, print the largest difference, exit 0 within tolerance."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-12, help="largest relative difference allowed (default 1e-12)")
    ap.add_argument("--ignore", action="append", default=[], help="a further key to skip (repeatable)")
    args = ap.parse_args(argv)
    for p in (args.before, args.after):
        if not p.exists():
            print(f"error: {p} does not exist", file=sys.stderr)
            return 2
    res = compare_paths(args.before, args.after, VOLATILE_KEYS + tuple(args.ignore))
    print(f"numbers compared: {res.numbers}")
    print(f"max relative difference: {res.max_relative:.3g}" + (f" at {res.where}" if res.where else ""))
    for m in res.mismatches:
        print(f"mismatch: {m}")
    ok = res.ok(args.rtol)
    print(f"{'within' if ok else 'NOT within'} rtol {args.rtol:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
