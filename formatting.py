"""How output numbers are written for a reader: significant digits and a unit, always.

Pictures, HTML pages and the command line show a number with the digits it deserves (3-4
significant: a simulated figure is not known to 9 digits) and its unit. Machine-readable files
(JSON, CSV) keep their own full precision; this module is only for text a person reads.

Examples: ``sig(0.808501247)`` -> ``"0.8085"``, ``quantity(59.123, "A/m^2")`` -> ``"59.1 A/m^2"``,
``current(0.0123)`` -> ``"12.3 mA"``, ``headroom(0.2345)`` -> ``"+23.4 %"``.
"""

from __future__ import annotations

import math

__all__ = ["current", "headroom", "quantity", "ratio", "sig"]

DIGITS = 3
"""Significant digits of a reported figure (a picture label, an HTML cell)."""


def sig(value: float, digits: int = DIGITS) -> str:
    """``value`` with ``digits`` significant digits, plain notation from 1e-3 to 1e5, else exponent.

    Non-finite values read ``inf``, ``-inf`` and ``nan``; a negative zero reads ``0``.
    """
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0.0:
        return "0"
    if not 1 <= digits <= 17:
        from .errors import InputError

        raise InputError("digits", digits, "1 to 17 significant digits")
    rounded = float(f"{x:.{digits - 1}e}")
    exponent = math.floor(math.log10(abs(rounded)))  # 9.996 -> 10.0 moves up a decade
    if -3 <= exponent < 5:
        decimals = max(digits - 1 - exponent, 0)
        return f"{rounded:.{decimals}f}"
    return f"{rounded:.{digits - 1}e}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def quantity(value: float, unit: str, digits: int = DIGITS) -> str:
    """``value`` with its unit: ``"59.1 A/m^2"`` (a dimensionless unit ``"-"`` is left out)."""
    text = sig(value, digits)
    return text if unit in ("", "-") else f"{text} {unit}"


def current(value_A: float, digits: int = DIGITS) -> str:
    """A current [A] in the unit a stimulator engineer reads: mA from 1 mA, uA below, A from 1 A."""
    x = float(value_A)
    if not math.isfinite(x):
        return quantity(x, "mA", digits)
    a = abs(x)
    if a >= 1.0:
        return quantity(x, "A", digits)
    if a >= 1e-3 or a == 0.0:
        return quantity(x * 1e3, "mA", digits)
    return quantity(x * 1e6, "uA", digits)


def headroom(fraction: float, digits: int = DIGITS) -> str:
    """Headroom in current I_max_safe / I - 1 as a signed percentage: ``"+23.4 %"``, ``"-100 %"``."""
    x = float(fraction)
    if not math.isfinite(x):
        return "no limit" if x > 0 else sig(x)
    if abs(x) < 5e-6:  # within the bisection's tolerance of the limit: at it
        return "0 %"
    text = sig(x * 100.0, digits)
    return f"{'+' if x >= 0 else ''}{text} %"


def ratio(value: float, digits: int = DIGITS) -> str:
    """A ratio to a limit or a mean: ``"1224x"``, ``"0.808x"``."""
    return f"{sig(value, digits)}x"
