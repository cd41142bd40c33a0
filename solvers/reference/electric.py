"""Closed-form solutions the electric solver is verified against (SI units).

Sources: Newman 1966 (J Electrochem Soc 113:501) for the equipotential disk on a half-space;
the grounded-plane correction is the leading term of the image series; layered media in series
for the 1-D column; the periodic response of an R || C contact to a rectangular pulse train (an
exact piecewise-exponential solution) for the waveform path and its heat.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from ...models.waveforms import Waveform

__all__ = [
    "disk_half_space_resistance",
    "disk_on_grounded_slab_resistance",
    "disk_on_grounded_slab_resistance_exact",
    "rc_contact_mean_power",
    "rc_contact_periodic_voltage",
    "series_resistance",
]


def disk_half_space_resistance(sigma_S_per_m: float, radius_m: float) -> float:
    """Spreading resistance [ohm] of an equipotential disk on a half-space: R = 1/(4 sigma a)."""
    return 1.0 / (4.0 * sigma_S_per_m * radius_m)


def disk_on_grounded_slab_resistance(sigma_S_per_m: float, radius_m: float, depth_m: float) -> float:
    """Resistance [ohm] of an equipotential disk on a slab of depth D, grounded underneath.

    R = 1/(4 sigma a) - ln 2 / (2 pi sigma D): Newman's half-space value plus the leading term
    of the grounded-plane image series (alternating images at depths 2 n D), valid for a << D
    with error O((a/D)^3) relative.
    """
    return disk_half_space_resistance(sigma_S_per_m, radius_m) - math.log(2.0) / (
        2.0 * math.pi * sigma_S_per_m * depth_m
    )


def disk_on_grounded_slab_resistance_exact(
    sigma_S_per_m: float, radius_m: float, depth_m: float, *, nodes: int = 32
) -> float:
    """Resistance [ohm] of an equipotential disk on a grounded slab, to machine precision.

    The mixed boundary value problem (phi = V on the disk, no current through the rest of the
    top, phi = 0 at z = -D) reduces, with the current density written as
    J(r) = sigma integral_0^inf k F(k) J0(k r) dk, F(k) = integral_0^a g(t) cos(k t) dt (zero
    outside the disk by construction), to a Fredholm equation of the second kind for g (Sneddon
    1966, "Mixed boundary value problems in potential theory", ch. 6; Copson's method):

        g(t) - integral_0^a K(t, s) g(s) ds = 2 V / pi,
        K(t, s) = (1/pi) integral_0^inf (1 - tanh(k D)) [cos k(t - s) + cos k(t + s)] dk,

    and the current is I = 2 pi sigma integral_0^a g(t) dt. Half-space (D -> inf): g = 2V/pi,
    R = 1/(4 sigma a) (Newman 1966). The kernel is smooth (1 - tanh(kD) decays like
    exp(-2kD)), so Gauss-Legendre Nystrom with a few tens of nodes converges to rounding; the
    leading terms of its expansion in a/D are :func:`disk_on_grounded_slab_resistance`.

    Args:
        sigma_S_per_m: conductivity [S/m].
        radius_m: disk radius a [m].
        depth_m: slab depth D [m].
        nodes: Gauss-Legendre nodes on [0, a].
    """
    x, w = np.polynomial.legendre.leggauss(nodes)
    t, w = 0.5 * radius_m * (x + 1.0), 0.5 * radius_m * w
    # k-integral on [0, 40/D] (1 - tanh beyond is below 1e-34), panels of about half a period.
    k_max = 40.0 / depth_m
    panels = max(8, math.ceil(k_max * 2.0 * radius_m / math.pi))
    xk, wk = np.polynomial.legendre.leggauss(16)
    edges = np.linspace(0.0, k_max, panels + 1)
    half = 0.5 * np.diff(edges)
    k = (half[:, None] * xk[None, :] + 0.5 * (edges[1:] + edges[:-1])[:, None]).ravel()
    wk = (half[:, None] * wk[None, :]).ravel()
    f = 2.0 / (np.exp(np.minimum(2.0 * k * depth_m, 700.0)) + 1.0)  # 1 - tanh(k D)
    c = np.cos(np.outer(t, k))
    kernel = (2.0 / math.pi) * (c * (f * wk)[None, :]) @ c.T  # cos a cos b = (cos(a-b) + cos(a+b))/2
    g = np.linalg.solve(np.eye(nodes) - kernel * w[None, :], np.full(nodes, 2.0 / math.pi))
    return 1.0 / (2.0 * math.pi * sigma_S_per_m * float(w @ g))


def series_resistance(
    layers: Iterable[tuple[float, float]], area_m2: float, *, contact_ohm_m2: float = 0.0
) -> float:
    """Resistance [ohm] of layers in series under a uniform current: sum h_i/(sigma_i A) + r_c/A.

    Args:
        layers: (thickness [m], conductivity [S/m]) of each layer.
        area_m2: cross-section [m^2].
        contact_ohm_m2: specific contact resistance [ohm m^2].
    """
    return sum(h / s for h, s in layers) / area_m2 + contact_ohm_m2 / area_m2


def _rc_pieces(waveform: Waveform, peak_A: float, contact_ohm: float, contact_F: float) -> list[tuple[float, float, float, float, float]]:
    """(t0, t1, i0, slope, v_c(t0)) of every linear-current piece of one period, periodic steady state.

    The pulse train is piecewise linear (constant for ideal steps, ramps over the output rise
    time). On a piece with i(t) = i0 + s (t - t0) the contact voltage of C dv/dt = i - v/R_c is
    v_c(t) = R_c (i(t) - s tau) + (v_c(t0) - R_c (i0 - s tau)) exp(-(t - t0)/tau), tau = R_c C_c
    (the particular solution of a ramp input plus the free decay). Composing the pieces over one
    period gives v_c(T) = a v_c(0) + b with a = exp(-T/tau); periodicity fixes v_c(0) = b / (1 - a).
    """
    T = waveform.period_s
    tau = contact_ohm * contact_F
    tr = float(getattr(waveform, "rise_time_s", 0.0) or 0.0)
    knots = {0.0, T}
    for s, e, _ in waveform.phases():
        knots |= {p for p in (s, e, s + tr, e + tr) if p < T}
    edges = sorted(knots)
    pieces = []
    for a, b in itertools.pairwise(edges):
        # the current is linear on the piece: its value at the start and its slope from two interior points
        q1, q3 = (float(waveform.sample(peak_A, a + f * (b - a))) for f in (0.25, 0.75))
        slope = (q3 - q1) / (0.5 * (b - a))
        pieces.append((a, b, q1 - 0.25 * (b - a) * slope, slope))
    starts = []
    a_tot, b_tot = 1.0, 0.0  # v_c(end of piece) = a_tot v_c(0) + b_tot
    for t0, t1, i0, slope in pieces:
        starts.append((a_tot, b_tot))
        decay = math.exp(-(t1 - t0) / tau)
        i1 = i0 + slope * (t1 - t0)
        forced0, forced1 = contact_ohm * (i0 - slope * tau), contact_ohm * (i1 - slope * tau)
        a_tot, b_tot = a_tot * decay, (b_tot - forced0) * decay + forced1
    v0 = b_tot / (1.0 - a_tot)
    return [(t0, t1, i0, sl, a0 * v0 + b0) for (t0, t1, i0, sl), (a0, b0) in zip(pieces, starts, strict=True)]


def rc_contact_periodic_voltage(
    waveform: Waveform, peak_A: float, series_ohm: float, contact_ohm: float, contact_F: float, t_s: npt.ArrayLike
) -> np.ndarray:
    """Analytic periodic steady state of V = R i + v_c across R in series with R_c || C_c.

    The pulse train is piecewise linear (steps, or ramps over the output rise time), so the
    contact voltage is a forced linear part plus an exponential relaxation on each piece
    (:func:`_rc_pieces`), in closed form. (Verification reference: an exact time-domain solution,
    independent of the Fourier synthesis.)

    Args:
        waveform: a :class:`~emsim.models.waveforms.Waveform` without bursts or on/off.
        peak_A: peak current [A].
        series_ohm: series (tissue, gel) resistance R [ohm].
        contact_ohm: contact resistance R_c [ohm].
        contact_F: contact capacitance C_c [F].
        t_s: times [s].

    Returns:
        V(t) [V] at ``t_s``.
    """
    tau = contact_ohm * contact_F
    t = np.mod(np.asarray(t_s, dtype=float), waveform.period_s)
    out = np.empty_like(t)
    for t0, t1, i0, slope, vc0 in _rc_pieces(waveform, peak_A, contact_ohm, contact_F):
        m = (t >= t0) & (t < t1)
        u = t[m] - t0
        i = i0 + slope * u
        forced0 = contact_ohm * (i0 - slope * tau)
        out[m] = series_ohm * i + contact_ohm * (i - slope * tau) + (vc0 - forced0) * np.exp(-u / tau)
    return out


def rc_contact_mean_power(waveform: Waveform, peak_A: float, contact_ohm: float, contact_F: float) -> float:
    """Mean power [W] over one period dissipated in R_c of an R_c || C_c contact, closed form.

    On a piece of length D with v_c = a + g u + b exp(-u/tau), u = t - t0 (a = R_c (i0 - s tau),
    g = R_c s, b = v_c(t0) - a; g = 0 for a step), integral of v_c^2 = a^2 D + a g D^2 + g^2 D^3/3
    + 2 a b tau (1 - exp(-D/tau)) + 2 g b tau^2 (1 - exp(-D/tau) (1 + D/tau))
    + b^2 tau/2 (1 - exp(-2D/tau)); the mean power is the sum over the pieces of that integral /
    (R_c T). The capacitance dissipates nothing.

    Args:
        waveform: a :class:`~emsim.models.waveforms.Waveform` without bursts or on/off.
        peak_A: peak current [A].
        contact_ohm: contact resistance R_c [ohm].
        contact_F: contact capacitance C_c [F].
    """
    tau = contact_ohm * contact_F
    energy = 0.0
    for t0, t1, i0, slope, vc0 in _rc_pieces(waveform, peak_A, contact_ohm, contact_F):
        d, a, g = t1 - t0, contact_ohm * (i0 - slope * tau), contact_ohm * slope
        b = vc0 - a
        x = d / tau
        ramp = tau * tau * (-math.expm1(-x) - x * math.exp(-x))  # integral of u exp(-u/tau) over [0, d]
        energy += (a * a * d + a * g * d * d + g * g * d**3 / 3 + 2 * a * b * tau * -math.expm1(-x)
                   + 2 * g * b * ramp + b * b * tau / 2 * -math.expm1(-2 * x))  # fmt: skip
    return energy / (contact_ohm * waveform.period_s)
