r"""Joule heat averaged over the stimulation cycle, from the waveform's own spectrum.

For a waveform with unit-peak Fourier coefficients c_k the cycle-averaged Joule heat density is

    Q(x) = <e^2> [c_0^2 q_0(x) + 2 sum_{k>=1} |c_k|^2 q(x, f_k)],   q(x, f) = Re(J(x, f) . conj E(x, f)),

with J and E the phasor fields per unit current at the harmonic f_k (dispersive tissues and the
capacitive contact at that frequency) and <e^2> the mean square of the on/off envelope (ramps
included). J and E at every harmonic are those of the sweep's rational model (linear in the
sampled fields), so the sum is a Gram form of the sampled fields: the product of the modelled
fields, not a model of the product (:meth:`emsim.solvers.spectral.synthesis.Synthesis.power_gram`). The capacitance of a contact stores
and returns energy: only Re(y_c) dissipates, so a contact sublayer heats with
Re(1 / sigma_n) and a bare electrode's Robin contact with Re(G) |V_e - phi|^2 per area.

Several channels: simultaneous channels add their fields, so the heat has cross terms
I_c I_d Re(J_c . conj E_d + J_d . conj E_c); interleaved channels never overlap in time and
their heats add (no cross terms). The heat is held per channel pair, so it scales to any
currents as a quadratic form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from dolfinx import fem, la

from ...meshes.patch import PatchMesh

__all__ = ["CycleHeat", "pair_products"]


def pair_products(a: Sequence[np.ndarray], b: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Re(a_c . conj b_d) summed over the last axis of vector fields (or elementwise), per pair.

    Args:
        a: per channel, (n, 3) or (n,) arrays (e.g. J per cell).
        b: per channel, arrays of the same shape (e.g. E per cell).
        pairs: channel pairs; a cross pair gets both orders, a_c b_d* + a_d b_c*.

    Returns:
        (n, n_pairs) real array.
    """

    def dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = x * np.conj(y)
        return (p.sum(axis=-1) if p.ndim > 1 else p).real

    cols = [dot(a[c], b[c]) if c == d else dot(a[c], b[d]) + dot(a[d], b[c]) for c, d in pairs]
    return np.column_stack(cols) if cols else np.zeros((0, 0))


@dataclass(frozen=True)
class CycleHeat:
    """Cycle-averaged Joule heat per channel pair, per unit current squared.

    Attributes:
        pairs: the channel pairs (indices into the case's channels).
        cell_W_per_m3_A2: (n_owned_cells, n_pairs) heat density of this rank's owned cells.
        robin_cells: local cells under the facets of bare electrodes with a contact.
        robin_tags: the facet tag of each of those facets.
        robin_W_per_m2_A2: (n_robin, n_pairs) heat per area dissipated in those contacts.
        label_W_per_A2: per volume label (and ``contact:E`` of bare electrodes), the total heat
            [W/A^2] per pair, summed over the ranks.
    """

    pairs: tuple[tuple[int, int], ...]
    cell_W_per_m3_A2: np.ndarray
    robin_cells: np.ndarray
    robin_tags: np.ndarray
    robin_W_per_m2_A2: np.ndarray
    label_W_per_A2: dict[str, np.ndarray]

    def products(self, current: np.ndarray) -> np.ndarray:
        """I_c I_d for every pair [A^2]."""
        return np.array([current[c] * current[d] for c, d in self.pairs])

    def layer_power_W(self, current: np.ndarray) -> dict[str, float]:
        """Cycle-averaged Joule power [W] of every volume label at the channel (peak) currents."""
        p = self.products(current)
        return {label: float(v @ p) for label, v in self.label_W_per_A2.items()}

    def sources(self, patch: PatchMesh, current: np.ndarray) -> tuple[fem.Function, dict[int, fem.Function]]:
        """DG0 heat density [W/m^3] and surface heat [W/m^2] by facet tag, for the Pennes solve."""
        p = self.products(current)
        Q0 = fem.functionspace(patch.mesh, ("DG", 0))
        q = fem.Function(Q0, name="joule_heat_cycle_mean_W_per_m3")
        n_owned = len(self.cell_W_per_m3_A2)
        q.x.array[:n_owned] = self.cell_W_per_m3_A2 @ p
        q.x.scatter_forward()
        surfaces: dict[int, fem.Function] = {}
        for tag in np.unique(self.robin_tags).tolist():
            f = fem.Function(Q0, name=f"contact_heat_W_per_m2_{tag}")
            sel = self.robin_tags == tag
            f.x.array[self.robin_cells[sel]] = self.robin_W_per_m2_A2[sel] @ p
            f.x.scatter_reverse(la.InsertMode.add)  # a cell under an owned facet may be a ghost here
            f.x.scatter_forward()
            surfaces[int(tag)] = f
        # Tags present on other ranks only still need a (zero) source here, for a collective form.
        all_tags = sorted(set().union(*patch.mesh.comm.allgather(set(surfaces))))
        for tag in all_tags:
            surfaces.setdefault(tag, fem.Function(Q0))
        return q, {t: surfaces[t] for t in all_tags}
