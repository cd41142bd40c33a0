"""The mesh cache: a case's gmsh mesh kept on disk, so that a rerun of the same geometry skips gmsh.

gmsh's meshing is the largest serial step of a run (it runs on rank 0 while the other ranks wait;
docs/performance.md has its share of the default case), and it is the same work every time an
engineer reruns a geometry with another waveform, current or session. :func:`build_patch_mesh
<emsim.meshes.patch.build_patch_mesh>` therefore stores each mesh it makes (gmsh's own binary
``.msh``, the physical groups and the nodes' coordinates exact to the bit) with its quality
statistics, and a later build of the same key reads it back instead of meshing: the same nodes,
cells and tags in the same order, so every figure of the run is the same to the last digit.

**The key** is a SHA-256 of everything a mesh can depend on:

* the geometry of the case: its patch, each layer's label, tissue name and thickness, its
  electrodes (whole: shape, position, gel pad, contact), its exclusion zones (whole: an orbit
  zone places a globe), its ``[mesh]`` settings and the target sizes derived from them;
* the code that makes a mesh: the bytes of every ``.py`` and ``.toml`` file of
  :mod:`emsim.meshes` and :mod:`emsim.models` as they are on disk when the first key is made (an
  edited mesher, or edited data in an editable install, is a new key from the next process on;
  a mesher changed in memory, by a test's ``monkeypatch`` or a notebook's reload, is not seen:
  turn the cache off there, as the test suite does);
* the gmsh version, and this cache's format (:data:`FORMAT`).

Every value enters the key in the case's canonical form (:meth:`emsim.models.Case.to_dict`, the
one :meth:`~emsim.models.Case.digest` hashes: numbers in file units to 15 significant digits,
numpy arrays element by element), never through ``repr``, which rounds numpy arrays to 8 digits
and elides long ones.

A key that misses something would hand a stale mesh to a new geometry, so the key takes more
than it needs (the electrodes' contact values, the sizes beside the settings they come from); a
case that differs only in what the mesh cannot see (the waveform, the currents, the heating, the
layers' conductivities, the name) shares its mesh; a change to a pad's gel or contact values
meshes again.

**Where**: ``$EMSIM_CACHE_DIR/meshes`` (default ``$XDG_CACHE_HOME/emsim/meshes``, else
``~/.cache/emsim/meshes``). ``EMSIM_MESH_CACHE=off`` turns the cache off (every build meshes);
a value of it or of ``EMSIM_MESH_CACHE_MAX_MB`` that is neither is an
:class:`~emsim.errors.InputError` naming the variable (:func:`settings`).
Each entry is ``KEY.msh`` and ``KEY.json`` (the statistics, the case's name and the ``.msh``
file's SHA-256), stored by :mod:`emsim.io.cache` (atomic files, the record last; a damaged
entry is removed and meshed again). The cache keeps at most :data:`MAX_BYTES`
(``EMSIM_MESH_CACHE_MAX_MB`` in MB), dropping the least recently used entries after each store.
Only the rank that runs gmsh reads or writes it; a cache that cannot be read or written is
logged and never stops a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.cache import cache_folder, read_entry, remove_entry, write_entry, write_msh
from ..models.case import Case

__all__ = [
    "FORMAT",
    "MAX_BYTES",
    "CacheSettings",
    "CachedMesh",
    "cache_dir",
    "code_digest",
    "lookup",
    "mesh_key",
    "settings",
    "store",
]

log = logging.getLogger(__name__)

#: The entry format: a new value makes every older entry a miss.
FORMAT = 1
#: Largest total size of the cache's entries [bytes] unless ``EMSIM_MESH_CACHE_MAX_MB`` says
#: otherwise (the default case's mesh is 9 MB: about 200 such geometries).
MAX_BYTES = 2 * 1024**3
#: ``EMSIM_MESH_CACHE`` values: off, and on (unset or empty is on).
_OFF, _ON = ("off", "0", "no", "false"), ("on", "1", "yes", "true", "")
#: The tables of :meth:`Case.to_dict` a mesh can depend on (the meshers read nothing else of a case).
_GEOMETRY = ("patch", "layer", "electrode", "exclusion", "mesh")

#: What :func:`lookup` returns on a hit: the quality statistics (cells, vertices, h_min [m],
#: h_max [m], quality min, p01, mean) and the layered mesher's aspect per layer, as stored.
CachedMesh = tuple[tuple[int, int, float, float, float, float, float], dict[str, float]]


@dataclass(frozen=True)
class CacheSettings:
    """The mesh cache as the environment sets it.

    Attributes:
        folder: where the entries are, or None when the cache is off (or no folder can be found).
        cap_bytes: largest total size of the entries [bytes].
    """

    folder: Path | None
    cap_bytes: int


def settings() -> CacheSettings:
    """The cache's folder and cap from ``EMSIM_MESH_CACHE``, ``EMSIM_CACHE_DIR`` and ``EMSIM_MESH_CACHE_MAX_MB``.

    Raises:
        InputError: ``EMSIM_MESH_CACHE`` is not one of its values, or ``EMSIM_MESH_CACHE_MAX_MB``
            is not a finite size >= 0 (each named with its value and what it may be).
    """
    switch = os.environ.get("EMSIM_MESH_CACHE", "")
    if switch.strip().lower() not in _OFF + _ON:
        raise InputError("EMSIM_MESH_CACHE", switch, f"off ({', '.join(_OFF)}) or on ({', '.join(_ON[:-1])}, or unset)")
    text = os.environ.get("EMSIM_MESH_CACHE_MAX_MB", "")
    cap = MAX_BYTES
    if text.strip():
        try:
            mb = float(text)
        except ValueError:
            mb = math.nan
        if not (math.isfinite(mb) and mb >= 0):
            raise InputError("EMSIM_MESH_CACHE_MAX_MB", text, "a finite size in MB >= 0 (unset: 2048)")
        cap = int(mb * 1024**2)
    off = switch.strip().lower() in _OFF
    return CacheSettings(None if off else cache_folder("meshes"), cap)


def cache_dir() -> Path | None:
    """The folder of the mesh cache, or None when it is off or no folder can be found (:func:`settings`)."""
    return settings().folder


@cache
def code_digest() -> str:
    """SHA-256 of every source and data file of :mod:`emsim.meshes` and :mod:`emsim.models` (once per process)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for package in ("meshes", "models"):
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".toml"):
                h.update(path.relative_to(root).as_posix().encode())
                h.update(b"\0")
                h.update(path.read_bytes())
                h.update(b"\0")
    return h.hexdigest()


