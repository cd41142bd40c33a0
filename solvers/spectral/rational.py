r"""Set-valued AAA rational approximation of sampled frequency responses (one common denominator).

AAA (Nakatsukasa, Sete & Trefethen 2018, SIAM J Sci Comput 40:A1494) writes a rational function
in barycentric form r(z) = sum_j w_j F_j / (z - z_j) / sum_j w_j / (z - z_j), with support points
z_j chosen greedily where the current approximation is worst and the weights w from the smallest
singular vector of the Loewner matrix of the other samples. The set-valued variant (Lietaert,
Meerbergen, Perez & Vandereycken 2022, IMA J Numer Anal 42:3327) fits many functions at once with
one support set and one weight vector: the Loewner matrices of all functions are stacked, the
support point is picked by the largest error over all functions. Every function then has the same
cardinal basis c_j(z) = (w_j / (z - z_j)) / sum_k w_k / (z - z_k), so r_q(z) = sum_j c_j(z) F_jq is
linear in the samples: a model fitted on a few scalar transfers carries every sampled quantity.

Physics. The variable is s = j 2 pi f. A response of a real, linear, passive system is real on
the real s axis: X(-j w) = conj X(j w) (a real impulse response). Each sample at j w_i is mirrored
with its conjugate at -j w_i and the support points are taken in mirrored pairs, so the model has
the same symmetry. Causality asks for poles in Re s < 0; :func:`right_half_plane_poles` counts any
that are not (a spurious pole there is reported with the sweep).

The cardinal basis is returned over the extended sample set [X; conj X] (2 m rows for m samples):
``cardinal(f) @ extend(X)`` evaluates the model of every column of X at the frequencies f.
"""

from __future__ import annotations

from dataclasses import dataclass

import baryrat
import numpy as np

__all__ = ["RationalModel", "extend", "fit_set_valued_aaa"]


def extend(X: np.ndarray) -> np.ndarray:
    """The extended samples [X; conj X] (the mirrored samples at -j w), along the first axis."""
    return np.concatenate([X, np.conj(X)], axis=0)


@dataclass(frozen=True)
class RationalModel:
    """A barycentric rational model over m sampled frequencies, mirrored (conjugate symmetric).

    Attributes:
        frequencies_Hz: the m sampled frequencies [Hz] (> 0).
        support: indices (into the m samples) of the support points, in the order chosen.
        weights: barycentric weights of the 2 len(support) nodes: [j w_S, -j w_S].
    """

    frequencies_Hz: np.ndarray
    support: tuple[int, ...]
    weights: np.ndarray

    @property
    def nodes(self) -> np.ndarray:
        """The support nodes s_j = +-j 2 pi f_j [rad/s]."""
        s = 2j * np.pi * self.frequencies_Hz[list(self.support)]
        return np.concatenate([s, -s])

    def _node_rows(self) -> np.ndarray:
        m = len(self.frequencies_Hz)
        idx = np.array(self.support, dtype=int)
        return np.concatenate([idx, idx + m])

    def cardinal(self, f_Hz: np.ndarray) -> np.ndarray:
        """(len(f), 2 m) cardinal weights C: the model of samples X at f is C @ extend(X)."""
        f = np.atleast_1d(np.asarray(f_Hz, dtype=float))
        s = 2j * np.pi * f
        nodes = self.nodes
        diff = s[:, None] - nodes[None, :]
        hit = np.abs(diff) <= 1e-14 * np.maximum(np.abs(nodes[None, :]), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = self.weights[None, :] / diff
            c = d / d.sum(axis=1, keepdims=True)
        rows = np.any(hit, axis=1)
        c[rows] = hit[rows].astype(float)
        out = np.zeros((len(f), 2 * len(self.frequencies_Hz)), dtype=complex)
        out[:, self._node_rows()] = c
        return out

    def poles_rad_per_s(self) -> np.ndarray:
        """Poles of the common denominator sum_j w_j / (s - s_j) [rad/s] (baryrat)."""
        nodes = self.nodes
        if len(nodes) < 2:
            return np.zeros(0, dtype=complex)
        return np.asarray(baryrat.BarycentricRational(nodes, np.ones(len(nodes)), self.weights).poles())

    def right_half_plane_poles(self) -> int:
        """Number of poles with Re s > 0 (a causal model has none)."""
        p = self.poles_rad_per_s()
        p = p[np.isfinite(p)]
        return int(np.sum(p.real > 1e-9 * np.maximum(np.abs(p), 1.0)))


def fit_set_valued_aaa(
    f_Hz: np.ndarray, F: np.ndarray, *, tol: float = 1e-13, max_support: int | None = None,
    scale: np.ndarray | None = None,
) -> tuple[RationalModel, RationalModel | None, list[float]]:
    """Set-valued AAA of the columns of F sampled at f (mirrored, support points in pairs).

    Each column is divided by ``scale`` (default: its largest magnitude), so that the tolerance
    and the errors are relative. The support grows until the largest relative error at
    the samples not in the support is at most ``tol``, or one sample is left out of it (at least
    one sample is always fitted in the least-squares sense, which fixes the weights).

    Args:
        f_Hz: (m,) distinct sampled frequencies [Hz] > 0, m >= 2.
        F: (m, q) complex samples of q functions.
        tol: relative tolerance at the samples outside the support.
        max_support: most support points (default m - 1).
        scale: (q,) the size of each function (default its largest sampled magnitude).

    Returns:
        The final model, the model one support point before it (None with one support point),
        and the largest relative error at the samples outside the support after each step.
    """
    f = np.asarray(f_Hz, dtype=float)
    m = len(f)
    if scale is None:
        scale = np.max(np.abs(F), axis=0)
    keep = scale > 0
    G = F[:, keep] / scale[keep]
    Z = np.concatenate([2j * np.pi * f, -2j * np.pi * f])
    Fz = extend(G)
    limit = m - 1 if max_support is None else min(max_support, m - 1)
    support: list[int] = []
    R = np.broadcast_to(Fz.mean(axis=0), Fz.shape)
    models: list[RationalModel] = []
    errors: list[float] = []
    for _ in range(max(limit, 1)):
        rest = [i for i in range(m) if i not in support]
        err = np.max(np.abs(Fz[rest] - R[rest]), axis=1)
        support.append(rest[int(np.argmax(err))])
        nodes = np.array(support + [i + m for i in support])
        rows = np.array([i for i in range(2 * m) if i % m not in support])
        if len(rows) == 0:  # m == 1: nothing left to fit
            w = np.ones(len(nodes), dtype=complex)
        else:
            # Loewner rows of every function stacked: (F_r - F_c) / (Z_r - Z_c).
            L = (Fz[rows][:, None, :] - Fz[nodes][None, :, :]) / (Z[rows][:, None, None] - Z[nodes][None, :, None])
            L = np.moveaxis(L, 2, 1).reshape(-1, len(nodes))
            _, _, vh = np.linalg.svd(L, full_matrices=False)
            w = vh[-1].conj()
        model = RationalModel(f, tuple(support), w)
        models.append(model)
        R = model.cardinal(np.concatenate([f, f]))  # rows for +j w then the mirror's own rows below
        R = R[:m] @ Fz
        R = np.concatenate([R, np.conj(R)])
        rest = [i for i in range(2 * m) if i % m not in support]
        errors.append(float(np.max(np.abs(Fz[rest] - R[rest]))) if rest else 0.0)
        if errors[-1] <= tol or len(support) >= limit:
            break
    return models[-1], (models[-2] if len(models) > 1 else None), errors
