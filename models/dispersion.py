"""Dielectric dispersion of tissues: the Gabriel, Lau & Gabriel 1996 four-term Cole-Cole model.

The relative complex permittivity is (Gabriel, Lau & Gabriel 1996, Phys Med Biol 41:2271,
doi:10.1088/0031-9155/41/11/003, Appendix C, eq. 3 with an ionic conduction term)::

    eps*(w) = eps_inf + sum_{n=1..4} d_eps_n / (1 + (j w tau_n)^(1 - alpha_n))
              + sigma_i / (j w eps0)

with ``w = 2 pi f``. The effective conductivity, which lumps the ionic current and the
dielectric loss, is ``sigma(w) = -w eps0 Im(eps*)`` and the complex conductivity is
``sigma*(w) = j w eps0 eps*(w)`` (real part: effective conductivity, imaginary part:
``w eps0 eps'``). The fits were made to measurements from 10 Hz to 20 GHz, but below about
1 kHz they rest on few data and are extrapolations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["COLE_COLE_DATA_HZ", "EPSILON_0_F_PER_M", "GABRIEL_1996", "QUASI_STATIC_MAX_HZ", "ColeCole"]

#: The frequency band [Hz] of the measurements Gabriel, Lau & Gabriel 1996 fitted their
#: Cole-Cole parameters to (10 Hz to 20 GHz; below about 1 kHz few data: an extrapolation).
COLE_COLE_DATA_HZ = (10.0, 20e9)
#: The highest frequency [Hz] emsim's models are valid for. The solvers are electro-quasi-static
#: (no induction, no wave propagation), which holds while the current paths (tens of mm on a
#: face) are small against the wavelength and the skin depth in tissue. From this module's own
#: muscle row at 10 MHz (0.62 S/m, eps_r 171): skin depth 0.22 m, wavelength 1.18 m, so
#: (|k| L)^2, the relative size of the neglected terms, is about 0.04 over L = 30 mm; it grows
#: as f, so beyond 10 MHz the fields of a facial patch are no longer quasi-static. This bound,
#: not the Cole-Cole data (up to 20 GHz), is the binding one. Below 10 Hz the dispersion tends to
#: its ionic d.c. value (an extrapolation of the fits; pulse trains of 1-10 Hz have harmonics
#: there and are accepted). A waveform whose synthesised spectrum (to 500 / pulse width, see
#: :data:`emsim.models.waveform_checks.TRUNCATION_FACTOR`) reaches beyond this is refused.
QUASI_STATIC_MAX_HZ = 10e6

#: Vacuum permittivity in F/m (CODATA 2018).
EPSILON_0_F_PER_M = 8.8541878128e-12

_GABRIEL_1996_REFERENCE = (
    "Gabriel, Lau & Gabriel 1996, Phys Med Biol 41:2271, doi:10.1088/0031-9155/41/11/003, "
    "Appendix C"
)


def _check_real(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(name, value, "must be a real number")
    if not math.isfinite(value):
        raise InputError(name, value, "must be finite")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColeCole:
    """Four-term Cole-Cole dispersion with ionic conductivity (Gabriel 1996 form).

    ``eps*(w) = eps_inf + sum_n delta_eps_n / (1 + (j w tau_n)^(1 - alpha_n))
    + sigma_ionic / (j w eps0)``, all times in seconds. A term with ``delta_eps_n = 0`` is
    absent, and its ``tau_n_s`` may then be 0 (as Gabriel's blood row has).

    Attributes:
        eps_inf: Relative permittivity at frequencies far above the dispersions, >= 1.
        delta_eps1: Magnitude of dispersion 1 (relative permittivity), >= 0.
        tau1_s: Relaxation time of dispersion 1 in s, > 0 (>= 0 if ``delta_eps1`` is 0).
        alpha1: Broadening of dispersion 1, 0 <= alpha < 1 (0 is a Debye relaxation).
        delta_eps2: Magnitude of dispersion 2.
        tau2_s: Relaxation time of dispersion 2 in s.
        alpha2: Broadening of dispersion 2.
        delta_eps3: Magnitude of dispersion 3.
        tau3_s: Relaxation time of dispersion 3 in s.
        alpha3: Broadening of dispersion 3.
        delta_eps4: Magnitude of dispersion 4.
        tau4_s: Relaxation time of dispersion 4 in s.
        alpha4: Broadening of dispersion 4.
        sigma_ionic_S_per_m: Static ionic conductivity in S/m, >= 0.
        source: Where the parameters come from (reference, table, tissue row); not empty.

    """

    eps_inf: float
    delta_eps1: float
    tau1_s: float
    alpha1: float
    delta_eps2: float
    tau2_s: float
    alpha2: float
    delta_eps3: float
    tau3_s: float
    alpha3: float
    delta_eps4: float
    tau4_s: float
    alpha4: float
    sigma_ionic_S_per_m: float
    source: str

    def __post_init__(self) -> None:
        """Check every parameter; raise :class:`~emsim.errors.InputError` on the first bad one."""
        for f in fields(self):
            if f.name != "source":
                _check_real(f.name, getattr(self, f.name))
        if self.eps_inf < 1.0:
            raise InputError("eps_inf", self.eps_inf, "must be >= 1")
        for n in range(1, 5):
            delta = getattr(self, f"delta_eps{n}")
            tau = getattr(self, f"tau{n}_s")
            alpha = getattr(self, f"alpha{n}")
            if delta < 0.0:
                raise InputError(f"delta_eps{n}", delta, "must be >= 0")
            if delta > 0.0 and tau <= 0.0:
                raise InputError(f"tau{n}_s", tau, f"must be > 0 s when delta_eps{n} > 0")
            if tau < 0.0:
                raise InputError(f"tau{n}_s", tau, "must be >= 0 s")
            if not 0.0 <= alpha < 1.0:
                raise InputError(f"alpha{n}", alpha, "must satisfy 0 <= alpha < 1")
        if self.sigma_ionic_S_per_m < 0.0:
            raise InputError("sigma_ionic_S_per_m", self.sigma_ionic_S_per_m, "must be >= 0 S/m")
        if not isinstance(self.source, str) or not self.source.strip():
            raise InputError("source", self.source, "must be a non-empty string citing the data")

    @classmethod
    def from_gabriel_units(
        cls,
        *,
        eps_inf: float,
        delta_eps1: float,
        tau1_ps: float,
        alpha1: float,
        delta_eps2: float,
        tau2_ns: float,
        alpha2: float,
        sigma_ionic_S_per_m: float,
        delta_eps3: float,
        tau3_us: float,
        alpha3: float,
        delta_eps4: float,
        tau4_ms: float,
        alpha4: float,
        source: str,
    ) -> ColeCole:
        """Build a model from a row of Gabriel 1996, Appendix C, in the table's own units.

        The table gives tau1 in ps, tau2 in ns, tau3 in us and tau4 in ms; they are converted
        to seconds here so that a row can be copied from the paper without unit slips.

        Returns:
            The model with all relaxation times in seconds.

        """
        return cls(
            eps_inf=eps_inf,
            delta_eps1=delta_eps1,
            tau1_s=tau1_ps * 1e-12,
            alpha1=alpha1,
            delta_eps2=delta_eps2,
            tau2_s=tau2_ns * 1e-9,
            alpha2=alpha2,
            delta_eps3=delta_eps3,
            tau3_s=tau3_us * 1e-6,
            alpha3=alpha3,
            delta_eps4=delta_eps4,
            tau4_s=tau4_ms * 1e-3,
            alpha4=alpha4,
            sigma_ionic_S_per_m=sigma_ionic_S_per_m,
            source=source,
        )

    @property
    def terms(self) -> tuple[tuple[float, float, float], ...]:
        """The four dispersions as ``(delta_eps, tau_s, alpha)`` tuples, in order."""
        return tuple(
            tuple(getattr(self, name.format(n)) for name in ("delta_eps{}", "tau{}_s", "alpha{}"))
            for n in range(1, 5)
        )

    def complex_permittivity(self, frequency_Hz: npt.ArrayLike) -> npt.NDArray[np.complex128]:
        """Relative complex permittivity ``eps* = eps' - j eps''`` (Gabriel 1996, Appendix C).

        ``eps*(w) = eps_inf + sum_n delta_eps_n / (1 + (j w tau_n)^(1 - alpha_n))
        + sigma_ionic / (j w eps0)``, with the principal branch
        ``(j x)^b = x^b exp(j pi b / 2)``.

        Args:
            frequency_Hz: Frequency in Hz, a scalar or an array; every value must be > 0.

        Returns:
            The dimensionless complex permittivity, same shape as ``frequency_Hz`` (a numpy
            scalar for a scalar). Its imaginary part is negative (lossy medium).

        Raises:
            InputError: a frequency is not finite and > 0.

        """
        return self._permittivity(_angular_frequencies(frequency_Hz))[()]

    def relative_permittivity(self, frequency_Hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Real part ``eps'`` of the relative complex permittivity.

        Args:
            frequency_Hz: Frequency in Hz (scalar or array, > 0).

        Returns:
            ``Re(eps*)``, same shape as ``frequency_Hz``.

        """
        return self._permittivity(_angular_frequencies(frequency_Hz)).real[()]

    def conductivity_S_per_m(self, frequency_Hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Effective conductivity ``sigma(w) = -w eps0 Im(eps*)`` in S/m.

        It includes the ionic conductivity and the dielectric losses of all four dispersions.

        Args:
            frequency_Hz: Frequency in Hz (scalar or array, > 0).

        Returns:
            The effective conductivity in S/m, same shape as ``frequency_Hz``.

        """
        omega = _angular_frequencies(frequency_Hz)
        return (-omega * EPSILON_0_F_PER_M * self._permittivity(omega).imag)[()]

    def complex_conductivity_S_per_m(
        self, frequency_Hz: npt.ArrayLike
    ) -> npt.NDArray[np.complex128]:
        """Complex conductivity ``sigma*(w) = j w eps0 eps*(w)`` in S/m.

        ``Re(sigma*) = -w eps0 Im(eps*)`` is the effective conductivity and
        ``Im(sigma*) = w eps0 eps'`` the displacement (capacitive) part, so that the current
        density is ``J = sigma* E`` for a time-harmonic field ``E exp(j w t)``.

        Args:
            frequency_Hz: Frequency in Hz (scalar or array, > 0).

        Returns:
            The complex conductivity in S/m, same shape as ``frequency_Hz``.

        """
        omega = _angular_frequencies(frequency_Hz)
        return (1j * omega * EPSILON_0_F_PER_M * self._permittivity(omega))[()]

    def charge_relaxation_time_s(self, frequency_Hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Charge-relaxation time ``tau = eps0 eps' / sigma = -eps' / (w Im(eps*))`` in s.

        Where it is comparable to a pulse width the tissue cannot be treated as purely
        resistive (for Gabriel's wet skin it is about 90 us at 10 kHz).

        Args:
            frequency_Hz: Frequency in Hz (scalar or array, > 0).

        Returns:
            The relaxation time in s, same shape as ``frequency_Hz``.

        """
        omega = _angular_frequencies(frequency_Hz)
        eps = self._permittivity(omega)
        return (-eps.real / (omega * eps.imag))[()]

    def _permittivity(self, omega: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]:
        """Complex permittivity at validated angular frequencies ``omega`` in rad/s."""
        eps = np.full(omega.shape, self.eps_inf, dtype=np.complex128)
        for delta, tau, alpha in self.terms:
            if delta == 0.0:
                continue  # an absent term (its tau may be 0)
            exponent = 1.0 - alpha
            eps += delta / (1.0 + (omega * tau) ** exponent * np.exp(0.5j * np.pi * exponent))
        eps += self.sigma_ionic_S_per_m / (1j * omega * EPSILON_0_F_PER_M)
        return eps


def _angular_frequencies(frequency_Hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Return ``2 pi f`` as a float array, or raise if any ``f`` is not finite and > 0."""
    try:
        f = np.asarray(frequency_Hz, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            "frequency_Hz", frequency_Hz, "must be a number or array of numbers"
        ) from None
    bad = ~(np.isfinite(f) & (f > 0.0))
    if np.any(bad):
        raise InputError("frequency_Hz", float(f[bad].flat[0]), "must be finite and > 0 Hz")
    return 2.0 * np.pi * f


def _gabriel_row(tissue: str, **row: float) -> ColeCole:
    return ColeCole.from_gabriel_units(**row, source=f"{_GABRIEL_1996_REFERENCE}, {tissue}")


# Parameters exactly as printed in Gabriel, Lau & Gabriel 1996, Appendix C (tau1 ps, tau2 ns,
# tau3 us, tau4 ms); converted to seconds by ColeCole.from_gabriel_units. Do not mutate.
# fmt: off
GABRIEL_1996: dict[str, ColeCole] = {
    "skin_dry": _gabriel_row(
        "Skin (dry)",
        eps_inf=4.0,
        delta_eps1=32.0, tau1_ps=7.234, alpha1=0.0,
        delta_eps2=1100.0, tau2_ns=32.481, alpha2=0.20,
        sigma_ionic_S_per_m=0.0002,
        delta_eps3=0.0, tau3_us=159.155, alpha3=0.20,
        delta_eps4=0.0, tau4_ms=15.915, alpha4=0.20,
    ),
    "skin_wet": _gabriel_row(
        "Skin (wet)",
        eps_inf=4.0,
        delta_eps1=39.0, tau1_ps=7.958, alpha1=0.10,
        delta_eps2=280.0, tau2_ns=79.577, alpha2=0.0,
        sigma_ionic_S_per_m=0.0004,
        delta_eps3=3.0e4, tau3_us=1.592, alpha3=0.16,
        delta_eps4=3.0e4, tau4_ms=1.592, alpha4=0.20,
    ),
    "fat": _gabriel_row(
        "Fat (not infiltrated)",
        eps_inf=2.5,
        delta_eps1=3.0, tau1_ps=7.958, alpha1=0.20,
        delta_eps2=15.0, tau2_ns=15.915, alpha2=0.10,
        sigma_ionic_S_per_m=0.010,
        delta_eps3=3.3e4, tau3_us=159.155, alpha3=0.05,
        delta_eps4=1.0e7, tau4_ms=7.958, alpha4=0.01,
    ),
    "muscle": _gabriel_row(
        "Muscle (mixed, unoriented value; fibre split: emsim.models.anisotropy)",
        eps_inf=4.0,
        delta_eps1=50.0, tau1_ps=7.234, alpha1=0.10,
        delta_eps2=7000.0, tau2_ns=353.678, alpha2=0.10,
        sigma_ionic_S_per_m=0.200,
        delta_eps3=1.2e6, tau3_us=318.310, alpha3=0.10,
        delta_eps4=2.5e7, tau4_ms=2.274, alpha4=0.0,
    ),
    "bone_cortical": _gabriel_row(
        "Bone (cortical)",
        eps_inf=2.5,
        delta_eps1=10.0, tau1_ps=13.263, alpha1=0.20,
        delta_eps2=180.0, tau2_ns=79.577, alpha2=0.20,
        sigma_ionic_S_per_m=0.020,
        delta_eps3=5.0e3, tau3_us=159.155, alpha3=0.20,
        delta_eps4=1.0e5, tau4_ms=15.915, alpha4=0.0,
    ),
    "blood": _gabriel_row(
        "Blood",
        eps_inf=4.0,
        delta_eps1=56.0, tau1_ps=8.377, alpha1=0.10,
        delta_eps2=5200.0, tau2_ns=132.629, alpha2=0.10,
        sigma_ionic_S_per_m=0.700,
        delta_eps3=0.0, tau3_us=0.0, alpha3=0.0,
        delta_eps4=0.0, tau4_ms=0.0, alpha4=0.0,
    ),
}
# fmt: on
