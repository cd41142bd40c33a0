"""Every file emsim writes for a case: JSON, XDMF fields, PNG pictures and plots, CSV tables.

The solvers write nothing; this module turns a :class:`~emsim.solvers.result.CaseResult` into
files; :mod:`emsim.io` writes them. :func:`write_outputs` fills a temporary folder beside the
output folder and switches it into place only when complete
(:func:`emsim.io.folders.staged_folder`), so an output folder is never half-written, and never
replaces a folder emsim did not write.

Files: ``metrics.json`` (every metric with its unit in the key, ``definitions`` and ``absent``),
``mesh_report.json``, ``case.toml`` (the input as given, or the canonical form of a case built
in Python), ``fields/electric.xdmf`` (potential [V], field [V/m], current density [A/m^2],
volume tags), ``skin_current_density.png`` (the skin map normalised to the pads' mean),
``skin_current_profile.png`` (J_n / J_mean across each pad), ``depth_section.png`` (|E| on a
vertical plane through the pads; not for an imported mesh), pictures from :mod:`emsim.studies.pictures`; for a curved patch or an imported mesh
``geometry.png`` (the tissue block with its layers, pads and electrodes); with a waveform ``waveform_response.png`` and
``waveform_time_course.csv``; with heating ``fields/thermal.xdmf``,
``skin_temperature_rise.png``, ``peak_temperature_vs_time.png`` and ``temperature_history.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from ..errors import InputError
from ..formatting import current as fmt_current
from ..io import (
    save_figure,
    save_screenshot,
    spread_work,
    staged_folder,
    write_csv_array,
    write_json,
    write_text,
    write_xdmf,
)
from ..meshes.curvature import SurfaceMap, surface_map
from ..meshes.patch import PatchMesh
from ..models import Case, Electrode
from ..solvers.channels import Currents as ChannelCurrents
from ..solvers.electric.electrodes import cell_gradients, current_density
from ..solvers.records import jsonable
from ..solvers.result import CaseResult
from ..solvers.spectral.waveform import WaveformLeadField
from ..solvers.thermal.session import ThermalResult
from .pictures import depth_section_figure, depth_sections, skin_current_map, skin_current_profile

__all__ = [
    "geometry_picture",
    "geometry_triangles",
    "plot_peak_temperature",
    "plot_skin_temperature_rise",
    "plot_waveform_response",
    "waveform_time_course_table",
    "write_electric_fields",
    "write_outputs",
    "write_thermal_fields",
    "write_thermal_files",
]

Currents = ChannelCurrents | None


# ----------------------------------------------------------------------------- fields


def write_electric_fields(result: CaseResult, folder: Path, currents_A: Currents = None) -> Path:
    """``electric.xdmf``: mesh, volume tags, potential (P1) [V], E [V/m], J [A/m^2]; collective."""
    mesh = result.mesh.mesh
    phi = result.potential(currents_A)
    W = fem.functionspace(mesh, ("DG", 0, (3,)))
    E = fem.Function(W, name="electric_field_V_per_m")
    J = fem.Function(W, name="current_density_A_per_m2")
    e = cell_gradients(mesh, [phi])[0]
    E.x.array[:] = e.ravel()
    J.x.array[:] = current_density(result.mesh, e, result.problem.sigma).ravel()
    if result.case.mesh.degree != 1:
        out = fem.Function(fem.functionspace(mesh, ("Lagrange", 1)), name="potential_V")
        out.interpolate(phi)
    else:
        out = phi
    result.mesh.cell_tags.name = "volume_tags"
    return write_xdmf(folder / "electric.xdmf", mesh, meshtags=result.mesh.cell_tags, functions=(out, E, J))


def write_thermal_fields(thermal: ThermalResult, folder: Path) -> Path:
    """``thermal.xdmf`` (basal, final, rise, peak rise, CEM43, Joule heat); collective."""
    fields = thermal.fields
    mesh = next(iter(fields.values())).function_space.mesh
    return write_xdmf(folder / "thermal.xdmf", mesh, functions=tuple(fields.values()))


# ----------------------------------------------------------------------------- pictures


def _outline_mm(electrode: Electrode) -> np.ndarray:
    pts = electrode.outline_m(240) * 1e3
    return np.vstack([pts, pts[:1]])


def _on_skin_mm(surface: SurfaceMap | None, xy_m: npt.ArrayLike, height_m: float) -> np.ndarray:
    """(n, 3) points [mm] at ``height_m`` above the skin at (x, y) [m], on a curved patch's map."""
    xy = np.asarray(xy_m, dtype=float).reshape(-1, 2)
    pts = np.column_stack([xy, np.full(len(xy), height_m)])
    return (pts if surface is None else surface.to_curved(pts)) * 1e3


