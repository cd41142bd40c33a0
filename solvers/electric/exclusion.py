"""Fields in the exclusion zones, held per unit current of each channel.

A zone (:class:`emsim.models.exclusion.ExclusionZone`) is the tissue within ``radius_m`` of its
centre along the skin and down to ``depth_m``: the cells of the tissue layers whose CENTROID lies
in that cylinder (the mesh does not imprint the zone, so its boundary is resolved to one cell;
gel pads are never part of it). Every zone cell keeps its field E = -grad phi and current
density J = S E per ampere of each channel (:class:`ZoneLeadField`), so that the zone metrics
follow at any channel currents with no solve:

* d.c.: max over the zone's cells of |E| and |J| (simultaneous channels superposed; interleaved
  channels each alone, the largest);
* with a waveform (:mod:`emsim.solvers.spectral.waveform`): the same at the pulse instants (dense at the
  phase edges), and the r.m.s. of |E| and |J| over the pulse train at the plateau of the on/off
  cycle, per cell, from the waveform's spectrum by Parseval (mean-square products per channel
  pair, interleaved channels adding without cross terms), the max over the cells.

The limits are compared with the r.m.s. value (the d.c. value for a d.c. case): the zone passes
when the largest r.m.s. |E| and |J| over its cells are at most ``field_max_V_per_m`` and
``current_density_max_A_per_m2`` (those it states). Every zone also carries the placement rule
(policy): the smallest gap between a gel footprint and its edge is at least ``min_distance_mm``
(:func:`emsim.models.exclusion.placement_gap_m`). See :mod:`emsim.models.exclusion` for which
tissue a field limit may be applied to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI

from ...errors import InputError
from ...meshes.patch import PatchMesh
from ...models.case import Case
from ...models.exclusion import PLACEMENT_SOURCE, placement_gap_m
from ...models.orbit import globe_geometry
from ..channels import firing_groups
from ..physiology.phosphene import POPULATION_FACTOR, unit_weighted_peak
from ..records import Absent, metric

__all__ = ["ExclusionMetrics", "ZoneLeadField", "ZoneMetrics", "phosphene_index", "phosphene_unit_peak", "zone_cells"]


def zone_cells(case: Case, patch: PatchMesh) -> tuple[np.ndarray, np.ndarray]:
    """Owned cells in any zone (sorted local indices) and their (n, n_zones) membership.

    A cell belongs to a cylinder zone when its centroid lies in the zone's cylinder and it is a
    cell of a tissue layer. On a curved patch the cylinder is taken on the flat map (centre and
    radius along the skin, depth along the normal) (``layer:*`` volumes; gel pads and contact
    sublayers excluded). The cells of an ORBIT zone are its globe's retina: the vitreous cells
    whose centroid lies within one retina cell size inside the globe's inner surface, in its
    posterior half (:meth:`emsim.models.orbit.GlobeGeometry.is_retina`).
    """
    mesh = patch.mesh
    n_owned = mesh.topology.index_map(3).size_local
    if not case.exclusions:
        return np.empty(0, np.int32), np.zeros((0, 0), bool)
    globes = {g.zone: g for g in globe_geometry(case)}
    names = [n for n in patch.volumes if n.startswith("layer:")]
    names += [f"globe:{z}:vitreous" for z in globes if f"globe:{z}:vitreous" in patch.volumes]
    per_name = {n: patch.cell_tags.find(patch.volumes[n]) for n in names}
    cells = np.concatenate(list(per_name.values()) or [np.empty(0, np.int32)])
    order = np.argsort(cells)
    cells = cells[order]
    source = np.concatenate([np.full(len(v), i) for i, v in enumerate(per_name.values())] or [np.empty(0, int)])[order]
    keep_owned = cells < n_owned
    cells, source = cells[keep_owned], source[keep_owned]

    mid = dmesh.compute_midpoints(mesh, 3, cells.astype(np.int32))
    if patch.surface is not None:  # a curved patch: the zone is drawn on the flat map
        mid = patch.surface.to_flat(mid)
    is_layer = np.array([n.startswith("layer:") for n in per_name], bool)[source]
    columns = []
    for z in case.exclusions:
        if z.name in globes:
            g = globes[z.name]
            own = np.array([n == f"globe:{z.name}:vitreous" for n in per_name], bool)[source]
            columns.append(own & g.is_retina(mid[:, 0], mid[:, 1], mid[:, 2], g.retina_size_m))
        else:
            columns.append(is_layer & z.contains(mid[:, 0], mid[:, 1], mid[:, 2]))
    member = np.column_stack(columns)
    keep = member.any(axis=1)
    return cells[keep], member[keep]


def _mag(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(v, axis=-1)


@dataclass(frozen=True)
class ZoneLeadField:
    """Per-unit-current fields in the zone cells of every zone, identical on every rank.

    Attributes:
        names: zone names; ``zones``: the zones themselves (limits).
        member: (n_cells, n_zones) which zone each cell belongs to.
        volumes_m3: (n_cells,) cell volumes.
        field_per_A: (n_cells, 3, n_channels) d.c. field [V/m per A].
        current_density_per_A: (n_cells, 3, n_channels) d.c. current density [A/m^2 per A].
        timing: ``"simultaneous"`` or ``"interleaved"`` channels.
        pulse_field_per_A: (n_instants, n_cells, 3, n_channels) field at the pulse instants, or
            None (d.c. case).
        pulse_current_density_per_A: the same for J.
        field_ms_per_A2: (n_cells, n_pairs) mean square of |E| over the pulse train per channel
            pair [V^2/m^2 per A^2] (pairs of :func:`emsim.solvers.channels.channel_pairs`), or None.
        current_density_ms_per_A2: the same for |J| [A^2/m^4 per A^2].
        pairs: the channel pairs of the mean-square products.
        placement_gap_m: per zone, the smallest gap between a gel footprint and its edge [m].
        phosphene_unit_peak: the weighted-peak index of a 1 V/m field that follows the case's
            current waveform at 1 A peak (:func:`emsim.solvers.physiology.phosphene.unit_weighted_peak`)
            [1/(V/m)], or the reason it is absent (a d.c. case, no orbit zone); set per case by
            :meth:`with_phosphene` (the waveform's, not the geometry's).
    """

    zones: tuple[Any, ...]
    member: np.ndarray
    volumes_m3: np.ndarray
    field_per_A: np.ndarray
    current_density_per_A: np.ndarray
    timing: str
    pulse_field_per_A: np.ndarray | None = None
    pulse_current_density_per_A: np.ndarray | None = None
    field_ms_per_A2: np.ndarray | None = None
    current_density_ms_per_A2: np.ndarray | None = None
    pairs: tuple[tuple[int, int], ...] = ()
    placement_gap_m: tuple[float, ...] = ()
    phosphene_unit_peak: float | Absent = field(default_factory=lambda: _no_orbit())

    @property
    def names(self) -> tuple[str, ...]:
        """Zone names, in case order."""
        return tuple(z.name for z in self.zones)

    @classmethod
    def gather(
        cls, comm: MPI.Comm, case: Case, member: np.ndarray, volumes: np.ndarray, E: Sequence[np.ndarray],
        J: Sequence[np.ndarray],
    ) -> ZoneLeadField:  # fmt: skip
        """Gather the zone cells' d.c. data of every rank (collective; rank order).

        Args:
            comm: the mesh communicator.
            case: the case.
            member: local (n, n_zones) membership of the local zone cells.
            volumes: local (n,) volumes.
            E: per channel, the local (n, 3) field per ampere in the zone cells.
            J: per channel, the local (n, 3) current density per ampere.
        """
        n_c = len(E)
        e = np.stack(E, axis=-1) if n_c else np.zeros((len(volumes), 3, 0))
        j = np.stack(J, axis=-1) if n_c else np.zeros((len(volumes), 3, 0))
        parts = comm.allgather((member.reshape(len(volumes), len(case.exclusions)), volumes, e, j))
        return cls(
            zones=tuple(case.exclusions),
            member=np.concatenate([p[0] for p in parts]),
            volumes_m3=np.concatenate([p[1] for p in parts]),
            field_per_A=np.concatenate([p[2] for p in parts]),
            current_density_per_A=np.concatenate([p[3] for p in parts]),
            timing=case.timing,
            placement_gap_m=tuple(placement_gap_m(z, case.electrodes) for z in case.exclusions),
        )

    def with_pulse(self, pulse_E: np.ndarray, pulse_J: np.ndarray, ms_E: np.ndarray, ms_J: np.ndarray,
                   pairs: tuple[tuple[int, int], ...]) -> ZoneLeadField:  # fmt: skip
        """This record with the waveform data (gathered arrays, cells in this record's order)."""
        return replace(
            self, pulse_field_per_A=pulse_E, pulse_current_density_per_A=pulse_J, field_ms_per_A2=ms_E,
            current_density_ms_per_A2=ms_J, pairs=pairs,
        )  # fmt: skip

    def with_phosphene(self, unit_peak: float | Absent) -> ZoneLeadField:
        """This record with the waveform's weighted-peak index per unit field (:func:`phosphene_unit_peak`)."""
        return replace(self, phosphene_unit_peak=unit_peak)

    def _rms(self, ms: np.ndarray, current: np.ndarray) -> np.ndarray:
        p = np.array([current[c] * current[d] for c, d in self.pairs])
        return np.sqrt(np.maximum(ms @ p, 0.0))

    def at(self, current: np.ndarray) -> ExclusionMetrics:
        """The zone metrics at channel (peak) currents [A] (a vector in channel order)."""
        groups = firing_groups(np.asarray(current, float), self.timing)
        e_dc = np.max([_mag(self.field_per_A @ g) for g in groups], axis=0)
        j_dc = np.max([_mag(self.current_density_per_A @ g) for g in groups], axis=0)
        pE, pJ, msE, msJ = (self.pulse_field_per_A, self.pulse_current_density_per_A, self.field_ms_per_A2,
                            self.current_density_ms_per_A2)  # fmt: skip
        e_p: np.ndarray | None = None
        j_p: np.ndarray | None = None
        e_rms: np.ndarray | None = None
        j_rms: np.ndarray | None = None
        pulse = pE is not None and pJ is not None and msE is not None and msJ is not None
        if pE is not None and pJ is not None and msE is not None and msJ is not None:
            e_p = np.max([_mag(np.abs(pE @ g)).max(axis=0) for g in groups], axis=0)
            j_p = np.max([_mag(np.abs(pJ @ g)).max(axis=0) for g in groups], axis=0)
            e_rms = self._rms(msE, current)
            j_rms = self._rms(msJ, current)
        block: dict[str, ZoneMetrics] = {}
        compared: dict[str, float] = {}
        all_pass, placed, worst, limited = True, True, 0.0, False
        phos_worst, phos_reason = -1.0, None
        gap_min = math.inf
        for k, z in enumerate(self.zones):
            gap = self.placement_gap_m[k] if k < len(self.placement_gap_m) else math.nan
            gap_min = min(gap_min, gap)
            ok_placed = bool(gap >= z.min_distance_m - 1e-12)
            placement: dict[str, Any] = {
                "placement_gap_mm": float(f"{gap * 1e3:.6g}"),
                "placement_min_distance_mm": float(f"{z.min_distance_m * 1e3:.6g}"),
                "placement_pass": ok_placed,
                "placement_rule": PLACEMENT_SOURCE,
            }
            placed &= ok_placed
            m = self.member[:, k]
            phos = self._phosphene(z, m, groups)
            if phos is not None and not isinstance(phos[0], Absent):
                phos_worst = max(phos_worst, phos[0])
            elif phos is not None and phos_reason is None and isinstance(phos[0], Absent):
                phos_reason = phos[0]
            placement |= _phosphene_row(phos)
            if not m.any():
                block[z.name] = ZoneMetrics.empty(**placement, passes=ok_placed and not z.has_limits)
                all_pass &= ok_placed and not z.has_limits  # a limit that cannot be checked does not pass
                continue
            e_cmp = float((e_rms if e_rms is not None else e_dc)[m].max())
            j_cmp = float((j_rms if j_rms is not None else j_dc)[m].max())
            compared[z.name] = e_cmp
            ok = ok_placed
            ratios = []
            if z.field_max_V_per_m is not None:
                ratios.append(e_cmp / z.field_max_V_per_m)
                ok &= e_cmp <= z.field_max_V_per_m
            if z.current_density_max_A_per_m2 is not None:
                ratios.append(j_cmp / z.current_density_max_A_per_m2)
                ok &= j_cmp <= z.current_density_max_A_per_m2
            if ratios:
                how: str = (
                    "r.m.s. over the pulse train at the plateau (field_rms_max, current_density_rms_max)" if pulse
                    else "d.c. values (field_max_dc, current_density_max_dc)"
                )  # fmt: skip
                ratio: float | Absent = float(max(ratios))
                worst = max(worst, float(max(ratios)))
                limited = True
            elif z.kind == "orbit":
                how = "the retina's field: judged by the phosphene criterion (phosphene_ratio, dosimetric), no other limit"
                ratio = _NO_ZONE_LIMIT
            else:
                how = "no field limit: placement rule only (the fields are reported, not judged)"
                ratio = _NO_ZONE_LIMIT
            row = ZoneMetrics(
                **placement,
                cells=int(m.sum()),
                volume_cm3=float(self.volumes_m3[m].sum() * 1e6),
                field_max_dc_V_per_m=float(e_dc[m].max()),
                current_density_max_dc_A_per_m2=float(j_dc[m].max()),
                field_max_pulse_V_per_m=_zone_max(e_p, m),
                current_density_max_pulse_A_per_m2=_zone_max(j_p, m),
                field_rms_max_V_per_m=_zone_max(e_rms, m),
                current_density_rms_max_A_per_m2=_zone_max(j_rms, m),
                field_limit_V_per_m=_NO_LIMIT if z.field_max_V_per_m is None else z.field_max_V_per_m,
                current_density_limit_A_per_m2=(
                    _NO_LIMIT if z.current_density_max_A_per_m2 is None else z.current_density_max_A_per_m2
                ),
                compared=how,
                limit_ratio=ratio,
                passes=bool(ok),
                note=_NO_NOTE,
            )  # fmt: skip
            all_pass &= bool(ok)
            block[z.name] = row
        ratio_max: float | Absent = worst if limited else Absent(
            "no exclusion zone states a field or current-density limit (placement rule only)"
        )
        phos_max: float | Absent = phos_worst if phos_worst >= 0 else (phos_reason or _NO_ORBIT)
        return ExclusionMetrics(
            exclusion=block, exclusion_field_max_V_per_m=compared, exclusion_pass=bool(all_pass),
            exclusion_limit_ratio_max=ratio_max, exclusion_placement_gap_min_mm=float(f"{gap_min * 1e3:.6g}"),
            exclusion_placement_pass=bool(placed), exclusion_phosphene_ratio_max=phos_max,
            exclusion_phosphene_margin=_margin(phos_max),
        )  # fmt: skip

    def _phosphene(self, zone: Any, member: np.ndarray, groups: Sequence[np.ndarray]) -> tuple[float | Absent] | None:
        """(phosphene ratio,) of an orbit zone at the firing groups' currents, None for a cylinder zone."""
        if zone.kind != "orbit":
            return None
        unit = self.phosphene_unit_peak
        if isinstance(unit, Absent):
            return (unit,)
        if not member.any():
            return (_EMPTY_RETINA,)
        index = phosphene_index(self.field_per_A[member], groups, unit)
        return (index / POPULATION_FACTOR,)


_NO_PULSE = Absent("a d.c. case has no pulse")
_NO_LIMIT = Absent("the zone sets no such limit")
_NO_NOTE = Absent("the zone was evaluated (a note says why one could not be)")
_EMPTY = Absent("no tissue cell centroid lies in the zone: refine the mesh")
_NO_ZONE_LIMIT = Absent("the zone states no field or current-density limit (placement rule only)")


def _zone_max(values: np.ndarray | None, member: np.ndarray) -> float | Absent:
    return _NO_PULSE if values is None else float(values[member].max())


_NO_ORBIT = Absent("not an orbit zone: the phosphene criterion is evaluated at the retina of a modelled globe (kind = \"orbit\")")
#: What the phosphene criterion is, printed beside its verdict.
PHOSPHENE_SOURCE = (
    "dosimetric: the retina's field (vitreous side of the globe's inner surface, posterior half) by the ICNIRP 2010 "
    "weighted-peak method against the occupational CNS-of-the-head limit (Health Phys 99:818; about the phosphene "
    "threshold), over the 5th-percentile factor of transcorneal phosphene thresholds ("
    f"{POPULATION_FACTOR:.3f}, Naycheva et al. 2012 IOVS 53:7440, log-normal assumption): ratio > 1 means phosphenes "
    "expected in more than 1 person in 20; solvers/physiology/phosphene.py"
)


def _no_orbit() -> Absent:
    return _NO_ORBIT


def phosphene_unit_peak(case: Case) -> float | Absent:
    """The weighted-peak index of a unit field following the case's unit-peak current (orbit zones only).

    It belongs to the case's WAVEFORM, not to its geometry: a cached electric solve serves many
    waveforms, so :attr:`emsim.solvers.result.CaseResult.zones` sets it per case
    (:meth:`ZoneLeadField.with_phosphene`).
    """
    if not any(z.kind == "orbit" for z in case.exclusions):
        return _NO_ORBIT
    if case.waveform is None or case.waveform.shape == "dc":
        return Absent("a d.c. case: the ICNIRP 2010 limits (and the weighted-peak method) start at 1 Hz")
    try:
        return unit_weighted_peak(case.waveform, tier="occupational")
    except InputError as err:  # a period too long for the Fourier series (e.g. a slow polarity reversal)
        return Absent(f"the weighted-peak method cannot be evaluated for this waveform: {err}")


_EMPTY_RETINA = Absent("no vitreous cell centroid lies at the retina: refine the mesh")


def _margin(ratio: float | Absent) -> float | Absent:
    """Headroom in current of a criterion linear in the current: I_max / I - 1 = 1 / ratio - 1."""
    if isinstance(ratio, Absent):
        return ratio
    return math.inf if ratio == 0 else 1.0 / ratio - 1.0


def _phosphene_row(phos: tuple[float | Absent] | None) -> dict[str, Any]:
    """The phosphene fields of a zone row."""
    if phos is None:
        return {"phosphene_ratio": _NO_ORBIT, "phosphene_margin": _NO_ORBIT, "phosphene_criterion": _NO_ORBIT}
    return {"phosphene_ratio": phos[0], "phosphene_margin": _margin(phos[0]), "phosphene_criterion": PHOSPHENE_SOURCE}


def phosphene_index(field_per_A: np.ndarray, groups: Sequence[np.ndarray], unit_peak: float) -> float:
    """Weighted-peak index of the retina's field at channel currents (one number, over the cells and the period).

    Args:
        field_per_A: (n_cells, 3, n_channels) the retina cells' field per ampere of each channel.
        groups: the firing groups' current vectors (:func:`emsim.solvers.channels.firing_groups`).
        unit_peak: :func:`emsim.solvers.physiology.phosphene.unit_weighted_peak` of the waveform.

    Within a group the channels fire together with the same waveform, so the field is
    E_g i(t) / I_peak and its index max|E_g| x unit_peak exactly. Interleaved groups fire at
    different instants, but the weighting filter has memory (its 10 and 25 Hz corners), so their
    weighted responses may overlap: the index is bounded by the SUM over the groups (the triangle
    inequality), which this returns (exact for one group, conservative for several).
    """
    if field_per_A.shape[0] == 0:
        return 0.0
    return float(sum(np.max(_mag(field_per_A @ g)) for g in groups) * unit_peak)


@dataclass(frozen=True)
class ZoneMetrics:
    """One exclusion zone's fields and verdict at given channel currents (``metrics.json``: one row)."""

    placement_gap_mm: float = metric("mm", "smallest gap between a gel footprint and the zone's edge")
    placement_min_distance_mm: float = metric("mm", "the zone's min_distance_mm (placement rule, policy)")
    placement_pass: bool = metric("-", "every gel footprint keeps min_distance_mm from the zone (policy)")
    placement_rule: str = metric("-", "the placement rule's source (policy)")
    phosphene_ratio: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "-", "orbit zone: the retina's ICNIRP 2010 weighted-peak index (occupational CNS limit) / the 5th-percentile "
        "factor of phosphene thresholds (above 1: phosphenes expected in more than 1 person in 20)"
    )
    phosphene_margin: float | Absent = metric(  # noqa: RUF009
        "-", "orbit zone: headroom in current of the phosphene criterion, I_max / I - 1 = 1 / phosphene_ratio - 1"
    )
    phosphene_criterion: str | Absent = metric("-", "orbit zone: the phosphene criterion and its sources")  # noqa: RUF009
    cells: int = metric("-", "tissue cells whose centroid lies in the zone")
    volume_cm3: float | Absent = metric("cm^3", "volume of those cells")  # noqa: RUF009  (metric() is a dataclasses.field)
    field_max_dc_V_per_m: float | Absent = metric("V/m", "max |E| over the zone at d.c.")  # noqa: RUF009
    current_density_max_dc_A_per_m2: float | Absent = metric("A/m^2", "max |J| over the zone at d.c.")  # noqa: RUF009
    field_max_pulse_V_per_m: float | Absent = metric("V/m", "max |E| over the zone at the pulse instants")  # noqa: RUF009
    current_density_max_pulse_A_per_m2: float | Absent = metric(  # noqa: RUF009
        "A/m^2", "max |J| over the zone at the pulse instants"
    )
    field_rms_max_V_per_m: float | Absent = metric(  # noqa: RUF009
        "V/m", "max over the zone of the r.m.s. |E| over the pulse train at the plateau"
    )
    current_density_rms_max_A_per_m2: float | Absent = metric(  # noqa: RUF009
        "A/m^2", "max over the zone of the r.m.s. |J| over the pulse train at the plateau"
    )
    field_limit_V_per_m: float | Absent = metric("V/m", "the zone's |E| limit")  # noqa: RUF009
    current_density_limit_A_per_m2: float | Absent = metric("A/m^2", "the zone's |J| limit")  # noqa: RUF009
    compared: str | Absent = metric("-", "which values are compared with the limits")  # noqa: RUF009
    limit_ratio: float | Absent = metric("-", "largest compared value / limit")  # noqa: RUF009
    passes: bool = metric("-", "the placement rule holds and every compared value is within its limit", key="pass")
    note: str | Absent = metric("-", "why the zone could not be evaluated")  # noqa: RUF009

    @classmethod
    def empty(
        cls, *, placement_gap_mm: float, placement_min_distance_mm: float, placement_pass: bool, placement_rule: str,
        passes: bool, phosphene_ratio: float | Absent, phosphene_margin: float | Absent,
        phosphene_criterion: str | Absent,
    ) -> ZoneMetrics:  # fmt: skip
        """The row of a zone that holds no tissue cell (a zone with a limit fails: refine the mesh)."""
        return cls(
            placement_gap_mm=placement_gap_mm, placement_min_distance_mm=placement_min_distance_mm,
            placement_pass=placement_pass, placement_rule=placement_rule, phosphene_ratio=phosphene_ratio,
            phosphene_margin=phosphene_margin, phosphene_criterion=phosphene_criterion,
            cells=0, volume_cm3=_EMPTY, field_max_dc_V_per_m=_EMPTY, current_density_max_dc_A_per_m2=_EMPTY,
            field_max_pulse_V_per_m=_EMPTY, current_density_max_pulse_A_per_m2=_EMPTY, field_rms_max_V_per_m=_EMPTY,
            current_density_rms_max_A_per_m2=_EMPTY, field_limit_V_per_m=_EMPTY,
            current_density_limit_A_per_m2=_EMPTY, compared=_EMPTY, limit_ratio=_EMPTY, passes=bool(passes),
            note="no tissue cell centroid lies in the zone: refine the mesh",
        )  # fmt: skip


