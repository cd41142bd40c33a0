"""The result of solving a case: per-unit-current lead fields, scaled to any channel currents.

:class:`CaseResult` holds the case, the mesh and field handles, and the per-unit-current records
of each solver (electric, waveform, heating). :meth:`CaseResult.at` gives every metric at any
channel currents without a solve: potentials, currents and fields superpose linearly, Joule
powers are quadratic, temperature rises scale with the square of the current along the case's
own current ratios (other ratios need their own heating solve: the thermal record is then absent
with that reason). ``metrics.json`` and the command line's table are generated from the typed
records (:meth:`CaseMetrics.to_json`, :meth:`CaseMetrics.summary_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from dolfinx import fem

from .. import __version__
from ..meshes.patch import PatchMesh
from ..models.case import Case
from .channels import Currents as ChannelCurrents
from .electric.conductivity import conductivity_summary
from .electric.exclusion import ExclusionMetrics, ZoneLeadField, phosphene_unit_peak
from .electric.iec import IECFigures, iec_figures
from .electric.metrics import ElectricLeadField, ElectricMetrics
from .electric.problem import ChannelSolution, ElectricProblem
from .physiology.sensory import ComfortMetrics
from .records import (
    Absent,
    is_present,
    record_absent,
    record_definitions,
    record_values,
    summary_rows,
)
from .spectral.waveform import ActivationMetrics, WaveformLeadField, WaveformMetrics
from .thermal.session import ThermalMetrics, ThermalResult

if TYPE_CHECKING:  # the standard library's stubs name "any dataclass instance"
    from _typeshed import DataclassInstance

__all__ = ["CaseMetrics", "CaseResult", "SolveInfo"]

Currents = ChannelCurrents | None


@dataclass(frozen=True)
class CaseMetrics:
    """Every metric of a case at one set of channel currents.

    Attributes:
        electric: d.c. (quasi-static) metrics.
        waveform: waveform metrics (None for a d.c. case).
        activation: activation estimate (None for a d.c. case, :class:`Absent` when it cannot
            be computed).
        thermal: heating over the session (None without ``[thermal]``, :class:`Absent` off the
            case's current ratios).
        iec: the output figures per electrode (IEC 60601-2-10, FDA 510(k) table).
        comfort: sensory and motor thresholds and their ratio (:mod:`emsim.solvers.physiology.sensory`;
            :class:`Absent` for a d.c. case).
        exclusion: the exclusion-zone fields and pass (None without ``[[exclusion]]``).
    """

    electric: ElectricMetrics
    waveform: WaveformMetrics | None = None
    activation: ActivationMetrics | Absent | None = None
    thermal: ThermalMetrics | Absent | None = None
    iec: IECFigures | None = None
    comfort: ComfortMetrics | Absent | None = None
    exclusion: ExclusionMetrics | None = None

    def records(self) -> dict[str, DataclassInstance]:
        """The records present in this case, by name (absent ones as :class:`Absent`)."""
        parts: dict[str, DataclassInstance | None] = {"electric": self.electric, "waveform": self.waveform, "activation": self.activation}
        parts |= {"comfort": self.comfort, "exclusion": self.exclusion}
        parts |= {"thermal": self.thermal, "iec": self.iec}
        return {k: v for k, v in parts.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        """Every present metric (flat, keys with units), then ``definitions`` and ``absent``."""
        values: dict[str, Any] = {}
        definitions: dict[str, str] = {}
        absent: dict[str, str] = {}
        for name, rec in self.records().items():
            if isinstance(rec, Absent):
                absent[name] = rec.reason
                continue
            values |= record_values(rec)
            definitions |= record_definitions(rec)
            absent |= record_absent(rec)
        return {**values, "definitions": definitions, "absent": absent}

    def summary_rows(self) -> list[tuple[str, Any, str]]:
        """(label, value, unit) rows for the command line's table, generated from the records."""
        rows: list[tuple[str, Any, str]] = []
        for name, rec in self.records().items():
            if isinstance(rec, Absent):
                rows.append((name, f"absent: {rec.reason}", ""))
            else:
                rows += summary_rows(rec)
        return rows


@dataclass(frozen=True)
class SolveInfo:
    """How a case was solved (``metrics.json``'s ``solver`` block and its ``timings_s``).

    Attributes:
        method: the electric linear solver (``mumps``, ``cg-gamg`` or ``cg-pmg``).
        mesh_quality: the mesh quality preset (``coarse``, ``default``, ``fine``).
        mesh_size_factor: the factor on every mesh size [-].
        degree: the Lagrange degree of the potential.
        iterations: the Krylov iterations of each electrode's unit solve.
        mpi_ranks: the MPI ranks the case was distributed over.
        timings_s: wall time [s] of each step (``mesh_s``, ``electric_s``, ``postprocess_s``,
            ``waveform_s``, ``thermal_s``; the geometry steps only when this case ran them).
    """

    method: str
    mesh_quality: str
    mesh_size_factor: float
    degree: int
    iterations: tuple[int, ...]
    mpi_ranks: int
    timings_s: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The ``solver`` block of ``metrics.json`` (the timings apart: they differ run to run)."""
        return {
            "method": self.method,
            "mesh_quality": self.mesh_quality,
            "mesh_size_factor": self.mesh_size_factor,
            "degree": self.degree,
            "iterations": list(self.iterations),
            "mpi_ranks": self.mpi_ranks,
        }


@dataclass(frozen=True)
class CaseResult:
    """A solved case, held per unit current of each channel.

    Attributes:
        case: the case.
        mesh: its tagged mesh (DOLFINx handles).
        problem: the electric problem (unit fields per electrode, function space).
        channel_solutions: the field of each channel alone at 1 A, by channel name.
        electric: the per-unit-current electric record.
        waveform: the per-unit-current waveform record (None for a d.c. case).
        thermal: the heating over the session at the case's currents (None without ``[thermal]``).
        solver: how it was solved (method, mesh settings, iterations, ranks, timings).
    """

    case: Case
    mesh: PatchMesh
    problem: ElectricProblem = field(repr=False)
    channel_solutions: dict[str, ChannelSolution] = field(repr=False)
    electric: ElectricLeadField = field(repr=False)
    waveform: WaveformLeadField | None = field(default=None, repr=False)
    thermal: ThermalResult | None = field(default=None, repr=False)
    solver: SolveInfo | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names, in case order."""
        return self.electric.layout.names

    def currents(self, currents_A: Currents = None) -> np.ndarray:
        """Channel currents [A] as a vector (default: the case's own)."""
        if currents_A is None:
            return np.array([c.current_A for c in self.case.channels])
        return self.electric.currents_vector(currents_A)

    def at(self, currents_A: Currents = None) -> CaseMetrics:
        """Every metric at channel (peak) currents [A], by channel name or as a vector; no solve.

        Args:
            currents_A: ``{"1": 0.004}``, ``[0.004, 0.002]`` (case order), or None for the case's
                own currents. Channels a mapping does not name are at 0 A.
        """
        current = self.currents(currents_A)
        waveform = activation = None
        if self.waveform is not None:
            waveform, activation = self.waveform.at(current)
        thermal: ThermalMetrics | Absent | None = None
        if self.thermal is not None:
            thermal = self.thermal.at(current)
            if thermal is None:
                thermal = Absent(
                    "the heating was solved at the case's channel currents; other current ratios "
                    "need their own heating solve (rises scale with I^2 only along the case's ratios)"
                )
        electric = self.electric.at(current)
        if waveform is not None:
            power = {n: c.mean_power_W * self.case.waveform.mean_square_envelope
                     for n, c in waveform.waveform_by_channel.items()}  # fmt: skip
        else:
            power = {n: z * i * i for (n, z), i in zip(electric.impedance_by_channel_ohm.items(), current, strict=True)}
        iec = iec_figures(self.case, self.electric, current, power)
        comfort: ComfortMetrics | Absent = Absent(
            "a d.c. case has no pulse width for the strength-duration thresholds (add a [waveform])"
        )
        if self.waveform is not None:
            comfort = self.waveform.comfort(current)
        zones = self.zones
        exclusion = zones.at(current) if zones is not None else None
        return CaseMetrics(electric, waveform, activation, thermal, iec, comfort, exclusion)

    @cached_property
    def zones(self) -> ZoneLeadField | None:
        """The exclusion zones' per-unit-current record (d.c., with the waveform's pulse data)."""
        zones, w = self.electric.zones, self.waveform
        if zones is None:
            return zones
        zones = zones.with_phosphene(phosphene_unit_peak(self.case))  # this case's waveform (the solve may be shared)
        if w is None:
            return zones
        pulse = (w.zone_pulse_field_per_A, w.zone_pulse_current_density_per_A, w.zone_field_ms_per_A2,
                 w.zone_current_density_ms_per_A2)  # fmt: skip
        if pulse[0] is None or pulse[1] is None or pulse[2] is None or pulse[3] is None:
            return zones
        return zones.with_pulse(pulse[0], pulse[1], pulse[2], pulse[3], w.pairs)

    @cached_property
    def metrics(self) -> CaseMetrics:
        """The metrics at the case's own currents."""
        return self.at(None)

    def potential(self, currents_A: Currents = None, *, name: str = "potential_V") -> fem.Function:
        """The potential phi [V] at channel currents (a new DOLFINx Function, superposed).

        The first channel's cathode is at 0 V, as in ``electrode_voltage_V`` (without a grounded
        face the unit fields sum to 1, so the shift is a constant).
        """
        V = self.electric.electrode_potentials(self.currents(currents_A))
        return self.problem.combine(V, name=name)

    def to_json(self, currents_A: Currents = None) -> dict[str, Any]:
        """The content of ``metrics.json`` at channel currents (default: the case's own)."""
        m = self.metrics if currents_A is None else self.at(currents_A)
        body = m.to_json()
        definitions, absent = body.pop("definitions"), body.pop("absent")

        out: dict[str, Any] = {
            "case": self.case.name,
            "case_digest_sha256": self.case.digest(),
            "emsim_version": __version__,
            **body,
            "dofs": self.electric.dofs,
            "solver": self.solver.to_json() if self.solver is not None else {},
            "conductivity_S_per_m": {
                "frequency_Hz": self.problem.frequency_Hz,
                "note": "quasi-static (d.c.) solve; dispersive tissues evaluated at frequency_Hz; "
                "anisotropic volumes (contact sublayers: across the pad normal) list their 3x3 tensor; "
                "fibres: the along/across split of a fibrous layer's mixed value (waveform sweeps use "
                "r(f) at each frequency)",
                "volumes": conductivity_summary(self.problem.sigma),
                "fibres": {
                    f"layer:{layer.label}": layer.fibre_conductivities(self.problem.frequency_Hz)
                    for layer in self.case.layers
                    if layer.fibre_direction is not None
                },
            },
            "mesh": self.mesh.report.as_dict(),
        }
        if self.waveform is not None:
            out["waveform_method"] = self.waveform.method_record()
        out["timings_s"] = dict(self.solver.timings_s) if self.solver is not None else {}
        out["definitions"] = definitions
        out["absent"] = absent
        return out

    def summary_rows(self, currents_A: Currents = None) -> list[tuple[str, Any, str]]:
        """Rows of the command line's table at channel currents (default: the case's own)."""
        m = self.metrics if currents_A is None else self.at(currents_A)
        rows = m.summary_rows()
        if isinstance(m.thermal, ThermalMetrics) and is_present(m.thermal.hottest_point_m):
            x, y, z = (1e3 * c for c in m.thermal.hottest_point_m)
            rows.append(("hottest point (x, y, z)", f"({x:.1f}, {y:.1f}, {z:.1f})", "mm"))
        rows.append(("dofs", self.electric.dofs, "-"))
        return rows