def geometry_triangles(patch: PatchMesh) -> dict[str, np.ndarray] | None:
    """Boundary triangles [m] of the mesh by what they show, gathered on rank 0 (collective).

    Keys: the surface names (``skin_exposed``, ``skin_under:E``, ``electrode:E``,
    ``pad_side:E``), and ``side:VOLUME`` for the lateral and deep faces by the volume behind
    them (so the layers show on the cut). Other ranks get None.
    """
    mesh = patch.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    n_owned = mesh.topology.index_map(tdim - 1).size_local
    cell_tag = np.full(mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts, -1)
    cell_tag[patch.cell_tags.indices] = patch.cell_tags.values
    volume_of = {v: k for k, v in patch.volumes.items()}
    local: dict[str, list[np.ndarray]] = {}
    for name, tag in patch.surfaces.items():
        facets = patch.facet_tags.find(tag)
        facets = facets[facets < n_owned].astype(np.int32)
        if not len(facets):
            continue
        tri = mesh.geometry.x[dmesh.entities_to_geometry(mesh, tdim - 1, facets)]
        if name in ("sides", "bottom"):
            behind = np.array([volume_of.get(int(cell_tag[f2c.links(f)[0]]), "") for f in facets])
            for vol in np.unique(behind):
                local.setdefault(f"side:{vol}", []).append(tri[behind == vol])
        else:
            local.setdefault(name, []).append(tri)
    parts = mesh.comm.gather({k: np.concatenate(v) for k, v in local.items()}, root=0)
    if mesh.comm.rank != 0:
        return None
    out: dict[str, list[np.ndarray]] = {}
    for part in parts:
        for k, v in part.items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in sorted(out.items())}


#: Colours of the geometry picture by what a surface shows.
_GEOMETRY_COLOURS = {"skin": "#e9b9a4", "fat": "#f3dc8a", "muscle": "#a8433a", "gel": "#7fb8e6", "metal": "#9a9a9a"}


