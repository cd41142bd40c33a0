r"""Fibre anisotropy of skeletal muscle: along- and across-fibre conductivities from a mixed value.

Gabriel, Lau & Gabriel 1996 give one *mixed, unoriented* muscle conductivity sigma_iso(f) (0.20 S/m
at 10 Hz). Measured muscle conducts far better along its fibres than across them: about
0.04-0.1 S/m across and 0.35-0.8 S/m along at low frequency (Gielen 1984, Med Biol Eng Comput
22:569; Epstein & Foster 1983, Med Biol Eng Comput 21:51), a ratio of 4-10 that falls toward 1
near 1 MHz, where both approach about 0.8 S/m (Epstein & Foster 1983). The mixed value is
therefore split about its geometric mean::

    r(f)         = 1 + (r0 - 1) / (1 + (f / f_c)^p)
    sigma_along  = sigma_iso * sqrt(r(f))
    sigma_across = sigma_iso / sqrt(r(f))

so that sigma_along / sigma_across = r(f) and sigma_along * sigma_across = sigma_iso^2: the
geometric mean of the along and across values is sigma_iso. r0 is the low-frequency ratio (the layer's
``anisotropy_ratio``; default 5, within the measured 4-10). f_c = 100 kHz and p = 2 are an
ASSUMPTION shaped on Epstein & Foster's description (no data points at hand): r stays within 1 %
of r0 up to 10 kHz, keeps 80 % of its excess at 50 kHz (Aaron 1997, Phys Med Biol 42:1245, in vivo
anisotropy at 50 kHz) and is within 1 % of the way to 1 at 1 MHz. With Gabriel's 0.20 S/m at
10 Hz and r0 = 5 this gives 0.089 S/m across and 0.45 S/m along.

A complex admittivity sigma* (waveform solves) is scaled by the same real factors sqrt(r(f)).
A constant-conductivity material declares itself frequency independent, so its ratio is r0 at
every frequency (``frequency_dependent=False``); a dispersive tissue's ratio follows r(f).

The numbers and their sources live in ``models/data/anisotropy.toml``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from ..errors import InputError

__all__ = [
    "FibreAnisotropy",
    "conductivity_tensor",
    "fibre_conductivities",
    "muscle",
]


@dataclass(frozen=True, slots=True)
class FibreAnisotropy:
    """Frequency-dependent along/across conductivity ratio of a fibrous tissue.

    Attributes:
        low_frequency_ratio: r0, along over across at low frequency, > 0.
        corner_frequency_Hz: f_c [Hz] where half of the excess r0 - 1 is left, > 0.
        rolloff_exponent: p, steepness of the fall toward 1, > 0.
        source: where the numbers come from.
    """

    low_frequency_ratio: float
    corner_frequency_Hz: float
    rolloff_exponent: float
    source: str = ""

    def __post_init__(self) -> None:
        """Check every number is finite and > 0."""
        for name in ("low_frequency_ratio", "corner_frequency_Hz", "rolloff_exponent"):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value <= 0:
                raise InputError(name, value, "must be a finite number > 0")

    def ratio(self, frequency_Hz: float, *, frequency_dependent: bool = True) -> float:
        """Along over across, r(f) = 1 + (r0 - 1) / (1 + (f / f_c)^p).

        Args:
            frequency_Hz: frequency [Hz], >= 0.
            frequency_dependent: False returns r0 (a constant-conductivity material).
        """
        r0 = self.low_frequency_ratio
        if not frequency_dependent:
            return r0
        if not (math.isfinite(frequency_Hz) and frequency_Hz >= 0.0):
            raise InputError("frequency_Hz", frequency_Hz, "must be finite and >= 0 Hz")
        return 1.0 + (r0 - 1.0) / (
            1.0 + (frequency_Hz / self.corner_frequency_Hz) ** self.rolloff_exponent
        )

    def with_ratio(self, low_frequency_ratio: float) -> FibreAnisotropy:
        """The same roll-off with another low-frequency ratio (a layer's ``anisotropy_ratio``)."""
        return FibreAnisotropy(
            low_frequency_ratio, self.corner_frequency_Hz, self.rolloff_exponent, self.source
        )


@cache
def muscle() -> FibreAnisotropy:
    """Skeletal muscle's anisotropy from ``models/data/anisotropy.toml`` (sources there)."""
    text = resources.files("emsim.models").joinpath("data/anisotropy.toml").read_text("utf-8")
    row = tomllib.loads(text)["muscle"]
    return FibreAnisotropy(
        low_frequency_ratio=float(row["low_frequency_ratio"]),
        corner_frequency_Hz=float(row["corner_frequency_Hz"]),
        rolloff_exponent=float(row["rolloff_exponent"]),
        source=f"{row['low_frequency_ratio_source']}; roll-off: {row['rolloff_source']}",
    )


def fibre_conductivities(
    sigma_iso: complex,
    frequency_Hz: float,
    low_frequency_ratio: float,
    *,
    frequency_dependent: bool = True,
) -> tuple[complex, complex, float]:
    """Along- and across-fibre conductivities from the mixed (isotropic) value, geometric mean kept.

    Args:
        sigma_iso: the tissue's isotropic conductivity [S/m], real or complex admittivity.
        frequency_Hz: frequency [Hz] at which ``sigma_iso`` was evaluated.
        low_frequency_ratio: r0, the layer's ``anisotropy_ratio``.
        frequency_dependent: False for a constant-conductivity material (ratio r0 throughout).

    Returns:
        ``(sigma_along, sigma_across, r)`` with sigma_along = sigma_iso sqrt(r) and
        sigma_across = sigma_iso / sqrt(r), same type as ``sigma_iso``.
    """
    model = muscle().with_ratio(low_frequency_ratio)
    r = model.ratio(frequency_Hz, frequency_dependent=frequency_dependent)
    k = math.sqrt(r)
    return sigma_iso * k, sigma_iso / k, r


def conductivity_tensor(
    sigma_iso: complex,
    frequency_Hz: float,
    low_frequency_ratio: float,
    fibre_direction: Sequence[float] | None,
    *,
    frequency_dependent: bool = True,
) -> np.ndarray:
    """3x3 conductivity tensor [S/m]: sigma_across (I - f f^T) + sigma_along f f^T.

    An isotropic layer (``fibre_direction`` None) gets ``sigma_iso * I``. See
    :func:`fibre_conductivities` for the arguments.
    """
    if fibre_direction is None:
        return sigma_iso * np.eye(3)
    along, across, _ = fibre_conductivities(
        sigma_iso, frequency_Hz, low_frequency_ratio, frequency_dependent=frequency_dependent
    )
    f = np.asarray(fibre_direction, dtype=float)
    f = f / np.linalg.norm(f)
    ff = np.outer(f, f)
    return across * (np.eye(3) - ff) + along * ff
