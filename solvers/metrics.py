"""Post-processing of an electric solution into the numbers people read.

Definitions (all SI):

* Skin current density J_n [A/m^2]: the normal component of J = -S grad phi on the skin
  surface (z = 0), per surface facet, as the mean of the cell values on both sides of the facet
  (cell values are exact for degree 1, cell-midpoint values for degree 2).
* ``skin_current_density_peak_A_per_m2``: the maximum over the skin surface of J_n averaged over
  a disc of radius :data:`PEAK_AVERAGING_RADIUS_M` (0.5 mm, i.e. 1 mm diameter) around each point
  (area-weighted mean of the facets whose centroids lie in the disc). The point value at an
  equipotential edge is singular; this averaged peak converges under mesh refinement.
* ``skin_current_density_p99_A_per_m2``: the area-weighted 99th percentile of J_n over the skin
  under the electrodes (pad footprints).
* ``skin_current_density_mean_A_per_m2``: per electrode, the mean of J_n over its footprint.
* Muscle field |E| = |grad phi| [V/m] per cell over every layer whose tissue is ``muscle``:
  max over cells and volume-weighted mean.
* Joule power per volume [W]: integral of grad phi . S grad phi.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..meshes.patch import PatchMesh
from .electric import ChannelSolution, ElectricProblem

__all__ = ["PEAK_AVERAGING_RADIUS_M", "SkinSurface", "disc_averaged_max", "electric_metrics", "skin_surface_data"]

#: Radius [m] of the disc over which the peak skin current density is averaged.
PEAK_AVERAGING_RADIUS_M = 0.5e-3


@dataclass(frozen=True)
class SkinSurface:
    """Skin-surface facets gathered on rank 0 (empty arrays elsewhere).

    Attributes:
        triangles_m: (n, 3, 3) vertex coordinates of each facet [m].
        centroids_m: (n, 3) centroids [m].
        areas_m2: (n,) areas [m^2].
        jn_A_per_m2: (n,) normal current density magnitude [A/m^2].
        under: (n,) name of the electrode whose footprint holds the facet, or "".
    """

    triangles_m: np.ndarray
    centroids_m: np.ndarray
    areas_m2: np.ndarray
    jn_A_per_m2: np.ndarray
    under: np.ndarray


def _cell_fields(problem: ElectricProblem, phi):
    """DG0 fields: J [A/m^2] and E [V/m] per cell (owned + ghost)."""
    import ufl
    from dolfinx import fem

    mesh = problem.patch.mesh
    W = fem.functionspace(mesh, ("DG", 0, (3,)))
    E = fem.Function(W, name="electric_field_V_per_m")
    J = fem.Function(W, name="current_density_A_per_m2")
    E.interpolate(fem.Expression(-ufl.grad(phi), W.element.interpolation_points))
    E.x.scatter_forward()
    # J = S E per volume tag.
    Ea = E.x.array.reshape(-1, 3)
    Ja = J.x.array.reshape(-1, 3)
    tags = problem.patch.cell_tags
    for name, tensor in problem.sigma.items():
        cells = tags.find(problem.patch.volumes[name])
        Ja[cells] = Ea[cells] @ tensor.T
    J.x.scatter_forward()
    return E, J


def name_is_skin(kind: str) -> bool:
    """True for skin-surface tag kinds that are not an electrode face."""
    return kind in ("skin_exposed", "skin_under")


def skin_surface_data(problem: ElectricProblem, J, phi, potentials: dict[str, float]) -> SkinSurface:
    """Gather the skin-surface facets and their normal current density on rank 0.

    J_n per facet: under a gel pad, from the pad-side cell; on a bare electrode with a contact
    impedance, G (V_e - phi) at the facet centroid (exact Robin flux); on a bare ideal
    electrode, from the skin cell; on exposed skin, 0 (insulating boundary condition).
    """
    from dolfinx import mesh as dmesh

    patch = problem.patch
    mesh = patch.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    mesh.topology.create_connectivity(tdim - 1, 0)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    n_owned = mesh.topology.index_map(tdim - 1).size_local
    skin = {n: t for n, t in patch.surfaces.items() if n == "skin_exposed" or n.startswith("skin_under:")}
    for e in problem.case.electrodes:
        if e.gel is None:
            skin[f"electrode:{e.name}"] = patch.surfaces[f"electrode:{e.name}"]
    facets, owner, owner_kind = [], [], []
    for name, tag in skin.items():
        f = patch.facet_tags.find(tag)
        f = f[f < n_owned]
        facets.append(f)
        owner += [name.split(":", 1)[1] if ":" in name else ""] * len(f)
        owner_kind += [name.split(":", 1)[0]] * len(f)
    facets = np.concatenate(facets) if facets else np.empty(0, np.int32)
    geom = dmesh.entities_to_geometry(mesh, tdim - 1, facets.astype(np.int32))
    tri = mesh.geometry.x[geom] if len(facets) else np.empty((0, 3, 3))
    Jz = J.x.array.reshape(-1, 3)[:, 2]
    n_cells = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    cell_geo = dmesh.entities_to_geometry(mesh, tdim, np.arange(n_cells, dtype=np.int32))
    cz = mesh.geometry.x[cell_geo][:, :, 2].mean(axis=1)  # cell centroid heights [m]
    jn = np.zeros(len(facets))
    robin = np.zeros(len(facets), dtype=bool)
    for i, f in enumerate(facets):
        cells = f2c.links(f)
        above = cells[cz[cells] > 0]
        # Under a pad, the pad-side cell carries the (nearly vertical, smooth) flux into the skin;
        # on a bare electrode only the skin cell exists.
        jn[i] = abs(Jz[above[0]]) if len(above) else abs(Jz[cells[0]])
        robin[i] = owner[i] in problem.robin and not name_is_skin(owner_kind[i])
    if robin.any():
        # Bare electrode with a contact impedance: the exact flux G (V_e - phi) at the centroid.
        idx = np.flatnonzero(robin)
        geo = dmesh.entities_to_geometry(mesh, tdim - 1, facets[idx].astype(np.int32))
        tri_mid = mesh.geometry.x[geo].mean(axis=1)
        cells = np.array([f2c.links(facets[i])[0] for i in idx], dtype=np.int32)
        phi_c = phi.eval(tri_mid, cells).reshape(-1)
        for k, i in enumerate(idx):
            jn[i] = abs(problem.robin[owner[i]] * (potentials[owner[i]] - phi_c[k]))
    exposed = np.array([k == "skin_exposed" for k in owner_kind], dtype=bool)
    jn[exposed] = 0.0  # insulated skin: J . n = 0 by the boundary condition
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) if len(facets) else np.empty((0, 3))
    area = 0.5 * np.linalg.norm(cross, axis=1)
    comm = problem.comm
    parts = comm.gather((tri, area, jn, np.array(owner, dtype=object)), root=0)
    if comm.rank == 0:
        tri = np.concatenate([p[0] for p in parts])
        area = np.concatenate([p[1] for p in parts])
        jn = np.concatenate([p[2] for p in parts])
        under = np.concatenate([p[3] for p in parts])
        order = np.lexsort(tri.mean(axis=1).T[::-1])  # rank-independent order
        tri, area, jn, under = tri[order], area[order], jn[order], under[order]
    else:
        tri, area, jn, under = np.empty((0, 3, 3)), np.empty(0), np.empty(0), np.empty(0, dtype=object)
    return SkinSurface(
        triangles_m=tri, centroids_m=tri.mean(axis=1) if len(tri) else np.empty((0, 3)),
        areas_m2=area, jn_A_per_m2=jn, under=under,
    )  # fmt: skip


def disc_averaged_max(
    xy_m: np.ndarray, weights: np.ndarray, values: np.ndarray, radius_m: float
) -> tuple[float, list[float]]:
    """Max over the points ``xy_m`` of the weighted mean of ``values`` within ``radius_m``.

    Every point within one radius of a point with a non-zero value is a candidate centre (a
    disc centred where nothing flows can still hold the peak, e.g. just outside a pad edge).

    Returns:
        The maximum and the centre [m] where it is reached.
    """
    from scipy.spatial import cKDTree

    if len(xy_m) == 0:
        return 0.0, [0.0, 0.0]
    tree = cKDTree(xy_m)
    lists = tree.query_ball_point(xy_m[values != 0], radius_m)
    centres = np.unique(np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64))
    if len(centres) == 0:
        return 0.0, xy_m[0].tolist()
    means = np.empty(len(centres))
    for k, idx in enumerate(tree.query_ball_point(xy_m[centres], radius_m)):
        w = weights[idx]
        means[k] = np.dot(w, values[idx]) / w.sum()
    best = int(np.argmax(means))
    return float(means[best]), xy_m[centres[best]].tolist()


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) / w.sum()
    return float(np.interp(q / 100.0, cdf, v))


def electric_metrics(problem: ElectricProblem, sol: ChannelSolution) -> tuple[dict, dict]:
    """Metrics of a solution, and the cell fields and skin data used to compute them.

    Returns:
        (metrics, extras): ``metrics`` is plain data for ``metrics.json`` (identical on all
        ranks); ``extras`` holds ``E`` and ``J`` (DG0 Functions) and ``skin``
        (:class:`SkinSurface`, filled on rank 0).
    """
    import ufl
    from dolfinx import fem

    case, patch, comm = problem.case, problem.patch, problem.comm
    phi = sol.potential
    E, J = _cell_fields(problem, phi)
    skin = skin_surface_data(problem, J, phi, sol.electrode_potentials_V)

    ch = case.channels[0]
    requested = ch.current_A
    V = sol.electrode_potentials_V
    v_cathode = 0.0 if ch.grounded else V[ch.cathode[0]]
    impedance = (V[ch.anode[0]] - v_cathode) / requested
    delivered = sum(sol.electrode_currents_A[n] for n in ch.anode)
    returned = -sol.ground_current_A if ch.grounded else -sum(sol.electrode_currents_A[n] for n in ch.cathode)
    conservation = max(abs(delivered - requested), abs(returned - requested)) / requested

    power = {}
    for name in problem.sigma:
        S = problem._S[name]
        form = fem.form(ufl.inner(S * ufl.grad(phi), ufl.grad(phi)) * problem.dx(patch.volumes[name]))
        power[name.split(":", 1)[1] if name.startswith("layer:") else name] = comm.allreduce(
            fem.assemble_scalar(form)
        )

    # Muscle field.
    n_owned = patch.mesh.topology.index_map(3).size_local
    emag = np.linalg.norm(E.x.array.reshape(-1, 3), axis=1)
    vol = _cell_volumes(patch)
    muscle = [layer.label for layer in case.layers if layer.tissue.name == "muscle"]
    cells = np.concatenate(
        [patch.cell_tags.find(patch.volumes[f"layer:{m}"]) for m in muscle] or [np.empty(0, np.int32)]
    )
    cells = cells[cells < n_owned]
    e_max = comm.allreduce(float(emag[cells].max()) if len(cells) else 0.0, op=_mpi_max())
    e_int = comm.allreduce(float(np.dot(emag[cells], vol[cells])))
    v_tot = comm.allreduce(float(vol[cells].sum()))

    metrics: dict = {
        "impedance_ohm": impedance,
        "electrode_voltage_V": V,
        "electrode_current_A": sol.electrode_currents_A,
        "current_requested_A": requested,
        "current_conservation_error": conservation,
        "total_joule_power_W": sum(power.values()),
        "layer_joule_power_W": power,
        "muscle_field_max_V_per_m": e_max if muscle else None,
        "muscle_field_mean_V_per_m": e_int / v_tot if muscle and v_tot > 0 else None,
    }
    if comm.rank == 0:
        peak, where = disc_averaged_max(
            skin.centroids_m[:, :2], skin.areas_m2, skin.jn_A_per_m2, PEAK_AVERAGING_RADIUS_M
        )
        covered = skin.under != ""
        p99 = _weighted_percentile(skin.jn_A_per_m2[covered], skin.areas_m2[covered], 99.0)
        mean = {}
        for e in case.electrodes:
            m = skin.under == e.name
            mean[e.name] = float(np.dot(skin.areas_m2[m], skin.jn_A_per_m2[m]) / skin.areas_m2[m].sum())
        skin_metrics = {
            "skin_current_density_peak_A_per_m2": peak,
            "skin_current_density_peak_location_m": where,
            "skin_current_density_p99_A_per_m2": p99,
            "skin_current_density_mean_A_per_m2": mean,
        }
    else:
        skin_metrics = None
    metrics.update(comm.bcast(skin_metrics, root=0))
    metrics["dofs"] = problem.dofs
    metrics["definitions"] = {
        "skin_current_density_peak_A_per_m2": (
            "max over the skin surface of the normal current density averaged over a disc of "
            f"radius {PEAK_AVERAGING_RADIUS_M * 1e3:g} mm"
        ),
        "skin_current_density_p99_A_per_m2": "area-weighted 99th percentile of the normal current density under the electrodes",
        "skin_current_density_mean_A_per_m2": "mean normal current density over each electrode's footprint",
        "impedance_ohm": "(V_anode - V_cathode) / I for the first channel",
        "current_conservation_error": "max(|I_anode - I|, |I_return - I|) / I, consistent fluxes of the final field",
    }
    return metrics, {"E": E, "J": J, "skin": skin}


def _cell_volumes(patch: PatchMesh) -> np.ndarray:
    import ufl
    from dolfinx import fem

    Q = fem.functionspace(patch.mesh, ("DG", 0))
    q = ufl.TestFunction(Q)
    vec = fem.assemble_vector(fem.form(q * ufl.dx))
    return vec.array


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX
