"""The pictures of a solved case an engineer reads at a glance: the rim, the profile, the depth.

Every function here returns a :class:`matplotlib.figure.Figure` and writes nothing: the output
layer saves it (:func:`emsim.io.save_figure`). The pictures show the field at channel (peak) currents,
by linearity from the unit-current record (no solve):

- :func:`skin_current_map`: the normal current density on the skin, top view, as a ratio to the
  pads' mean (so the crowding at the rim shows in any case), the peak's 1 mm averaging disc marked
  with its value, the exclusion zones outlined with their value and limit.
- :func:`skin_current_profile`: J_n / J_mean across each pad against the normalised distance
  from its centre, beside the primary current distribution of a bare equipotential disk,
  J / J_mean = 1 / (2 sqrt(1 - rho^2)) (Newman 1966, J. Electrochem. Soc. 113:501; its mean over
  the disk is 1). A gel pad and a skin contact impedance flatten it toward 1.
- :func:`depth_sections` (collective: it samples the distributed field) and
  :func:`depth_section_figure`: |E| on a vertical plane through the pads (and one through each
  exclusion zone that plane misses), log scale, with the layers, the pads, the target and the
  zones outlined.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..formatting import current as fmt_current
from ..formatting import quantity, ratio, sig
from ..models.shapes import Disk
from ..solvers.records import is_present

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..solvers.electric.exclusion import ExclusionMetrics
    from ..solvers.result import CaseResult

__all__ = [
    "DepthSection",
    "depth_section_figure",
    "depth_sections",
    "disk_reference_profile",
    "pad_profiles",
    "skin_current_map",
    "skin_current_profile",
]

Currents = Mapping[str, float] | Sequence[float] | None

#: The radius of the disc the skin peak is averaged over [m] (solvers/electric/skin.py).
_PEAK_DISC_M = 0.5e-3
_VIEW_MARGIN_M = 5e-3  # around the pads and zones in the top view
_SECTION_MARGIN_M = 10e-3  # beyond the pads along the section line


def _flat(result: CaseResult, pts_m: np.ndarray) -> np.ndarray:
    """Points [m] in the flat map of a curved patch (x, y along the skin, z the height)."""
    surface = result.mesh.surface
    p = np.asarray(pts_m, float)
    return p if surface is None else surface.to_flat(p.reshape(-1, 3)).reshape(p.shape)


def _metrics(result: CaseResult, currents_A: Currents) -> Any:
    return result.metrics if currents_A is None else result.at(result.currents(currents_A))


def _zone_lines(exclusion: ExclusionMetrics | None) -> list[tuple[str, str, bool]]:
    """(zone name, "value / limit" text, pass) of each exclusion zone of an ExclusionMetrics."""
    rows = getattr(exclusion, "exclusion", None) or {}
    out = []
    for name, row in rows.items():
        if not row.cells:
            note = row.note if is_present(row.note) else "no cell in the zone"
            out.append((name, str(note), False))
            continue

        def first(*values: Any) -> float | None:
            return next((float(v) for v in values if is_present(v)), None)

        kind = "r.m.s." if is_present(row.field_rms_max_V_per_m) else "d.c."
        parts = []
        e = first(row.field_rms_max_V_per_m, row.field_max_dc_V_per_m)
        if is_present(row.field_limit_V_per_m) and e is not None:
            parts.append(f"|E| {quantity(e, 'V/m')} {kind} (limit {quantity(row.field_limit_V_per_m, 'V/m')})")
        j = first(row.current_density_rms_max_A_per_m2, row.current_density_max_dc_A_per_m2)
        if is_present(row.current_density_limit_A_per_m2) and j is not None:
            parts.append(f"|J| {quantity(j, 'A/m^2')} {kind} (limit {quantity(row.current_density_limit_A_per_m2, 'A/m^2')})")
        if not parts and e is not None and is_present(row.phosphene_ratio):  # an orbit zone: its cells are the retina
            parts.append(f"retina |E| {quantity(e, 'V/m')} {kind}, phosphene ratio {ratio(row.phosphene_ratio)} "
                         "(dosimetric: > 1, phosphenes likely)")  # fmt: skip
        elif not parts and e is not None:
            parts.append(f"|E| {quantity(e, 'V/m')} {kind} (no field limit: not judged)")
        if is_present(row.limit_ratio):
            parts.append(f"{ratio(row.limit_ratio)} its limit")
        parts.append(f"pad gap {quantity(row.placement_gap_mm, 'mm')} (policy >= {quantity(row.placement_min_distance_mm, 'mm')})")
        out.append((name, ", ".join(parts), bool(row.passes)))
    return out


# ----------------------------------------------------------------------------- skin


@dataclass(frozen=True)
class PadProfile:
    """The skin current density under one pad against the distance from its centre.

    Attributes:
        electrode: the electrode's name.
        rho: distance from the centre / radius (a disk), or / the largest distance (other shapes).
        ratio: J_n / J_mean of the pad per skin facet [-] (area-weighted mean).
        areas_m2: the facets' areas [m^2].
        mean_A_per_m2: the pad's area-weighted mean J_n [A/m^2].
        disk: the pad is a disk (rho = r / a; the equipotential-disk reference applies).
    """

    electrode: str
    rho: np.ndarray
    ratio: np.ndarray
    areas_m2: np.ndarray
    mean_A_per_m2: float
    disk: bool

    def binned(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """(bin centres, area-weighted mean ratio per bin); empty bins are NaN."""
        edges = np.linspace(0.0, max(1.0, float(self.rho.max(initial=1.0))), bins + 1)
        k = np.clip(np.digitize(self.rho, edges) - 1, 0, bins - 1)
        w = np.bincount(k, self.areas_m2, bins)
        s = np.bincount(k, self.areas_m2 * self.ratio, bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 0.5 * (edges[1:] + edges[:-1]), np.where(w > 0, s / w, np.nan)


def disk_reference_profile(rho: npt.ArrayLike) -> np.ndarray:
    """J / J_mean of a bare equipotential disk in a half-space: 1 / (2 sqrt(1 - rho^2)), rho = r/a < 1.

    The primary current distribution (Newman 1966, J. Electrochem. Soc. 113:501); its area mean
    over the disk is 1, and it diverges at the rim.
    """
    rho = np.asarray(rho, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rho < 1.0, 0.5 / np.sqrt(1.0 - rho**2), np.inf)


def pad_profiles(result: CaseResult, currents_A: Currents = None) -> list[PadProfile]:
    """The skin current density under each pad, normalised to the pad's mean (rank 0's skin data)."""
    el = result.electric
    tri_m, jn = el.skin_picture(result.currents(currents_A))
    centroids = _flat(result, np.asarray(tri_m).mean(axis=1))
    out = []
    for e in result.case.electrodes:
        m = el.skin_under == e.name
        if not m.any():
            continue
        a = el.skin_areas_m2[m]
        mean = float(np.dot(a, jn[m]) / a.sum())
        r = np.hypot(centroids[m, 0] - e.center_m[0], centroids[m, 1] - e.center_m[1])
        disk = isinstance(e.shape, Disk)
        rho = r / (e.shape.diameter_m / 2) if isinstance(e.shape, Disk) else r / r.max()
        out.append(PadProfile(e.name, rho, jn[m] / mean if mean > 0 else np.zeros_like(r), a, mean, disk))
    return out


def _view_box_mm(result: CaseResult, skin_mm: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) [mm] around the pads and zones, within the skin's extent (``skin_mm`` points)."""
    boxes = []
    for e in result.case.electrodes:
        hx, hy = e.half_extent_m
        boxes.append((e.center_m[0] - hx, e.center_m[0] + hx, e.center_m[1] - hy, e.center_m[1] + hy))
    for z in result.case.exclusions:
        boxes.append((z.center_m[0] - z.radius_m, z.center_m[0] + z.radius_m, z.center_m[1] - z.radius_m, z.center_m[1] + z.radius_m))
    b = np.array(boxes) * 1e3
    pts = np.asarray(skin_mm).reshape(-1, np.shape(skin_mm)[-1])
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    m = _VIEW_MARGIN_M * 1e3
    x0, x1 = max(b[:, 0].min() - m, lo[0]), min(b[:, 1].max() + m, hi[0])
    y0, y1 = max(b[:, 2].min() - m, lo[1]), min(b[:, 3].max() + m, hi[1])
    return x0, x1, y0, y1


