"""The data of the Pennes bioheat problem: material constants, the record of a run, thermal dose.

Thermal dose (Sapareto & Dewey 1984, Int J Radiat Oncol Biol Phys 10:787):
``CEM43 = sum dt R^(43 - T)``, R = 0.5 at or above 43 C and 0.25 below, in minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ...errors import InputError
from ...models.tissues import library

__all__ = ["PennesMaterial", "PennesRun", "blood_heat_capacity_J_per_m3K", "cem43_of_history", "cem43_rate"]


def cem43_rate(temperature_C: np.ndarray | float) -> np.ndarray:
    """Thermal-dose rate R^(43 - T): equivalent minutes at 43 C per minute at T.

    R = 0.5 at or above 43 C and 0.25 below (Sapareto & Dewey 1984, Int J Radiat Oncol Biol
    Phys 10:787).

    Args:
        temperature_C: temperature(s) [C].

    Returns:
        The dose rate [min/min], same shape as the input.

    """
    T = np.asarray(temperature_C, dtype=float)
    return np.where(T >= 43.0, 0.5, 0.25) ** (43.0 - T)


def cem43_of_history(T_history: np.ndarray, dt_s: float) -> np.ndarray:
    """CEM43 [min] per column of a (times, points) temperature history (trapezoidal rule)."""
    rate = cem43_rate(T_history)
    if len(rate) < 2:
        return np.zeros(rate.shape[1:])
    return (dt_s / 60.0) * (0.5 * rate[0] + rate[1:-1].sum(axis=0) + 0.5 * rate[-1])


def blood_heat_capacity_J_per_m3K() -> float:
    """Volumetric heat capacity of blood rho_b c_b [J/(m^3 K)], from the material library."""
    blood = library()["blood"].thermal
    if blood is None:
        raise InputError("material.blood", "no thermal properties", "the library's blood with its thermal data")
    return blood.density_kg_per_m3 * blood.heat_capacity_J_per_kgK




class ThermalConstants(Protocol):
    """The five constants a Pennes material is read for (units as in :class:`PennesMaterial`).

    :class:`PennesMaterial` has them, and so has :class:`emsim.models.ThermalProperties`.
    """

    @property
    def density_kg_per_m3(self) -> float: ...
    @property
    def heat_capacity_J_per_kgK(self) -> float: ...
    @property
    def thermal_conductivity_W_per_mK(self) -> float: ...
    @property
    def perfusion_per_s(self) -> float: ...
    @property
    def metabolic_heat_W_per_m3(self) -> float: ...


@dataclass(frozen=True, slots=True)
class PennesMaterial:
    """Thermal constants of one volume for the Pennes equation, SI.

    Any object with these five attribute names works where a material is expected, e.g.
    :class:`emsim.models.ThermalProperties`, whose ``perfusion_per_s`` converts the IT'IS
    perfusion [mL/(min kg)] to w_b [1/s] = perfusion * rho * 1e-6 / 60 and whose
    ``metabolic_heat_W_per_m3`` is rho * q_met [W/kg].

    Attributes:
        density_kg_per_m3: rho [kg/m^3], > 0.
        heat_capacity_J_per_kgK: c [J/(kg K)], > 0.
        thermal_conductivity_W_per_mK: k [W/(m K)], > 0.
        perfusion_per_s: volumetric blood perfusion w_b [1/s], >= 0.
        metabolic_heat_W_per_m3: Q_met [W/m^3], >= 0.

    """

    density_kg_per_m3: float
    heat_capacity_J_per_kgK: float
    thermal_conductivity_W_per_mK: float
    perfusion_per_s: float = 0.0
    metabolic_heat_W_per_m3: float = 0.0

    def __post_init__(self) -> None:
        """Check every value is physical."""
        for name in (
            "density_kg_per_m3",
            "heat_capacity_J_per_kgK",
            "thermal_conductivity_W_per_mK",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise InputError(name, value, "must be a finite number > 0")
        for name in ("perfusion_per_s", "metabolic_heat_W_per_m3"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise InputError(name, value, "must be a finite number >= 0")

    @classmethod
    def of(cls, material: ThermalConstants) -> PennesMaterial:
        """Convert a ThermalProperties-like object (same attribute names) to a PennesMaterial."""
        if isinstance(material, cls):
            return material
        return cls(
            density_kg_per_m3=float(material.density_kg_per_m3),
            heat_capacity_J_per_kgK=float(material.heat_capacity_J_per_kgK),
            thermal_conductivity_W_per_mK=float(material.thermal_conductivity_W_per_mK),
            perfusion_per_s=float(material.perfusion_per_s),
            metabolic_heat_W_per_m3=float(material.metabolic_heat_W_per_m3),
        )


@dataclass
class PennesRun:
    """The record of one time-stepped run of a :class:`PennesProblem`.

    Arrays indexed by time hold ``steps + 1`` values, from t = 0. Maxima are global (identical
    on every rank); per-node arrays and Functions are distributed like the mesh.

    Attributes:
        times_s: time of each record [s].
        time_step_s: the step used [s] (the requested one, shortened so that a whole number of
            steps fills the session).
        skin_max_C: maximum temperature over the skin (monitored) surface [C] (nan without one).
        rise_max_K: maximum of T - T0 over the monitored volumes [K].
        cem43_max_min: maximum accumulated CEM43 over the monitored volumes [min].
        final: the temperature at the end [C] (a Function).
        rise_peak: per node, the largest T - T0 over the run [K] (a Function).
        cem43: per node, the accumulated CEM43 [min] (a Function).
        probe_history_C: (times, probes) temperatures [C] at the probe dofs given to
            :meth:`PennesProblem.run` (owned dofs of this rank).

    """

    times_s: np.ndarray
    time_step_s: float
    skin_max_C: np.ndarray
    rise_max_K: np.ndarray
    cem43_max_min: np.ndarray
    final: Any
    rise_peak: Any
    cem43: Any
    probe_history_C: np.ndarray
