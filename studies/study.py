"""Study files: a base case and the axes swept over it, resolved into checked cases.

A study file is TOML::

    base = "cheek.toml"            # a case file (relative to the study file) or a built-in case;
                                   # or an inline [case] table instead
    [sweep]
    mode = "grid"                  # grid (every combination) | zip (axes side by side) | list
    "electrode.A.diameter_mm" = [10, 15, 20]
    "layer.fat.thickness_mm" = [2.0, 4.0, 6.0]
    "channel.current_mA" = [5, 10]
    [set]                          # optional: fixed changes to the base, same paths
    "mesh.quality" = "coarse"
    [outputs]
    fields = false                 # write field files (XDMF) per case

With ``mode = "list"`` the points are given one by one: ``[[sweep.point]]`` tables of
``"path" = value``.

Paths address a key of the case's canonical table (:meth:`emsim.models.Case.to_dict`, case-file
keys and units): ``patch.width_mm``, ``mesh.size_factor``, ``waveform.pulse_width_us``; list
tables by name, index or ``*`` (all of them): ``electrode.A.diameter_mm``,
``electrode[0].gel.thickness_mm``, ``electrode.*.diameter_mm``, ``layer.fat.thickness_mm`` (the
layer whose tissue or label is ``fat``), ``layer[1].thickness_mm``, ``channel.current_mA`` (the
only channel) or ``channel.NAME.current_mA``. Every point is checked as a whole case before
anything runs; an error names the axis path and the point.

Every point is identified by the digest of its fully resolved case. Points that differ only in
channel currents (amplitude axes) share one geometry key (:func:`geometry_key`): the runner
solves each geometry once per unit current and evaluates every amplitude from that result.
Points that differ only in their waveform and currents (waveform axes: ``waveform.pulse_width_us``,
``waveform.frequency_Hz``, ...) share one response key (:func:`response_key`), the runner's unit
of work: the mesh, the electric lead fields and the frequency response (per unit current,
independent of the waveform) are computed once for them, and each waveform is synthesised from
that response without a further 3-D solve.
"""

from __future__ import annotations

import copy
import itertools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import builtin_case
from ..errors import CaseFileError, InputError
from ..models.case import Case
from ..models.case_file import parse_case, parse_toml, read_case_text
from ..pipeline import geometry_key, response_key, unit_case

__all__ = [
    "MODES",
    "Study",
    "StudyPoint",
    "geometry_key",
    "is_study_table",
    "load_study",
    "parse_study",
    "response_key",
    "set_path",
    "unit_case",
]

#: Sweep modes: every combination, axes side by side, or points listed one by one.
MODES = ("grid", "zip", "list")

_LIST_KEYS = {"electrode": ("name",), "layer": ("tissue", "label"), "channel": ("name",), "probe": ("name",)}


@dataclass(frozen=True)
class StudyPoint:
    """One case of a study.

    Attributes:
        index: position in the study (0-based, the order of the sweep).
        params: the swept values by axis path (case-file units, as written in the study).
        case: the fully resolved, checked case.
        digest: SHA-256 of the case's canonical form: the case's identity in the ledger.
        group: response key (:func:`response_key`): points with the same key differ only in
            channel currents and waveform, and share one mesh, electric solve and frequency
            response.
    """

    index: int
    params: dict[str, Any]
    case: Case = field(repr=False)
    digest: str
    group: str


@dataclass(frozen=True)
class Study:
    """A parsed study: its axes and every point, checked.

    Attributes:
        name: study name (the ``name`` key, else the file's stem).
        axes: the swept paths, in the study's order.
        mode: grid, zip or list.
        points: the cases, in sweep order (duplicates removed, first kept).
        fields: write field files (XDMF) per case.
        base_name: the base case's name.
    """

    name: str
    axes: tuple[str, ...]
    mode: str
    points: tuple[StudyPoint, ...]
    fields: bool = False
    base_name: str = ""

    @property
    def groups(self) -> dict[str, list[StudyPoint]]:
        """Points by response key, in sweep order: one mesh, electric solve and frequency response per group."""
        out: dict[str, list[StudyPoint]] = {}
        for p in self.points:
            out.setdefault(p.group, []).append(p)
        return out


def is_study_table(table: Mapping[str, Any]) -> bool:
    """True when a TOML table is a study file (it has a ``[sweep]`` table)."""
    return isinstance(table, Mapping) and "sweep" in table


# ----------------------------------------------------------------------------- paths


