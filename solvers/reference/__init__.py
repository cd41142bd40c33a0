"""Closed-form solutions the solvers are verified against (plain numpy, SI units).

* :mod:`.electric`: layered media in series, the disk electrode on a half-space and on a grounded
  slab, the RC contact's periodic response.
* :mod:`.bioheat`: 1-D Pennes (finite slab, uniform heating).
"""

from . import bioheat, electric

__all__ = ["bioheat", "electric"]