def mesh_key(case: Case, sizes: dict[str, float]) -> str:
    """The cache key of ``case``'s mesh at target sizes ``sizes`` [m] (hex SHA-256; see the module doc)."""
    import gmsh

    table = case.to_dict()
    geometry = {name: table.get(name) for name in _GEOMETRY}
    text = json.dumps(
        {"format": FORMAT, "gmsh": gmsh.__version__, "code": code_digest(), "case": geometry, "sizes_m": sizes},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def lookup(cfg: CacheSettings, case: Case, sizes: dict[str, float]) -> tuple[str | None, CachedMesh | None]:
    """(key, statistics) of ``case``'s mesh: read into the current gmsh model on a hit; (key, None) on a miss.

    The key is None when the cache is off (nothing is stored either). A damaged entry is removed
    and is a miss (:func:`emsim.io.cache.read_entry`); so is one gmsh cannot read, and the
    current model is then left empty: the cache never stops a run.
    """
    import gmsh

    if cfg.folder is None:
        return None, None
    key = mesh_key(case, sizes)
    entry = read_entry(cfg.folder, key, ".msh", FORMAT)
    if entry is None:
        return key, None
    record, msh = entry
    try:
        stats = tuple(record["stats"])
        aspect = {str(k): float(v) for k, v in record["layer_aspect"].items()}
        if len(stats) != 7:
            raise ValueError(f"{len(stats)} statistics, not 7")
        gmsh.merge(str(msh))
        types, tags, _ = gmsh.model.mesh.getElements(3)
        cells = sum(len(t) for ty, t in zip(types, tags, strict=True) if ty == 4)
        if cells != stats[0]:
            raise ValueError(f"{cells} tetrahedra read, {stats[0]} stored")
    except Exception as err:  # noqa: BLE001  (gmsh raises plain Exceptions; a cache never stops a run)
        log.warning("mesh cache: entry %s unreadable (%s): meshing again", key[:12], err)
        name = gmsh.model.getCurrent()
        gmsh.model.remove()  # whatever the failed read left in the model
        gmsh.model.add(name)
        remove_entry(cfg.folder, key, ".msh")
        return key, None
    log.info("mesh cache: hit %s (%s)", key[:12], msh)
    return key, (stats, aspect)


def store(cfg: CacheSettings, key: str | None, stats: tuple[Any, ...], aspect: dict[str, float], *, case_name: str = "") -> Path | None:
    """Store the current gmsh model's mesh (:func:`emsim.io.cache.write_msh`) as entry ``key``; then keep the cache under its cap.

    Returns the ``.msh`` path, or None when nothing was stored (the cache is off, or could not
    be written: logged by :func:`emsim.io.cache.write_entry`, never an error).
    """
    if key is None or cfg.folder is None:
        return None
    record = {"case": case_name, "stats": list(stats), "layer_aspect": dict(aspect)}
    return write_entry(cfg.folder, key, ".msh", FORMAT, write_msh, record, cap=cfg.cap_bytes)
