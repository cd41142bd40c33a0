"""The mesh cache: a rerun of the same geometry reads the mesh gmsh made before, the same to the bit.

What the cache must never do is hand one geometry's mesh to another: the key's tests change each
geometric input alone and expect a new key, and change what the mesh cannot see and expect the
same one. A damaged entry is meshed again, a full cache drops its least recently used entries,
and a cache that cannot be written never stops a run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
from mpi4py import MPI

from emsim.errors import InputError
from emsim.io.cache import ORPHAN_AGE_S
from emsim.meshes import cache as mesh_cache
from emsim.meshes.patch import build_patch_mesh, mesh_sizes
from emsim.models import parse_case

from conftest import small_two_pad_table


@pytest.fixture
def cache_on(tmp_path, monkeypatch):
    """The cache on, in a fresh temporary folder (the suite runs with it off: tests/conftest.py)."""
    monkeypatch.setenv("EMSIM_MESH_CACHE", "on")
    monkeypatch.setenv("EMSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EMSIM_MESH_CACHE_MAX_MB", raising=False)
    return tmp_path / "cache" / "meshes"


def _arrays(patch):
    """Everything of a PatchMesh that a solve reads, as plain arrays and dicts."""
    mesh = patch.mesh
    mesh.topology.create_connectivity(2, 3)
    return {
        "x": mesh.geometry.x.copy(),
        "dofmap": np.asarray(mesh.geometry.dofmaps[0]).copy(),
        "cells": mesh.topology.connectivity(3, 0).array.copy(),
        "input_index": mesh.topology.original_cell_index.copy(),
        "cell_tags": (patch.cell_tags.indices.copy(), patch.cell_tags.values.copy()),
        "facet_tags": (patch.facet_tags.indices.copy(), patch.facet_tags.values.copy()),
        "volumes": dict(patch.volumes),
        "surfaces": dict(patch.surfaces),
        "report": patch.report,
    }


def _assert_same(a, b):
    for name in ("x", "dofmap", "cells", "input_index"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    for name in ("cell_tags", "facet_tags"):
        for u, v in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(u, v, err_msg=name)
    assert a["volumes"] == b["volumes"] and a["surfaces"] == b["surfaces"]
    assert a["report"] == b["report"]


def _key(table: dict) -> str:
    case = parse_case(table)
    return mesh_cache.mesh_key(case, mesh_sizes(case))


def _variant(kind: str) -> dict:
    """The small two-pad case as the free mesher makes it, as the layered one does, or mapped onto a cylinder."""
    if kind == "cylinder":
        return small_two_pad_table("cylinder", radius_mm=60.0)
    t = small_two_pad_table()
    if kind == "layered":
        t["mesh"]["method"] = "layered"
    return t


@pytest.mark.parametrize("kind", ["free", "layered", "cylinder"])
def test_a_rebuild_reads_the_stored_mesh_identical_to_a_fresh_one(cache_on, monkeypatch, kind):
    """First build meshes and stores; the second reads the entry: nodes, cells, tags and report equal."""
    case = parse_case(_variant(kind))
    first = build_patch_mesh(case, MPI.COMM_SELF)
    assert not first.from_cache
    entries = sorted(p.name for p in cache_on.iterdir())
    key = mesh_cache.mesh_key(case, mesh_sizes(case))
    assert entries == [f"{key}.json", f"{key}.msh"]
    record = json.loads((cache_on / f"{key}.json").read_text())
    assert record["stats"][0] == first.report.cells

    second = build_patch_mesh(case, MPI.COMM_SELF)
    assert second.from_cache
    _assert_same(_arrays(first), _arrays(second))

    monkeypatch.setenv("EMSIM_MESH_CACHE", "off")  # off: gmsh again, the same mesh
    third = build_patch_mesh(case, MPI.COMM_SELF)
    assert not third.from_cache
    _assert_same(_arrays(first), _arrays(third))


def test_the_key_changes_with_every_geometric_input_and_only_with_them(cache_on):
    base = small_two_pad_table()
    k0 = _key(base)

    def changed(edit) -> str:
        t = copy.deepcopy(base)
        edit(t)
        return _key(t)

    geometric = {
        "a layer thickness": lambda t: t["layer"][1].__setitem__("thickness_mm", 2.1),
        "a pad's centre": lambda t: t["electrode"][0].__setitem__("center_mm", [-7.0, 0.5]),
        "a pad's diameter": lambda t: t["electrode"][1].__setitem__("diameter_mm", 8.5),
        "the patch width": lambda t: t["patch"].__setitem__("width_mm", 31.0),
        "the mesh size factor": lambda t: t["mesh"].__setitem__("size_factor", 3.5),
        "the mesh degree (the whole [mesh] table is keyed)": lambda t: t["mesh"].__setitem__("degree", 2),
        "the mesher": lambda t: t["mesh"].__setitem__("method", "layered"),
        "a curved patch": lambda t: t["patch"].update(shape="cylinder", curvature_radius_mm=60.0),
    }
    keys = {name: changed(edit) for name, edit in geometric.items()}
    for name, key in keys.items():
        assert key != k0, f"{name} left the key unchanged"
    assert len(set(keys.values())) == len(keys)

    unseen = {
        "the current": lambda t: t["channel"].__setitem__("current_mA", 3.0),
        "the name": lambda t: t.__setitem__("name", "another-name"),
        "the heating": lambda t: t.__setitem__("thermal", {"session_min": 5}),
    }
    for name, edit in unseen.items():
        assert changed(edit) == k0, f"{name} changed the key: the mesh cannot see it"


def test_the_key_is_the_same_in_another_process(cache_on):
    """No address or set order in the key: a new process computes the same one."""
    code = (
        "import emsim, sys; sys.path.insert(0, 'tests'); from conftest import small_two_pad_table; "
        "from emsim.models import parse_case; from emsim.meshes.patch import mesh_sizes; "
        "from emsim.meshes.cache import mesh_key; c = parse_case(small_two_pad_table()); print(mesh_key(c, mesh_sizes(c)))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _key(small_two_pad_table())


def test_a_damaged_entry_is_meshed_again_and_replaced(cache_on, caplog):
    case = parse_case(small_two_pad_table())
    first = build_patch_mesh(case, MPI.COMM_SELF)
    key = mesh_cache.mesh_key(case, mesh_sizes(case))
    msh = cache_on / f"{key}.msh"
    data = bytearray(msh.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the nodes or cells
    msh.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="emsim"):
        second = build_patch_mesh(case, MPI.COMM_SELF)
    assert not second.from_cache
    assert "damaged" in caplog.text
    _assert_same(_arrays(first), _arrays(second))
    assert build_patch_mesh(case, MPI.COMM_SELF).from_cache  # stored again, whole


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EMSIM_MESH_CACHE", "off")
    monkeypatch.setenv("EMSIM_CACHE_DIR", str(tmp_path / "cache"))
    assert mesh_cache.cache_dir() is None
    assert not build_patch_mesh(parse_case(small_two_pad_table()), MPI.COMM_SELF).from_cache
    assert not (tmp_path / "cache").exists()


def test_the_cap_drops_the_least_recently_used_entries(cache_on, monkeypatch):
    small = parse_case(small_two_pad_table())
    build_patch_mesh(small, MPI.COMM_SELF)
    k_small = mesh_cache.mesh_key(small, mesh_sizes(small))
    size = sum((cache_on / f"{k_small}{s}").stat().st_size for s in (".json", ".msh"))
    os.utime(cache_on / f"{k_small}.json", (1.0, 1.0))  # the oldest use
    # a cap that holds about one entry: the next store drops the older one
    monkeypatch.setenv("EMSIM_MESH_CACHE_MAX_MB", str(1.5 * size / 1024**2))
    t = small_two_pad_table()
    t["layer"][0]["thickness_mm"] = 1.6
    other = parse_case(t)
    build_patch_mesh(other, MPI.COMM_SELF)
    k_other = mesh_cache.mesh_key(other, mesh_sizes(other))
    assert (cache_on / f"{k_other}.msh").exists()
    assert not (cache_on / f"{k_small}.json").exists() and not (cache_on / f"{k_small}.msh").exists()


def test_a_cache_that_cannot_be_written_never_stops_a_run(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("EMSIM_MESH_CACHE", "on")
    monkeypatch.setenv("EMSIM_CACHE_DIR", str(blocker))
    with caplog.at_level(logging.WARNING, logger="emsim"):
        patch = build_patch_mesh(parse_case(small_two_pad_table()), MPI.COMM_SELF)
    assert patch.report.cells > 0 and not patch.from_cache
    assert "could not store" in caplog.text


def test_geometry_given_as_arrays_is_keyed_exactly(cache_on):
    """A centre given as a numpy array (the Python API) enters the key by the case's canonical form (15 digits), not its 8-digit repr."""
    case = parse_case(small_two_pad_table())
    sizes = mesh_sizes(case)
    e = case.electrodes[0]
    as_array = dataclasses.replace(case, electrodes=(dataclasses.replace(e, center_m=np.array(e.center_m)), *case.electrodes[1:]))
    moved = dataclasses.replace(
        case, electrodes=(dataclasses.replace(e, center_m=np.array(e.center_m) * (1 + 1e-12)), *case.electrodes[1:])
    )
    assert repr(np.array(e.center_m)) == repr(np.array(e.center_m) * (1 + 1e-12))  # what repr would have keyed
    assert mesh_cache.mesh_key(as_array, sizes) != mesh_cache.mesh_key(moved, sizes)
    assert mesh_cache.mesh_key(as_array, sizes) == mesh_cache.mesh_key(as_array, sizes)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("EMSIM_MESH_CACHE_MAX_MB", "inf"), ("EMSIM_MESH_CACHE_MAX_MB", "-1"), ("EMSIM_MESH_CACHE_MAX_MB", "lots"),
     ("EMSIM_MESH_CACHE", "of")],
)  # fmt: skip
def test_a_bad_cache_setting_is_refused_naming_the_variable_before_anything_meshes(cache_on, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(InputError) as err:
        build_patch_mesh(parse_case(small_two_pad_table()), MPI.COMM_SELF)
    assert (err.value.field, err.value.value) == (variable, value)
    assert str(err.value).startswith(f"{variable} = ") and ("MB >= 0" in err.value.allowed or "off (off" in err.value.allowed)
    assert not cache_on.exists()


def test_no_home_folder_for_the_cache_leaves_the_run_meshing(cache_on, monkeypatch, caplog):
    """No HOME, no XDG_CACHE_HOME, no EMSIM_CACHE_DIR: logged, and the mesh is made without the cache."""

    def no_home() -> None:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("EMSIM_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(pathlib.Path, "home", staticmethod(no_home))
    with caplog.at_level(logging.WARNING, logger="emsim"):
        patch = build_patch_mesh(parse_case(small_two_pad_table()), MPI.COMM_SELF)
    assert patch.report.cells > 0 and not patch.from_cache
    assert mesh_cache.cache_dir() is None and "EMSIM_CACHE_DIR" in caplog.text


def test_an_orphaned_mesh_file_is_removed_by_the_next_store(cache_on):
    """A .msh without its record (a writer killed between the two files) is removed once it is old."""
    cache_on.mkdir(parents=True)
    orphan, young = cache_on / ("0" * 64 + ".msh"), cache_on / ("1" * 64 + ".msh")
    orphan.write_bytes(b"half an entry")
    young.write_bytes(b"a store under way")
    old = time.time() - ORPHAN_AGE_S - 1
    os.utime(orphan, (old, old))
    build_patch_mesh(parse_case(small_two_pad_table()), MPI.COMM_SELF)
    assert not orphan.exists() and young.exists()