def _select(rows: list, section: str, selector: str, path: str) -> list[dict[str, Any]]:
    """Rows of a list table (electrode, layer, ...) picked by name, tissue, index or ``*``."""
    if selector == "*":
        return rows
    if selector.startswith("[") and selector.endswith("]"):
        try:
            i = int(selector[1:-1])
        except ValueError:
            raise InputError(path, selector, "an index like [0] or a name") from None
        if not -len(rows) <= i < len(rows):
            raise InputError(path, i, f"{section} index in 0..{len(rows) - 1}")
        return [rows[i]]
    keys = _LIST_KEYS.get(section, ("name",))
    hits = [r for r in rows if any(r.get(k) == selector for k in keys)]
    if section == "layer" and not hits:  # labels of repeated tissues: fat_2
        labels = _layer_labels(rows)
        hits = [r for r, label in zip(rows, labels, strict=True) if label == selector]
    if len(hits) != 1:
        names = sorted({str(r.get(k)) for r in rows for k in keys if r.get(k) is not None})
        what = "matches several" if hits else "matches none"
        raise InputError(path, selector, f"{what}; one of {', '.join(names)}, an index [i] or *")
    return hits


def _layer_labels(rows: list) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        t = str(r.get("tissue"))
        seen[t] = seen.get(t, 0) + 1
        out.append(t if seen[t] == 1 else f"{t}_{seen[t]}")
    return out


def _split(path: str) -> list[str]:
    """``electrode[0].gel.thickness_mm`` -> ``["electrode", "[0]", "gel", "thickness_mm"]``."""
    parts: list[str] = []
    for token in path.split("."):
        if "[" in token and not token.startswith("[") and token.endswith("]"):
            head, _, rest = token.partition("[")
            parts += [head, "[" + rest]
        else:
            parts.append(token)
    if not path or any(not p for p in parts):
        raise InputError("sweep", path, "a dotted path such as electrode.A.diameter_mm")
    return parts


def set_path(table: dict[str, Any], path: str, value: Any) -> None:
    """Set the key a path addresses in a case table (in place).

    Raises:
        InputError: the path addresses nothing in the table (naming the path).
    """
    if path == "site":
        # A site brings its own layers (emsim.models.sites): the table's resolved layers, which
        # belong to the former site or to the file, are dropped (layer paths apply after it).
        table["site"] = copy.deepcopy(value)
        table.pop("layer", None)
        return
    parts = _split(path)
    targets: list[Any] = [table]
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        nxt: list[Any] = []
        for t in targets:
            if isinstance(t, list):  # a list table: the part is its selector
                section = parts[depth - 1]
                keys = _LIST_KEYS.get(section, ("name",))
                named = any(isinstance(r, dict) and any(r.get(k) == part for k in keys) for r in t)
                explicit = part == "*" or part.startswith("[") or named
                if explicit or len(t) != 1 or section == "layer" and part in _layer_labels(t):
                    if last:
                        raise InputError(path, value, "addresses a whole table; add the key to set")
                    nxt += _select(t, section, part, path)
                    continue
                t = t[0]  # the only row, selector omitted: channel.current_mA
            if not isinstance(t, dict):
                raise InputError(path, value, f"{'.'.join(parts[:depth])} is a value, not a table")
            if last:
                if part not in t and depth == 0:
                    raise InputError(path, value, "unknown case key; allowed: " + ", ".join(sorted(table)))
                t[part] = copy.deepcopy(value)
            else:
                if part not in t:
                    if depth == 0:
                        raise InputError(path, value, "unknown case table; the base case has: " + ", ".join(table))
                    t[part] = {}
                nxt.append(t[part])
        targets = nxt


# ----------------------------------------------------------------------------- study files


def _base_table(raw: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    if "case" in raw:
        if "base" in raw:
            raise InputError("base", raw["base"], "give either base or an inline [case] table, not both")
        if not isinstance(raw["case"], dict):
            raise InputError("case", raw["case"], "an inline case table")
        base = parse_case(raw["case"], base_dir=folder)
    else:
        name = raw.get("base")
        if not isinstance(name, str) or not name:
            raise InputError("base", name, 'a case file ("cheek.toml"), a built-in case name, or an inline [case]')
        path = Path(name) if Path(name).is_absolute() else folder / name
        if path.is_file():
            text = read_case_text(path)
            base = parse_case(parse_toml(text, path), base_dir=path.parent)
        else:
            try:
                builtin = builtin_case(name)
            except InputError as err:
                raise InputError("base", name, f"no such case file; or a built-in case, {err.allowed}") from None
            base = parse_case(parse_toml(read_case_text(builtin), builtin))
    return base.to_dict()


def _axes_and_points(sweep: Mapping[str, Any]) -> tuple[str, tuple[str, ...], list[dict[str, Any]]]:
    mode = sweep.get("mode", "grid")
    if mode not in MODES:
        raise InputError("sweep.mode", mode, f"one of {', '.join(MODES)}")
    if mode == "list":
        extra = [k for k in sweep if k not in ("mode", "point")]
        if extra:
            raise InputError(f"sweep.{extra[0]}", sweep[extra[0]], 'with mode = "list" give [[sweep.point]] tables')
        rows = sweep.get("point")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and r for r in rows):
            raise InputError("sweep.point", rows, '[[sweep.point]] tables of "path" = value')
        names: list[str] = []
        for r in rows:
            names += [k for k in r if k not in names]
        return mode, tuple(names), [dict(r) for r in rows]
    axes = tuple(k for k in sweep if k != "mode")
    if not axes:
        raise InputError("sweep", {}, 'at least one axis: "path" = [values]')
    values = []
    for a in axes:
        v = sweep[a]
        if not isinstance(v, list) or not v:
            raise InputError(f"sweep.{a}", v, "a non-empty list of values")
        values.append(v)
    if mode == "zip":
        n = {len(v) for v in values}
        if len(n) > 1:
            raise InputError("sweep", {a: len(v) for a, v in zip(axes, values, strict=True)},
                             'with mode = "zip" every axis has the same number of values')  # fmt: skip
        combos = list(zip(*values, strict=True))
    else:
        combos = list(itertools.product(*values))
    return mode, axes, [dict(zip(axes, c, strict=True)) for c in combos]