def skin_current_map(result: CaseResult, currents_A: Currents = None) -> Figure:
    """Top view of |J_n| on the skin as a ratio to the pads' mean, the peak disc and zones labelled.

    Colour: |J_n| / J_mean, J_mean the largest of the pads' area-weighted means (a linear scale
    from 0, so the exposed skin is dark, the pad centre near 1 and the rim crowding bright). The
    peak's 0.5 mm-radius averaging disc (the reported peak) is circled and its value printed;
    each exclusion zone is outlined and listed under the map with its value and limit. Uses the
    skin data of rank 0 (call it there).
    """
    from matplotlib import colors, patches
    from matplotlib.figure import Figure
    from matplotlib.tri import Triangulation

    current = result.currents(currents_A)
    m = _metrics(result, currents_A)
    e = m.electric
    tri_m, jn = result.electric.skin_picture(current)
    tri = _flat(result, np.asarray(tri_m)) * 1e3
    means = {k: float(v) for k, v in e.skin_current_density_mean_A_per_m2.items()}
    j_ref = max(means.values(), default=0.0) or float(jn.max(initial=1.0)) or 1.0
    zones = _zone_lines(m.exclusion)
    x0, x1, y0, y1 = _view_box_mm(result, tri)
    # the map's height follows the view's aspect (equal axes), so no band of white around it
    map_h = min(max(6.2 * (y1 - y0) / max(x1 - x0, 1e-9), 2.6), 7.5)
    text_h = 0.75 + 0.3 * len(zones)
    fig = Figure(figsize=(8.4, map_h + text_h + 0.9), dpi=110, layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[map_h + 0.9, text_h])
    ax = fig.add_subplot(grid[0])
    info = fig.add_subplot(grid[1])
    info.axis("off")
    n = len(tri)
    mesh = Triangulation(tri[:, :, 0].ravel(), tri[:, :, 1].ravel(), np.arange(3 * n).reshape(n, 3))
    values = jn / j_ref
    under = result.electric.skin_under != ""
    # the exposed skin carries no current across it (insulated): grey, so the colours span the pads
    mesh.set_mask(~under)
    span = values[under] if under.any() else values
    lo, hi = float(span.min(initial=1.0)), float(span.max(initial=1.0))
    half = max(1.0 - lo, hi - 1.0, 0.02)  # symmetric about the mean: blue below it, red above
    art = ax.tripcolor(mesh, facecolors=values, cmap="RdBu_r", norm=colors.Normalize(1.0 - half, 1.0 + half))
    bar = fig.colorbar(art, ax=ax, shrink=0.9, pad=0.02)
    bar.set_label(f"|J_n| / J_mean, J_mean = {quantity(j_ref, 'A/m^2')}")
    for el in result.case.electrodes:
        ring = el.outline_m(240) * 1e3
        ax.add_patch(patches.Polygon(ring, closed=True, fill=False, edgecolor="black", lw=1.2))
        ax.text(el.center_m[0] * 1e3, el.center_m[1] * 1e3, el.name, color="black", ha="center", va="center",
                fontsize=11, fontweight="bold")  # fmt: skip
    for k, z in enumerate(result.case.exclusions):
        ax.add_patch(patches.Circle((z.center_m[0] * 1e3, z.center_m[1] * 1e3), z.radius_m * 1e3, fill=False,
                                    edgecolor="darkgreen", lw=1.5, ls="--"))  # fmt: skip
        ax.text(z.center_m[0] * 1e3, z.center_m[1] * 1e3, f"zone {k + 1}\n{z.name}", color="darkgreen", ha="center",
                va="center", fontsize=9)  # fmt: skip
    peak = float(e.skin_current_density_peak_A_per_m2)
    where = _flat(result, np.asarray(e.skin_current_density_peak_location_m, float).reshape(1, 3))[0] * 1e3
    ax.add_patch(patches.Circle((where[0], where[1]), _PEAK_DISC_M * 1e3, fill=False, edgecolor="black", lw=1.5))
    # the label goes below the pads, away from the zones' labels, with an arrow to the disc
    ty = y0 + 0.08 * (y1 - y0)
    ax.annotate(
        f"peak (1 mm disc): {quantity(peak, 'A/m^2')} = {ratio(peak / j_ref)} J_mean",
        xy=(where[0], where[1]), xytext=(where[0], ty), color="black", fontsize=9, ha="center", va="center",
        arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.0},
    )  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_facecolor("0.82")
    ax.set_xlabel("x [mm]" + (" (along the curved skin)" if result.mesh.surface is not None else ""))
    ax.set_ylabel("y [mm]")
    # wrapped: a validation's case name carries its anatomy corner (ten factors, 100+ characters)
    title = (f"{result.case.name}: skin normal current density at I = {fmt_current(e.current_requested_A)} "
             f"(Z = {quantity(e.impedance_ohm, 'ohm')})")  # fmt: skip
    ax.set_title(textwrap.fill(title, 90), fontsize=10)
    lines = [(f"peak |J_n| averaged over a 1 mm disc {quantity(peak, 'A/m^2')} ({quantity(peak * 0.1, 'mA/cm^2')}); "
             f"99th percentile under the pads {quantity(float(e.skin_current_density_p99_A_per_m2), 'A/m^2')}"),
             "J_mean: the largest pad mean; pad means: " + ", ".join(f"{k} {quantity(v, 'A/m^2')}" for k, v in means.items()),
             "quasi-static (d.c.) field at the peak current; grey: exposed skin (no current crosses it)"]  # fmt: skip
    for k, (name, text, ok) in enumerate(zones):
        lines.append(f"zone {k + 1} {name}: {text}: {'pass' if ok else 'FAIL'}")
    wrapped = [w for line in lines for w in textwrap.wrap(line, 110, subsequent_indent="    ")]
    # out of the layout: a long line must not shrink the map
    info.text(0.0, 1.0, "\n".join(wrapped), va="top", ha="left", fontsize=8.5, transform=info.transAxes, in_layout=False)
    return fig


