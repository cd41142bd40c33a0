"""The per-electrode output figures a 510(k) table and IEC 60601-2-10 review read.

Per electrode E, from its share s_E of its channel's current (the consistent d.c. split between
tied electrodes, s = 1 for a lone anode or cathode; electrodes no channel drives are left out):

* ``rms_current_density_mA_per_cm2``: s I_rms / A_E, I_rms at the plateau of the on/off cycle (the
  pulse train while on: the output IEC 60601-2-10 assesses, never diluted by the off time), A_E
  the footprint area (IEC 60601-2-10's instructions for use advise attention above 2 mA/cm^2);
  the one definition the device rules use too (``emsim.device.rules``);
* ``rms_current_density_local_peak_mA_per_cm2``: the disc-averaged peak of the normal current
  density under E's footprint (1 mm disc, d.c. distribution) x I_rms / I (plateau): where the
  r.m.s. current density is highest, at the pad rim;
* ``charge_per_phase_uC`` and ``charge_density_per_phase_uC_per_cm2``: s Q_phase and / A_E;
* ``average_power_density_W_per_cm2``: the cycle-mean electrical power of E's channel over A_E
  (FDA powered muscle stimulator guidance: the maximum average power density; a pad shares its
  channel's power with the other pad, so this bounds it);
* ``net_dc_current_uA``: s x the channel's mean current over the cycle, signed (+ into the body
  at an anode): the d.c. component IEC 60601-2-10 requires declared.

For a d.c. case I_rms = I, a phase is the whole current: charge per phase is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...models.case import Case
from ..records import Absent, metric
from .metrics import ElectricLeadField

__all__ = ["IECFigures", "iec_figures"]

_CM2 = 1e-4  # m^2 per cm^2


@dataclass(frozen=True)
class IECFigures:
    """Output figures per electrode (by electrode name) at given channel currents."""

    rms_current_density_mA_per_cm2: Mapping[str, float] = metric(
        "mA/cm^2", "per electrode: its share of the r.m.s. current at the plateau (the pulse train while on) over its "
        "footprint area",
        label="r.m.s. current density",
    )  # fmt: skip
    rms_current_density_local_peak_mA_per_cm2: Mapping[str, float] = metric(
        "mA/cm^2", "per electrode: disc-averaged (1 mm) peak normal current density under it x I_rms / I (plateau)",
        label="r.m.s. current density, local peak",
    )  # fmt: skip
    charge_per_phase_uC: Mapping[str, Any] | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "uC", "per electrode: its share of the charge of one phase", label="charge per phase"
    )
    charge_density_per_phase_uC_per_cm2: Mapping[str, Any] | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "uC/cm^2", "per electrode: charge per phase over its footprint area"
    )
    average_power_density_W_per_cm2: Mapping[str, float] = metric(
        "W/cm^2", "per electrode: cycle-mean electrical power of its channel over its footprint area",
        label="average power density",
    )  # fmt: skip
    net_dc_current_uA: Mapping[str, float] = metric(
        "uA", "per electrode: mean current over the whole cycle, + into the body", label="net d.c. current"
    )


def iec_figures(
    case: Case, electric: ElectricLeadField, current: np.ndarray, channel_power_W: Mapping[str, float]
) -> IECFigures:
    """The figures at channel (peak) currents [A].

    Args:
        case: the case (electrode areas, waveform).
        electric: the d.c. lead field (current split, skin current density).
        current: channel currents [A], case order.
        channel_power_W: cycle-mean electrical power of each channel [W].
    """
    w = case.waveform
    pulsed = w is not None and w.shape != "dc"
    rms_ratio = w.rms_pulse_train(1.0) if w is not None else 1.0  # I_rms / I at the plateau
    if pulsed:
        mean_ratio = w.net_charge_per_period_C(1.0) / w.period_s * w.mean_envelope
    else:
        mean_ratio = w.mean_envelope if w is not None else 1.0
    share = electric.currents_A_per_A  # (n_electrodes, n_channels): the consistent d.c. split
    rms, peak, power, dc, q, qd = {}, {}, {}, {}, {}, {}
    for i, e in enumerate(case.electrodes):
        c = int(np.argmax(np.abs(share[i])))
        if abs(share[i, c]) < 1e-9:
            continue  # floating: no channel drives it
        s, amp = share[i, c], current[c]
        area = e.area_m2 / _CM2
        rms[e.name] = abs(s * amp) * rms_ratio * 1e3 / area
        local, _ = electric.disc.peak_where(np.abs(electric.skin_jn_per_A[:, c] * amp), electric.skin_under == e.name)
        peak[e.name] = local * rms_ratio * 0.1  # A/m^2 -> mA/cm^2
        power[e.name] = channel_power_W[case.channels[c].name] / area
        dc[e.name] = s * amp * mean_ratio * 1e6 + 0.0  # no -0.0
        if pulsed:
            q[e.name] = abs(s) * w.charge_per_phase_C(amp) * 1e6
            qd[e.name] = q[e.name] / area
    no_phase = Absent("a d.c. case has no phases")
    return IECFigures(
        rms_current_density_mA_per_cm2=rms,
        rms_current_density_local_peak_mA_per_cm2=peak,
        charge_per_phase_uC=q if pulsed else no_phase,
        charge_density_per_phase_uC_per_cm2=qd if pulsed else no_phase,
        average_power_density_W_per_cm2=power,
        net_dc_current_uA=dc,
    )
