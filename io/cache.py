"""A content-addressed cache on disk: entries of one data file and its JSON record, kept under a size cap.

What is cached and how its key is made belong to the caller (the mesh cache,
:mod:`emsim.meshes.cache`); this module owns the files. An entry ``KEY`` of a cache folder is
two files, ``KEY.DATA`` (the caller's data, written by the caller's writer into a temporary
path) and ``KEY.json`` (the caller's record, plus the format, the key and the data file's
SHA-256). Both are written atomically (:mod:`emsim.io.atomic`), the record last, so a reader sees
a whole entry or none; an entry whose data does not match its record's hash (a disk error, a
hand edit, two writers interleaved) is removed and is a miss. After each store the least
recently used entries (by their record's modification time, renewed at every hit) are removed
until the folder's entries total at most the cap. Nothing here stops a run: a cache that cannot
be read or written is logged and is a miss.

Where: ``$EMSIM_CACHE_DIR/NAME`` (default ``$XDG_CACHE_HOME/emsim/NAME``, else
``~/.cache/emsim/NAME``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import atomic_file, clean_stale, write_text

__all__ = ["ORPHAN_AGE_S", "cache_folder", "read_entry", "remove_entry", "trim", "write_entry", "write_msh"]

log = logging.getLogger(__name__)


def cache_folder(name: str) -> Path | None:
    """The folder of the cache ``name``: ``$EMSIM_CACHE_DIR/name``, else under ``$XDG_CACHE_HOME/emsim`` or ``~/.cache/emsim``.

    None (logged) when none of them can be found (no home directory): the caller then runs
    without the cache.
    """
    root = os.environ.get("EMSIM_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        if xdg:
            root = str(Path(xdg) / "emsim")
        else:
            try:
                root = str(Path.home() / ".cache" / "emsim")
            except RuntimeError as err:  # no HOME and no passwd entry
                log.warning("cache %s: no folder for it (%s; set EMSIM_CACHE_DIR): running without it", name, err)
                return None
    return Path(root) / name


def write_msh(path: Path) -> None:
    """Write the current gmsh model's mesh to ``path``: MSH 4.1, binary, the physical groups' elements only.

    The format options are set for this write and put back after it, so a user's gmsh
    configuration does not change what the cache stores.
    """
    import gmsh

    pinned = {"Mesh.Binary": 1, "Mesh.MshFileVersion": 4.1, "Mesh.SaveAll": 0, "Mesh.SaveParametric": 0}
    before = {name: gmsh.option.getNumber(name) for name in pinned}
    try:
        for name, value in pinned.items():
            gmsh.option.setNumber(name, value)
        gmsh.write(str(path))
    finally:
        for name, value in before.items():
            gmsh.option.setNumber(name, value)


def _sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def remove_entry(folder: Path, key: str, suffix: str) -> None:
    """Remove entry ``key``'s two files (either may be missing; a folder that cannot be changed is logged)."""
    for ext in (".json", suffix):
        try:
            (folder / f"{key}{ext}").unlink(missing_ok=True)
        except OSError as err:
            log.warning("cache %s: could not remove %s%s (%s)", folder, key[:12], ext, err)


def read_entry(folder: Path, key: str, suffix: str, fmt: int) -> tuple[dict[str, Any], Path] | None:
    """Entry ``key``'s record and data file (checked against the record's hash), or None on a miss.

    A damaged or unreadable entry is removed (logged) and is a miss; a hit renews the entry's
    place in the least-recently-used order.
    """
    record_path, data = folder / f"{key}.json", folder / f"{key}{suffix}"
    try:
        record = json.loads(record_path.read_text())
        if record.get("format") != fmt or record.get("key") != key or _sha256(data) != record.get("data_sha256"):
            raise ValueError(f"its {suffix} file does not match its record")
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001  (a cache never stops a run: any failure is a miss)
        log.warning("cache %s: entry %s damaged or unreadable (%s): a miss", folder.name, key[:12], err)
        remove_entry(folder, key, suffix)
        return None
    now = time.time()
    try:
        os.utime(record_path, (now, now))
    except OSError:  # removed meanwhile by another process's cap: the entry was read already
        pass
    return record, data


def write_entry(
    folder: Path, key: str, suffix: str, fmt: int, write: Callable[[Path], None], record: dict[str, Any], *, cap: int,
) -> Path | None:  # fmt: skip
    """Store entry ``key``: ``write(path)`` writes the data file, then the record; then trim to ``cap`` bytes.

    Returns the data file's path, or None when the cache could not be written (logged).
    """
    data = folder / f"{key}{suffix}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        clean_stale(folder)  # the temporaries of writers that were killed
        with atomic_file(data) as tmp:
            write(tmp)
            digest = _sha256(tmp)  # this writer's bytes, before another writer's may replace them
        full = {"format": fmt, "key": key, "data_sha256": digest, **record}
        write_text(folder / f"{key}.json", json.dumps(full, indent=1) + "\n")
        trim(folder, suffix, cap)
    except Exception as err:  # noqa: BLE001  (a writer raises what its library raises; a cache never stops a run)
        log.warning("cache %s: could not store %s in %s (%s)", folder.name, key[:12], folder, err)
        return None
    return data


#: A data file without its record older than this [s] is an orphan (its writer was killed
#: between the two files) and is removed by :func:`trim`; a younger one may be a store under way.
ORPHAN_AGE_S = 600.0


def trim(folder: Path, suffix: str, cap: int) -> None:
    """Remove orphaned data files, then the least recently used entries until the entries total at most ``cap`` bytes."""
    entries = []
    now = time.time()
    for data in folder.glob(f"*{suffix}"):
        if data.name.startswith(".") or (folder / f"{data.stem}.json").exists():
            continue
        try:
            if now - data.stat().st_mtime > ORPHAN_AGE_S:
                data.unlink()
        except OSError:
            continue  # removed or completed meanwhile
    for record in folder.glob("*.json"):
        key = record.stem
        try:
            stat = record.stat()
            entries.append((stat.st_mtime, key, stat.st_size + (folder / f"{key}{suffix}").stat().st_size))
        except OSError:
            continue  # half of an entry being written or removed by another process
    total = sum(size for *_, size in entries)
    for _, key, size in sorted(entries):
        if total <= cap:
            break
        remove_entry(folder, key, suffix)
        total -= size
