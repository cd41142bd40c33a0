"""The electric metrics people read, held per unit current of each channel.

:class:`ElectricLeadField` keeps, for each channel at 1 A, everything the metrics need: the
electrode potentials and currents, the normal current density on every skin facet, the field in
every target-muscle cell and the Joule power coupling of every pair of channels per volume.
Gathered on every rank in a rank-independent order, so that :meth:`ElectricLeadField.at`
evaluates the metrics at any channel currents with no solve and no communication: potentials,
currents and fields superpose linearly, Joule powers are quadratic forms.

Definitions (all SI) are the ``metric`` metadata of :class:`ElectricMetrics`; see also
:mod:`emsim.solvers.electric.skin` for the skin current density and its disc-averaged peak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import ufl
from dolfinx import fem

from ...errors import SolverError
from ...meshes.patch import PatchMesh
from ...models.case import Case
from ..channels import ChannelLayout, Currents
from ..records import Absent, metric
from .electrodes import cell_gradients, current_density
from .exclusion import ZoneLeadField, zone_cells
from .problem import ChannelSolution, ElectricProblem
from .skin import (
    PEAK_AVERAGING_RADIUS_M,
    DiscAverage,
    SkinFacets,
    gather_facets,
    skin_facets,
)

__all__ = ["CONSERVATION_TOLERANCE", "ElectricLeadField", "ElectricMetrics", "cell_volumes", "target_layers"]

_PEAK = f"averaged over a disc of radius {PEAK_AVERAGING_RADIUS_M * 1e3:g} mm"

#: Largest relative current-conservation error a solution may have: above it the linear solve
#: is not converged enough for its numbers to be trusted, and the case stops with an error.
CONSERVATION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ElectricMetrics:
    """Electric metrics at given channel currents (simultaneous channels, superposed)."""

    current_requested_A: float = metric(
        "A", "current of the first channel", label="current (channel 1)", scale=1e3, shown_unit="mA"
    )
    channel_current_A: Mapping[str, float] = metric("A", "current of each channel, by channel name")
    impedance_ohm: float = metric(
        "ohm", "(V_anode - V_cathode) / I of the first channel driven alone", label="impedance"
    )
    impedance_by_channel_ohm: Mapping[str, float] = metric("ohm", "(V_anode - V_cathode) / I of each channel driven alone")
    electrode_voltage_V: Mapping[str, float] = metric(
        "V", "potential of each electrode's metal, the first channel's cathode at 0 V", label="electrode voltage"
    )
    electrode_current_A: Mapping[str, float] = metric("A", "current leaving each electrode into the body (consistent flux)")
    skin_current_density_peak_A_per_m2: float = metric(
        "A/m^2", f"max over the skin surface of the normal current density {_PEAK}",
        label="skin J peak (1 mm disc)",
    )  # fmt: skip
    skin_current_density_peak_location_m: Sequence[float] = metric("m", "centre [x, y, z] of the disc of the peak")
    skin_current_density_p99_A_per_m2: float = metric(
        "A/m^2", f"area-weighted 99th percentile under the electrodes of the normal current density {_PEAK} "
        "(the peak's averages, so never above the peak)",
        label="skin J p99 under pads",
    )  # fmt: skip
    skin_current_density_mean_A_per_m2: Mapping[str, float] = metric(
        "A/m^2", "mean normal current density over each electrode's footprint", label="skin J mean under"
    )
    muscle_field_max_V_per_m: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "V/m", "max over the target muscle cells of |E| (cell values)", label="muscle |E| max"
    )
    muscle_field_mean_V_per_m: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "V/m", "volume-weighted mean of |E| over the target muscle", label="muscle |E| mean"
    )
    joule_power_dc_at_peak_W: float = metric(
        "W", "sum of layer_joule_power_dc_at_peak_W: the power the electrodes would deliver as a continuous d.c. "
        "current at the peak amplitude (not the stimulation's mean heat: see joule_power_cycle_mean_W)",
        label="Joule power, d.c. at the peak current",
    )  # fmt: skip
    layer_joule_power_dc_at_peak_W: Mapping[str, float] = metric(
        "W", "continuous d.c. at the peak amplitude: integral of E . S E over each volume (layers by label), and "
        "G (V_e - phi)^2 over each bare electrode's contact (contact:E)",
    )  # fmt: skip
    current_conservation_error: float = metric(
        "-", "max over channels of max(|I_anode - I|, |I_return - I|) / I, consistent fluxes of the final field",
        label="current conservation error",
    )  # fmt: skip


def target_layers(case: Case) -> list[str]:
    """Labels of the target layers (:meth:`emsim.models.Case.target_layers`)."""
    return case.target_layers()


def cell_volumes(patch: PatchMesh) -> np.ndarray:
    """Volume [m^3] of every local cell (owned and ghost)."""
    Q = fem.functionspace(patch.mesh, ("DG", 0))
    vec = fem.assemble_vector(fem.form(ufl.TestFunction(Q) * ufl.dx))
    vec.scatter_forward()
    return vec.array.copy()


def _power_label(volume: str) -> str:
    return volume.split(":", 1)[1] if volume.startswith("layer:") else volume


@dataclass(frozen=True)
class ElectricLeadField:
    """Per-unit-current electric data of every channel, identical on every rank.

    Attributes:
        layout: the channels (names and timing) and the electrodes they drive (names, each
            channel's first anode and cathode; -1: the grounded deep face). ``"simultaneous"``
            channels superpose; ``"interleaved"`` ones never flow together, so peaks, means and
            fields are the largest over the channels alone and powers add (electrode voltages
            and currents are those of all channels at once, a bound).
        potentials_V_per_A: (n_electrodes, n_channels) electrode potentials per ampere.
        currents_A_per_A: (n_electrodes, n_channels) electrode currents per ampere.
        conservation_error: per channel, the current conservation error of its unit solution.
        skin_triangles_m: (n_facets, 3, 3) skin facets [m], rank-independent order.
        skin_areas_m2: (n_facets,) facet areas.
        skin_under: (n_facets,) electrode under each facet, or "".
        skin_jn_per_A: (n_facets, n_channels) signed normal current density [A/m^2 per A].
        disc: the disc-averaging operator of the peak.
        muscle_field_per_A: (n_cells, 3, n_channels) field in the target muscle [V/m per A].
        muscle_volumes_m3: (n_cells,) volumes of those cells.
        power_W_per_A2: per volume, (n_channels, n_channels) Joule power coupling [W/A^2].
        dofs: global dofs of the potential.
        zones: the exclusion zones' cell fields (:mod:`emsim.solvers.electric.exclusion`), or None.
    """

    layout: ChannelLayout
    potentials_V_per_A: np.ndarray
    currents_A_per_A: np.ndarray
    conservation_error: np.ndarray
    skin_triangles_m: np.ndarray
    skin_areas_m2: np.ndarray
    skin_under: np.ndarray
    skin_jn_per_A: np.ndarray
    disc: DiscAverage
    muscle_field_per_A: np.ndarray
    muscle_volumes_m3: np.ndarray
    has_target: bool
    power_W_per_A2: dict[str, np.ndarray]
    dofs: int
    zones: ZoneLeadField | None = None

    @classmethod
    def build(cls, problem: ElectricProblem, solutions: Mapping[str, ChannelSolution]) -> ElectricLeadField:
        """Gather the lead-field data from the unit solution of every channel (collective)."""
        case, patch, comm = problem.case, problem.patch, problem.comm
        layout = ChannelLayout.of(case, tuple(solutions))
        names = layout.electrodes  # the problem's electrodes: the case's, in case order
        chans = [case.channel(n) for n in solutions]
        sols = list(solutions.values())
        skin = skin_facets(case, patch, problem.robin)
        jn, fields = [], []
        zcells, zmember = zone_cells(case, patch)
        zE, zJ = [], []
        for sol in sols:
            E = cell_gradients(patch.mesh, [sol.potential])[0]
            J = current_density(patch, E, problem.sigma)
            jn.append(skin.normal_current_density(J, _robin_flux(problem, skin, sol)))
            fields.append(E)
            zE.append(E[zcells])
            zJ.append(J[zcells])
        tri, area, under, jn_all = gather_facets(comm, skin, np.column_stack(jn) if jn else np.zeros((0, 0)))
        n_owned = patch.mesh.topology.index_map(3).size_local
        labels = target_layers(case)
        cells = np.concatenate(
            [patch.cell_tags.find(patch.volumes[f"layer:{m}"]) for m in labels] or [np.empty(0, np.int32)]
        )
        cells = np.sort(cells[cells < n_owned])
        vol = cell_volumes(patch)
        zones = ZoneLeadField.gather(comm, case, zmember, vol[zcells], zE, zJ) if case.exclusions else None
        local_e = np.stack([E[cells] for E in fields], axis=-1) if fields else np.zeros((len(cells), 3, 0))
        parts = comm.allgather((local_e, vol[cells]))
        muscle_e = np.concatenate([p[0] for p in parts])
        muscle_v = np.concatenate([p[1] for p in parts])
        power: dict[str, np.ndarray] = {}
        for i, a in enumerate(sols):
            for j in range(i, len(sols)):
                pair = problem.volume_power(a.potential, sols[j].potential) | problem.robin_power(a, sols[j])
                for name, p in pair.items():
                    power.setdefault(name, np.zeros((len(sols), len(sols))))
                    power[name][i, j] = power[name][j, i] = p
        conservation = []
        for ch, sol in zip(chans, sols, strict=True):
            delivered = sum(sol.electrode_currents_A[n] for n in ch.anode)
            returned = -sol.ground_current_A if ch.grounded else -sum(sol.electrode_currents_A[n] for n in ch.cathode)
            error = max(abs(delivered - 1.0), abs(returned - 1.0))
            if not error <= CONSERVATION_TOLERANCE:
                raise SolverError(
                    f"case {case.name}: channel {ch.name} conserves current only to {error:.2e} (tolerance "
                    f"{CONSERVATION_TOLERANCE:g}); tighten [solver] rtol or use method = \"mumps\""
                )
            conservation.append(error)
        return cls(
            layout=layout,
            potentials_V_per_A=np.column_stack([[s.electrode_potentials_V[n] for n in names] for s in sols]),
            currents_A_per_A=np.column_stack([[s.electrode_currents_A[n] for n in names] for s in sols]),
            conservation_error=np.array(conservation),
            skin_triangles_m=tri,
            skin_areas_m2=area,
            skin_under=under,
            skin_jn_per_A=jn_all,
            disc=DiscAverage(tri.mean(axis=1), area, np.any(jn_all != 0, axis=1), PEAK_AVERAGING_RADIUS_M),
            muscle_field_per_A=muscle_e,
            muscle_volumes_m3=muscle_v,
            has_target=bool(labels),
            power_W_per_A2=power,
            dofs=problem.dofs,
            zones=zones,
        )

    def currents_vector(self, currents_A: Currents) -> np.ndarray:
        """Channel currents [A] as a vector in channel order (:func:`emsim.solvers.channels.current_vector`)."""
        return self.layout.vector(currents_A)

    def electrode_potentials(self, current: np.ndarray) -> np.ndarray:
        """Electrode potentials [V], the first channel's cathode at 0 V (or the ground)."""
        V = self.potentials_V_per_A @ current
        return V - V[self.layout.cathode[0]] if self.layout.cathode[0] >= 0 else V

    def skin_jn(self, current: np.ndarray) -> np.ndarray:
        """|J_n| [A/m^2] per skin facet at the channel currents."""
        return np.abs(self.skin_jn_per_A @ current)

    def at(self, currents_A: Currents) -> ElectricMetrics:
        """The metrics at channel currents [A] (by name, or a vector in channel order); no solve."""
        current = self.currents_vector(currents_A)
        V = self.electrode_potentials(current)
        z = [
            self.potentials_V_per_A[a, c] - (self.potentials_V_per_A[k, c] if k >= 0 else 0.0)
            for c, (a, k) in enumerate(zip(self.layout.anode, self.layout.cathode, strict=True))
        ]
        # Interleaved channels never flow together: each quantity is the largest over the
        # channels alone, and powers add without cross terms.
        groups = self.groups(current)
        skin = []
        for g in groups:
            jn = self.skin_jn(g)
            peak, where = self.disc.peak(jn)
            skin.append((peak, where, self.disc.percentile(jn, self.skin_under != "", 99.0), jn))
        peak, where, p99, _ = max(skin, key=lambda x: x[0])
        mean = {}
        for name in self.layout.electrodes:
            m = self.skin_under == name
            a = self.skin_areas_m2[m]
            mean[name] = max(float(np.dot(a, jn[m]) / a.sum()) for *_, jn in skin)
        e_max: float | Absent
        e_mean: float | Absent
        if self.has_target and len(self.muscle_volumes_m3):
            emag = [np.linalg.norm(self.muscle_field_per_A @ g, axis=1) for g in groups]
            e_max = max(float(e.max()) for e in emag)
            e_mean = max(float(np.dot(e, self.muscle_volumes_m3) / self.muscle_volumes_m3.sum()) for e in emag)
        else:
            e_max = e_mean = Absent("the case has no target muscle layer (a layer of the library's muscle)")
        power = {_power_label(k): sum(float(g @ P @ g) for g in groups) for k, P in self.power_W_per_A2.items()}
        return ElectricMetrics(
            current_requested_A=float(current[0]),
            channel_current_A=dict(zip(self.layout.names, current.tolist(), strict=True)),
            impedance_ohm=float(z[0]),
            impedance_by_channel_ohm=dict(zip(self.layout.names, map(float, z), strict=True)),
            electrode_voltage_V=dict(zip(self.layout.electrodes, V.tolist(), strict=True)),
            electrode_current_A=dict(zip(self.layout.electrodes, (self.currents_A_per_A @ current).tolist(), strict=True)),
            skin_current_density_peak_A_per_m2=peak,
            skin_current_density_peak_location_m=[float(c) + 0.0 for c in where],
            skin_current_density_p99_A_per_m2=p99,
            skin_current_density_mean_A_per_m2=mean,
            muscle_field_max_V_per_m=e_max,
            muscle_field_mean_V_per_m=e_mean,
            joule_power_dc_at_peak_W=sum(power.values()),
            layer_joule_power_dc_at_peak_W=power,
            current_conservation_error=float(self.conservation_error.max(initial=0.0)),
        )

    def groups(self, current: np.ndarray) -> list[np.ndarray]:
        """The channel currents that flow together (:func:`emsim.solvers.channels.firing_groups`)."""
        return self.layout.groups(current)

    def skin_picture(self, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Skin triangles [m] and |J_n| [A/m^2] at the channel currents (largest over groups)."""
        return self.skin_triangles_m, np.max([self.skin_jn(g) for g in self.groups(current)], axis=0)


def _robin_flux(problem: ElectricProblem, skin: SkinFacets, sol: ChannelSolution) -> np.ndarray | None:
    """G (V_e - phi) [A/m^2] at the centroids of the Robin facets of ``skin``."""
    if not skin.robin.any():
        return None
    points, cells, owners = skin.robin_points()
    phi = np.asarray(sol.potential.eval(points, cells)).reshape(-1)
    return np.array(
        [problem.robin[o] * (sol.electrode_potentials_V[o] - p) for o, p in zip(owners, phi, strict=True)]
    )
