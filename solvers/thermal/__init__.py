"""Heating over a treatment session: Pennes bioheat and thermal dose.

* :mod:`.pennes_data`: Pennes material constants, the record of a run, the CEM43 dose rate.
* :mod:`.pennes`: the transient Pennes problem on a tagged mesh (generic).
* :mod:`.session`: a case's heating over its session, from the cycle-mean Joule heat.
"""

from .pennes import PennesProblem
from .pennes_data import PennesMaterial, PennesRun, cem43_rate
from .session import ThermalMetrics, ThermalResult, session_heating

__all__ = [
    "PennesMaterial",
    "PennesProblem",
    "PennesRun",
    "ThermalMetrics",
    "ThermalResult",
    "cem43_rate",
    "session_heating",
]
