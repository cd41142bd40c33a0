"""Plain, frozen data with units and sources: tissues, electrodes, channels, cases.

Nothing here imports DOLFINx, gmsh or any other part of emsim but :mod:`emsim.errors`.
"""

from .case import (
    Case,
    Layer,
    MeshSettings,
    Patch,
    SolverSettings,
    ThermalSettings,
    load_case,
    parse_case,
)
from .electrodes import Channel, Contact, Electrode, GelPad
from .tissues import ThermalProperties, Tissue, library

__all__ = [
    "Case",
    "Channel",
    "Contact",
    "Electrode",
    "GelPad",
    "Layer",
    "MeshSettings",
    "Patch",
    "SolverSettings",
    "ThermalProperties",
    "ThermalSettings",
    "Tissue",
    "library",
    "load_case",
    "parse_case",
]
