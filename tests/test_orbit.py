"""The globe of an orbit zone (issue 17): its data, its mesh, and the phosphene criterion at its retina."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emsim.errors import InputError
from emsim.models import parse_case
from emsim.models.orbit import globe_data, globe_geometry, globe_tissues

from conftest import small_cheek_table


def orbit_table(*, size_factor: float = 4.0) -> dict:
    """Two 10 mm pads below a globe: 40 x 64 mm patch, 28.9 mm deep (a 24 mm 'muscle' holds the globe)."""
    t = small_cheek_table(size_factor=size_factor)
    t["patch"] = {"width_mm": 40.0, "length_mm": 64.0}
    for layer, th in zip(t["layer"], (1.9, 3.0, 24.0), strict=True):
        layer["thickness_mm"] = th
    for e, x in zip(t["electrode"], (-10.0, 10.0), strict=True):
        e["diameter_mm"] = 10.0
        e["center_mm"] = [x, -20.0]
    t["exclusion"] = [{"name": "eye", "kind": "orbit", "center_mm": [0.0, 15.0], "radius_mm": 5.0, "depth_mm": 10.0}]
    return t


def test_the_orbit_data_carry_a_source_for_every_number():
    g = globe_data()["globe"]
    assert g["outer_radius_mm"] == 12.0 and 0.4 <= g["sclera_thickness_mm"] <= 1.0
    for key in ("outer_radius", "sclera_thickness", "front_below_skin", "retina_cell_size"):
        assert g[f"{key}_source"].strip(), key
    tissues = globe_tissues(parse_case(orbit_table()))
    assert tissues["globe:eye:vitreous"].conductivity_at(20.0) == 1.5
    assert tissues["globe:eye:sclera"].conductivity_at(20.0) == 0.5
    assert "UNVERIFIED" in tissues["globe:eye:vitreous"].electrical_source


def test_a_zone_kind_other_than_cylinder_or_orbit_is_refused_naming_the_field():
    t = orbit_table()
    t["exclusion"][0]["kind"] = "sphere"
    with pytest.raises(InputError, match=r"exclusion\[eye\]\.kind"):
        parse_case(t)


def test_a_globe_deeper_than_the_tissue_is_refused_naming_the_depth_it_needs():
    t = orbit_table()
    t["layer"][2]["thickness_mm"] = 10.0
    with pytest.raises(InputError, match=r"exclusion\[eye\]\.kind.*at least that deep"):
        parse_case(t)


def test_the_layered_mesher_refuses_an_orbit_zone_clearly():
    t = orbit_table()
    t["mesh"]["method"] = "layered"
    with pytest.raises(InputError, match=r"exclusion\[eye\]\.kind.*free mesher"):
        parse_case(t)


def test_the_globe_is_meshed_with_its_own_tags_and_the_volumes_of_its_spheres():
    import ufl
    from dolfinx import fem
    from dolfinx import mesh as dmesh

    from emsim.meshes.patch import build_patch_mesh

    case = parse_case(orbit_table())
    p = build_patch_mesh(case)
    g = globe_geometry(case)[0]
    dx = ufl.Measure("dx", domain=p.mesh, subdomain_data=p.cell_tags)
    comm = p.mesh.comm
    vol = {n: comm.allreduce(fem.assemble_scalar(fem.form(1.0 * dx(p.volumes[n]))))
           for n in ("globe:eye:vitreous", "globe:eye:sclera")}  # fmt: skip
    # flat-faced tetrahedra inscribed in a sphere: a little less than 4/3 pi r^3 (sagitta h^2 / 8r per face)
    assert -0.02 < vol["globe:eye:vitreous"] / g.vitreous_volume_m3 - 1 < 0
    assert -0.03 < vol["globe:eye:sclera"] / g.sclera_volume_m3 - 1 < 0.01
    # the layers keep their names; no globe cell lies outside the outer sphere
    assert {"layer:skin", "layer:fat", "layer:muscle"} <= set(p.volumes)
    cells = np.concatenate([p.cell_tags.find(p.volumes[n]) for n in vol])
    mid = dmesh.compute_midpoints(p.mesh, 3, cells)
    r = np.linalg.norm(mid - np.array(g.center_m), axis=1)
    assert r.max() < g.outer_radius_m
    # the retina (posterior half of the inner surface) holds cells at the refined size
    vit = p.cell_tags.find(p.volumes["globe:eye:vitreous"])
    m = dmesh.compute_midpoints(p.mesh, 3, vit)
    n_retina = comm.allreduce(int(g.is_retina(m[:, 0], m[:, 1], m[:, 2], g.retina_size_m).sum()))
    area = 2 * math.pi * g.inner_radius_m**2
    assert n_retina > area / g.retina_size_m**2  # at least one cell per h^2 of the hemisphere


# ----------------------------------------------------------------------------- the criterion


def test_the_waveform_index_matches_a_dense_fourier_sum_of_the_default_pulse_train():
    from emsim.models.case_file import load_case
    from emsim.solvers.physiology.phosphene import unit_weighted_peak, weighted_peak_index
    from emsim.studies.run import default_case_path

    w = load_case(default_case_path()).waveform  # 250 us biphasic at 50 Hz, 2 us rise
    f, c = w.spectrum(1.0, 4000)  # to 200 kHz
    k = f > 0
    dense = weighted_peak_index(f[k], 2 * c[k], np.linspace(0.0, w.period_s, 20001))
    assert unit_weighted_peak(w) == pytest.approx(dense, rel=1e-3)


@pytest.mark.parametrize("f0", [15.0, 1200.0])
def test_a_sinusoid_in_a_flat_band_has_the_index_e_peak_over_root2_e_limit(f0):
    from emsim.solvers.physiology.phosphene import TIERS, weighted_peak_index

    lim = TIERS["occupational"]
    e_peak = 0.3
    ei = weighted_peak_index(np.array([f0]), np.array([e_peak]), np.linspace(0, 1 / f0, 20001))
    assert ei == pytest.approx(e_peak * abs(lim.weight_per_V_per_m(f0)), rel=1e-6)  # the filter's gain, exactly
    # and the guideline's closed form E_peak / (sqrt 2 E_L) within the first-order sections' departure
    closed = e_peak / (math.sqrt(2) * float(lim.rms_V_per_m(f0)))
    assert 0.6 * closed < ei <= 1.0 * closed


def test_the_retina_index_is_the_largest_field_times_the_unit_index_and_interleaved_groups_add():
    from emsim.solvers.electric.exclusion import phosphene_index

    e = np.zeros((3, 3, 2))
    e[0, :, 0] = [3.0, 4.0, 0.0]  # 5 V/m per A from channel 0
    e[1, :, 1] = [0.0, 0.0, 2.0]  # 2 V/m per A from channel 1
    e[2, :, 0], e[2, :, 1] = [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]
    together = [np.array([0.01, 0.02])]
    assert phosphene_index(e, together, 0.7) == pytest.approx(max(5 * 0.01, 2 * 0.02, 0.03) * 0.7)
    apart = [np.array([0.01, 0.0]), np.array([0.0, 0.02])]
    assert phosphene_index(e, apart, 0.7) == pytest.approx((5 * 0.01 + 2 * 0.02) * 0.7)


# ----------------------------------------------------------------------------- a published setup


def naycheva_table() -> dict:
    """Transcorneal stimulation in the planar model: a ring on the skin over the globe, a return on the temple.

    Naycheva et al. 2012 (IOVS 53:7440): DTL fibre electrode on the eye, return at the ipsilateral
    temple, 5 + 5 ms biphasic pulses at 20 Hz; phosphene threshold 0.062 +- 0.038 mA (mean +- SD,
    20 healthy subjects; the numbers as verified for solvers/physiology/phosphene.py, not found
    again with the search tool in this session: treat as UNVERIFIED here). In this model: the DTL
    fibre is an 8/10 mm ring centred over the globe (ASSUMPTION: a fibre loop over the cornea, the
    zone of the orbit 1 mm in radius inside it), the return a 10 mm disk 32 mm lateral
    (ASSUMPTION: the temple), cheek skin 1.9 mm over 27 mm of fat standing for the lids and the
    orbital fat, a d.c. solve (the field scales with the current; the threshold is compared as a
    current density, not through the ICNIRP filter).
    """
    t = small_cheek_table(size_factor=4.0)
    t["patch"] = {"width_mm": 60.0, "length_mm": 28.0}
    t["layer"] = [
        {"tissue": "skin", "label": "skin", "thickness_mm": 1.9},
        {"tissue": "fat", "label": "orbital_fat", "thickness_mm": 27.0},
    ]
    ring, ret = t["electrode"]
    ring.pop("diameter_mm", None)
    ring.update({"shape": "ring", "outer_diameter_mm": 10.0, "inner_diameter_mm": 8.0, "center_mm": [-14.0, 0.0]})
    ret.update({"diameter_mm": 10.0, "center_mm": [18.0, 0.0]})
    t["exclusion"] = [{"name": "eye", "kind": "orbit", "center_mm": [-14.0, 0.0], "radius_mm": 1.0, "depth_mm": 1.0}]
    t["channel"]["current_mA"] = 0.062
    return t


@pytest.mark.slow
def test_the_retina_current_density_at_the_transcorneal_threshold_lies_in_the_modelled_threshold_range(solved):
    """Naycheva 2012 threshold current -> radial retinal current density, against Nissi & Laakso 2022.

    Nissi & Laakso 2022 (Phys Med Biol 67:015001; abstract read with the search tool, verified):
    simulating five phosphene-threshold experiments in 14 anatomical head models, the threshold
    radial component of the retinal current density is 6.0-20.6 mA/m^2. Here the 99th percentile
    of the radial current density over the retina cells (the posterior half of the inner surface)
    at the measured threshold, scaled over the measured spread (mean - SD to mean + SD), must
    overlap that range: the range of the model over the measured spread of people meets the range
    of the published models. Measured on this model: about 42 mA/m^2 at 0.062 mA (16-68 over the
    spread): at the high side of the published range, which a 10x error of the globe's geometry or
    of the tissues' conductivities upward fails (a 10x error downward sits at its edge: 1.6-6.8).
    """
    from dolfinx import mesh as dmesh

    from emsim.solvers.electric.exclusion import zone_cells
    from emsim.solvers.physiology.phosphene import NAYCHEVA_2012_THRESHOLD_A

    case = parse_case(naycheva_table())
    result = solved(case)
    mean, sd = NAYCHEVA_2012_THRESHOLD_A
    cells, member = zone_cells(case, result.mesh)
    g = globe_geometry(case)[0]
    comm = result.mesh.mesh.comm  # the zone record holds every rank's cells in rank order
    mid = np.concatenate(comm.allgather(dmesh.compute_midpoints(result.mesh.mesh, 3, cells.astype(np.int32))))
    member = np.concatenate(comm.allgather(member))
    radial = (mid - np.array(g.center_m)) / np.linalg.norm(mid - np.array(g.center_m), axis=1)[:, None]
    j = result.zones.current_density_per_A[member[:, 0], :, 0] * mean  # A/m^2 at the mean threshold
    jr = np.abs(np.sum(j * radial[member[:, 0]], axis=1))
    j99 = float(np.percentile(jr, 99)) * 1e3  # mA/m^2
    low, high = j99 * (mean - sd) / mean, j99 * (mean + sd) / mean
    assert low <= 20.6 and high >= 6.0, (j99, low, high)
    assert 4.0 < j99 < 80.0  # the number measured when the test was written (42), within a factor 2


def uniform_field_table() -> dict:
    """The globe in an 80 x 80 x 60 mm block of skin-conductivity tissue, 10 mA from a wide ring to the grounded deep face."""
    t = small_cheek_table(size_factor=4.0)
    t["patch"] = {"width_mm": 80.0, "length_mm": 80.0}
    t["layer"] = [{"tissue": "skin", "label": "top", "thickness_mm": 8.0},
                  {"tissue": "skin", "label": "deep", "thickness_mm": 52.0}]  # fmt: skip
    # a 78 mm metal ring with a 4 mm hole over the zone (no electrode may touch a zone): below it
    # the current flows straight down, |J| = I / the block's cross-section
    t["electrode"] = [{"name": "A", "shape": "ring", "outer_diameter_mm": 78.0, "inner_diameter_mm": 4.0,
                       "center_mm": [0.0, 0.0]}]  # fmt: skip
    t["channel"] = {"anode": "A", "cathode": "ground", "current_mA": 10.0}
    t["exclusion"] = [{"name": "eye", "kind": "orbit", "center_mm": [0.0, 0.0], "radius_mm": 1.0, "depth_mm": 1.0}]
    return t


@pytest.mark.slow
def test_the_retina_field_of_the_globe_in_a_uniform_field_is_the_coated_sphere_closed_form(solved):
    """A coated sphere (core s1, radius a; shell s2, radius b) in a uniform field E0 in a medium s3.

    The core's field is uniform, E1 = 9 s2 s3 E0 / ((s1 + 2 s2)(s2 + 2 s3) + 2 (a/b)^3 (s1 - s2)(s2 - s3))
    (from the potentials of the three regions matched at r = a and r = b; its limits: no
    shell gives 3 s3 / (s1 + 2 s3), no core 3 s3 / (s2 + 2 s3)). Here s1 = 1.5 (vitreous), s2 =
    0.5 (sclera), s3 = 0.465 S/m (skin), E0 = I / (A s3): E1 / E0 = 0.576. A 10x error in the
    vitreous conductivity gives 0.088; a globe without its own tags gives 1.
    """
    case = parse_case(uniform_field_table())
    result = solved(case)
    g = globe_geometry(case)[0]
    s1, s2, s3 = 1.5, 0.5, 0.465
    a3 = (g.inner_radius_m / g.outer_radius_m) ** 3
    e0 = 10e-3 / (0.08 * 0.08 * s3)
    e1 = 9 * s2 * s3 / ((s1 + 2 * s2) * (s2 + 2 * s3) + 2 * a3 * (s1 - s2) * (s2 - s3)) * e0
    e = result.zones.field_per_A[:, :, 0] * 10e-3  # the retina cells (vitreous side of the inner surface)
    assert np.mean(-e[:, 2]) == pytest.approx(e1, rel=0.05)  # the walls and the ground 28 mm below: a few %
    assert np.abs(e[:, :2]).max() < 0.1 * e1  # vertical, as the applied field
    assert np.linalg.norm(e, axis=1).max() < 1.08 * e1 and np.linalg.norm(e, axis=1).min() > 0.92 * e1  # uniform


@pytest.mark.slow
def test_a_shared_electric_solve_judges_each_case_by_its_own_waveform():
    """The unit-current fields are the geometry's, the weighted-peak index the waveform's: a cached
    solve serving two waveforms gives ratios in the ratio of their waveform indices."""
    import dataclasses

    from emsim.models import read_case_table
    from emsim.pipeline import GeometryCache, solve_case
    from emsim.solvers.physiology.phosphene import unit_weighted_peak
    from emsim.studies.run import default_case_path

    t = orbit_table()
    t["waveform"] = read_case_table(default_case_path())["waveform"]
    t["solver"] = {"waveform_frequencies": 7, "waveform_tolerance": 0.2}
    case = parse_case(t)
    other = dataclasses.replace(case, waveform=dataclasses.replace(case.waveform, pulse_width_s=1e-3, frequency_Hz=20.0))
    cache = GeometryCache()
    first, second = solve_case(case, cache=cache), solve_case(other, cache=cache)
    assert len(cache) == 1
    r1 = first.metrics.exclusion.exclusion_phosphene_ratio_max
    r2 = second.metrics.exclusion.exclusion_phosphene_ratio_max
    assert r2 / r1 == pytest.approx(unit_weighted_peak(other.waveform) / unit_weighted_peak(case.waveform), rel=1e-9)
    assert r2 / r1 > 1.5  # 1 ms phases at 20 Hz weigh more than 250 us at 50 Hz


def test_a_waveform_the_weighted_peak_cannot_take_is_absent_with_the_reason_not_a_crash():
    import dataclasses

    from emsim.models.case_file import load_case
    from emsim.models.waveforms import Waveform
    from emsim.solvers.electric.exclusion import phosphene_unit_peak
    from emsim.solvers.records import Absent
    from emsim.studies.run import default_case_path

    case = load_case(default_case_path())
    assert phosphene_unit_peak(case) == pytest.approx(1.2656, rel=1e-3)  # the default train's unit index
    slow = Waveform(shape="microcurrent", frequency_Hz=100.0, pulse_width_s=4e-3, polarity_period_s=10.0)
    out = phosphene_unit_peak(dataclasses.replace(case, waveform=slow))
    assert isinstance(out, Absent) and "period" in out.reason
