r"""Closed-form Pennes bioheat solutions used to verify :mod:`emsim.solvers.thermal.session`.

All functions are plain numpy (no DOLFINx) and SI: lengths in m, times in s, temperatures in
C (only differences matter), heat sources in W/m^3.

Notation (Pennes 1948, J Appl Physiol 1:93):
``rho c dT/dt = k T'' + b (T_a - T) + q`` with ``b = rho_b c_b w_b`` [W/(m^3 K)], the blood
term's heat exchange per kelvin, and ``q`` the metabolic plus any other uniform source.

The finite slab is a 1-D column of depth ``L``: ``x`` is the depth below the skin surface
(``x = 0``) and

* the skin surface is convective, ``-k dT/dn = h (T - T_air)`` with the outward normal
  ``n = -x``, i.e. ``k T'(0) = h (T(0) - T_air)``;
* the deep face is held at the core temperature, ``T(L) = T_core``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

__all__ = [
    "finite_slab_rise_K",
    "finite_slab_steady_C",
    "uniform_rise_K",
]


def finite_slab_steady_C(
    x_m: np.ndarray | float,
    *,
    depth_m: float,
    k_W_per_mK: float,
    b_W_per_m3K: float,
    source_W_per_m3: float,
    arterial_temperature_C: float,
    h_W_per_m2K: float,
    air_temperature_C: float,
    core_temperature_C: float,
) -> np.ndarray:
    r"""Steady Pennes temperature in a finite slab with a convective surface.

    Solves ``k T'' - b (T - T_a) + q = 0`` on ``0 <= x <= L`` with ``k T'(0) = h (T(0) - T_air)``
    and ``T(L) = T_core``. With ``m = sqrt(b / k)`` and ``T_inf = T_a + q / b`` the solution is
    ``T = T_inf + C1 exp(-m x) + C2 exp(-m (L - x))`` (the exponentials written so that neither
    overflows for deep slabs); with ``b = 0`` it is the parabola
    ``T = -q x^2 / (2 k) + A x + B``. The constants follow from the two boundary conditions.
    The semi-infinite limit (``L -> inf``) is the classical convective-surface closed form.

    Args:
        x_m: depth(s) below the skin surface [m], in ``[0, depth_m]``.
        depth_m: slab depth L [m].
        k_W_per_mK: thermal conductivity k [W/(m K)].
        b_W_per_m3K: perfusion exchange ``rho_b c_b w_b`` [W/(m^3 K)], >= 0.
        source_W_per_m3: uniform heat source q (metabolic plus any other) [W/m^3].
        arterial_temperature_C: arterial blood temperature T_a [C].
        h_W_per_m2K: surface heat transfer coefficient h [W/(m^2 K)], >= 0.
        air_temperature_C: ambient temperature T_air [C].
        core_temperature_C: temperature of the deep face T_core [C].

    Returns:
        The temperature [C] at ``x_m``.

    """
    x = np.asarray(x_m, dtype=float)
    L, k, b, q, h = depth_m, k_W_per_mK, b_W_per_m3K, source_W_per_m3, h_W_per_m2K
    if b == 0.0:
        # k A = h (B - T_air);  -q L^2 / (2k) + A L + B = T_core
        lhs = np.array([[k, -h], [L, 1.0]])
        rhs = np.array([-h * air_temperature_C, core_temperature_C + q * L * L / (2 * k)])
        A, B = np.linalg.solve(lhs, rhs)
        return -q * x * x / (2 * k) + A * x + B
    m = math.sqrt(b / k)
    t_inf = arterial_temperature_C + q / b
    E = math.exp(-m * L)
    # C1 E + C2 = T_core - T_inf;  -(k m + h) C1 + (k m - h) E C2 = h (T_inf - T_air)
    lhs = np.array([[E, 1.0], [-(k * m + h), (k * m - h) * E]])
    rhs = np.array([core_temperature_C - t_inf, h * (t_inf - air_temperature_C)])
    C1, C2 = np.linalg.solve(lhs, rhs)
    return t_inf + C1 * np.exp(-m * x) + C2 * np.exp(-m * (L - x))


def _slab_eigenvalues(depth_m: float, k: float, h: float, n_terms: int) -> np.ndarray:
    """Roots mu_n of ``h sin(mu L) + k mu cos(mu L) = 0``, one in each ((n - 1/2) pi/L, n pi/L]."""
    L = depth_m
    if h == 0.0:
        return (np.arange(1, n_terms + 1) - 0.5) * math.pi / L

    def f(mu: float) -> float:
        return h * math.sin(mu * L) + k * mu * math.cos(mu * L)

    return np.array(
        [brentq(f, (n - 0.5) * math.pi / L, n * math.pi / L, xtol=1e-14, rtol=1e-15, maxiter=200)
         for n in range(1, n_terms + 1)]
    )  # fmt: skip


def finite_slab_rise_K(
    x_m: np.ndarray | float,
    t_s: float,
    *,
    depth_m: float,
    k_W_per_mK: float,
    rho_c_J_per_m3K: float,
    b_W_per_m3K: float,
    source_W_per_m3: float,
    h_W_per_m2K: float,
    n_terms: int = 400,
) -> np.ndarray:
    r"""Temperature rise in a finite slab after a uniform source is switched on at t = 0.

    The rise ``theta = T - T_basal`` solves the homogeneous Pennes problem
    ``rho c theta_t = k theta'' - b theta + q`` with ``k theta'(0) = h theta(0)``,
    ``theta(L) = 0`` and ``theta(x, 0) = 0`` (the basal terms cancel by linearity). By
    separation of variables (e.g. Carslaw & Jaeger 1959, Conduction of Heat in Solids, sec 3.10)

    ``theta(x, t) = theta_ss(x) - sum_n c_n X_n(x) exp(-lambda_n t)``,

    with ``X_n = sin(mu_n (L - x))``, ``h sin(mu_n L) + k mu_n cos(mu_n L) = 0``,
    ``lambda_n = (k mu_n^2 + b) / (rho c)``, ``c_n = <theta_ss, X_n> / <X_n, X_n>`` and
    ``theta_ss`` the steady rise (:func:`finite_slab_steady_C` with every temperature 0).
    The series converges like ``1/n^2`` at ``t = 0`` and exponentially for ``t > 0``.

    Args:
        x_m: depth(s) below the skin surface [m].
        t_s: time since the source was switched on [s].
        depth_m: slab depth L [m].
        k_W_per_mK: thermal conductivity [W/(m K)].
        rho_c_J_per_m3K: volumetric heat capacity rho c [J/(m^3 K)].
        b_W_per_m3K: perfusion exchange ``rho_b c_b w_b`` [W/(m^3 K)].
        source_W_per_m3: the uniform source switched on at t = 0 [W/m^3].
        h_W_per_m2K: surface heat transfer coefficient [W/(m^2 K)].
        n_terms: number of series terms.

    Returns:
        The rise [K] at ``x_m`` and ``t_s``.

    """
    x = np.asarray(x_m, dtype=float)
    L, k, b, h = depth_m, k_W_per_mK, b_W_per_m3K, h_W_per_m2K
    zero = {"arterial_temperature_C": 0.0, "air_temperature_C": 0.0, "core_temperature_C": 0.0}

    def steady(xx):
        return finite_slab_steady_C(
            xx, depth_m=L, k_W_per_mK=k, b_W_per_m3K=b, source_W_per_m3=source_W_per_m3,
            h_W_per_m2K=h, **zero,
        )  # fmt: skip

    mu = _slab_eigenvalues(L, k, h, n_terms)
    # Composite Gauss-Legendre quadrature, enough points per half wave of the last mode.
    panels = 4 * n_terms
    g, w = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(0.0, L, panels + 1)
    half = 0.5 * np.diff(edges)
    xq = (edges[:-1, None] + half[:, None] * (g[None, :] + 1.0)).ravel()
    wq = (half[:, None] * w[None, :]).ravel()
    modes = np.sin(np.outer(mu, L - xq))  # (n, q)
    coeff = (modes * steady(xq)[None, :]) @ wq / (L / 2 - np.sin(2 * mu * L) / (4 * mu))
    lam = (k * mu**2 + b) / rho_c_J_per_m3K
    decay = coeff * np.exp(-lam * t_s)
    return steady(x) - np.sin(np.multiply.outer(L - x, mu)) @ decay


def uniform_rise_K(
    t_s: np.ndarray | float, *, source_W_per_m3: float, rho_c_J_per_m3K: float, b_W_per_m3K: float
) -> np.ndarray:
    r"""Rise of a perfused tissue heated uniformly, without conduction.

    ``rho c dT/dt = b (T_a - T) + q`` from its basal state gives
    ``dT(t) = q / b (1 - exp(-t / tau))`` with the perfusion time constant
    ``tau = rho c / b`` (8-25 min for skin, fat and muscle with IT'IS v4.0 perfusion).

    Args:
        t_s: time(s) since the source was switched on [s].
        source_W_per_m3: the source q [W/m^3].
        rho_c_J_per_m3K: volumetric heat capacity rho c [J/(m^3 K)].
        b_W_per_m3K: perfusion exchange ``rho_b c_b w_b`` [W/(m^3 K)], > 0.

    Returns:
        The rise [K].

    """
    t = np.asarray(t_s, dtype=float)
    tau = rho_c_J_per_m3K / b_W_per_m3K
    return source_W_per_m3 / b_W_per_m3K * -np.expm1(-t / tau)
