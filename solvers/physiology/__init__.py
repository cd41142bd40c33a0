"""What the tissue does with the field: motor activation of the target muscle, skin sensation.

* :mod:`.activation`: fibre field, activating function and strength-duration (motor threshold).
* :mod:`.sensory`: the sensory threshold in the dermis and the comfort record.
* :mod:`.phosphene`: the ICNIRP 2010 weighted-peak phosphene criterion and its population factor
  (the physics only: no case models a globe yet).
"""

from .activation import StrengthDuration
from .sensory import ComfortMetrics

__all__ = ["ComfortMetrics", "StrengthDuration"]
