r"""Fourier synthesis of sampled frequency responses into the periodic steady state.

The transfer X(f) of any linear response is sampled at a few frequencies, interpolated to every
harmonic by a cubic spline in log f, and synthesised over one period with the high-frequency
limit split off (see :mod:`emsim.solvers.waveform` for the method and its error terms).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["MAX_HARMONICS", "TRUNCATION_FACTOR", "Spectrum", "Synthesis"]

log = logging.getLogger(__name__)

#: Largest number of harmonics synthesised (the FFT holds 2 x this many points per period).
MAX_HARMONICS = 2**19
#: Default truncation frequency x shortest phase width: f_N = 500 / PW.
TRUNCATION_FACTOR = 500.0


def _spline(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Cubic spline of complex rows ``y`` over ``x`` (real and imaginary parts)."""
    from scipy.interpolate import CubicSpline

    if len(x) < 4:
        raise InputError("n_frequencies", len(x), "a cubic spline needs >= 4 samples")
    re, im = CubicSpline(x, y.real, axis=0), CubicSpline(x, y.imag, axis=0)
    return lambda xx: re(xx) + 1j * im(xx)


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
    def of(cls, w: Any, n_frequencies: int, max_frequency_Hz: float | None) -> Spectrum:
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
        return cls(T, N, ck, c0, ([0.0] if need_dc else []) + fs, need_dc, False)

    @property
    def fs(self) -> np.ndarray:
        """The sampled frequencies [Hz] without the d.c. sample."""
        return np.array(self.samples_Hz[1:] if self.need_dc else self.samples_Hz)


class Synthesis:
    """Fourier synthesis of sampled transfers, over the period and at chosen instants."""

    def __init__(self, spec: Spectrum, w: Any, instants: np.ndarray) -> None:
        from scipy import fft

        self.spec, self.w = spec, w
        self.instants = instants
        if spec.dc_shape:
            self.t = np.array([0.0])
            return
        T, N = spec.period_s, spec.n_harmonics
        self.x = np.log(spec.fs)
        self.xk = np.log(np.arange(1, N + 1) / T)
        self.M = fft.next_fast_len(max(2 * N + 2, 4096), real=True)
        self.t = np.arange(self.M) * (T / self.M)
        # Cardinal spline weights of each sample at each instant, and the harmonics' tail.
        cardinal = _spline(self.x, np.eye(len(self.x)))
        self.weights = np.zeros((len(instants), len(self.x)), dtype=complex)
        tail = np.zeros(len(instants))
        chunk = 65536
        for k0 in range(0, N, chunk):
            k = np.arange(k0 + 1, min(k0 + chunk, N) + 1)
            L = cardinal(np.log(k / T))
            g = spec.ck[k - 1][None, :] * np.exp(2j * np.pi * np.outer(instants, k) / T)
            self.weights += g @ L
            tail += 2 * g.sum(axis=1).real
        self.r = w.sample(1.0, instants) - spec.c0 - tail

    def series(self, X: np.ndarray, X0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """X(t) on the period grid from samples X (n_s, m) (and the d.c. sample): (n_t, m), i(t)."""
        from scipy import fft

        if self.spec.dc_shape:
            return X0.real[None, :], np.array([1.0])
        spec = self.spec
        Xk = _spline(self.x, X)(self.xk)
        Xref = X[-1].real
        D = np.zeros((self.M // 2 + 1, X.shape[1]), dtype=complex)
        D[1 : spec.n_harmonics + 1] = spec.ck[:, None] * (Xk - Xref)
        if spec.need_dc:
            D[0] = spec.c0 * (X0 - Xref)
        i_unit = self.w.sample(1.0, self.t)
        return Xref[None, :] * i_unit[:, None] + self.M * fft.irfft(D, n=self.M, axis=0), i_unit

    def at_instants(self, X: np.ndarray, X0: np.ndarray | None) -> np.ndarray:
        """X at the instants from samples X (n_s, m): (n_instants, m) real."""
        if self.spec.dc_shape:
            return X0.real[None, :]
        Xref = X[-1].real
        base = self.spec.c0 * (X0.real if self.spec.need_dc else Xref)
        return self.r[:, None] * Xref[None, :] + base[None, :] + 2 * (self.weights @ X).real

    def power_weights(self, mean_square: float) -> np.ndarray:
        """Weights w_s of the samples (the d.c. one first) for the mean of a product over a period.

        For responses A, B with sampled transfers A_s, B_s, the mean over one period of a(t) b(t)
        at unit peak current is sum_s w_s Re(A_s conj(B_s)): the two-sided sum
        c_0^2 A_0 B_0 + 2 sum_k |c_k|^2 Re(A_k conj(B_k)) with the transfers interpolated by the
        cubic spline in log f, and the harmonics beyond N at f_N (their weight is the unit
        train's ``mean_square`` less the harmonics kept, by Parseval).
        """
        spec = self.spec
        if spec.dc_shape:
            return np.array([1.0])
        cardinal = _spline(self.x, np.eye(len(self.x)))
        w = np.zeros(len(self.x))
        chunk = 65536
        for k0 in range(0, spec.n_harmonics, chunk):
            k = np.arange(k0 + 1, min(k0 + chunk, spec.n_harmonics) + 1)
            w += 2 * (np.abs(spec.ck[k - 1]) ** 2) @ cardinal(np.log(k / spec.period_s)).real
        kept = spec.c0**2 + 2 * float(np.sum(np.abs(spec.ck) ** 2))
        w[-1] += max(mean_square - kept, 0.0)
        if spec.need_dc:
            return np.concatenate([[spec.c0**2], w])
        w[0] += spec.c0**2  # a negligible d.c. part, at the lowest sample
        return w

    def interpolation_error(self, H: np.ndarray) -> float:
        """Relative error estimate of the transfer spline (every other sample left out)."""
        if self.spec.dc_shape:
            return 0.0
        coarse = _spline(self.x[::2], H[::2])(self.x[1::2])
        return float(np.max(np.abs(coarse - H[1::2])) / max(np.max(np.abs(H)), 1e-300))
