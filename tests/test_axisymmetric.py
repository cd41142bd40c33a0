"""The axisymmetric (r, z) solver against the closed form and against the 3-D path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emsim.errors import InputError
from emsim.models import parse_case
from emsim.pipeline import solve_case
from emsim.solvers.electric.axisymmetric import Ring, solve_axisymmetric
from emsim.solvers.reference import electric as analytic

# The benchmark disk of the performance issue: a = 4 mm on a grounded slab, sigma 0.25, D 40 mm.
A_M, D_M, SIGMA = 4e-3, 40e-3, 0.25


def test_exact_slab_reference_tends_to_the_image_series_and_to_the_column():
    exact = analytic.disk_on_grounded_slab_resistance_exact
    leading = analytic.disk_on_grounded_slab_resistance
    # The leading terms (Newman + first image) are off by O((a/D)^3): halving a/D divides by 8.
    gaps = [abs(exact(1.0, a, 1.0) - leading(1.0, a, 1.0)) * 4 * a for a in (0.02, 0.01)]
    assert gaps[0] / gaps[1] == pytest.approx(8.0, rel=0.05)
    assert gaps[1] < 1e-6
    # A disk much wider than the slab is a 1-D column, R -> D / (sigma pi a^2), less the fringe.
    column = 1.0 / (math.pi * 20.0**2)
    r = exact(1.0, 20.0, 1.0, nodes=100)
    assert 0.95 * column < r < column  # the fringe adds about 0.9 D / a


def test_axisymmetric_disk_matches_the_exact_slab_resistance_to_a_tenth_of_a_per_cent():
    ref = analytic.disk_on_grounded_slab_resistance_exact(SIGMA, A_M, D_M)
    errors = []
    for quality in ("coarse", "default"):
        res = solve_axisymmetric([(D_M, SIGMA)], [Ring("disk", 0.0, A_M)], outer_radius_m=5 * D_M, quality=quality)
        errors.append((res.resistance_to_ground_ohm("disk") - ref) / ref)
    # Conforming FE of a Dirichlet problem is stiffer: R from below, closer on the finer mesh.
    assert errors[0] < errors[1] < 0.0
    assert abs(errors[0]) < 2e-3
    res = solve_axisymmetric([(D_M, SIGMA)], [Ring("disk", 0.0, A_M)], outer_radius_m=5 * D_M, degree=3)
    assert abs(res.resistance_to_ground_ohm("disk") - ref) / ref < 1e-3


def test_concentric_rings_conductances_are_passive():
    res = solve_axisymmetric(
        [(2e-3, 0.5), (20e-3, 0.2)],
        [Ring("centre", 0.0, 3e-3), Ring("ring", 6e-3, 9e-3)],
        outer_radius_m=60e-3,
        quality="coarse",
    )
    G = res.conductance_S
    assert G[0, 0] > 0 and G[1, 1] > 0 and G[0, 1] < 0
    assert np.all(G.sum(axis=1) > 0)  # some current always leaves through the grounded bottom
    # The ring at 1 V draws more than the smaller centre disk.
    assert G[1, 1] > G[0, 0]


@pytest.mark.parametrize(
    ("layers", "rings", "field"),
    [
        ([(0.0, 1.0)], [Ring("d", 0.0, 1e-3)], "layers[0].thickness_m"),
        ([(1e-2, 1.0)], [Ring("d", 0.0, 1e-3), Ring("r", 0.5e-3, 2e-3)], "rings"),
        ([(1e-2, 1.0)], [Ring("d", 0.0, 5e-2)], "outer_radius_m"),
    ],
)
def test_bad_axisymmetric_input_names_the_field(layers, rings, field):
    with pytest.raises(InputError) as err:
        solve_axisymmetric(layers, rings, outer_radius_m=2e-2)
    assert err.value.field == field


#: (method, degree) at which the coarse quality's 0.5 % holds (quality_accuracy("coarse", 3), the
#: free mesh's at degree 3; at degree 2 it measured -0.82 % on the ring, -0.96 % on the 48-gon),
#: the layered mesh at 2.
NAMED_DEGREE = [("free", 3), ("layered", 2)]


def _layered_disk_table(degree: int, method: str = "free") -> dict:
    materials = {"top": 0.5, "middle": 0.04, "deep": 0.2}
    return {
        "name": "layered-disk",
        "patch": {"width_mm": 100.0, "length_mm": 100.0},
        "material": {n: {"conductivity_S_per_m": s, "electrical_source": "test"} for n, s in materials.items()},
        "layer": [{"tissue": "top", "thickness_mm": 2.0}, {"tissue": "middle", "thickness_mm": 3.0},
                  {"tissue": "deep", "thickness_mm": 15.0}],
        "electrode": [{"name": "disk", "shape": "disk", "diameter_mm": 8.0, "center_mm": [0.0, 0.0]}],
        "channel": {"anode": "disk", "cathode": "ground", "current_mA": 1.0},
        "mesh": {"quality": "coarse", "degree": degree, "method": method},
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("method", "degree"), NAMED_DEGREE)
def test_axisymmetric_and_3d_paths_agree_on_a_layered_disk(method, degree):
    """Same layers and disk; the 3-D box (100 mm square) against a cylinder of the same area.

    Each mesh at the degree where the coarse quality's 0.5 % holds (NAMED_DEGREE): the layered
    mesh at 2 (119k dofs, 5 s of CPU; at 3 it took 130 s and 5 GB).
    """
    case = parse_case(_layered_disk_table(degree=degree, method=method))
    z3 = solve_case(case).metrics.electric.impedance_ohm
    layers = [(layer.thickness_m, layer.tissue.conductivity_at(case.solver.quasi_static_frequency_Hz)) for layer in case.layers]
    axi = solve_axisymmetric(layers, [Ring("disk", 0.0, 4e-3)], outer_radius_m=0.1 / math.sqrt(math.pi))
    z2 = axi.resistance_to_ground_ohm("disk")
    if method == "free":
        # Within the 3-D path's accuracy at coarse, degree 3 (0.34 % on the single-layer disk), and
        # from below (the 3-D mesh is the coarser one).
        assert -5e-3 < (z3 - z2) / z2 < 0.0
    else:
        # Within the 3-D path's accuracy at coarse (0.5 %; measured -0.26 % at degree 2). The
        # layered mesh can be as accurate as this reference (at degree 3 it measured +0.028 %), so
        # the sign is not the 3-D mesh's: above the reference by at most the axisymmetric solver's
        # own 0.1 % (emsim verify's bound).
        assert -5e-3 < (z3 - z2) / z2 < 1e-3


def _outline_on_bath_table(electrode: dict, method: str = "free", degree: int = 2) -> dict:
    return {
        "name": "outline-on-bath", "patch": {"width_mm": 100.0, "length_mm": 100.0},
        "material": {"bath": {"conductivity_S_per_m": 0.25, "electrical_source": "test"}},
        "layer": [{"tissue": "bath", "thickness_mm": 20.0}], "electrode": [electrode | {"name": "r", "center_mm": [0.0, 0.0]}],
        "channel": {"anode": "r", "cathode": "ground", "current_mA": 1.0},
        "mesh": {"quality": "coarse", "degree": degree, "method": method},
    }  # fmt: skip


def _bath_axisymmetric(ring: Ring) -> float:
    res = solve_axisymmetric([(0.02, 0.25)], [ring], outer_radius_m=0.1 / math.sqrt(math.pi), quality="fine", degree=3)
    return res.resistance_to_ground_ohm(ring.name)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "degree"), NAMED_DEGREE)
def test_a_ring_electrode_matches_the_axisymmetric_ring(method, degree):
    """An annulus (16 / 10 mm) on a grounded 20 mm bath, 3-D (100 mm square) against (r, z) (same area).

    Measured on the layered mesh -0.37 % at coarse, degree 2: within the coarse quality's 0.5 %, from below.
    """
    from emsim.meshes.patch import quality_accuracy

    case = parse_case(_outline_on_bath_table({"shape": "ring", "outer_diameter_mm": 16.0, "inner_diameter_mm": 10.0}, method, degree))
    z3 = solve_case(case).metrics.electric.impedance_ohm
    z2 = _bath_axisymmetric(Ring("r", 5e-3, 8e-3))
    assert -quality_accuracy("coarse", 3) < (z3 - z2) / z2 < 0.0


@pytest.mark.slow
@pytest.mark.parametrize(("method", "degree"), NAMED_DEGREE)
def test_a_many_sided_polygon_matches_the_disk_of_its_area(method, degree):
    """A regular 48-gon of the area of a 4 mm disk, against the axisymmetric disk.

    The 48-gon differs from the disk by its corners (the area-preserving radius differs from the
    circumradius by 0.14 %); measured on the layered mesh -0.51 % at coarse, degree 2: the coarse quality's 0.5 %
    plus 0.25 % for the shape, from below.
    """
    from emsim.meshes.patch import quality_accuracy

    n = 48
    radius = 4.0 / math.sqrt(n / (2 * math.pi) * math.sin(2 * math.pi / n))
    vertices = [[radius * math.cos(2 * math.pi * k / n), radius * math.sin(2 * math.pi * k / n)] for k in range(n)]
    case = parse_case(_outline_on_bath_table({"shape": "polygon", "vertices_mm": vertices}, method, degree))
    assert case.electrodes[0].area_m2 == pytest.approx(math.pi * 4e-3**2, rel=1e-12)
    z3 = solve_case(case).metrics.electric.impedance_ohm
    z2 = _bath_axisymmetric(Ring("r", 0.0, 4e-3))
    assert -(quality_accuracy("coarse", 3) + 2.5e-3) < (z3 - z2) / z2 < 0.0