@dataclass(frozen=True)
class ExclusionMetrics:
    """The exclusion-zone metrics at given channel currents."""

    exclusion: Mapping[str, ZoneMetrics] = metric(
        "-", "per [[exclusion]] zone (tissue cells whose centroid lies in the cylinder of radius_mm "
        "around center_mm, down to depth_mm): cells, volume_cm3, max |E| [V/m] and |J| [A/m^2] over the "
        "zone at d.c. (field_max_dc, current_density_max_dc), at the pulse instants (..._pulse) and as "
        "r.m.s. over the pulse train at the plateau (..._rms_max); the limits, the values compared with "
        "them (compared), the largest value/limit (limit_ratio) and pass",
    )  # fmt: skip
    exclusion_field_max_V_per_m: Mapping[str, float] = metric(
        "V/m", "per zone, the largest |E| over its cells that its limit is compared with: r.m.s. over the "
        "pulse train at the plateau with a waveform, the d.c. value without", label="exclusion zone |E|",
    )  # fmt: skip
    exclusion_pass: bool = metric(
        "-", "every exclusion zone passes its placement rule and its limits", label="exclusion zones pass"
    )
    exclusion_limit_ratio_max: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "-", "largest compared value / limit over the zones that state a limit (above 1: a zone fails)",
        label="exclusion zone value / limit, max",
    )  # fmt: skip
    exclusion_placement_gap_min_mm: float = metric(
        "mm", "smallest gap between a gel footprint and an exclusion zone's edge (placement rule, policy: at "
        "least each zone's min_distance_mm, default 10 mm)", label="pad gap to exclusion zone, min (policy: >= min_distance_mm, default 10)",
    )  # fmt: skip
    exclusion_placement_pass: bool = metric(
        "-", "every gel footprint keeps each zone's min_distance_mm (policy)", label="exclusion zone placement (policy) passes"
    )
    exclusion_phosphene_ratio_max: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "-", "largest phosphene ratio over the orbit zones: the retina's ICNIRP 2010 weighted-peak index (occupational "
        "CNS-of-the-head limit) over the 5th-percentile factor of phosphene thresholds (dosimetric; above 1: "
        "phosphenes expected in more than 1 person in 20)",
        label="retina phosphene index / 5th-percentile threshold (dosimetric; > 1: phosphenes likely)",
    )  # fmt: skip
    exclusion_phosphene_margin: float | Absent = metric(  # noqa: RUF009
        "-", "headroom in current of the phosphene criterion: I_max / I - 1 = 1 / ratio - 1 (linear in the current)",
        label="phosphene margin in current (I_max / I - 1; >= 0 passes)",
    )


def no_zone() -> Absent:
    """The reason when a case has no exclusion zone."""
    return Absent("the case has no [[exclusion]] zone")
