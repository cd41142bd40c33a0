r"""Activation estimate of the target muscle: fibre field, activating function, strength-duration.

Physics.

* Field along the fibre: E_f = -grad(phi) . f [V/m] with f the unit fibre direction of each
  muscle layer (``Layer.fibre_direction``). A layer without one takes the axis of the first
  channel, from its first anode to its first cathode in the skin plane (electrodes are usually
  placed along the muscle), or z for a grounded channel (the current path). On a curved patch
  f is given in the flat patch's axes and follows the surface: it is rotated into the local
  frame at each point (:mod:`emsim.meshes.curvature`), f(x) = Q(x) f.
* Activating function (Rattay 1986, IEEE TBME 33:974): AF = d^2 phi / ds^2 [V/m^2] along the
  fibre; positive values depolarise. It is computed by recovering the fibre derivative
  g = grad(phi) . f as a continuous piecewise-linear field (L2 projection over the muscle
  volume only, so the field jump at the fat/muscle interface does not leak in; exact when g is
  linear) and
  differentiating it once more per cell: AF = grad(g) . f.
* Strength-duration for a rectangular pulse of width PW, threshold over rheobase:
  Weiss (1901) charge-duration line Q = Q_rh (PW + c), i.e. I_th = I_rh (1 + c / PW) (the form
  often called "Lapicque"), and Lapicque's (1907) exponential RC membrane
  I_th = I_rh / (1 - exp(-PW ln 2 / c)), both with chronaxie c. Default c = 460 us: human motor
  axons, strength-duration time constant 459 +- 126 us (Mogyoros, Kiernan & Burke 1996, Brain
  119:439), measured with the Weiss line, so Weiss is the default model.
* Field threshold: applied field along the fibre, E_th(PW) = E_rh (1 + c / PW). The default
  rheobase E_rh = 12 V/m is an ESTIMATE chosen so that E_th is 67 V/m at 100 us, 40 V/m at
  200 us and 30 V/m at 300 us, inside the 20-70 V/m range quoted for motor activation at
  100-300 us in the literature, "about a factor 2 uncertain"). Keep it a parameter.
* Activated fraction at current I: the volume fraction of the target muscle where
  |E_f| per ampere x I >= E_th(PW). Since the field is linear in the current, the current at
  which a fraction p is activated is E_th / q, with q the volume-weighted (1 - p) quantile of
  |E_f| per ampere.

Limitations: a fibre-field threshold ignores the fibre's position relative to nerve terminals and
endplates, and the activating function is reported, not thresholded. Both are estimates for
comparing presets, not predictions of contraction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem import petsc as fpetsc
from petsc4py import PETSc

from ...errors import InputError, SolverError
from ...meshes.patch import PatchMesh
from ...models.case import Case
from ..electric.electrodes import P1CellGradient

__all__ = [
    "DEFAULT_CHRONAXIE_S",
    "DEFAULT_RHEOBASE_FIELD_V_PER_M",
    "FibreSecondDerivative",
    "StrengthDuration",
    "activated_fraction",
    "activated_volume_m3",
    "cell_fibres",
    "current_for_fraction_A",
    "current_for_volume_A",
    "fibre_directions",
    "fibre_second_derivative",
    "muscle_layers",
]

#: Chronaxie [s]: motor-axon strength-duration time constant 459 +- 126 us (Mogyoros 1996).
DEFAULT_CHRONAXIE_S = 460e-6
#: Rheobase of the applied field along the fibre [V/m]: ESTIMATE (factor 2), see module doc.
DEFAULT_RHEOBASE_FIELD_V_PER_M = 12.0

_MODELS = ("weiss", "lapicque")


@dataclass(frozen=True, slots=True)
class StrengthDuration:
    """Threshold field of a rectangular pulse as a function of its width.

    Attributes:
        rheobase_field_V_per_m: threshold field for an infinitely long pulse [V/m] (estimate).
        chronaxie_s: pulse width at which the threshold is twice the rheobase [s].
        model: ``"weiss"`` (hyperbolic, E_rh (1 + c/PW)) or ``"lapicque"`` (exponential,
            E_rh / (1 - exp(-PW ln2 / c))).
    """

    rheobase_field_V_per_m: float = DEFAULT_RHEOBASE_FIELD_V_PER_M
    chronaxie_s: float = DEFAULT_CHRONAXIE_S
    model: str = "weiss"

    def __post_init__(self) -> None:
        """Validate: positive finite rheobase and chronaxie, a known model."""
        for name in ("rheobase_field_V_per_m", "chronaxie_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise InputError(f"activation.{name}", v, "must be a finite number > 0")
        if self.model not in _MODELS:
            raise InputError("activation.model", self.model, f"one of {', '.join(_MODELS)}")

    def threshold_field_V_per_m(self, pulse_width_s: float) -> float:
        """Threshold field [V/m] of a rectangular pulse of width ``pulse_width_s`` [s]."""
        if not math.isfinite(pulse_width_s) or pulse_width_s <= 0:
            raise InputError("pulse_width_s", pulse_width_s, "must be a finite number > 0")
        c = self.chronaxie_s
        if self.model == "weiss":
            return self.rheobase_field_V_per_m * (1.0 + c / pulse_width_s)
        return self.rheobase_field_V_per_m / -math.expm1(-pulse_width_s * math.log(2.0) / c)


def muscle_layers(case: Case) -> list[str]:
    """Labels of the target layers (:meth:`emsim.models.Case.target_layers`)."""
    return case.target_layers()


def fibre_directions(case: Case) -> dict[str, np.ndarray]:
    """Unit fibre direction of every muscle layer, by label (defaults: see the module doc)."""
    default = np.array([0.0, 0.0, 1.0])
    ch = case.channels[0] if case.channels else None
    if ch is not None and not ch.grounded:
        a = np.array(case.electrode(ch.anode[0]).center_m)
        b = np.array(case.electrode(ch.cathode[0]).center_m)
        d = b - a
        if np.linalg.norm(d) > 0:
            default = np.array([d[0], d[1], 0.0]) / np.linalg.norm(d)
    out = {}
    for layer in case.layers:
        if layer.label in muscle_layers(case):
            f = default if layer.fibre_direction is None else np.asarray(layer.fibre_direction, float)
            out[layer.label] = f / np.linalg.norm(f)
    return out


def _directional_forms(patch, Q, dx, phi, directions: dict[str, np.ndarray]) -> tuple:
    """The L2 projection of d phi/ds onto Q over the muscle layers: (mass form, right-hand side).

    s is each layer's fibre direction (in the local frame of a curved skin, where there is one).
    """
    mesh = patch.mesh
    p, q = ufl.TrialFunction(Q), ufl.TestFunction(Q)
    m_form, b_form = 0, 0
    for label, f in directions.items():
        tag = patch.volumes[f"layer:{label}"]
        fc = fem.Constant(mesh, np.asarray(f, dtype=float))
        if patch.surface is not None:
            fc = ufl.dot(patch.surface.frame_ufl(ufl.SpatialCoordinate(mesh)), fc)
        m_form = m_form + p * q * dx(tag)
        b_form = b_form + ufl.dot(ufl.grad(phi), fc) * q * dx(tag)
    return m_form, b_form


def fibre_second_derivative(patch, phi, directions: dict[str, np.ndarray]) -> np.ndarray:
    """Activating function d^2 phi/ds^2 [V/m^2] per local cell (0 outside the muscle).

    Args:
        patch: the tagged mesh.
        phi: a scalar UFL expression of the potential (a Function or a component of one).
        directions: unit fibre direction by muscle layer label (:func:`fibre_directions`).

    Returns:
        One value per local cell (owned and ghost), constant per cell.
    """
    mesh = patch.mesh
    dx = ufl.Measure("dx", domain=mesh, subdomain_data=patch.cell_tags)
    Q = fem.functionspace(mesh, ("Lagrange", 1))
    m_form, b_form = _directional_forms(patch, Q, dx, phi, directions)
    n_cells = mesh.topology.index_map(3).size_local + mesh.topology.index_map(3).num_ghosts
    out = np.zeros(n_cells)
    if not directions:
        return out
    g = _l2_projection(mesh, Q, m_form, b_form)
    W = fem.functionspace(mesh, ("DG", 0, (3,)))
    grad_g = fem.Function(W)
    grad_g.interpolate(fem.Expression(ufl.grad(g), W.element.interpolation_points))
    G = grad_g.x.array.reshape(-1, 3)
    for label, f in directions.items():
        cells = patch.cell_tags.find(patch.volumes[f"layer:{label}"])
        out[cells] = np.einsum("ni,ni->n", G[cells], cell_fibres(patch, cells, f))
    return out


class FibreSecondDerivative:
    """:func:`fibre_second_derivative` of many potentials of one space: forms, mass matrix and KSP once.

    A frequency sweep evaluates the activating function of two components per channel at every
    frequency; rebuilding the forms and the mass matrix each time was most of its cost.

    Args:
        patch: the tagged mesh.
        V: the (possibly blocked) Lagrange space of the potentials.
        directions: unit fibre direction by muscle layer label (:func:`fibre_directions`).
    """

    def __init__(self, patch: PatchMesh, V: Any, directions: dict[str, np.ndarray]) -> None:
        mesh = patch.mesh
        self.patch, self.directions = patch, directions
        blocked = V.dofmap.index_map_bs > 1
        parts = [V.sub(i).collapse() for i in range(V.dofmap.index_map_bs)] if blocked else [(V, None)]
        self._maps = [m for _, m in parts]
        self._u = fem.Function(parts[0][0])  # the scalar potential being differentiated
        dx = ufl.Measure("dx", domain=mesh, subdomain_data=patch.cell_tags)
        Q = fem.functionspace(mesh, ("Lagrange", 1))
        p, q = ufl.TrialFunction(Q), ufl.TestFunction(Q)
        m_form, b_form = _directional_forms(patch, Q, dx, self._u, directions)
        n_cells = mesh.topology.index_map(3).size_local + mesh.topology.index_map(3).num_ghosts
        self._n_cells = n_cells
        self._ksp = None
        if not directions:
            return
        vol = mesh.comm.allreduce(fem.assemble_scalar(fem.form(fem.Constant(mesh, 1.0) * ufl.dx)))
        eps = fem.Constant(mesh, 1e-12)  # as _l2_projection: regular rows outside the muscle
        self._A = fpetsc.assemble_matrix(fem.form(m_form + eps * p * q * ufl.dx))
        self._A.assemble()
        self._b_form = fem.form(b_form)
        self._b = fpetsc.create_vector(Q)
        ksp = PETSc.KSP().create(mesh.comm)
        ksp.setOperators(self._A)
        ksp.setType("cg")
        ksp.getPC().setType("jacobi")
        ksp.setTolerances(rtol=1e-12, atol=1e-30 * vol, max_it=5000)
        self._ksp = ksp
        self._g = fem.Function(Q)
        # grad g per cell by a DG0 interpolation, made on first use: only where the cells are not
        # affine tetrahedra (otherwise P1CellGradient, the same numbers without a compiled form)
        self._grad: tuple[fem.Function, fem.Expression] | None = None
        self._mesh = mesh
        self._fibres = {}
        for label, f in directions.items():
            cells = patch.cell_tags.find(patch.volumes[f"layer:{label}"])
            self._fibres[label] = (cells, cell_fibres(patch, cells, f))

    def __call__(self, phi: Any, component: int = 0) -> np.ndarray:
        """d^2 phi/ds^2 [V/m^2] per local cell of one component of ``phi`` (a Function on V)."""
        out = np.zeros(self._n_cells)
        if self._ksp is None:
            return out
        m = self._maps[component]
        self._u.x.array[:] = phi.x.array if m is None else phi.x.array[m]
        with self._b.localForm() as local:
            local.set(0.0)
        fpetsc.assemble_vector(self._b, self._b_form)
        self._b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        self._g.x.petsc_vec.set(0.0)
        self._ksp.solve(self._b, self._g.x.petsc_vec)
        reason = self._ksp.getConvergedReason()
        if reason < 0:
            raise SolverError(f"activating function: projection did not converge (PETSc reason {reason})")
        self._g.x.scatter_forward()
        p1_gradient = P1CellGradient.of(self._mesh)  # at the nodes' current positions (a morph moves them)
        if p1_gradient is not None:  # the same numbers as the interpolation, to round-off
            G = p1_gradient(self._g.x.array, self._g.function_space.dofmap.list)
        else:
            if self._grad is None:
                W = fem.functionspace(self._mesh, ("DG", 0, (3,)))
                self._grad = (fem.Function(W), fem.Expression(ufl.grad(self._g), W.element.interpolation_points))
            grad, expr = self._grad
            grad.interpolate(expr)
            G = grad.x.array.reshape(-1, 3)
        for cells, fibres in self._fibres.values():
            out[cells] = np.einsum("ni,ni->n", G[cells], fibres)
        return out

    def close(self) -> None:
        """Free the PETSc objects."""
        if self._ksp is not None:
            for obj in (self._ksp, self._A, self._b):
                obj.destroy()
            self._ksp = None


def cell_fibres(patch: PatchMesh, cells: np.ndarray, direction: Sequence[float] | np.ndarray) -> np.ndarray:
    """(n, 3) fibre direction at local cells: ``direction``, rotated on a curved patch.

    Args:
        patch: the tagged mesh (its ``surface`` map, if any).
        cells: local cell indices.
        direction: unit fibre direction in the flat patch's axes.
    """
    cells = np.asarray(cells, dtype=np.int32)
    f = np.asarray(direction, dtype=float)
    if patch.surface is None or len(cells) == 0:
        return np.broadcast_to(f, (len(cells), 3)).copy()
    mid = dmesh.compute_midpoints(patch.mesh, patch.mesh.topology.dim, cells)
    return patch.surface.frames(mid) @ f


def _l2_projection(mesh, Q, m_form, b_form):
    """L2 projection onto Q over the muscle region (consistent mass, CG + Jacobi).

    A mass term 1e-12 times smaller over the whole mesh keeps the rows of vertices outside the
    muscle regular (their value tends to 0) without a rank-dependent boundary condition.
    """
    p, q = ufl.TrialFunction(Q), ufl.TestFunction(Q)
    vol = mesh.comm.allreduce(fem.assemble_scalar(fem.form(fem.Constant(mesh, 1.0) * ufl.dx)))
    eps = fem.Constant(mesh, 1e-12)
    A = fpetsc.assemble_matrix(fem.form(m_form + eps * p * q * ufl.dx))
    A.assemble()
    b = fpetsc.assemble_vector(fem.form(b_form))
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    ksp = PETSc.KSP().create(mesh.comm)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType("jacobi")
    ksp.setTolerances(rtol=1e-12, atol=1e-30 * vol, max_it=5000)
    g = fem.Function(Q)
    ksp.solve(b, g.x.petsc_vec)
    reason = ksp.getConvergedReason()
    ksp.destroy()
    A.destroy()
    b.destroy()
    if reason < 0:
        raise SolverError(f"activating function: projection did not converge (PETSc reason {reason})")
    g.x.scatter_forward()
    return g


def activated_fraction(field_per_A: np.ndarray, volumes_m3: np.ndarray, threshold_V_per_m: float, current_A: float) -> float:
    """Volume fraction where ``|field_per_A| * current_A >= threshold_V_per_m``.

    Args:
        field_per_A: fibre field per ampere of channel current [V/(m A)], per cell.
        volumes_m3: cell volumes [m^3].
        threshold_V_per_m: threshold field [V/m].
        current_A: channel current [A].
    """
    total = float(np.sum(volumes_m3))
    if total <= 0:
        return 0.0
    above = np.abs(field_per_A) * abs(current_A) >= threshold_V_per_m
    return float(np.sum(volumes_m3[above]) / total)


def current_for_fraction_A(
    field_per_A: np.ndarray, volumes_m3: np.ndarray, threshold_V_per_m: float, fraction: float = 0.5
) -> float:
    """Smallest current [A] at which ``fraction`` of the volume is above threshold.

    The activated set grows with the current through the volume-weighted distribution of
    |field per ampere|: the answer is E_th / q with q its (1 - fraction) quantile (inf when the
    field is zero there).
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError("fraction", fraction, "must be in (0, 1]")
    e = np.abs(np.asarray(field_per_A, dtype=float))
    if e.size == 0:
        return math.inf
    order = np.argsort(e)[::-1]  # strongest first
    cum = np.cumsum(volumes_m3[order]) / np.sum(volumes_m3)
    i = int(np.searchsorted(cum, fraction - 1e-12))
    q = e[order][min(i, e.size - 1)]
    return math.inf if q <= 0 else float(threshold_V_per_m / q)


