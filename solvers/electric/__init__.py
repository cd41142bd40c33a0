"""Electro-quasistatics at d.c.: the electrode system, the problem, and what is read off it.

* :mod:`.problem`: the unit-current solves per channel (:class:`ElectricProblem`).
* :mod:`.electrodes`, :mod:`.conductivity`: equipotential electrodes with their contact, and the
  conductivity tensors of every tagged volume.
* :mod:`.skin`, :mod:`.metrics`, :mod:`.exclusion`, :mod:`.iec`: the skin current density, the
  electric metrics, the exclusion-zone fields and the per-electrode IEC figures, per unit current.
* :mod:`.axisymmetric`: the (r, z) solver for rotationally symmetric layouts.
* :mod:`.points`: field values at chosen points of a distributed mesh.
"""

from .axisymmetric import AxisymmetricResult, Ring, solve_axisymmetric
from .exclusion import ExclusionMetrics, ZoneLeadField
from .iec import IECFigures, iec_figures
from .metrics import ElectricLeadField, ElectricMetrics
from .problem import ChannelSolution, ElectricProblem

__all__ = [
    "AxisymmetricResult",
    "ChannelSolution",
    "ElectricLeadField",
    "ElectricMetrics",
    "ElectricProblem",
    "ExclusionMetrics",
    "IECFigures",
    "Ring",
    "ZoneLeadField",
    "iec_figures",
    "solve_axisymmetric",
]