def geometry_picture(case: Case, triangles: Mapping[str, np.ndarray], path: Path, surface: SurfaceMap | None = None) -> None:
    """PNG of the tissue block with its layers, gel pads and electrodes (oblique view), off-screen.

    Args:
        case: the case (names, shape and radius for the title).
        triangles: boundary triangles [m] by key (:func:`geometry_triangles`).
        path: the PNG to write.
        surface: the curved patch's map (labels follow the skin), or None.
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv  # local: pyvista (VTK) is heavy to import and only the 3-D pictures need it

    pv.OFF_SCREEN = True
    tissue_of = {f"layer:{layer.label}": layer.tissue.name for layer in case.layers}
    plotter = pv.Plotter(off_screen=True, window_size=(1400, 950))
    edges = sum(len(t) for t in triangles.values()) < 20_000  # a fine mesh's edges would hide the colours
    for key, tri_m in triangles.items():
        if not len(tri_m):
            continue
        kind, _, who = key.partition(":")
        if kind == "side":
            tissue = tissue_of.get(who, "")
            colour = _GEOMETRY_COLOURS.get(tissue, _GEOMETRY_COLOURS["gel"] if who.startswith(("gel", "contact")) else "#c8c8c8")
        elif kind in ("skin_exposed", "skin_under"):
            colour = _GEOMETRY_COLOURS["skin"]
        elif kind == "electrode":
            colour = _GEOMETRY_COLOURS["metal"]
        elif kind == "pad_side":
            colour = _GEOMETRY_COLOURS["gel"]
        else:
            continue
        tri = np.asarray(tri_m) * 1e3
        n = len(tri)
        faces = np.hstack([np.full((n, 1), 3), np.arange(3 * n).reshape(n, 3)]).ravel()
        plotter.add_mesh(pv.PolyData(tri.reshape(-1, 3), faces), color=colour, show_edges=edges,
                         edge_color="#404040", line_width=0.3)  # fmt: skip
    for e in case.electrodes:
        top = e.gel.thickness_m if e.gel is not None else 0.0
        pts = np.array([[*e.center_m, top + 1e-3]])
        if surface is not None:
            pts = surface.to_curved(pts)
        plotter.add_point_labels(pts * 1e3, [e.name], font_size=22, text_color="black", shape=None)
    p = case.patch
    shape = "flat" if case.mesh.file is not None else p.shape
    what = f"imported mesh {Path(case.mesh.file).name}" if case.mesh.file else (
        f"{shape}, R = {p.curvature_radius_m * 1e3:g} mm" if p.curvature_radius_m else "flat"
    )  # fmt: skip
    plotter.add_text(
        f"{case.name}: {what}; layers {', '.join(f'{l.label} {l.thickness_m * 1e3:g} mm' for l in case.layers)}; "
        "gel pads blue, metal grey (mm)",
        font_size=9,
    )
    plotter.view_vector((1.0, -1.6, 1.1), viewup=(0.0, 0.0, 1.0))
    plotter.camera.zoom(1.1)
    plotter.show_bounds(xtitle="x [mm]", ytitle="y [mm]", ztitle="z [mm]", font_size=9)
    save_screenshot(plotter, path)
    plotter.close()


def plot_waveform_response(result: CaseResult, path: Path, currents_A: Currents = None) -> None:
    """PNG of the compliance voltage and the current of every channel over one period.

    The top panel shows the whole period, the middle one the first pulse and the relaxation
    after it (2.5 pulse durations; times in us); with probes a third panel shows their field
    magnitude |E(t)| over that window.
    """
    from matplotlib.figure import Figure  # local: matplotlib is heavy; pictures only

    course = _waveform(result).time_course(result.currents(currents_A))
    t = course.times_s
    probes = course.probe_field_V_per_m
    fig = Figure(figsize=(9, 10 if probes else 7), layout="constrained")
    axes = fig.subplots(3 if probes else 2, 1)
    window = t <= (2.5 * course.pulse_duration_s if course.pulse_duration_s > 0 else t[-1])
    for ax, sel, scale, unit in ((axes[0], slice(None), 1e3, "ms"), (axes[1], window, 1e6, "us")):
        ax2 = ax.twinx()
        for name, v in course.channel_voltage_V.items():
            ax.plot(t[sel] * scale, v[sel], label=f"voltage, channel {name}")
            ax2.plot(t[sel] * scale, course.channel_current_A[name][sel] * 1e3, "--", label=f"current, channel {name}")
        for a in (ax, ax2):  # symmetric limits: both zero lines coincide
            lim = max(abs(v) for v in a.get_ylim())
            a.set_ylim(-lim, lim)
        ax.set_xlabel(f"time [{unit}]")
        ax.set_ylabel("electrode voltage V_anode - V_cathode [V]")
        ax2.set_ylabel("current [mA]")
        ax.grid(True, alpha=0.3)
        lines, lines2 = ax.get_legend_handles_labels(), ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)
    axes[0].set_title(result.case.name or "periodic steady state over one period")
    axes[1].set_title("first pulse")
    if probes:
        ax = axes[2]
        for name, e in probes.items():
            ax.plot(t[window] * 1e6, np.linalg.norm(e[window], axis=1), label=f"probe {name}")
        ax.set_xlabel("time [us]")
        ax.set_ylabel("field magnitude |E| [V/m]")
        ax.set_title("field at the probes, first pulse")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, path, dpi=120)


def _waveform(result: CaseResult) -> WaveformLeadField:
    """The case's waveform response (a d.c. case has none, and no time course)."""
    if result.waveform is None:
        raise InputError("waveform", None, "a case with a [waveform] (a d.c. case has no time course)")
    return result.waveform


def waveform_time_course_table(result: CaseResult, currents_A: Currents = None) -> tuple[list[str], np.ndarray]:
    """Header and rows of the time course over one period (``waveform_time_course.csv``).

    Columns: ``time_s``; per channel ``current_A`` and ``voltage_V`` (V_anode - V_cathode; with
    several channels ``current_A[name]``, ``voltage_V[name]``); per probe the magnitudes
    ``E_V_per_m[name]`` = |E(t)| and ``J_A_per_m2[name]`` = |J(t)|.
    """
    course = _waveform(result).time_course(result.currents(currents_A))
    single = len(course.channel_voltage_V) == 1
    header, columns = ["time_s"], [course.times_s]
    for name, v in course.channel_voltage_V.items():
        suffix = "" if single else f"[{name}]"
        header += [f"current_A{suffix}", f"voltage_V{suffix}"]
        columns += [course.channel_current_A[name], v]
    for name, e in course.probe_field_V_per_m.items():
        header += [f"E_V_per_m[{name}]", f"J_A_per_m2[{name}]"]
        columns += [np.linalg.norm(e, axis=1), np.linalg.norm(course.probe_current_density_A_per_m2[name], axis=1)]
    return header, np.column_stack(columns)


