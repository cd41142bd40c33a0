"""Cycle-mean products of the modelled fields of a frequency response: Joule heat, mean squares.

Split from :mod:`emsim.solvers.spectral.sweep`: the heat of a waveform is the period mean of
products of the modelled transfers (:meth:`emsim.solvers.spectral.synthesis.Synthesis.power_gram`), never
a model of the product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ...errors import SolverError
from .joule import CycleHeat, pair_products

if TYPE_CHECKING:
    from ...meshes.patch import PatchMesh
    from ...models.case import Case
    from .sweep import FrequencyResponse, FrequencySample
    from .synthesis import Synthesis

__all__ = ["cycle_heat", "gram_products"]


def gram_products(
    G: np.ndarray, g0: float, A: np.ndarray, B: np.ndarray, A0: np.ndarray | None, B0: np.ndarray | None,
    pairs: tuple,
) -> np.ndarray:  # fmt: skip
    """Period means of products a_c . b_d per entity and channel pair, from the samples.

    Re(sum_ij G_ij A~_i . conj B~_j) + g0 Re(A0 . conj B0) with A~ = [A; conj A] the extended
    samples (:meth:`~emsim.solvers.spectral.synthesis.Synthesis.power_gram`); a cross pair gets both
    orders, as :func:`emsim.solvers.spectral.joule.pair_products`.

    Args:
        G: (2 m, 2 m) Gram matrix.
        g0: the d.c. weight.
        A: (m, n, [3,] n_c) complex samples of the first factor.
        B: samples of the second factor, shaped as A.
        A0: (n, [3,] n_c) d.c. sample of the first factor, or None.
        B0: d.c. sample of the second factor, or None.
        pairs: channel pairs.

    Returns:
        (n, n_pairs) real array.
    """
    m = len(A)
    # Re(A~^T G conj B~) = Re(A^T (G11 + conj G22) conj B + A^T (G12 + conj G21) B).
    H1 = G[:m, :m] + G[m:, m:].conj()
    H2 = G[:m, m:] + G[m:, :m].conj()
    # Bc_i = sum_j H1_ij conj B_j + H2_ij B_j: then the mean is Re(sum_i A_i . Bc_i).
    Bc = np.tensordot(H1, B.conj(), axes=1) + np.tensordot(H2, B, axes=1)

    def dot(c: int, d: int) -> np.ndarray:
        p = (A[..., c] * Bc[..., d]).sum(axis=0).real
        if A0 is not None and B0 is not None and g0:
            p = p + g0 * (A0[..., c] * B0[..., d].conj()).real
        return p.sum(axis=-1) if p.ndim > 1 else p

    cols = [dot(c, d) if c == d else dot(c, d) + dot(d, c) for c, d in pairs]
    return np.column_stack(cols) if cols else np.zeros((A.shape[1], 0))


def cycle_heat(
    case: Case, patch: PatchMesh, response: FrequencyResponse, syn: Synthesis, pairs: tuple, vol: np.ndarray,
    dc: FrequencySample | None, stacked: Mapping[str, np.ndarray | None] | None = None,
) -> CycleHeat:  # fmt: skip
    """The cycle-averaged heat (module :mod:`emsim.solvers.spectral.joule`) of the modelled fields.

    ``stacked``: the response's stacked samples the caller already holds (``"E"``, ``"J"``), so
    that the large cell arrays are not stacked a second time.
    """
    stacked = stacked or {}

    def samples(attr: str) -> np.ndarray:
        got = stacked.get(attr)
        return response.stacked(attr) if got is None else got

    w = case.waveform
    skin, sampler = response.skin, response.sampler
    unit_ms = w.rms_pulse_train(1.0) ** 2
    envelope = w.mean_square_envelope
    if syn.spec.dc_shape:
        if dc is None:
            raise SolverError("a d.c. waveform's heat needs the d.c. sample of the response")
        n_c = dc.J.shape[-1]
        Q = pair_products([dc.J[..., c] for c in range(n_c)], [dc.E[..., c] for c in range(n_c)], pairs) * envelope
        R = pair_products([dc.dV[:, c] for c in range(n_c)], [dc.dV[:, c] for c in range(n_c)], pairs) * envelope
    else:
        G, g0 = syn.power_gram(unit_ms)
        G, g0 = G * envelope, g0 * envelope
        J0, E0, V0 = (dc.J, dc.E, dc.dV) if dc is not None else (None, None, None)
        Q = gram_products(G, g0, samples("J"), samples("E"), J0, E0, pairs)
        dV = samples("dV")
        R = gram_products(G, g0, dV, dV, V0, V0, pairs)
    robin_g = _robin_conductance(response)
    R = R * robin_g[:, None] if len(robin_g) else np.zeros((0, len(pairs)))
    n_owned = sampler.n_owned
    tag_of = np.full(n_owned, -1)
    keep = patch.cell_tags.indices < n_owned
    tag_of[patch.cell_tags.indices[keep]] = patch.cell_tags.values[keep]
    comm = patch.mesh.comm
    labels: dict[str, np.ndarray] = {}
    for name, tag in patch.volumes.items():
        m = tag_of == tag
        label = name.split(":", 1)[1] if name.startswith("layer:") else name
        labels[label] = comm.allreduce(vol[:n_owned][m] @ Q[m])
    robin = np.flatnonzero(skin.robin)
    owners = skin.under[robin]
    for e in case.electrodes:
        if e.gel is None and e.contact is not None:
            m = owners == e.name
            labels[f"contact:{e.name}"] = comm.allreduce(skin.areas_m2[robin][m] @ R[m])
    surface_tag = {e.name: patch.surfaces[f"electrode:{e.name}"] for e in case.electrodes}
    return CycleHeat(
        pairs=pairs,
        cell_W_per_m3_A2=Q,
        robin_cells=skin.entry_cells[robin],
        robin_tags=np.array([surface_tag[o] for o in owners], dtype=np.int64),
        robin_W_per_m2_A2=R,
        label_W_per_A2=labels,
    )


def _robin_conductance(response: FrequencyResponse) -> np.ndarray:
    """Re(G) = 1 / r_c [S/m^2] of each Robin facet: only the contact's resistance dissipates."""
    by_name = {e.name: 1.0 / e.contact.resistance_ohm_m2 for e in response.case.electrodes if e.contact is not None}
    return np.array([by_name[o] for o in response.sampler.robin_owner], dtype=float)
