r"""Joule heating of a case over its treatment session: sources, boundaries, rescaling.

The Pennes problem itself (physics, time scheme, thermal dose) is
:class:`emsim.solvers.thermal.pennes.PennesProblem`; this module sets it up for a case.

Joule heat. Q_J is the time average of ``J . E``: for a quasi-static field it is
``grad(phi) . S grad(phi)`` of the unit-current field times the mean square current, so
``Q_J = (grad phi . S grad phi) / I^2 * I_rms^2`` with I the channel's (peak) current and
``I_rms = waveform.rms(I)`` over the whole cycle (pulses, bursts, on/off and ramps), or I for
d.c. A bare electrode with a contact impedance r_c [ohm m^2] also dissipates
``(V_e - phi)^2 / r_c`` [W/m^2] in its stratum corneum, applied as a surface source on its face.
Temperature rises scale with I_rms^2, i.e. with I^2 at a fixed waveform: one solve per case
serves every amplitude (:meth:`ThermalResult.at`). With a waveform the heat is instead the
cycle mean from the waveform's own spectrum through the dispersive tissues and the capacitive
contact (:mod:`emsim.solvers.spectral.joule`); it scales with I^2 all the same.

Boundaries. The skin and the pads lose heat to the air, ``-k dT/dn = h (T - T_air)``
(convection plus radiation, h about 10 W/(m^2 K)), on ``skin_exposed``, every ``pad_side:E``
and every ``electrode:E`` face. For a gel pad the electrode face is the pad's top: we assume the
electrode and its backing exchange heat like skin (no extra thermal resistance). A bare electrode
lies on the skin at z = 0; its face is treated as convective skin as well (a thin metal or carbon
film with the same h). The deep face (``bottom``) is held at the core temperature, the lateral
faces (``sides``) are insulated (symmetry far from the electrodes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import Function
from mpi4py import MPI

from ...errors import InputError, SolverError
from ...meshes.patch import PatchMesh
from ...models.case import Case, ThermalSettings
from ...models.orbit import globe_tissues
from ..electric.conductivity import cell_tensors
from ..electric.problem import ChannelSolution, ElectricProblem
from ..records import metric
from ..spectral.joule import CycleHeat
from .pennes import PennesProblem
from .pennes_data import PennesRun, cem43_of_history

__all__ = [
    "ProbeHistories",
    "SkinFront",
    "SkinPicture",
    "ThermalDetails",
    "ThermalMetrics",
    "ThermalResult",
    "case_pennes_problem",
    "cem43_of_history",
    "joule_heat_factor",
    "session_heating",
    "session_probes",
    "session_result",
]

log = logging.getLogger(__name__)

#: Scales (I / I_ref)^2 at which the probe points for rescaled thermal doses are chosen.
_PROBE_SCALES = np.geomspace(1e-2, 1e2, 17)
#: Probe points per scale and per rank (see :func:`session_heating`).
_PROBES_PER_SCALE = 16
#: The heated region: the tissue nodes whose steady-state rise (the heating's own pattern, known
#: before the run) is at least this fraction of the largest. The rise scales uniformly with I^2,
#: so the region is the same at every current; every one of its nodes is a probe (up to
#: :data:`_HEATED_PROBES_MAX` per rank), so the rescaled CEM43 is exact there at any current;
#: CEM43 is taken there (basal temperature + local rise), not at the deep face held at the core
#: temperature, whose 37 C alone gives 10 min x 0.25^6 = 0.0024 min for any current.
HEATED_FRACTION = 0.5
#: Most heated-region nodes per rank kept as probes (beyond it, the hottest per scale).
_HEATED_PROBES_MAX = 20_000

Progress = Callable[[str], None]


def _nothing(_: str) -> None:
    pass


def joule_heat_factor(case: Case) -> tuple[float, float]:
    """Mean-square factor of the case's waveform and its r.m.s. current.

    The Joule heat of the case's field at the peak current I (first channel) is multiplied by
    ``(I_rms / I)^2`` with ``I_rms = case.waveform.rms(I)`` (pulses, bursts, on/off and ramps
    included), or 1 for d.c. (no waveform).

    Args:
        case: the case.

    Returns:
        ``((I_rms / I)^2, I_rms [A])``.

    """
    current = case.channels[0].current_A
    rms = getattr(case.waveform, "rms", None)
    i_rms = float(rms(current)) if rms is not None else current
    return (i_rms / current) ** 2, i_rms


def _volume_materials(case: Case, patch: PatchMesh) -> dict[str, Any]:
    """ThermalProperties of every tagged volume, by volume name."""
    by_name: dict[str, Any] = {f"layer:{layer.label}": layer.tissue for layer in case.layers}
    by_name |= globe_tissues(case)  # orbit zones: the globe's sclera and vitreous
    for e in case.electrodes:
        if e.gel is not None:
            # The contact sublayer is gel electrically in series with the stratum corneum;
            # thermally it is gel (the stratum corneum is ~15 um thick).
            by_name[f"gel:{e.name}"] = e.gel.material
            by_name[f"contact:{e.name}"] = e.gel.material
    out = {}
    for name in patch.volumes:
        tissue = by_name.get(name)
        if tissue is None:
            raise SolverError(f"volume {name} of the mesh has no material in the case")
        if tissue.thermal is None:
            raise InputError(
                f"material.{tissue.name}", "no thermal properties",
                "a heating solve needs density_kg_per_m3, heat_capacity_J_per_kgK and "
                "thermal_conductivity_W_per_mK for every layer and gel",
            )  # fmt: skip
        out[name] = tissue.thermal
    return out


def case_pennes_problem(
    case: Case,
    patch: PatchMesh,
    *,
    source: ufl.core.expr.Expr | None = None,
    surface_sources: Mapping[int, ufl.core.expr.Expr] | None = None,
) -> PennesProblem:
    """Build the Pennes problem of a case on its patch mesh, with the module doc's boundaries.

    Convective: ``skin_exposed``, every ``pad_side:E`` and ``electrode:E``. Core temperature:
    ``bottom``. Insulated: ``sides``. Monitored skin: ``skin_exposed``, ``skin_under:E`` and the
    faces of bare electrodes (all at z = 0). Rises and doses are tracked over the tissue layers.

    Args:
        case: the case (materials and ``[thermal]`` settings; defaults without one).
        patch: its tagged mesh.
        source: volumetric heat source [W/m^3] (UFL), or None.
        surface_sources: surface heat sources [W/m^2] by facet tag.

    """
    settings = case.thermal or ThermalSettings()
    materials = {patch.volumes[n]: p for n, p in _volume_materials(case, patch).items()}
    surf = patch.surfaces
    convective = [
        t for n, t in surf.items()
        if n == "skin_exposed" or n.startswith(("pad_side:", "electrode:"))
    ]  # fmt: skip
    skin = [t for n, t in surf.items() if n == "skin_exposed" or n.startswith("skin_under:")]
    skin += [surf[f"electrode:{e.name}"] for e in case.electrodes if e.gel is None]
    tissue = [t for n, t in patch.volumes.items() if n.startswith(("layer:", "globe:"))]
    return PennesProblem(
        patch.mesh,
        patch.cell_tags,
        materials,
        facet_tags=patch.facet_tags,
        convective_tags=sorted(convective),
        h_W_per_m2K=settings.h_W_per_m2K,
        air_temperature_C=settings.air_temperature_C,
        dirichlet_tags=[surf["bottom"]],
        dirichlet_temperature_C=settings.core_temperature_C,
        arterial_temperature_C=settings.core_temperature_C,
        source=source,
        surface_sources=surface_sources,
        skin_tags=sorted(skin),
        monitor_cell_tags=sorted(tissue),
        method=case.solver.method,
        rtol=case.solver.rtol,
    )


def _joule_sources(problem: ElectricProblem, solution: ChannelSolution, factor: float):
    """Time-averaged Joule heat [W/m^3] (UFL) and contact-film heat [W/m^2] by facet tag."""
    patch = problem.patch
    mesh = patch.mesh
    W = fem.functionspace(mesh, ("DG", 0, (3, 3)))
    S = fem.Function(W, name="conductivity_S_per_m")
    values = S.x.array.reshape(-1, 9)
    for name, sigma in problem.sigma.items():
        cells = patch.cell_tags.find(patch.volumes[name])
        if patch.surface is None:
            values[W.dofmap.list[cells, 0]] = _tensor9(sigma)
        else:  # rotated into each cell's local frame
            values[W.dofmap.list[cells, 0]] = cell_tensors(patch, cells, np.real(np.asarray(sigma))).reshape(-1, 9)
    S.x.scatter_forward()
    phi = solution.potential
    c = fem.Constant(mesh, float(factor))
    source = c * ufl.inner(ufl.dot(S, ufl.grad(phi)), ufl.grad(phi))
    surface = {}
    for name, G in problem.robin.items():
        v_e = solution.electrode_potentials_V[name]
        surface[patch.surfaces[f"electrode:{name}"]] = c * G * (v_e - phi) ** 2
    return source, surface


def _tensor9(sigma: npt.ArrayLike) -> np.ndarray:
    """A conductivity as 9 tensor entries: from a 3x3 tensor or (tangential, normal) [S/m]."""
    arr = np.real(np.asarray(sigma, dtype=complex))
    if arr.shape == (3, 3):
        return arr.ravel()
    st, sn = arr
    return np.array([st, 0, 0, 0, st, 0, 0, 0, sn])


def _select_probes(T0: np.ndarray, theta: np.ndarray, dofs: np.ndarray) -> np.ndarray:
    """Dofs among ``dofs`` in the top few of ``T0 + s theta`` for some scale s (and s = 0, inf)."""
    if len(dofs) == 0:
        return dofs
    k = min(_PROBES_PER_SCALE, len(dofs))
    t0, th = T0[dofs], theta[dofs]
    chosen: set[int] = set()
    for score in [t0, th, *(t0 + s * th for s in _PROBE_SCALES)]:
        chosen.update(dofs[np.argpartition(-score, k - 1)[:k]].tolist())
    return np.array(sorted(chosen), dtype=np.int32)


def _pareto(rise: np.ndarray, T0: np.ndarray) -> np.ndarray:
    """Return the indices not dominated in (rise, T0): they hold max(T0 + s rise), s >= 0."""
    if len(rise) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((-T0, -rise))
    t = T0[order]
    best = np.maximum.accumulate(t)
    keep = np.r_[True, t[1:] > best[:-1]]
    return order[keep]


def _point(xyz: npt.ArrayLike) -> list[float]:
    """Coordinates [m] as a plain list, rounded to 1 pm (so that -1e-21 prints as 0.0)."""
    return [float(v) + 0.0 for v in np.round(np.asarray(xyz, dtype=float), 12)]


def _gather_all(comm, arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    parts = comm.allgather(arrays)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(arrays)))


def _mpi_max() -> MPI.Op:
    return MPI.MAX


@dataclass(frozen=True)
class ThermalDetails:
    """How the heating was computed (``metrics.json``'s ``thermal`` block)."""

    skin_temperature_peak_time_s: float = metric("s", "time in the session of the peak skin temperature")
    tissue_temperature_rise_final_max_K: float = metric("K", "largest tissue temperature rise at the end of the session")
    cem43_tissue_max_min: float = metric(
        "min", "CEM43 max over all tissue nodes, the deep face at the core temperature included"
    )
    cem43_tissue_note: str = metric("-", "why cem43_tissue_max_min is not a heating figure")
    peak_current_A: float = metric("A", "first channel's peak current of the solve")
    rms_current_A: float = metric("A", "first channel's r.m.s. current over the whole waveform")
    joule_heat_time_averaged_W: float = metric("W", "the cycle-averaged heat source over the volume and contact films")
    joule_heat_from: str = metric("-", "what the heat source is computed from")
    h_W_per_m2K: float = metric("W/(m^2 K)", "heat transfer coefficient of the skin and pads to the air")
    air_temperature_C: float = metric("C", "air temperature")
    core_temperature_C: float = metric("C", "core temperature (deep face and arterial blood)")
    steps: int = metric("-", "time steps of the session")
    scheme: str = metric("-", "time scheme")
    dofs: int = metric("-", "temperature degrees of freedom")
    method: str = metric("-", "linear solver of the heat problem")


@dataclass(frozen=True)
class ThermalMetrics:
    """Heating over the session at given channel currents (temperature rises scale with I^2)."""

    skin_temperature_basal_C: float = metric(
        "C", "max over the skin surface of the basal (no current) temperature", label="skin temperature, basal max"
    )
    skin_temperature_peak_C: float = metric(
        "C", "max over the skin surface and the session", label="skin temperature, session max"
    )
    skin_temperature_peak_location_m: Sequence[float] | None = metric("m", "where the skin temperature peaks, [x, y, z]")
    tissue_temperature_rise_max_K: float = metric(
        "K", "max of T - T_basal over the tissue layers and the session", label="tissue temperature rise, max"
    )
    cem43_heated_max_min: float = metric(
        "min", "thermal dose sum dt R^(43 - T), R = 0.5 at >= 43 C, 0.25 below (Sapareto & Dewey 1984), of the local "
        "temperature T = T_basal + rise at each node, max over the heated region (tissue nodes whose steady-state "
        f"rise is at least {HEATED_FRACTION:g} x the largest)", label="thermal dose CEM43, heated region max",
    )  # fmt: skip
    cem43_skin_max_min: float = metric(
        "min", "the same thermal dose, max over the skin surface nodes (under and around the pads)",
        label="thermal dose CEM43, skin max",
    )  # fmt: skip
    hottest_point_m: Sequence[float] = metric("m", "where the tissue temperature rise is largest, [x, y, z]")
    thermal_time_step_s: float = metric("s", "time step of the BDF2 scheme")
    session_s: float = metric("s", "session duration")
    thermal_rise_scale: float = metric(
        "-", "(I / I_ref)^2: every temperature rise of the solve at I_ref is multiplied by it (rises scale "
        "with the square of the current at a fixed waveform)"
    )
    thermal: ThermalDetails = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "-", "details: skin peak time, r.m.s. current, Joule heat, solver and settings"
    )


