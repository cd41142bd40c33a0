"""The mesh cache: a case's gmsh mesh kept on disk, so that a rerun of the same geometry skips gmsh.

gmsh's meshing is the largest serial step of a run (5.6 s of the default case's 18 s on 2 ranks,
the mesh step 6.7 s with the distribution; it runs on rank 0 while the other ranks wait), and it is the same work every time an
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

Every value enters the key exactly (:func:`_canonical`: floats by ``float.hex``, arrays whole),
never through ``repr``, which rounds and elides numpy arrays.

A key that misses something would hand a stale mesh to a new geometry, so the key takes more
than it needs (the electrodes' contact values, the sizes beside the settings they come from); a
case that differs only in what the mesh cannot see (the waveform, the currents, the heating, the
layers' conductivities, the name) shares its mesh; a change to a pad's gel or contact values
meshes again.

**Where**: ``$EMSIM_CACHE_DIR/meshes`` (default ``$XDG_CACHE_HOME/emsim/meshes``, else
``~/.cache/emsim/meshes``). ``EMSIM_MESH_CACHE=off`` turns the cache off (every build meshes).
Each entry is ``KEY.msh`` and ``KEY.json`` (the statistics, the case's name and the ``.msh``
file's SHA-256), stored by :mod:`emsim.io.cache` (atomic files, the record last; a damaged
entry is removed and meshed again). The cache keeps at most :data:`MAX_BYTES`
(``EMSIM_MESH_CACHE_MAX_MB`` in MB), dropping the least recently used entries after each store.
Only the rank that runs gmsh reads or writes it; a cache that cannot be read or written is
logged and never stops a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..io.cache import cache_folder, read_entry, remove_entry, write_entry, write_msh
from ..models.case import Case

__all__ = [
    "FORMAT",
    "MAX_BYTES",
    "CachedMesh",
    "cache_dir",
    "code_digest",
    "load",
    "lookup",
    "mesh_key",
    "store",
]

log = logging.getLogger(__name__)

#: The entry format: a new value makes every older entry a miss.
FORMAT = 1
#: Largest total size of the cache's entries [bytes] unless ``EMSIM_MESH_CACHE_MAX_MB`` says
#: otherwise (the default case's mesh is 9 MB: about 200 such geometries).
MAX_BYTES = 2 * 1024**3

#: What :func:`load` returns: the quality statistics (cells, vertices, h_min [m], h_max [m],
#: quality min, p01, mean) and the layered mesher's aspect per layer, as stored.
CachedMesh = tuple[tuple[int, int, float, float, float, float, float], dict[str, float]]


def cache_dir() -> Path | None:
    """The folder of the mesh cache, or None when ``EMSIM_MESH_CACHE`` is ``off`` (or ``0``, ``no``, ``false``) or no folder can be found."""
    if os.environ.get("EMSIM_MESH_CACHE", "").strip().lower() in ("off", "0", "no", "false"):
        return None
    return cache_folder("meshes")


def _max_bytes() -> int:
    """The cache's size cap [bytes]: ``EMSIM_MESH_CACHE_MAX_MB`` when set and valid, else :data:`MAX_BYTES`."""
    text = os.environ.get("EMSIM_MESH_CACHE_MAX_MB")
    try:
        value = float(text) if text else None
    except ValueError:
        value = None
    if value is None or not (math.isfinite(value) and value >= 0):
        if text:
            log.warning("EMSIM_MESH_CACHE_MAX_MB = %r is not a size in MB >= 0: the cap stays %d MB", text, MAX_BYTES >> 20)
        return MAX_BYTES
    return int(value * 1024**2)


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


def _canonical(value: Any) -> Any:
    """``value`` as nested tuples of exact text: dataclasses by field, floats by ``float.hex``, arrays whole.

    ``repr`` would not do: an array's repr rounds to 8 digits and elides long arrays (two
    polygons that differ in one vertex would share a key), and follows numpy's print options.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, _canonical(getattr(value, f.name))) for f in dataclasses.fields(value)))
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.shape, tuple(_canonical(v) for v in value.ravel().tolist()))
    if isinstance(value, bool | None | str | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value).hex()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, tuple | list):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    raise TypeError(f"mesh cache key: no exact form for a {type(value).__name__}")


def mesh_key(case: Case, sizes: dict[str, float]) -> str:
    """The cache key of ``case``'s mesh at target sizes ``sizes`` [m] (hex SHA-256; see the module doc)."""
    import gmsh

    layers = tuple((layer.label, layer.tissue.name, layer.thickness_m) for layer in case.layers)
    text = repr(
        _canonical(
            (
                ("format", FORMAT),
                ("gmsh", gmsh.__version__),
                ("code", code_digest()),
                ("patch", case.patch),
                ("layers", layers),
                ("electrodes", case.electrodes),
                ("exclusions", case.exclusions),
                ("mesh", case.mesh),
                ("sizes", dict(sizes)),
            )
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def lookup(case: Case, sizes: dict[str, float]) -> tuple[str | None, CachedMesh | None]:
    """(key, statistics) of ``case``'s mesh: read into the current gmsh model on a hit; (key, None) on a miss.

    The key is None when the cache is off or the key cannot be made (logged): nothing is then
    stored either. Never raises: the cache never stops a run.
    """
    if cache_dir() is None:
        return None, None
    try:
        key = mesh_key(case, sizes)
    except Exception as err:  # noqa: BLE001  (a key that cannot be made: no cache for this case)
        log.warning("mesh cache: no key for %s (%s): meshing without the cache", case.name, err)
        return None, None
    return key, load(key)


def load(key: str) -> CachedMesh | None:
    """Read entry ``key`` into the current gmsh model (merged into it) and return its statistics, or None on a miss.

    A damaged entry is removed and is a miss (:func:`emsim.io.cache.read_entry`); so is one gmsh
    cannot read, and the current model is then left empty.
    """
    import gmsh

    folder = cache_dir()
    if folder is None:
        return None
    entry = read_entry(folder, key, ".msh", FORMAT)
    if entry is None:
        return None
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
        remove_entry(folder, key, ".msh")
        return None
    log.info("mesh cache: hit %s (%s)", key[:12], msh)
    return stats, aspect


def store(key: str | None, stats: tuple[Any, ...], aspect: dict[str, float], *, case_name: str = "") -> Path | None:
    """Store the current gmsh model's mesh (:func:`emsim.io.cache.write_msh`) as entry ``key``; then keep the cache under its cap.

    Returns the ``.msh`` path, or None when nothing was stored (no key, the cache is off, or it
    could not be written: logged, never an error).
    """
    folder = cache_dir()
    if key is None or folder is None:
        return None
    record = {"case": case_name, "stats": list(stats), "layer_aspect": dict(aspect)}
    try:
        return write_entry(folder, key, ".msh", FORMAT, write_msh, record, cap=_max_bytes())
    except Exception as err:  # noqa: BLE001  (write_entry logs its own failures; this is the last guard)
        log.warning("mesh cache: could not store %s (%s)", key[:12], err)
        return None
