r"""Comfort: where the skin feels the pulse before the muscle contracts.

Facial stimulation is limited by what the skin feels before the target muscle contracts. Next to
the motor estimate (:mod:`emsim.solvers.physiology.activation`) this module estimates when the cutaneous
afferents in the dermis begin to fire, and reports both thresholds and their ratio
(:class:`ComfortMetrics`): a design with a lower motor / sensory threshold ratio reaches the
muscle with less sensation, i.e. is the better electrode.

Physics and assumptions.

* Where: the dermis is the case's ``skin`` layer(s) (the library's living skin, epidermis and
  dermis, below the stratum corneum, which is the electrode's contact impedance). Cutaneous
  afferent terminals (Merkel, Meissner, free nerve endings) lie throughout it.
* Orientation: the terminals branch in every direction, so the field that drives them is taken as
  the field MAGNITUDE |E| (the largest component along any direction; an upper bound on the
  field along any one terminal, so the sensory threshold is, if anything, underestimated).
* Strength-duration: Weiss, E_th(PW) = E_rh (1 + c / PW) with the sensory-axon chronaxie
  c = 665 us (strength-duration time constant 665 +- 182 us against 459 +- 126 us for motor
  axons; Mogyoros, Kiernan & Burke 1996, Brain 119:439).
* Rheobase: E_rh = 8.3 V/m is an ESTIMATE, labelled as such and kept a parameter
  (``[activation] sensory_rheobase_field_V_per_m``). No measured rheobase FIELD of facial
  cutaneous terminals is at hand. The estimate assumes that sensory and motor axons need the same
  charge for a very short pulse (the Weiss minimum charge E_rh c, set by the node's passive
  properties), and that the sensory axons' longer time constant (their larger persistent Na
  conductance, the explanation Mogyoros et al. give) lowers their rheobase in proportion:
  E_rh,s = E_rh,m c_m / c_s = 12 x 460 / 665 = 8.3 V/m, with the motor rheobase field estimate of
  :data:`emsim.solvers.physiology.activation.DEFAULT_RHEOBASE_FIELD_V_PER_M` (itself about a factor 2
  uncertain). At 250 us this gives 30 V/m sensory against 34 V/m motor.
* Onset: a response BEGINS when a stated small volume (``[activation] onset_volume_mm3``,
  default 1 mm^3, the same for both) is above its threshold. Fields are linear in the current,
  so the threshold current is E_th / q with q the field per ampere at which the cumulative volume
  of the cells, strongest first, reaches that volume (:func:`emsim.solvers.physiology.activation.
  current_for_volume_A`); the field is the largest over the pulse instants (dense at the phase
  edges, where a capacitive contact crowds the current at the pad rim). The motor threshold uses
  the field ALONG the fibres of the target muscle, as the activation estimate does.

Limitations: the thresholds are estimates for comparing designs (ratios between designs are more
robust than either current), not predictions of perception; the onset over 1 mm^3 next to a pad
rim depends on the mesh (coarse meshes smooth the rim's peak, raising the sensory threshold).
A d.c. case has no pulse width: its comfort record is absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...meshes.patch import PatchMesh
from ...models.case import Case
from ...models.tissues import library
from ..records import Absent, metric
from . import activation as act

__all__ = [
    "DEFAULT_SENSORY_CHRONAXIE_S",
    "DEFAULT_SENSORY_RHEOBASE_FIELD_V_PER_M",
    "ComfortMetrics",
    "comfort_metrics",
    "dermis_cells",
    "dermis_layers",
    "sensory_model",
]

#: Chronaxie [s] of sensory axons: strength-duration time constant 665 +- 182 us (Mogyoros 1996).
DEFAULT_SENSORY_CHRONAXIE_S = 665e-6
#: Rheobase field [V/m] of the cutaneous afferent terminals: ESTIMATE, equal short-pulse charge
#: with the motor estimate, 12 V/m x 460 us / 665 us (see the module docstring).
DEFAULT_SENSORY_RHEOBASE_FIELD_V_PER_M = round(
    act.DEFAULT_RHEOBASE_FIELD_V_PER_M * act.DEFAULT_CHRONAXIE_S / DEFAULT_SENSORY_CHRONAXIE_S, 1
)


def dermis_layers(case: Case) -> list[str]:
    """Labels of the layers of the library's ``skin`` (living epidermis and dermis)."""
    skin = library().get("skin")
    return [layer.label for layer in case.layers if layer.tissue == skin]


def dermis_cells(case: Case, patch: PatchMesh) -> np.ndarray:
    """Owned local cells of the dermis layers, sorted."""
    n_owned = patch.mesh.topology.index_map(3).size_local
    cells = np.concatenate(
        [patch.cell_tags.find(patch.volumes[f"layer:{m}"]) for m in dermis_layers(case)] or [np.empty(0, np.int32)]
    )
    return np.sort(cells[cells < n_owned])