def parse_study(raw: Mapping[str, Any], folder: str | Path = ".", *, name: str = "study") -> Study:
    """Check a study table and resolve every point into a checked case.

    Args:
        raw: the study file's table.
        folder: where a relative ``base`` path is looked up (the study file's folder).
        name: study name when the table has no ``name``.

    Raises:
        InputError: a bad key, path or value, naming the axis path (and the point) before
            anything runs.
    """
    allowed = ("name", "base", "case", "set", "sweep", "outputs")
    for key in raw:
        if key not in allowed:
            raise InputError(key, raw[key], f"unknown study key; allowed: {', '.join(allowed)}")
    base = _base_table(raw, Path(folder))
    fixed = raw.get("set", {})
    if not isinstance(fixed, dict):
        raise InputError("set", fixed, 'a table of "path" = value')
    for path, value in sorted(fixed.items(), key=lambda kv: kv[0] != "site"):  # the site first
        set_path(base, path, value)
    if fixed:
        try:
            parse_case(base)
        except InputError as err:
            raise InputError(f"set -> {err.field}", err.value, err.allowed) from None
    sweep = raw.get("sweep")
    if not isinstance(sweep, dict):
        raise InputError("sweep", sweep, "a [sweep] table")
    mode, axes, rows = _axes_and_points(sweep)
    outputs = raw.get("outputs", {})
    if not isinstance(outputs, dict) or set(outputs) - {"fields"}:
        raise InputError("outputs", outputs, "a table with fields = true | false")
    fields = outputs.get("fields", False)
    if not isinstance(fields, bool):
        raise InputError("outputs.fields", fields, "true or false")
    points: list[StudyPoint] = []
    seen: set[str] = set()
    for i, params in enumerate(rows):
        table = copy.deepcopy(base)
        for path, value in sorted(params.items(), key=lambda kv: kv[0] != "site"):  # the site first
            if isinstance(value, (dict,)):
                raise InputError(f"sweep.{path}", value, "a value (number, string, boolean or list)")
            set_path(table, path, value)
        try:
            case = parse_case(table)
        except InputError as err:
            where = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
            culprit = next((p for p in params if _touches(p, err.field)), None)
            prefix = f"sweep {culprit}" if culprit else "sweep"
            raise InputError(f"{prefix} -> {err.field}", err.value, f"{err.allowed} (at point {i}: {where})") from None
        digest = case.digest()
        if digest in seen:
            continue
        seen.add(digest)
        points.append(StudyPoint(len(points), dict(params), case, digest, response_key(case)))
    study_name = raw.get("name", name)
    if not isinstance(study_name, str) or not study_name:
        raise InputError("name", study_name, "a non-empty study name")
    return Study(study_name, axes, mode, tuple(points), fields, base.get("name", ""))


def _touches(path: str, err_field: str) -> bool:
    """Whether an axis path plausibly caused an error on ``err_field`` (same last key or section)."""
    last = _split(path)[-1]
    head = _split(path)[0]
    return last in err_field or err_field.startswith(head)


def load_study(path: str | Path) -> Study:
    """Read and check a study file; a relative ``base`` is looked up beside it.

    Raises:
        CaseFileError: the file is missing or not TOML.
        InputError: a bad key, path or value (see :func:`parse_study`).
    """
    path = Path(path)
    text = read_case_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CaseFileError(f"study file {str(path)!r}: not valid TOML ({err})") from None
    return parse_study(raw, path.parent, name=path.stem)


def flat_params(points: Sequence[StudyPoint]) -> list[dict[str, Any]]:
    """The swept parameters of each point (lists as JSON text, for tables)."""
    return [{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in p.params.items()} for p in points]