@dataclass(frozen=True)
class SkinFront:
    """The skin nodes that can be the hottest at some current, gathered on every rank.

    The skin temperature at a thermal scale s = (I / I_ref)^2 is ``T0 + s rise`` at each node;
    these nodes are those not dominated in (basal temperature, peak rise), so the maximum over
    them is the peak skin temperature at any s >= 0 (exact).

    Attributes:
        T0_C: basal temperature of each node [C].
        rise_K: its peak rise over the session at the reference currents [K].
        xyz_m: its position [m], (n, 3).
    """

    T0_C: np.ndarray
    rise_K: np.ndarray
    xyz_m: np.ndarray

    def peak_at(self, scale: float) -> tuple[float, list[float] | None]:
        """The peak skin temperature [C] at thermal scale ``scale`` and where [m] (nan, None: no skin)."""
        if not len(self.T0_C):
            return math.nan, None
        vals = self.T0_C + scale * self.rise_K
        i = int(np.argmax(vals))
        return float(vals[i]), _point(self.xyz_m[i])


@dataclass(frozen=True)
class ProbeHistories:
    """Temperature histories at probe nodes chosen before the run, gathered on every rank.

    Attributes:
        history_C: temperature at each time of the session and probe, (times, probes) [C].
        T0_C: basal temperature of each probe [C].
        skin: which probes are skin nodes.
        tissue: which probes lie in the tissue layers.
        heated: which probes lie in the heated region (where the thermal dose counts: every node
            of it when few, so its CEM43 rescales exactly).
    """

    history_C: np.ndarray
    T0_C: np.ndarray
    skin: np.ndarray
    tissue: np.ndarray
    heated: np.ndarray

    def at_scale(self, scale: float, which: np.ndarray) -> np.ndarray:
        """Histories (times, probes) [C] of the probes ``which`` at thermal scale ``scale``."""
        T0 = self.T0_C[which]
        return T0 + scale * (self.history_C[:, which] - T0)


