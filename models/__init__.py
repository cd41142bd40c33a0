"""Plain, frozen data with units and sources: tissues, electrodes, channels, cases.

Nothing here imports DOLFINx, gmsh or any other part of emsim but :mod:`emsim.errors`.
"""

from .case import Case, Layer, MeshSettings, Patch, Probe, SolverSettings, ThermalSettings
from .case_file import load_case, parse_case, parse_case_text, read_case_table
from .electrodes import Channel, Contact, Electrode, GelPad
from .exclusion import ExclusionZone
from .shapes import Disk, RoundedRectangle, Shape
from .tissues import ThermalProperties, Tissue, library
from .waveforms import Waveform

__all__ = [
    "Case",
    "Channel",
    "Contact",
    "Disk",
    "Electrode",
    "ExclusionZone",
    "GelPad",
    "Layer",
    "MeshSettings",
    "Patch",
    "Probe",
    "RoundedRectangle",
    "Shape",
    "SolverSettings",
    "ThermalProperties",
    "ThermalSettings",
    "Tissue",
    "Waveform",
    "library",
    "load_case",
    "parse_case",
    "parse_case_text",
    "read_case_table",
]
