r"""Fourier synthesis of sampled frequency responses into the periodic steady state.

The transfer X(f) of any linear response is sampled at a few frequencies, evaluated at every
harmonic through a rational model (:mod:`emsim.solvers.spectral.rational`, linear in the samples), and
synthesised over one period with the high-frequency limit split off (see
:mod:`emsim.solvers.spectral.waveform` for the method and its error terms).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import fft

from ...errors import InputError, SolverError
from ...models.waveform_checks import TRUNCATION_FACTOR
from ...models.waveforms import Waveform

__all__ = ["MAX_HARMONICS", "TRUNCATION_FACTOR", "Spectrum", "Synthesis"]

log = logging.getLogger(__name__)

#: Largest number of harmonics synthesised (the FFT holds 2 x this many points per period).
MAX_HARMONICS = 2**19


@dataclass(frozen=True)
class Spectrum:
    """The waveform's harmonics and the sampled frequencies of a sweep."""

    period_s: float
    n_harmonics: int
    ck: np.ndarray  # c_1 .. c_N of the unit waveform
    c0: float
    samples_Hz: list[float]  # 0 first when a d.c. sample is needed
    need_dc: bool
    dc_shape: bool

    @classmethod
    def of(cls, w: Waveform, n_frequencies: int, max_frequency_Hz: float | None) -> Spectrum:
        """The harmonics of waveform ``w`` and ``n_frequencies`` log-spaced samples (+ d.c.)."""
        if w.shape == "dc":
            return cls(1.0, 0, np.zeros(0, complex), 1.0, [0.0], True, True)
        T = w.period_s
        shortest = min(e - s for s, e, _ in w.phases())
        f_max = max_frequency_Hz or TRUNCATION_FACTOR / shortest
        N = int(min(max(math.ceil(f_max * T), 2 * n_frequencies), MAX_HARMONICS))
        if N == MAX_HARMONICS:
            log.warning("waveform: harmonics capped at %d (f_N = %.3g Hz)", N, N / T)
        _, c = w.spectrum(1.0, N)
        ck, c0 = c[N + 1 :], float(c[N].real)
        fs = list(np.geomspace(1.0 / T, N / T, n_frequencies))
        need_dc = abs(c0) > 1e-9 * max(1e-300, float(np.max(np.abs(ck), initial=0.0)))
        return cls(T, N, ck, c0, [*([0.0] if need_dc else []), *fs], need_dc, False)

    @property
    def fs(self) -> np.ndarray:
        """The sampled frequencies [Hz] without the d.c. sample."""
        return np.array(self.samples_Hz[1:] if self.need_dc else self.samples_Hz)