@dataclass(frozen=True)
class SkinPicture:
    """Skin triangles and the final rise at their vertices (rank 0's gathered data).

    Attributes:
        triangles_m: vertex coordinates [m], (n, 3, 3).
        rise_K: the rise at the end of the session at each vertex [K], (n, 3).
    """

    triangles_m: np.ndarray
    rise_K: np.ndarray


@dataclass(frozen=True)
class ThermalResult:
    """Heating of a case over its session, and its rescaling to other currents.

    Attributes:
        reference: the metrics at the case's own currents.
        reference_currents_A: the channel (peak) currents of the solve [A], in case order.
        rms_current_A: the first channel's r.m.s. current over the waveform [A].
        history: at the reference currents, by column name with units: ``time_s``,
            ``skin_temperature_max_C``, ``tissue_temperature_rise_max_K``, ``cem43_tissue_max_min``
            (the running max over all tissue nodes, the deep face at the core temperature included).
        fields: DOLFINx Functions (basal, final, rise, peak rise, CEM43, Joule heat), by name.
        time_step_s: the time step used [s].
        skin_front: the skin nodes that hold the peak skin temperature at any current.
        probes: the temperature histories that rescale the thermal dose.
        skin_picture: skin triangles and the final rise, gathered on rank 0 (None elsewhere).
    """

    reference: ThermalMetrics
    reference_currents_A: np.ndarray
    rms_current_A: float
    history: Mapping[str, np.ndarray]
    fields: Mapping[str, Function] = field(repr=False)
    time_step_s: float
    skin_front: SkinFront = field(repr=False)
    probes: ProbeHistories = field(repr=False)
    skin_picture: SkinPicture | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ rescaling

    def scale(self, currents_A: float | Sequence[float] | np.ndarray) -> float | None:
        """Factor ``(I / I_ref)^2`` of every temperature rise at channel currents [A].

        Args:
            currents_A: the first channel's current (a number), or every channel's (a vector
                in case order).

        Returns:
            The factor, or None when the currents are not the reference currents times one
            factor (the heating of channels in other proportions needs its own solve).
        """
        ref = self.reference_currents_A
        cur = np.atleast_1d(np.asarray(currents_A, dtype=float))
        if cur.size == 1:
            cur = ref * (cur[0] / ref[0])
        if cur.shape != ref.shape:
            return None
        k = cur[0] / ref[0]
        if not np.allclose(cur, k * ref, rtol=1e-12, atol=0.0):
            return None
        return float(k * k)

    def rise_at(self, current_A: float | Sequence[float] | np.ndarray) -> float:
        """Largest tissue temperature rise over the session at ``current_A`` [K] (exact).

        Raises:
            InputError: currents off the reference ray (their heating needs its own solve).
        """
        s = self.scale(current_A)
        if s is None:
            raise InputError("currents_A", np.asarray(current_A).tolist(), "a multiple of the case's own currents")
        return s * self.reference.tissue_temperature_rise_max_K

    def cem43_at_scale(self, scale: float, region: str = "heated") -> float:
        """The largest CEM43 [min] over a region's probes at thermal scale ``scale`` = (I / I_ref)^2.

        Args:
            scale: the thermal scale (I / I_ref)^2.
            region: ``"heated"`` (the heated region: exact, every node of it is a probe when
                few) or ``"skin"`` (the skin probes: a lower bound away from the reference).

        Exact at 1 (the solver's own dose); elsewhere from the probe histories.
        """
        if region not in ("heated", "skin"):
            raise InputError("region", region, "one of heated, skin")
        if math.isclose(scale, 1.0, rel_tol=1e-12):
            m = self.reference
            return m.cem43_heated_max_min if region == "heated" else m.cem43_skin_max_min
        which = self.probes.heated if region == "heated" else self.probes.skin
        T = self.probes.at_scale(scale, which)
        return float(cem43_of_history(T, self.time_step_s).max(initial=0.0))

    def skin_front_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """(T0 [C], rise [K]) of the skin front: the skin peak at scale s is max(T0 + s rise)."""
        return self.skin_front.T0_C, self.skin_front.rise_K

    def tissue_probe_rises(self) -> tuple[np.ndarray, np.ndarray]:
        """(T0 [C], rise history [K] (times, probes)) of the tissue probes at the reference currents."""
        tissue = self.probes.tissue
        T0 = self.probes.T0_C[tissue]
        return T0, self.probes.history_C[:, tissue] - T0

    def heated_probe_rises(self) -> tuple[np.ndarray, np.ndarray]:
        """(T0 [C], rise history [K] (times, probes)) of the heated-region probes at the reference currents.

        CEM43 where the heating is (every node of the heated region a probe when few): the dose
        at another current on the reference ray is that of ``T0 + s rise`` (``time_step_s``).
        """
        heated = self.probes.heated
        T0 = self.probes.T0_C[heated]
        return T0, self.probes.history_C[:, heated] - T0

    def at(self, currents_A: float | Sequence[float] | np.ndarray) -> ThermalMetrics | None:
        """The thermal metrics at other currents along the reference ray (None off the ray).

        The rise is linear in the source, so ``T = T_basal + s (T_ref - T_basal)`` with
        ``s = (I / I_ref)^2``. Exact: the rise, the hottest point and the peak skin temperature
        (from the running maximum of the rise per node, reduced to the points that are not
        dominated in (basal temperature, peak rise)). CEM43, being non-linear in T, is
        recomputed from the temperature histories kept at probe nodes chosen, before the run,
        as the hottest for a range of scales s = 0.01 .. 100 of the steady-state rise (on the
        skin and in the tissue) and every node of the heated region: exact there and at s = 1,
        a lower bound on the skin otherwise.
        """
        s = self.scale(currents_A)
        if s is None:
            return None
        m = self.reference
        skin_peak, skin_where = self.skin_front.peak_at(s)
        return ThermalMetrics(
            skin_temperature_basal_C=m.skin_temperature_basal_C,
            skin_temperature_peak_C=skin_peak,
            skin_temperature_peak_location_m=skin_where,
            tissue_temperature_rise_max_K=s * m.tissue_temperature_rise_max_K,
            cem43_heated_max_min=self.cem43_at_scale(s, "heated"),
            cem43_skin_max_min=self.cem43_at_scale(s, "skin"),
            hottest_point_m=list(m.hottest_point_m),
            thermal_time_step_s=m.thermal_time_step_s,
            session_s=m.session_s,
            thermal_rise_scale=s,
            thermal=m.thermal,
        )

    def skin_history_at(self, currents_A: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Maximum skin temperature [C] at each time of ``history["time_s"]`` at ``currents_A``.

        Exact at the reference current; elsewhere the maximum over the skin probe nodes.
        """
        s = self.scale(currents_A)
        if s is not None and math.isclose(s, 1.0, rel_tol=1e-12):
            return self.history["skin_temperature_max_C"].copy()
        skin = self.probes.skin
        if s is None or not skin.any():
            return np.full(len(self.history["time_s"]), math.nan)
        return self.probes.at_scale(s, skin).max(axis=1)


def _skin_picture_data(
    pennes: PennesProblem, patch: PatchMesh, skin_tags: list[int], rise: np.ndarray
) -> SkinPicture | None:
    """Skin triangles [m] and the rise at their vertices, gathered on rank 0 (None elsewhere)."""
    mesh = patch.mesh
    fdim = mesh.topology.dim - 1
    n_owned = mesh.topology.index_map(fdim).size_local
    facets = np.concatenate(
        [patch.facet_tags.find(t) for t in skin_tags] or [np.empty(0, np.int32)]
    )
    facets = np.unique(facets[facets < n_owned]).astype(np.int32)
    geom = (
        dmesh.entities_to_geometry(mesh, fdim, facets)
        if len(facets)
        else np.empty((0, 3), np.int32)
    )
    # Degree-1 Lagrange dofs sit on the geometry nodes: map node -> dof through the cells.
    g2d = np.empty(mesh.geometry.x.shape[0], dtype=np.int64)
    g2d[mesh.geometry.dofmaps[0].ravel()] = pennes.V.dofmap.list.ravel()
    tri = mesh.geometry.x[geom] if len(facets) else np.empty((0, 3, 3))
    vals = rise[g2d[geom]] if len(facets) else np.empty((0, 3))
    parts = mesh.comm.gather((tri, vals), root=0)
    if mesh.comm.rank != 0:
        return None
    return SkinPicture(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _rescaling_data(
    pennes: PennesProblem, run: PennesRun, T0: np.ndarray, probes: np.ndarray, heated: np.ndarray
) -> tuple[tuple[float, list[float]], SkinFront, ProbeHistories, dict[str, float]]:
    """What :meth:`ThermalResult.at` needs, gathered on every rank.

    Returns:
        The hottest tissue point (rise, [x, y, z]); the skin nodes not dominated in (peak rise,
        basal temperature), which hold the skin peak at any current; the probe histories (with
        masks: skin, tissue, heated region); the CEM43 over the heated region and the skin.
    """
    comm = pennes.comm
    no = pennes.n_owned
    xyz = pennes.V.tabulate_dof_coordinates()[:no]
    rise_peak = run.rise_peak.x.array[:no]
    mon, skin = pennes.monitor_dofs, pennes.skin_dofs
    if len(mon):  # the largest rise over the tissue (the same node at every current)
        i = mon[int(np.argmax(rise_peak[mon]))]
        local = (float(rise_peak[i]), _point(xyz[i]))
    else:
        local = (-math.inf, [math.nan] * 3)
    hottest = max(comm.allgather(local), key=lambda p: p[0])
    front = skin[_pareto(rise_peak[skin], T0[skin])]
    fr, ft, fx = _gather_all(comm, (rise_peak[front], T0[front], xyz[front].reshape(-1, 3)))
    keep = _pareto(fr, ft)
    skin_front = SkinFront(T0_C=ft[keep], rise_K=fr[keep], xyz_m=fx[keep])
    ph, pt0, pskin, ptissue, pheated = _gather_all(
        comm, (run.probe_history_C.T, T0[probes], np.isin(probes, skin), np.isin(probes, mon), np.isin(probes, heated))
    )
    cem = run.cem43.x.array[:no]
    doses = {  # CEM43 at the reference current, exact: the max over the heated region and over the skin
        "heated": comm.allreduce(float(cem[heated].max(initial=0.0)), op=_mpi_max()),
        "skin": comm.allreduce(float(cem[skin].max(initial=0.0)), op=_mpi_max()),
    }
    probes_all = ProbeHistories(history_C=ph.T.copy(), T0_C=pt0, skin=pskin, tissue=ptissue, heated=pheated)
    return hottest, skin_front, probes_all, doses


def _total_power_W(patch: PatchMesh, source: ufl.core.expr.Expr, surface: Mapping[int, ufl.core.expr.Expr]) -> float:
    """The heat source integrated over the volume and the contact surfaces [W]."""
    joule = fem.assemble_scalar(fem.form(source * ufl.dx(domain=patch.mesh)))
    ds = ufl.Measure("ds", domain=patch.mesh, subdomain_data=patch.facet_tags)
    for tag, q in surface.items():
        joule += fem.assemble_scalar(fem.form(q * ds(tag)))
    return patch.mesh.comm.allreduce(float(joule))


def _thermal_fields(pennes: PennesProblem, patch: PatchMesh, basal: Function, run: PennesRun,
                    source: ufl.core.expr.Expr) -> dict[str, Function]:  # fmt: skip
    """The fields of a session, named with their units, for the XDMF output."""
    final = run.final
    final.name = "temperature_final_C"
    rise = fem.Function(pennes.V, name="temperature_rise_final_K")
    rise.x.array[:] = final.x.array - basal.x.array
    run.rise_peak.name = "temperature_rise_peak_K"
    Q0 = fem.functionspace(patch.mesh, ("DG", 0))
    joule = fem.Function(Q0, name="joule_heat_time_averaged_W_per_m3")
    joule.interpolate(fem.Expression(source, Q0.element.interpolation_points))
    joule.name = "joule_heat_time_averaged_W_per_m3"
    return {"basal": basal, "final": final, "rise": rise, "rise_peak": run.rise_peak, "cem43": run.cem43, "joule": joule}


def _session_metrics(case: Case, settings: ThermalSettings, run: PennesRun, pennes: PennesProblem, found: dict) -> ThermalMetrics:
    """The metrics of a session run at the case's currents (``found``: what was gathered)."""
    return ThermalMetrics(
        skin_temperature_basal_C=found["basal_skin"] if math.isfinite(found["basal_skin"]) else math.nan,
        skin_temperature_peak_C=float(np.nanmax(run.skin_max_C)),
        skin_temperature_peak_location_m=found["peak_location"],
        tissue_temperature_rise_max_K=float(run.rise_max_K.max()),
        cem43_heated_max_min=found["doses"]["heated"],
        cem43_skin_max_min=found["doses"]["skin"],
        hottest_point_m=found["hottest"],
        thermal_time_step_s=run.time_step_s,
        session_s=settings.session_s,
        thermal_rise_scale=1.0,
        thermal=ThermalDetails(
            skin_temperature_peak_time_s=float(run.times_s[int(np.nanargmax(run.skin_max_C))]),
            tissue_temperature_rise_final_max_K=float(run.rise_max_K[-1]),
            cem43_tissue_max_min=float(run.cem43_max_min[-1]),
            cem43_tissue_note="max over all tissue nodes, the deep face held at the core temperature included "
                              "(its dose is the core temperature's, whatever the current): not a heating figure",
            peak_current_A=case.channels[0].current_A,
            rms_current_A=found["i_rms"],
            joule_heat_time_averaged_W=found["joule"],
            joule_heat_from=found["joule_from"],
            h_W_per_m2K=settings.h_W_per_m2K,
            air_temperature_C=settings.air_temperature_C,
            core_temperature_C=settings.core_temperature_C,
            steps=len(run.times_s) - 1,
            scheme="BDF2, fixed step, Richardson-extrapolated backward-Euler start",
            dofs=pennes.dofs,
            method=pennes.method,
        ),
    )


def session_heating(
    case: Case,
    patch: PatchMesh,
    problem: ElectricProblem,
    solution: ChannelSolution,
    *,
    heat: CycleHeat | None = None,
    progress: Progress = _nothing,
) -> ThermalResult:
    """Heat the case's patch over its session with the cycle-averaged Joule heat (BDF2).

    From the basal steady state (the steady state with current only picks the probe nodes of
    :meth:`ThermalResult.at`). The heat is ``heat`` at the case's currents (a waveform case:
    :mod:`emsim.solvers.spectral.joule`), else the d.c. ``(I_rms / I)^2 grad(phi) . S grad(phi)`` of
    ``solution`` plus the contact film of bare electrodes. Metrics: :class:`ThermalMetrics`.

    Args:
        case: the case, with its ``[thermal]`` settings (defaults when None).
        patch: its tagged mesh.
        problem: the solved electric problem (conductivities, contact films).
        solution: the channel solution at the case's currents.
        heat: the waveform's cycle-averaged heat per channel pair, or None (d.c. heat).
        progress: called with short texts as the steps go.

    Returns:
        The thermal result, rescalable to other currents.

    """
    settings = case.thermal or ThermalSettings()
    factor, _ = joule_heat_factor(case)
    if heat is not None:
        source, surface = heat.sources(patch, np.array([c.current_A for c in case.channels]))
    else:
        source, surface = _joule_sources(problem, solution, factor)
    pennes = case_pennes_problem(case, patch, source=source, surface_sources=surface)
    progress(f"heating: basal state ({pennes.dofs} dofs, {pennes.method})")
    basal = pennes.steady_state(0.0)
    basal.name = "temperature_basal_C"
    with_current = pennes.steady_state(1.0)
    no = pennes.n_owned
    T0 = basal.x.array[:no]
    probes, heated = session_probes(pennes, T0, with_current.x.array[:no] - T0)
    run = pennes.run(
        basal, 1.0, settings.session_s, settings.time_step_s, progress=progress, probes=probes
    )
    result = session_result(
        case, patch, pennes, basal, run, probes, heated, source, surface, from_waveform=heat is not None
    )
    pennes.close()
    return result


def session_probes(
    pennes: PennesProblem, T0: np.ndarray, rise_steady_K: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Owned dofs whose histories :meth:`ThermalResult.at` keeps, and the heated region (collective).

    The probes are the skin and tissue nodes that are the hottest of ``T0 + s rise`` for scales
    s = 0.01 .. 100 (and s = 0, inf), and the nodes of the heated region (HEATED_FRACTION of the
    largest steady rise; all of them when few, so its CEM43 rescales exactly).

    Args:
        pennes: the problem.
        T0: the basal temperature at the owned dofs [C].
        rise_steady_K: the steady-state rise with the current at the owned dofs [K].

    Returns:
        The probe dofs and the heated region's dofs (owned, local indices).
    """
    mon = pennes.monitor_dofs
    theta_max = pennes.comm.allreduce(float(rise_steady_K[mon].max(initial=0.0)), op=_mpi_max())
    heated = mon[rise_steady_K[mon] >= HEATED_FRACTION * theta_max] if theta_max > 0 else mon
    heated_probes = heated if len(heated) <= _HEATED_PROBES_MAX else _select_probes(T0, rise_steady_K, heated)
    probes = np.union1d(
        np.union1d(_select_probes(T0, rise_steady_K, pennes.skin_dofs), _select_probes(T0, rise_steady_K, mon)),
        heated_probes,
    ).astype(np.int32)
    return probes, heated


def session_result(
    case: Case, patch: PatchMesh, pennes: PennesProblem, basal: Function, run: PennesRun, probes: np.ndarray,
    heated: np.ndarray, source: ufl.core.expr.Expr, surface: Mapping[int, ufl.core.expr.Expr], *, from_waveform: bool,
) -> ThermalResult:  # fmt: skip
    """The :class:`ThermalResult` of a session run from the basal state (collective).

    Args:
        case: the case (settings, channel currents, waveform).
        patch: its tagged mesh.
        pennes: the problem that ran (its dofs, skin and monitored nodes).
        basal: the basal steady state [C] (a Function).
        run: the run's record (:class:`~emsim.solvers.thermal.pennes_data.PennesRun`, or one
            with the same attributes), with its ``probe_history_C`` at ``probes``.
        probes: owned dofs of :func:`session_probes`.
        heated: the heated region's owned dofs (:func:`session_probes`), where CEM43 is taken.
        source: the volumetric heat [W/m^3] of the run (UFL), for the Joule power and field.
        surface: the surface heats [W/m^2] by facet tag.
        from_waveform: the heat is the waveform's cycle mean (else the d.c. field's).
    """
    settings = case.thermal or ThermalSettings()
    comm = patch.mesh.comm
    _, i_rms = joule_heat_factor(case)
    T0 = basal.x.array[: pennes.n_owned]
    hottest, skin_front, probes_all, doses = _rescaling_data(pennes, run, T0, probes, heated)
    basal_skin = comm.allreduce(float(T0[pennes.skin_dofs].max(initial=-math.inf)), op=_mpi_max())
    _, peak_location = skin_front.peak_at(1.0)
    joule = _total_power_W(patch, source, surface)
    metrics = _session_metrics(case, settings, run, pennes, {
        "basal_skin": basal_skin, "peak_location": peak_location,
        "hottest": hottest[1], "i_rms": i_rms, "joule": joule, "doses": doses,
        "joule_from": "the waveform's spectrum (cycle mean)" if from_waveform else "d.c. field x (I_rms / I)^2",
    })  # fmt: skip
    history = {
        "time_s": run.times_s,
        "skin_temperature_max_C": run.skin_max_C,
        "tissue_temperature_rise_max_K": run.rise_max_K,
        "cem43_tissue_max_min": run.cem43_max_min,
    }
    fields = _thermal_fields(pennes, patch, basal, run, source)
    skin_tags = [t for n, t in patch.surfaces.items() if n == "skin_exposed" or n.startswith("skin_under:")]
    skin_tags += [patch.surfaces[f"electrode:{e.name}"] for e in case.electrodes if e.gel is None]
    picture = _skin_picture_data(pennes, patch, skin_tags, fields["rise"].x.array)
    log.info(
        "heating: %d dofs, %d steps of %.3g s, peak skin %.3f C, max rise %.4g K, CEM43 %.3g min",
        pennes.dofs, len(run.times_s) - 1, run.time_step_s, metrics.skin_temperature_peak_C,
        metrics.tissue_temperature_rise_max_K, metrics.cem43_heated_max_min,
    )  # fmt: skip
    return ThermalResult(
        reference=metrics,
        reference_currents_A=np.array([c.current_A for c in case.channels]),
        rms_current_A=i_rms,
        history=history,
        fields=fields,
        time_step_s=run.time_step_s,
        skin_front=skin_front,
        probes=probes_all,
        skin_picture=picture,
    )
