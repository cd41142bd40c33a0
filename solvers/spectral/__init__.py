"""The response to a waveform: frequency-domain solves, the rational sweep, Fourier synthesis.

* :mod:`.frequency`: the frequency-domain problem in real 2x2 block form.
* :mod:`.rational`: set-valued AAA rational models of sampled responses.
* :mod:`.sweep`: the adaptive frequency sweep of a case (:class:`FrequencyResponse`).
* :mod:`.synthesis`: Fourier synthesis of the periodic steady state.
* :mod:`.waveform`: the waveform lead field and its metrics, per unit peak current.
* :mod:`.joule`, :mod:`.joule_products`: the cycle-mean Joule heat of a waveform (the source of
  the thermal problem) and the cycle-mean products it is built from.
"""

from .frequency import FrequencyProblem
from .joule import CycleHeat
from .sweep import FrequencyResponse, waveform_response
from .waveform import ActivationMetrics, WaveformLeadField, WaveformMetrics

__all__ = [
    "ActivationMetrics",
    "CycleHeat",
    "FrequencyProblem",
    "FrequencyResponse",
    "WaveformLeadField",
    "WaveformMetrics",
    "waveform_response",
]