def skin_current_profile(result: CaseResult, currents_A: Currents = None) -> Figure:
    """J_n / J_mean across each pad against rho = r / a, beside the bare equipotential-disk curve.

    Dots: every skin facet under the pad; line: the area-weighted mean in 20 rings. The dashed
    curve is 1 / (2 sqrt(1 - rho^2)), a bare metal disk on a uniform half-space; a gel pad with
    a contact impedance spreads the current and flattens it. Rank 0's skin data.
    """
    from matplotlib.figure import Figure

    profiles = pad_profiles(result, currents_A)
    fig = Figure(figsize=(8.0, 5.2), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    top = 2.0
    for k, p in enumerate(profiles):
        colour = f"C{k}"
        ax.scatter(p.rho, p.ratio, s=3, alpha=0.25, color=colour, linewidths=0)
        c, b = p.binned()
        ok = np.isfinite(b)
        ax.plot(c[ok], b[ok], "o-", ms=3, color=colour,
                label=f"pad {p.electrode} (mean {quantity(p.mean_A_per_m2, 'A/m^2')}, "
                      f"rim ring {ratio(b[ok][-1]) if ok.any() else 'n/a'} the mean)")  # fmt: skip
        top = max(top, float(np.nanmax(b)) * 1.15, float(np.percentile(p.ratio, 99.5)) * 1.05)
    if any(p.disk for p in profiles):
        rho = np.linspace(0.0, 0.995, 400)
        ax.plot(rho, disk_reference_profile(rho), "k--", lw=1.2,
                label="bare equipotential disk, 1 / (2 sqrt(1 - rho^2)) (Newman 1966)")  # fmt: skip
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_xlim(0.0, max(1.02, max((float(p.rho.max()) for p in profiles), default=1.0) * 1.02))
    ax.set_ylim(0.0, min(top, 8.0))
    disk = all(p.disk for p in profiles)
    ax.set_xlabel("rho = r / a, distance from the pad centre / pad radius" if disk else
                  "distance from the pad centre / largest distance under the pad")  # fmt: skip
    ax.set_ylabel("|J_n| / J_mean of the pad [-]")
    i = result.currents(currents_A)
    ax.set_title(f"{result.case.name}: current density across each pad at I = {fmt_current(float(i[0]))}\n"
                 "a gel pad with a contact impedance flattens the bare-disk curve", fontsize=10)  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


# ----------------------------------------------------------------------------- depth


@dataclass(frozen=True)
class DepthSection:
    """|E| sampled on a vertical plane (unrolled on a curved patch), for a picture.

    Attributes:
        title: what the plane goes through.
        s_mm: distance along the section line [mm] (n_s,).
        z_mm: height above the skin [mm] (n_z,), negative in the tissue.
        field_V_per_m: |E| at the channel currents [V/m], (n_z, n_s); NaN outside the mesh.
        layers: (label, tissue name, top z [mm], bottom z [mm]) from the skin down.
        pads: (electrode, s start, s end [mm], gel top z [mm]) where the line crosses a pad.
        zones: (zone name, s start, s end, depth [mm]) where the plane cuts an exclusion zone.
        targets: labels of the target layers.
        notes: lines printed under the picture (values, what is not cut).
    """

    title: str
    s_mm: np.ndarray
    z_mm: np.ndarray
    field_V_per_m: np.ndarray
    layers: list[tuple[str, str, float, float]]
    pads: list[tuple[str, float, float, float]]
    zones: list[tuple[str, float, float, float]]
    targets: list[str]
    notes: list[str] = field(default_factory=list)


def _sample_field(result: CaseResult, currents_A: Currents, points_m: np.ndarray) -> np.ndarray:
    """|E| [V/m] at points (collective); NaN where no cell holds the point."""
    from mpi4py import MPI

    from ..solvers.electric.points import first_colliding_cells, point_gradients

    mesh = result.mesh.mesh
    comm = mesh.comm
    pts = np.ascontiguousarray(points_m, dtype=mesh.geometry.x.dtype).reshape(-1, 3)
    cells = first_colliding_cells(mesh, pts, mesh.topology.index_map(3).size_local)
    # one rank per point (the lowest holding it), so the sum over ranks is the value
    rank = np.where(cells >= 0, comm.rank, comm.size).astype(np.int64)
    comm.Allreduce(MPI.IN_PLACE, rank, op=MPI.MIN)
    cells[rank != comm.rank] = -1
    phi = result.potential(currents_A)
    degree = phi.function_space.element.basix_element.degree
    e = point_gradients(mesh, [phi], degree, pts, cells)[0]
    out = np.linalg.norm(e, axis=1)
    out[rank == comm.size] = np.nan
    return out


def _line_extent(result: CaseResult, origin: np.ndarray, direction: np.ndarray, s0: float, s1: float) -> tuple[float, float]:
    """Clip the section [s0, s1] [m] so that it stays within the patch rectangle."""
    p = result.case.patch
    half = np.array([p.width_m, p.length_m]) / 2 * (1 - 1e-6)
    lo, hi = s0, s1
    for k in range(2):
        if abs(direction[k]) > 1e-12:
            a = (-half[k] - origin[k]) / direction[k]
            b = (half[k] - origin[k]) / direction[k]
            lo, hi = max(lo, min(a, b)), min(hi, max(a, b))
    return lo, hi


def _section(result: CaseResult, currents_A: Currents, origin: np.ndarray, direction: np.ndarray, s0: float,
             s1: float, title: str, n_s: int, n_z: int) -> DepthSection:  # fmt: skip
    case = result.case
    s0, s1 = _line_extent(result, origin, direction, s0, s1)
    depth = case.depth_m if hasattr(case, "depth_m") else sum(layer.thickness_m for layer in case.layers)
    gel_top = max((el.gel.thickness_m for el in case.electrodes if el.gel is not None), default=0.0)
    s = np.linspace(s0, s1, n_s)
    z = np.linspace(-depth * (1 - 1e-6), gel_top * (1 - 1e-6), n_z)
    S, Z = np.meshgrid(s, z)
    xy = origin[None, :] + S.reshape(-1, 1) * direction[None, :]
    flat = np.column_stack([xy, Z.reshape(-1)])
    pts = flat if result.mesh.surface is None else result.mesh.surface.to_curved(flat)
    values = _sample_field(result, currents_A, pts).reshape(n_z, n_s)
    layers, top = [], 0.0
    for layer in case.layers:
        layers.append((layer.label, layer.tissue.name, top * 1e3, (top - layer.thickness_m) * 1e3))
        top -= layer.thickness_m
    pads = []
    for el in case.electrodes:
        inside = el.signed_distance(xy[: n_s, 0], xy[: n_s, 1]) <= 0
        if inside.any():
            t = el.gel.thickness_m if el.gel is not None else 0.0
            pads.append((el.name, s[inside].min() * 1e3, s[inside].max() * 1e3, t * 1e3))
    zones, notes = [], []
    for zn in case.exclusions:
        c = np.asarray(zn.center_m, float)
        along = float(np.dot(c - origin, direction))
        d = float(np.linalg.norm(c - origin - along * direction))
        if d < zn.radius_m:
            w = math.sqrt(zn.radius_m**2 - d**2)
            zones.append((zn.name, (along - w) * 1e3, (along + w) * 1e3, zn.depth_m * 1e3))
        else:
            notes.append(f"zone {zn.name} is {quantity((d - zn.radius_m) * 1e3, 'mm')} off the plane {title}")
    return DepthSection(title, s * 1e3, z * 1e3, values, layers, pads, zones, case.target_layers(), notes)


def depth_sections(result: CaseResult, currents_A: Currents = None, *, n_s: int = 200, n_z: int = 110) -> list[DepthSection]:
    """|E| on a vertical plane through the first channel's pads, and one per zone that plane misses.

    The plane goes through the centres of the first channel's anode and cathode (one pad: along
    x), 10 mm beyond each pad, within the patch; a zone it does not cut gets its own plane
    through its centre and the nearest pad's centre. |E| is the quasi-static field at the
    channel (peak) currents, every channel superposed. Collective over the mesh's communicator
    (the field is distributed); every rank gets the sections. A curved patch is unrolled (the
    section's z is the height above the curved skin).
    """
    case = result.case
    by_name = {el.name: el for el in case.electrodes}
    ch = case.channels[0]
    names = [ch.anode[0]] + ([ch.cathode[0]] if not ch.grounded else [])
    pads = [by_name[n] for n in names if n in by_name] or list(case.electrodes[:1])
    c0 = np.asarray(pads[0].center_m, float)
    if len(pads) > 1 and np.linalg.norm(np.asarray(pads[1].center_m) - c0) > 0:
        c1 = np.asarray(pads[1].center_m, float)
        d = (c1 - c0) / np.linalg.norm(c1 - c0)
        length = float(np.linalg.norm(c1 - c0))
    else:
        d, length = np.array([1.0, 0.0]), 0.0
    reach = max(max(el.half_extent_m) for el in pads) + _SECTION_MARGIN_M
    title = f"through the centres of {' and '.join(el.name for el in pads)}"
    out = [_section(result, currents_A, c0, d, -reach, length + reach, title, n_s, n_z)]
    cut = {z[0] for z in out[0].zones}
    for zn in case.exclusions:
        if zn.name in cut:
            continue
        zc = np.asarray(zn.center_m, float)
        near = min(case.electrodes, key=lambda el: float(np.linalg.norm(np.asarray(el.center_m) - zc)))
        c = np.asarray(near.center_m, float)
        span = float(np.linalg.norm(zc - c))
        dz = (zc - c) / span if span > 0 else np.array([0.0, 1.0])
        reach = max(near.half_extent_m) + _SECTION_MARGIN_M
        out.append(_section(result, currents_A, c, dz, -reach, span + zn.radius_m + _SECTION_MARGIN_M,
                            f"through pad {near.name} and zone {zn.name}", n_s, n_z))  # fmt: skip
    m = _metrics(result, currents_A)
    el = m.electric
    note = []
    if isinstance(el.muscle_field_max_V_per_m, float):
        note.append(f"target {', '.join(case.target_layers())}: |E| max {quantity(el.muscle_field_max_V_per_m, 'V/m')}, "
                    f"mean {quantity(el.muscle_field_mean_V_per_m, 'V/m')}")  # fmt: skip
    note += [f"zone {name}: {text}" for name, text, _ in _zone_lines(m.exclusion)]
    out[0].notes[:0] = note
    return out


def depth_section_figure(sections: Sequence[DepthSection], *, case_name: str = "", current_text: str = "") -> Figure:
    """|E| on each section, log scale, with the layers, pads, target and zones outlined.

    Args:
        sections: from :func:`depth_sections`.
        case_name: for the title.
        current_text: the currents, for the title (e.g. ``"10.0 mA"``).
    """
    from matplotlib import colors, patches
    from matplotlib import patheffects as pe
    from matplotlib.figure import Figure

    # the colour range is the tissue's (z < 0): the thin gel's field would take the top decade
    finite = np.concatenate([s.field_V_per_m[s.z_mm < 0][np.isfinite(s.field_V_per_m[s.z_mm < 0])] for s in sections])
    positive = finite[finite > 0]
    vmax = float(positive.max()) if len(positive) else 1.0
    vmin = max(float(np.percentile(positive, 1.0)) if len(positive) else vmax * 1e-3, vmax * 1e-4)
    notes = [n for s in sections for n in s.notes] + ["colours span the tissue's |E|: the thin gel above the skin saturates"]
    fig = Figure(figsize=(10.0, 3.4 * len(sections) + 0.6 + 0.2 * len(notes)), dpi=110, layout="constrained")
    grid = fig.add_gridspec(len(sections) + 1, 1, height_ratios=[3.0] * len(sections) + [0.35 + 0.2 * len(notes)])
    halo = [pe.withStroke(linewidth=2.5, foreground="black")]
    art = None
    axes = []
    for k, sec in enumerate(sections):
        ax = fig.add_subplot(grid[k])
        axes.append(ax)
        ax.set_facecolor("white")
        data = np.ma.masked_invalid(np.where(sec.field_V_per_m > 0, sec.field_V_per_m, np.nan))
        art = ax.pcolormesh(sec.s_mm, sec.z_mm, data, shading="nearest", cmap="viridis",
                            norm=colors.LogNorm(vmin=vmin, vmax=vmax))  # fmt: skip
        s0, s1 = float(sec.s_mm[0]), float(sec.s_mm[-1])
        for label, tissue, top, bottom in sec.layers:
            ax.axhline(bottom, color="white", lw=0.8, alpha=0.8)
            name = label if label == tissue else f"{label} ({tissue})"
            what = f"{name}, {sig(top - bottom)} mm" + (": target" if label in sec.targets else "")
            ax.text(s0 + 0.01 * (s1 - s0), 0.5 * (top + bottom), what, color="white", fontsize=8, va="center",
                    ha="left", path_effects=halo)  # fmt: skip
            if label in sec.targets:
                ax.add_patch(patches.Rectangle((s0, bottom), s1 - s0, top - bottom, fill=False, edgecolor="orange",
                                               lw=1.6, ls=":"))  # fmt: skip
        ax.axhline(0.0, color="white", lw=1.2)
        for name, a, b, t in sec.pads:
            ax.add_patch(patches.Rectangle((a, 0.0), b - a, t, fill=False, edgecolor="cyan", lw=1.4))
            ax.text(0.5 * (a + b), t, f"pad {name}", color="cyan", fontsize=8, ha="center", va="bottom",
                    path_effects=halo)  # fmt: skip
        for name, a, b, depth in sec.zones:
            ax.add_patch(patches.Rectangle((a, -depth), b - a, depth, fill=False, edgecolor="red", lw=1.6, ls="--"))
            ax.text(0.5 * (a + b), -depth, f"zone {name}", color="red", fontsize=8, ha="center", va="top",
                    path_effects=[pe.withStroke(linewidth=2.5, foreground="white")])  # fmt: skip
        top_z = max([t for *_, t in sec.pads] + [0.0])
        ax.set_ylim(float(sec.z_mm[0]), top_z + 0.12 * (top_z - float(sec.z_mm[0])))
        ax.set_xlim(s0, s1)
        ax.set_ylabel("height above the skin [mm]")
        ax.set_xlabel("distance along the section [mm]")
        ax.set_title(f"section {k + 1}: {sec.title}", fontsize=9)
    if art is not None:
        bar = fig.colorbar(art, ax=axes, shrink=0.95, pad=0.01)
        bar.set_label("|E| [V/m], log scale")
    title = f"{case_name}: field magnitude |E| in depth at I = {current_text} (quasi-static)"
    fig.suptitle(textwrap.fill(title, 110), fontsize=10)  # a corner's name is long
    info = fig.add_subplot(grid[-1])
    info.axis("off")
    info.text(0.0, 1.0, "\n".join(notes), va="top", ha="left", fontsize=8.5, transform=info.transAxes)
    return fig