def activated_volume_m3(field_per_A: np.ndarray, volumes_m3: np.ndarray, threshold_V_per_m: float, current_A: float) -> float:
    """Volume [m^3] where ``|field_per_A| * current_A >= threshold_V_per_m``.

    Unlike :func:`activated_fraction` it does not depend on the inactive tissue the patch holds.

    Args:
        field_per_A: fibre field per ampere of channel current [V/(m A)], per cell.
        volumes_m3: cell volumes [m^3].
        threshold_V_per_m: threshold field [V/m].
        current_A: channel current [A].
    """
    above = np.abs(field_per_A) * abs(current_A) >= threshold_V_per_m
    return float(np.sum(volumes_m3[above]))


def current_for_volume_A(
    field_per_A: np.ndarray, volumes_m3: np.ndarray, threshold_V_per_m: float, volume_m3: float
) -> float:
    """Smallest current [A] at which ``volume_m3`` of tissue is above threshold (inf if never).

    The strongest cells activate first: the answer is E_th / q with q the |field per ampere| at
    which the cumulative volume of the cells, strongest first, reaches ``volume_m3``.
    """
    if not volume_m3 > 0.0:
        raise InputError("volume_m3", volume_m3, "must be > 0")
    e = np.abs(np.asarray(field_per_A, dtype=float))
    order = np.argsort(e)[::-1]
    cum = np.cumsum(volumes_m3[order])
    i = int(np.searchsorted(cum, volume_m3 * (1 - 1e-12)))
    if i >= e.size:
        return math.inf
    q = e[order][i]
    return math.inf if q <= 0 else float(threshold_V_per_m / q)
