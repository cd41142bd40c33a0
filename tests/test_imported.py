"""Imported tagged gmsh meshes: groups mapped to roles, same results as the built mesh, checks."""

from __future__ import annotations

import copy
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

import emsim
from emsim.errors import InputError
from emsim.models import load_case, parse_case, parse_case_text
from emsim.pipeline import solve_case

from conftest import small_two_pad_table

REPO = Path(emsim.__file__).resolve().parent


def _export(case, path: Path) -> dict:
    """Write the case's built mesh as a binary .msh with other group names and numbers.

    Returns the [mesh.tags] table that maps them back: every other group by number only.
    """
    import gmsh

    from emsim.meshes.patch import build_gmsh_model

    if not gmsh.isInitialized():
        gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add("export")
    groups = build_gmsh_model(case)
    entities = {n: (d, list(gmsh.model.getEntitiesForPhysicalGroup(d, t))) for n, (d, t) in groups.items()}
    gmsh.model.removePhysicalGroups()
    tags = {}
    for k, (role, (dim, ents)) in enumerate(sorted(entities.items(), reverse=True)):
        number = 900 - 11 * k
        gmsh.model.addPhysicalGroup(dim, ents, number)
        if k % 2:
            gmsh.model.setPhysicalName(dim, number, f"Anatomy {k}")
            tags[role] = f"Anatomy {k}"
        else:
            tags[role] = number
    gmsh.option.setNumber("Mesh.Binary", 1)
    gmsh.write(str(path))
    gmsh.model.remove()
    return tags


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The small two-pad case, its mesh exported under other names, and the importing table."""
    folder = tmp_path_factory.mktemp("imported")
    table = small_two_pad_table()
    tags = _export(parse_case(table), folder / "patch.msh")
    imported = copy.deepcopy(table)
    imported["mesh"] |= {"file": "patch.msh", "tags": tags}
    return folder, table, imported


def test_an_exported_mesh_renamed_and_renumbered_imports_to_the_same_impedance_and_skin_peak(exported):
    folder, table, imported = exported
    built = solve_case(parse_case(table))
    again = solve_case(parse_case(imported, base_dir=folder))
    assert again.mesh.report.cells == built.mesh.report.cells
    a, b = built.metrics.electric, again.metrics.electric
    assert b.impedance_ohm == pytest.approx(a.impedance_ohm, rel=1e-9)
    assert b.skin_current_density_peak_A_per_m2 == pytest.approx(a.skin_current_density_peak_A_per_m2, rel=1e-9)
    for name in ("A", "B"):
        assert b.skin_current_density_mean_A_per_m2[name] == pytest.approx(
            a.skin_current_density_mean_A_per_m2[name], rel=1e-9
        )
    assert b.current_conservation_error < 1e-9


def test_the_digest_holds_the_mesh_file_content_not_its_path(exported, tmp_path):
    folder, _, imported = exported
    case = parse_case(imported, base_dir=folder)
    shutil.copy(folder / "patch.msh", tmp_path / "moved.msh")
    moved = copy.deepcopy(imported)
    moved["mesh"]["file"] = str(tmp_path / "moved.msh")
    assert parse_case(moved).digest() == case.digest()
    # The canonical form reads back to the same case, and notices an edited file.
    assert parse_case_text(case.to_toml()).digest() == case.digest()
    edited = tmp_path / "edited.msh"
    edited.write_bytes((folder / "patch.msh").read_bytes() + b"\n")
    changed = copy.deepcopy(imported)
    changed["mesh"]["file"] = str(edited)
    assert parse_case(changed).digest() != case.digest()
    text = case.to_toml().replace(str(folder / "patch.msh"), str(edited))
    with pytest.raises(InputError, match=r"mesh\.file_sha256"):
        parse_case_text(text)


def test_import_errors_name_the_role_and_the_group(exported):
    from emsim.meshes.patch import build_patch_mesh

    folder, _, imported = exported
    bad = copy.deepcopy(imported)
    bad["mesh"]["tags"]["layer:fat"] = "No such group"
    with pytest.raises(InputError, match=r"mesh\.tags\.layer:fat = 'No such group'.*volume physical group"):
        build_patch_mesh(parse_case(bad, base_dir=folder))
    bad = copy.deepcopy(imported)
    bad["mesh"]["tags"]["layer:muscle"] = bad["mesh"]["tags"]["layer:fat"]  # muscle's group left unmapped
    with pytest.raises(InputError, match=r"mesh\.tags.*(shared|every volume group)"):
        build_patch_mesh(parse_case(bad, base_dir=folder))
    bad = copy.deepcopy(imported)
    del bad["mesh"]["tags"]["electrode:B"]
    with pytest.raises(InputError, match=r"mesh\.tags\.electrode:B"):
        parse_case(bad, base_dir=folder)
    bad = copy.deepcopy(imported)
    del bad["mesh"]["tags"]["bottom"]
    parse_case(bad, base_dir=folder)  # d.c. to the pads: the deep face may stay unnamed (insulated)
    bad["thermal"] = {"session_min": 1}
    with pytest.raises(InputError, match=r"mesh\.tags\.bottom"):  # heating holds it at core temperature
        parse_case(bad, base_dir=folder)
    bad = copy.deepcopy(imported)
    bad["mesh"]["tags"]["layer:bone"] = 5
    with pytest.raises(InputError, match=r"mesh\.tags\.layer:bone"):
        parse_case(bad, base_dir=folder)
    bad = copy.deepcopy(imported)
    bad["mesh"]["file"] = "missing.msh"
    with pytest.raises(InputError, match=r"mesh\.file"):
        parse_case(bad, base_dir=folder)
    bad = copy.deepcopy(imported)
    bad["patch"] |= {"shape": "sphere", "curvature_radius_mm": 40.0}
    with pytest.raises(InputError, match=r"patch\.shape"):
        parse_case(bad, base_dir=folder)


def test_the_curved_example_mesh_from_the_script_runs_and_conserves_current(tmp_path):
    spec = importlib.util.spec_from_file_location("make_example_mesh", REPO / "scripts" / "make_example_mesh.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    case_file = REPO / "studies" / "cases" / "imported" / "cheek-sphere.toml"
    shutil.copy(case_file, tmp_path / case_file.name)
    script.build(tmp_path / "cheek-sphere.msh")
    case = load_case(tmp_path / case_file.name)
    res = solve_case(case)
    e = res.metrics.electric
    assert e.current_conservation_error < 1e-9
    # The skin is curved: the skin surfaces lie on the sphere of radius 40 mm about (0, 0, -40 mm).
    from emsim.solvers.electric.skin import skin_facets

    skin = skin_facets(case, res.mesh, {})
    r = np.linalg.norm(skin.triangles_m - np.array([0.0, 0.0, -0.04]), axis=2)
    assert np.abs(r - 0.04).max() < 1e-9
    # Lower bound: the two pads' contacts and gel in series alone, through the pads' true areas
    # (the tissue path adds to it); the symmetric pads carry the same mean current density.
    area = {n: skin.areas_m2[skin.under == n].sum() for n in ("A", "B")}
    series = sum((100e-4 + 0.5e-3 / case.electrode(n).gel.material.conductivity_at(10.0)) / area[n] for n in area)
    assert series < e.impedance_ohm < 3 * series  # measured 1527 ohm against 861 ohm
    mean = e.skin_current_density_mean_A_per_m2
    assert mean["A"] == pytest.approx(mean["B"], rel=0.02)
    # The whole current crosses the skin under A; the mean of the cell-wise J . n of degree 1 is
    # not the exact flux (1.4 % off on the built flat mesh, 0.3 % on the built sphere).
    assert mean["A"] == pytest.approx(10e-3 / area["A"], rel=0.03)


def test_a_footprint_unlike_the_files_pad_is_logged(exported, caplog):
    from emsim.meshes.patch import build_patch_mesh

    folder, _, imported = exported
    table = copy.deepcopy(imported)
    table["electrode"][0]["diameter_mm"] = 8.4  # the file's pad A is 8 mm: 10 % less area
    with caplog.at_level("WARNING", logger="emsim.meshes.imported"):
        build_patch_mesh(parse_case(table, base_dir=folder))
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "electrode A" in warned[0] and "55.42 mm^2" in warned[0]


def test_an_imported_mesh_takes_the_free_meshers_solver_switch_whatever_its_mesh_method(exported, monkeypatch):
    """``[mesh] method`` is ignored with ``file``: the layered switch (flat cells) must not apply to it."""
    from mpi4py import MPI

    from emsim.meshes.patch import build_patch_mesh
    from emsim.solvers.electric.problem import ElectricProblem
    from emsim.solvers.linalg import ksp

    folder, _, imported = exported
    table = copy.deepcopy(imported)
    table["mesh"] |= {"method": "layered", "degree": 2}
    case = parse_case(table, base_dir=folder)
    monkeypatch.setitem(ksp.ELECTRIC_MUMPS_MAX_DOFS, "imported", {1: 10, 2: 10, 3: 10})
    patch = build_patch_mesh(case, MPI.COMM_WORLD)
    assert patch.mesher == "imported"
    assert ElectricProblem(case, patch).method == "cg-pmg"  # the layered switch (400k) would keep MUMPS