def sensory_model(case: Case) -> act.StrengthDuration:
    """The sensory strength-duration model of a case (its rheobase, the sensory chronaxie)."""
    return act.StrengthDuration(
        rheobase_field_V_per_m=case.activation.sensory_rheobase_field_V_per_m,
        chronaxie_s=DEFAULT_SENSORY_CHRONAXIE_S,
    )


@dataclass(frozen=True)
class ComfortMetrics:
    """Sensory and motor thresholds at the case's pulse width, and their ratio."""

    sensory_threshold_field_V_per_m: float = metric(
        "V/m", "sensory strength-duration threshold of |E| in the dermis at the pulse width (Weiss, chronaxie "
        "665 us, Mogyoros 1996; rheobase an ESTIMATE, [activation] sensory_rheobase_field_V_per_m)",
    )  # fmt: skip
    motor_threshold_field_V_per_m: float = metric(
        "V/m", "motor strength-duration threshold of the field along the fibres (activation_threshold_field)"
    )
    onset_volume_mm3: float = metric("mm^3", "the volume above threshold at which a response begins ([activation])")
    sensory_threshold_current_A: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "A", "first channel's peak current (others in proportion) at which onset_volume of dermis (skin "
        "layers) has |E| at the pulse above the sensory threshold: where sensation begins",
        label="sensory threshold current", scale=1e3, shown_unit="mA",
    )  # fmt: skip
    motor_threshold_current_A: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "A", "first channel's peak current (others in proportion) at which onset_volume of target muscle has "
        "its fibre field at the pulse above the motor threshold: where contraction begins",
        label="motor threshold current", scale=1e3, shown_unit="mA",
    )  # fmt: skip
    motor_to_sensory_threshold_ratio: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "-", "motor_threshold_current / sensory_threshold_current: below 1 the muscle responds before the skin "
        "feels; lower is a more comfortable electrode", label="motor / sensory threshold ratio",
    )  # fmt: skip


def comfort_metrics(
    *, pulse_width_s: float, first_current_A: float, dermis_field_A: np.ndarray | None, dermis_volumes_m3: np.ndarray,
    fibre_field_A: np.ndarray | None, muscle_volumes_m3: np.ndarray, onset_volume_m3: float,
    sensory: act.StrengthDuration, motor: act.StrengthDuration,
) -> ComfortMetrics:  # fmt: skip
    """The comfort record from the per-cell driving fields at the channel currents.

    Args:
        pulse_width_s: the waveform's (first) phase width [s].
        first_current_A: the first channel's current [A] (the thresholds are stated in it).
        dermis_field_A: per dermis cell, the largest |E| [V/m] over the pulse instants at the
            currents (None: no dermis layer).
        dermis_volumes_m3: their volumes.
        fibre_field_A: per target-muscle cell, the largest |E . f| [V/m] at the currents (None:
            no target).
        muscle_volumes_m3: their volumes.
        onset_volume_m3: the volume at which a response begins [m^3].
        sensory: the sensory strength-duration model.
        motor: the motor strength-duration model (the activation estimate's).
    """
    e_s = sensory.threshold_field_V_per_m(pulse_width_s)
    e_m = motor.threshold_field_V_per_m(pulse_width_s)

    def onset(field: np.ndarray | None, volumes: np.ndarray, threshold: float, what: str) -> float | Absent:
        if field is None or not len(volumes):
            return Absent(f"the case has no {what} layer")
        if first_current_A == 0:
            return Absent("the first channel carries no current: the currents are scaled with it")
        if onset_volume_m3 > float(volumes.sum()):
            return Absent(f"the onset volume exceeds the {what} layers' volume in the patch")
        i = act.current_for_volume_A(field / abs(first_current_A), volumes, threshold, onset_volume_m3)
        return i if math.isfinite(i) else Absent(f"the field in the {what} is zero")

    i_s = onset(dermis_field_A, dermis_volumes_m3, e_s, "dermis (skin)")
    i_m = onset(fibre_field_A, muscle_volumes_m3, e_m, "target muscle")
    if isinstance(i_s, Absent) or isinstance(i_m, Absent):
        ratio: float | Absent = Absent("needs both thresholds")
    else:
        ratio = i_m / i_s
    return ComfortMetrics(
        sensory_threshold_field_V_per_m=e_s,
        motor_threshold_field_V_per_m=e_m,
        onset_volume_mm3=onset_volume_m3 * 1e9,
        sensory_threshold_current_A=i_s,
        motor_threshold_current_A=i_m,
        motor_to_sensory_threshold_ratio=ratio,
    )