def write_thermal_files(case: Case, thermal: ThermalResult, folder: Path) -> None:
    """``temperature_history.csv``, ``peak_temperature_vs_time.png``, ``skin_temperature_rise.png``.

    Uses the skin data gathered on rank 0: call it there.
    """
    h = thermal.history
    write_csv_array(folder / "temperature_history.csv", list(h), np.column_stack(list(h.values())))
    plot_peak_temperature(case, thermal, folder / "peak_temperature_vs_time.png")
    plot_skin_temperature_rise(case, thermal, folder / "skin_temperature_rise.png")


def plot_peak_temperature(case: Case, th: ThermalResult, path: Path) -> None:
    """PNG of the maximum skin temperature and the maximum tissue rise over the session."""
    from matplotlib.figure import Figure  # local: matplotlib is heavy; pictures only

    h = th.history
    t_min = h["time_s"] / 60.0
    fig = Figure(figsize=(8, 5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(t_min, h["skin_temperature_max_C"], color="tab:red", label="skin, maximum")
    peak = float(np.nanmax(h["skin_temperature_max_C"]))
    for limit, label in ((41.0, "41 C (IEC 60601-1 applied part)"), (43.0, "43 C")):
        if peak > limit - 3.0:
            ax.axhline(limit, color="0.4", ls="--", lw=1)
            ax.text(t_min[0], limit, " " + label, va="bottom", fontsize=8, color="0.3")
    ax.set_xlabel("time [min]")
    ax.set_ylabel("maximum skin temperature [C]", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(t_min, h["tissue_temperature_rise_max_K"], color="tab:blue", ls="-.", label="tissue, maximum rise")
    ax2.set_ylabel("maximum tissue temperature rise [K]", color="tab:blue")
    ax.set_title(
        f"{case.name}: I = {th.reference_currents_A[0] * 1e3:.3g} mA peak, "
        f"{th.rms_current_A * 1e3:.3g} mA r.m.s.; CEM43 (heated region) {th.reference.cem43_heated_max_min:.3g} min",
        fontsize=10,
    )
    lines = ax.get_lines()[:1] + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], loc="lower right")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_skin_temperature_rise(case: Case, th: ThermalResult, path: Path) -> None:
    """PNG of the skin temperature rise at the end of the session (top view), rank 0's data."""
    from matplotlib import patches  # local: matplotlib is heavy; pictures only
    from matplotlib.figure import Figure  # local: matplotlib is heavy; pictures only
    from matplotlib.tri import Triangulation  # local: matplotlib is heavy; pictures only

    picture = th.skin_picture
    if picture is None:  # gathered on rank 0 only
        raise InputError("thermal.skin_picture", None, "the heating of rank 0, which gathers the skin data")
    tri = picture.triangles_m * 1e3
    vals = picture.rise_K
    fig = Figure(figsize=(9, 6.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    if len(tri):
        n = len(tri)
        mesh = Triangulation(tri[:, :, 0].ravel(), tri[:, :, 1].ravel(), np.arange(3 * n).reshape(n, 3))
        art = ax.tripcolor(mesh, vals.ravel(), shading="gouraud", cmap="inferno")
        fig.colorbar(art, ax=ax, label="temperature rise at the end of the session [K]")

    curved = surface_map(case.patch.shape, case.patch.curvature_radius_m)
    for e in case.electrodes:
        ring = _on_skin_mm(curved, _outline_mm(e) * 1e-3, 0.0)[:, :2]  # the top view of a curved skin
        ax.add_patch(patches.Polygon(ring, closed=True, fill=False, edgecolor="cyan", linewidth=1.5))
        cx, cy = _on_skin_mm(curved, [e.center_m], 0.0)[0, :2]
        ax.annotate(e.name, (cx, cy), color="cyan", ha="center", va="center", fontsize=12)
    m = th.reference
    loc = m.hottest_point_m
    ax.plot(loc[0] * 1e3, loc[1] * 1e3, marker="x", color="lime", ms=9,
            label=f"largest tissue rise, z = {loc[2] * 1e3:.2f} mm")  # fmt: skip
    ax.legend(loc="upper right", fontsize=8)
    ax.set_aspect("equal")
    ax.set_xlabel("x [mm]")
    ax.set_ylabel("y [mm]")
    ax.set_title(
        f"{case.name}: skin temperature rise after {m.session_s / 60:g} min "
        f"(peak skin {m.skin_temperature_peak_C:.2f} C, max tissue rise {m.tissue_temperature_rise_max_K:.3g} K)",
        fontsize=10,
    )
    save_figure(fig, path)


# ----------------------------------------------------------------------------- the folder


def _current_text(result: CaseResult) -> str:
    """Each channel's current for a picture's caption: ``"12.0 mA (channel 1)"``."""
    return ", ".join(f"{fmt_current(i)} (channel {n})" for n, i in zip(result.channels, result.currents(), strict=True))


def write_outputs(
    result: CaseResult,
    out_dir: str | Path,
    *,
    source_text: str | None = None,
    comm: MPI.Comm | None = None,
    overwrite: bool = False,
) -> Path:
    """Write every output of a result into ``out_dir``, switched into place when complete.

    Collective over the mesh's communicator: fields are written by every rank, the tables and
    pictures side by side (:func:`emsim.io.spread_work`: what reads the data gathered on rank 0
    there, the depth section and the waveform files on the other ranks). ``out_dir`` may be missing or empty; a folder emsim wrote before (its marker, see
    :mod:`emsim.io.folders`) is replaced only with ``overwrite``; any other folder or file is
    never replaced (:class:`~emsim.errors.InputError`, nothing written).

    Args:
        result: the solved case.
        out_dir: the output folder (replaced as a whole).
        source_text: the case file's text, kept as ``case.toml`` (default: the canonical form).
        comm: MPI communicator (default: the mesh's).
        overwrite: replace an earlier emsim output folder.

    Returns:
        The output folder.
    """
    comm = comm or result.mesh.mesh.comm
    out_dir = Path(out_dir)
    with staged_folder(out_dir, kind="case", overwrite=overwrite, field="out_dir", comm=comm) as tmp:
        fields = tmp / "fields"
        write_electric_fields(result, fields)
        shows_geometry = result.mesh.surface is not None or result.case.mesh.file is not None
        triangles = geometry_triangles(result.mesh) if shows_geometry else None  # collective
        if result.thermal is not None:
            write_thermal_fields(result.thermal, fields)
        sections = depth_sections(result) if result.case.mesh.file is None else None  # collective

        def tables() -> None:
            write_json(tmp / "metrics.json", jsonable(result.to_json()))
            write_json(tmp / "mesh_report.json", jsonable(result.mesh.report.as_dict()))
            write_text(tmp / "case.toml", source_text if source_text is not None else result.case.to_toml())

        def depth_picture(sections: list) -> None:
            figure = depth_section_figure(sections, case_name=result.case.name, current_text=_current_text(result))
            save_figure(figure, tmp / "depth_section.png")

        def waveform_files() -> None:
            plot_waveform_response(result, tmp / "waveform_response.png")
            write_csv_array(tmp / "waveform_time_course.csv", *waveform_time_course_table(result))

        # (on rank 0: the skin data, the triangles and the thermal skin data are gathered there)
        jobs: list[tuple[bool, Callable[[], object]]] = [
            (True, tables),
            (True, lambda: save_figure(skin_current_map(result), tmp / "skin_current_density.png")),
            (True, lambda: save_figure(skin_current_profile(result), tmp / "skin_current_profile.png")),
        ]
        if sections is not None:
            jobs.append((False, lambda: depth_picture(sections)))
        if triangles is not None:
            jobs.append((True, lambda: geometry_picture(result.case, triangles, tmp / "geometry.png", result.mesh.surface)))
        if result.waveform is not None:
            jobs.append((False, waveform_files))
        if result.thermal is not None:
            thermal = result.thermal
            jobs.append((True, lambda: write_thermal_files(result.case, thermal, tmp)))
        spread_work(comm, jobs)  # the pictures side by side on the ranks
    return out_dir