class Synthesis:
    """Fourier synthesis of sampled transfers, over the period and at chosen instants.

    Args:
        spec: the waveform's harmonics.
        w: the waveform.
        instants: instants [s] where :meth:`at_instants` synthesises.
        cardinal: the frequency model: ``cardinal(f_Hz)`` is the (len(f), n_x) matrix that
            evaluates the model at f from the extended samples X~ (n_x rows; see
            :mod:`emsim.solvers.spectral.rational`). None for a d.c. waveform.
    """

    def __init__(self, spec: Spectrum, w: Waveform, instants: np.ndarray, cardinal: Callable | None = None) -> None:
        self.spec, self.w = spec, w
        self.instants = instants
        if spec.dc_shape:
            self.t = np.array([0.0])
            return
        if cardinal is None:
            raise InputError("cardinal", None, "a frequency model for a pulsed waveform")
        T, N = spec.period_s, spec.n_harmonics
        self.cardinal = cardinal
        self.ref = cardinal(np.array([N / T]))[0]  # the model at f_N
        self.M = fft.next_fast_len(max(2 * N + 2, 4096), real=True)
        self.t = np.arange(self.M) * (T / self.M)
        n_x = len(self.ref)
        # Cardinal weights of each extended sample at each instant, and the harmonics' tail.
        self.weights = np.zeros((len(instants), n_x), dtype=complex)
        tail = np.zeros(len(instants))
        for k in self._chunks():
            L = cardinal(k / T)
            g = spec.ck[k - 1][None, :] * np.exp(2j * np.pi * np.outer(instants, k) / T)
            self.weights += g @ L
            tail += 2 * g.sum(axis=1).real
        self.r = w.sample(1.0, instants) - spec.c0 - tail

    def _chunks(self, size: int = 32768) -> Iterator[np.ndarray]:
        for k0 in range(0, self.spec.n_harmonics, size):
            yield np.arange(k0 + 1, min(k0 + size, self.spec.n_harmonics) + 1)

    def series(self, X: np.ndarray | None, X0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """X(t) on the period grid from extended samples X (n_x, m) (and d.c. X0): (n_t, m), i(t).

        A d.c. waveform needs only X0; another waveform needs X (and X0 when it has a d.c. part).
        """
        if self.spec.dc_shape:
            return _needed(X0, "d.c.").real[None, :], np.array([1.0])
        X = _needed(X, "sampled")
        spec = self.spec
        Xref = (self.ref @ X).real
        D = np.zeros((self.M // 2 + 1, X.shape[1]), dtype=complex)
        for k in self._chunks():
            D[k] = spec.ck[k - 1, None] * (self.cardinal(k / spec.period_s) @ X - Xref)
        if spec.need_dc:
            D[0] = spec.c0 * (_needed(X0, "d.c.") - Xref)
        i_unit = self.w.sample(1.0, self.t)
        return Xref[None, :] * i_unit[:, None] + self.M * fft.irfft(D, n=self.M, axis=0), i_unit

    def at_instants(self, X: np.ndarray | None, X0: np.ndarray | None) -> np.ndarray:
        """X at the instants from extended samples X (n_x, m): (n_instants, m) real."""
        if self.spec.dc_shape:
            return _needed(X0, "d.c.").real[None, :]
        X = _needed(X, "sampled")
        Xref = (self.ref @ X).real
        base = self.spec.c0 * (_needed(X0, "d.c.").real if self.spec.need_dc else Xref)
        return self.r[:, None] * Xref[None, :] + base[None, :] + 2 * (self.weights @ X).real

    def power_gram(self, mean_square: float) -> tuple[np.ndarray, float]:
        """Gram matrix G (n_x, n_x) and d.c. weight g0 for the mean of a product over a period.

        For responses a, b with extended samples A~, B~ (and d.c. samples A0, B0), the mean over
        one period of a(t) b(t) at unit peak current is Re(sum_ij G_ij A~_i conj B~_j) +
        g0 A0 B0: the two-sided sum c_0^2 A_0 B_0 + 2 sum_k |c_k|^2 Re(A(f_k) conj B(f_k)) with
        A(f_k), B(f_k) the model's values at the harmonics (the product of the modelled
        transfers, not a model of the product), and the harmonics beyond N at f_N (their weight
        is the unit train's ``mean_square`` less the harmonics kept, by Parseval). Without a
        d.c. sample a negligible d.c. part is taken at the first harmonic.
        """
        spec = self.spec
        if spec.dc_shape:
            return np.zeros((0, 0)), 1.0
        n_x = len(self.ref)
        G = np.zeros((n_x, n_x), dtype=complex)
        for k in self._chunks():
            L = self.cardinal(k / spec.period_s)
            G += L.T @ ((2 * np.abs(spec.ck[k - 1]) ** 2)[:, None] * L.conj())
        kept = spec.c0**2 + 2 * float(np.sum(np.abs(spec.ck) ** 2))
        G += max(mean_square - kept, 0.0) * np.outer(self.ref, self.ref.conj())
        if spec.need_dc:
            return G, spec.c0**2
        first = self.cardinal(np.array([1.0 / spec.period_s]))[0]
        return G + spec.c0**2 * np.outer(first, first.conj()), 0.0


def _needed(X: np.ndarray | None, what: str) -> np.ndarray:
    """The samples a synthesis needs (a missing set is a bug of the caller, not bad input)."""
    if X is None:
        raise SolverError(f"the waveform synthesis needs the {what} samples of the response")
    return X
