"""Verification cases: emsim's electric solver against closed-form solutions.

Each case is an ordinary case table (so it exercises the same path as a user's case) with a
reference value from :mod:`emsim.solvers.reference.electric` and a tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from mpi4py import MPI

from ..errors import InputError, VerificationError
from ..meshes.patch import build_patch_mesh, quality_accuracy
from ..models import Case, MeshSettings, parse_case
from ..pipeline import solve_case
from ..solvers.electric.axisymmetric import Ring, solve_axisymmetric
from ..solvers.reference import electric as analytic
from ..solvers.reference.electric import rc_contact_mean_power, rc_contact_periodic_voltage
from ..solvers.spectral.sweep import waveform_response

__all__ = ["VERIFICATION_CASES", "VerificationRow", "column_case", "disk_on_slab_case", "run_verification"]


@dataclass(frozen=True)
class VerificationRow:
    """One verified quantity.

    Attributes:
        case: verification case name.
        quantity: what is compared (with its unit).
        computed: emsim's value.
        reference: the closed-form value.
        error: |computed - reference| / |reference|.
        tolerance: the allowed relative error.
    """

    case: str
    quantity: str
    computed: float
    reference: float
    error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        """True when the error is within the tolerance."""
        return self.error <= self.tolerance


def disk_on_slab_case(
    *,
    radius_m: float = 5e-3,
    depth_m: float = 50e-3,
    sigma_S_per_m: float = 1.0,
    quality: str = "default",
    size_factor: float = 1.0,
    degree: int = 2,
) -> tuple[Case, float]:
    """Equipotential disk on a slab (bottom grounded, sides insulated, width 5 x depth).

    Returns:
        The case (1 mA into the disk) and the reference resistance [ohm]
        (:func:`emsim.solvers.reference.electric.disk_on_grounded_slab_resistance_exact`).
    """
    width_mm = 5 * depth_m * 1e3
    table = {
        "name": "verify-disk-on-slab",
        "patch": {"width_mm": width_mm, "length_mm": width_mm},
        "material": {"bath": {"conductivity_S_per_m": sigma_S_per_m, "electrical_source": "verification"}},
        "layer": [{"tissue": "bath", "thickness_mm": depth_m * 1e3}],
        "electrode": [{"name": "disk", "shape": "disk", "diameter_mm": 2e3 * radius_m, "center_mm": [0.0, 0.0]}],
        "channel": {"anode": "disk", "cathode": "ground", "current_mA": 1.0},
        "mesh": {"quality": quality, "size_factor": size_factor, "degree": degree},
    }
    return parse_case(table), analytic.disk_on_grounded_slab_resistance_exact(sigma_S_per_m, radius_m, depth_m)


def pad_interface_case(*, gel: bool, quality: str = "default", size_factor: float = 1.0) -> Case:
    """A disk on a grounded slab with a skin contact, with or without a near-perfect gel pad.

    With ``gel`` the electrode sits on a 1 mm pad of 1000 S/m gel over the contact (the
    thin-layer contact sublayer); without, it is bare with the same contact (the Robin
    condition, an exact interface). A near-perfect gel is equipotential, so both must give the
    same resistance; any sideways path beneath the contact would short it toward an ideal disk.
    r_c sigma / a = 0.6: the contact neither dominates nor vanishes, so the distribution of the
    current under the pad, and the resistance, depend on it.
    """
    table: dict[str, Any] = {
        "name": "verify-pad-interface" + ("-gel" if gel else "-bare"),
        "patch": {"width_mm": 100.0, "length_mm": 100.0},
        "material": {
            "bath": {"conductivity_S_per_m": 0.25, "electrical_source": "verification"},
            "metal_gel": {"conductivity_S_per_m": 1000.0, "electrical_source": "verification"},
        },
        "layer": [{"tissue": "bath", "thickness_mm": 20.0}],
        "electrode": [{"name": "disk", "shape": "disk", "diameter_mm": 10.0, "center_mm": [0.0, 0.0],
                       "contact": {"resistance_ohm_cm2": 120.0, "capacitance_uF_per_cm2": 0.0}}],
        "channel": {"anode": "disk", "cathode": "ground", "current_mA": 1.0},
        "mesh": {"quality": quality, "size_factor": size_factor, "degree": 2},
    }
    if gel:
        table["electrode"][0]["gel"] = {"material": "metal_gel", "thickness_mm": 1.0}
    return parse_case(table)


def column_case(*, gel: bool = True, quality: str = "default", size_factor: float = 1.0) -> tuple[Case, float]:
    """1-D column: an electrode over the whole top face of a layered patch, bottom grounded.

    With ``gel`` the electrode sits on a hydrogel pad with a skin contact (thin-layer model);
    without, the electrode is bare on the skin with a contact (Robin condition).

    Returns:
        The case and the reference series resistance [ohm]
        (:func:`emsim.solvers.reference.electric.series_resistance`).
    """
    table = _column_table(
        "verify-column" + ("-gel" if gel else "-bare"),
        [("skin", 1.9), ("fat", 3.0), ("muscle", 10.0)],
        contact={"resistance_ohm_cm2": 100.0},
        gel_material="hydrogel" if gel else None,
        current_mA=1.0,
    )
    table["mesh"] = {"quality": quality, "size_factor": size_factor}
    case = parse_case(table)
    contact = case.electrodes[0].contact
    if contact is None:
        raise VerificationError("the column case lost its contact (it is built with one)")
    return case, _series_resistance(case) + contact.resistance_ohm_m2 / case.electrodes[0].area_m2


def rc_column_case(*, gel: bool = True) -> tuple[Case, float, float, float]:
    """1-D column of constant-conductivity layers with a capacitive contact, biphasic train.

    Returns:
        The case (10 mA, symmetric biphasic 100 us, 20 us gap, 1 kHz), the series tissue (and
        gel) resistance [ohm], the contact resistance [ohm] and capacitance [F].
    """
    r_c, c_c = 100e-4, 1e-2  # 100 ohm cm^2, 1 uF/cm^2: tau = 100 us
    sigma = {"skin_c": 0.465, "fat_c": 0.04, "muscle_c": 0.2, "gel_c": 0.05}
    table = _column_table(
        "verify-column-rc" + ("-gel" if gel else "-bare"),
        [("skin_c", 1.9), ("fat_c", 3.0), ("muscle_c", 10.0)],
        contact={"resistance_ohm_cm2": r_c * 1e4, "capacitance_uF_per_cm2": c_c * 1e2},
        gel_material="gel_c" if gel else None,
        current_mA=10.0,
    )
    table["material"] = {n: {"conductivity_S_per_m": v, "electrical_source": "verification"} for n, v in sigma.items()}
    table["waveform"] = {"shape": "biphasic_symmetric", "pulse_width_us": 100.0, "frequency_Hz": 1000.0,
                         "interphase_gap_us": 20.0}  # fmt: skip
    table["mesh"] = {"quality": "coarse", "size_factor": 4.0, "degree": 1}
    case = parse_case(table)
    area = case.electrodes[0].area_m2
    return case, _series_resistance(case), r_c / area, c_c * area


_COLUMN_SIDE_MM = 10.0


def _column_table(
    name: str, layers_mm: list[tuple[str, float]], *, contact: dict, gel_material: str | None, current_mA: float
) -> dict:
    """Case table of a 1-D column: one electrode over the whole top face, bottom grounded."""
    side = _COLUMN_SIDE_MM
    electrode: dict = {
        "name": "E", "shape": "rectangle", "width_mm": side, "length_mm": side, "center_mm": [0.0, 0.0],
        "contact": dict(contact),
    }  # fmt: skip
    if gel_material is not None:
        electrode["gel"] = {"material": gel_material, "thickness_mm": 0.5}
    return {
        "name": name,
        "patch": {"width_mm": side, "length_mm": side},
        "layer": [{"tissue": t, "thickness_mm": h} for t, h in layers_mm],
        "electrode": [electrode],
        "channel": {"anode": "E", "cathode": "ground", "current_mA": current_mA},
    }


def _series_resistance(case: Case) -> float:
    """Tissue (and gel) resistance [ohm] of a column case: its layers in series."""
    f = case.solver.quasi_static_frequency_Hz
    stack = [(layer.thickness_m, layer.tissue.conductivity_at(f)) for layer in case.layers]
    e = case.electrodes[0]
    if e.gel is not None:
        stack.append((e.gel.thickness_m, e.gel.material.conductivity_at(f)))
    return analytic.series_resistance(stack, e.area_m2)


def _rc_column(quality: str, comm) -> list[VerificationRow]:
    case, r_tissue, r_contact, c_contact = rc_column_case(gel=True)
    current = case.channels[0].current_A
    course = waveform_response(case, build_patch_mesh(case, comm)).time_course([current])
    v = course.channel_voltage_V["1"]
    ref = rc_contact_periodic_voltage(case.waveform, current, r_tissue, r_contact, c_contact, course.times_s)
    err = float(np.max(np.abs(v - ref)) / np.max(np.abs(ref)))
    quantity = "peak electrode voltage [V]; error = max|V(t) - V_ref(t)| / max|V_ref|"
    return [VerificationRow(case.name, quantity, float(np.max(np.abs(v))), float(np.max(np.abs(ref))), err, 0.01)]


def _rc_heat(quality: str, comm) -> list[VerificationRow]:
    case, _, r_contact, c_contact = rc_column_case(gel=False)
    current = case.channels[0].current_A
    metrics, _ = waveform_response(case, build_patch_mesh(case, comm)).at([current])
    ref = rc_contact_mean_power(case.waveform, current, r_contact, c_contact)
    quantity = "cycle-mean heat in the R || C contact [W] (waveform spectrum)"
    return [_row("column-rc-heat", quantity, metrics.layer_joule_power_cycle_mean_W["contact:E"], ref, 0.01)]


def _disk(quality: str, comm) -> list[VerificationRow]:
    """The disk at the default degree and at degree 3, each against the bound its quality is named for."""
    rows = []
    for degree in sorted({MeshSettings().degree, 3}):
        case, ref = disk_on_slab_case(quality=quality, degree=degree)
        res = solve_case(case, comm=comm)
        z = res.metrics.electric.impedance_ohm
        name = f"{case.name}-p{degree}"
        rows += [_row(name, "resistance [ohm]", z, ref, quality_accuracy(quality, degree)), _conservation(name, res)]
    return rows


def _disk_axisymmetric(quality: str, comm) -> list[VerificationRow]:
    """The disk on a slab by the axisymmetric (r, z) solver: 0.1 % at any quality."""
    case, ref = disk_on_slab_case()
    radius = case.electrodes[0].half_extent_m[0]
    sigma = case.layers[0].tissue.conductivity_at(case.solver.quasi_static_frequency_Hz)
    res = solve_axisymmetric(
        [(case.depth_m, sigma)], [Ring("disk", 0.0, radius)], outer_radius_m=case.patch.width_m / 2,
        quality=quality, degree=3,
    )  # fmt: skip
    return [_row("disk-on-slab-axisymmetric", "resistance [ohm]", res.resistance_to_ground_ohm("disk"), ref, 1e-3)]


def _column(gel: bool) -> Callable:
    def run(quality: str, comm) -> list[VerificationRow]:
        case, ref = column_case(gel=gel, quality="coarse", size_factor=4.0 if quality != "fine" else 2.0)
        res = solve_case(case, comm=comm)
        return [_row(case.name, "resistance [ohm]", res.metrics.electric.impedance_ohm, ref, 0.005), _conservation(case.name, res)]

    return run


def _row(case: str, quantity: str, computed: float, reference: float, tol: float) -> VerificationRow:
    return VerificationRow(case, quantity, computed, reference, abs(computed - reference) / abs(reference), tol)


def _conservation(case: str, res) -> VerificationRow:
    err = res.metrics.electric.current_conservation_error
    return VerificationRow(case, "current conservation [-]", err, 0.0, err, 1e-8)


def _pad_interface(quality: str, comm) -> list[VerificationRow]:
    results = {gel: solve_case(pad_interface_case(gel=gel, quality=quality), comm=comm) for gel in (True, False)}
    pad, bare = (results[g].metrics.electric.impedance_ohm for g in (True, False))
    tol = {"coarse": 0.02, "default": 0.01, "fine": 0.005}[quality]
    quantity = "resistance [ohm], gel-pad thin layer vs the bare Robin interface"
    return [_row("pad-contact-interface", quantity, pad, bare, tol), _conservation("pad-contact-interface", results[True])]


#: Verification cases by name: each returns rows for a mesh quality.
VERIFICATION_CASES: dict[str, Callable] = {
    "column-gel": _column(True),
    "column-bare": _column(False),
    "column-rc-waveform": _rc_column,
    "column-rc-heat": _rc_heat,
    "disk-on-slab": _disk,
    "disk-on-slab-axisymmetric": _disk_axisymmetric,
    "pad-contact-interface": _pad_interface,
}


def run_verification(
    quality: str = "default", *, only: list[str] | None = None, comm=None, progress: Callable[[str], None] | None = None
) -> list[VerificationRow]:
    """Run the verification cases and return their rows.

    Args:
        quality: mesh quality of the cases whose accuracy depends on the mesh.
        only: names from :data:`VERIFICATION_CASES` (default: all).
        comm: MPI communicator.
        progress: called with the case name before each case.
    """
    comm = comm or MPI.COMM_WORLD
    names = only or list(VERIFICATION_CASES)
    for n in names:
        if n not in VERIFICATION_CASES:
            raise InputError("verify --only", n, f"one of {', '.join(VERIFICATION_CASES)}")
    rows: list[VerificationRow] = []
    for n in names:
        if progress:
            progress(f"verification case {n}")
        rows += VERIFICATION_CASES[n](quality, comm)
    for r in rows:
        if not math.isfinite(r.computed):
            raise VerificationError(f"verification case {r.case}: {r.quantity} is not finite ({r.computed})")
    return rows
