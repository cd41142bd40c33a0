"""The anatomy spread a preset is validated over: a small designed set of head cases.

For each site the head is used on (``[device] sites``; none: the head case's own stack):

* the nominal case (every layer at its site's nominal thickness, the contact as in the head);
* with ``spread = "corners"``, the 2 x 2 corners {every layer at its minimum, every layer at its
  maximum} x {contact resistance x ``contact_factors``} (x0.5 and x2 by default).

Why these corners. Thin layers put the pads' current closer to the target and the skin surface
current crowds more at the pad rim (the current density rule); thick layers raise the path
resistance and so the electrode voltage (the compliance rule) and the Joule heat in the skin.
A lower contact resistance lets the current crowd at the pad rim (the contact no longer evens
the current out over the pad: the local-peak rule is worst there); a higher one raises the
electrode voltage and the heat dissipated in the contact (compliance, temperature). No single
direction is worst for every rule, so both levels of both factors are kept and the worst case is
taken per rule and level. Layer thicknesses are varied together, not one at a time: thickness
spread across faces is dominated by age, sex and body fat, which move the layers together
(a full 2^k design over every layer would cost 2^k solves per site); the report names the case
that bound each level, so a one-layer-at-a-time refinement can be added where it matters.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..models.sites import site as site_named
from .presets import Device, Preset, Validation

__all__ = ["AnatomyCase", "anatomy_cases", "head_case_table"]


@dataclass(frozen=True, slots=True)
class AnatomyCase:
    """One anatomy case.

    Attributes:
        site: the site name (None: the head case's own tissue stack).
        thickness: ``"nominal"``, ``"min"`` or ``"max"`` (every layer of the site).
        contact_factor: factor on every pad's contact specific resistance.
    """

    site: str | None
    thickness: str
    contact_factor: float

    @property
    def label(self) -> str:
        """A short readable name, e.g. ``cheek/min/contact x0.5``."""
        where = self.site or "head stack"
        return f"{where}/{self.thickness}/contact x{self.contact_factor:g}"


def anatomy_cases(device: Device, validation: Validation) -> list[AnatomyCase]:
    """The designed anatomy cases, nominal first for each site."""
    cases: list[AnatomyCase] = []
    for s in device.sites or (None,):
        cases.append(AnatomyCase(s, "nominal", 1.0))
        if validation.spread == "corners":
            levels = ("min", "max") if s is not None else ("nominal",)
            for t in levels:
                for f in validation.contact_factors:
                    cases.append(AnatomyCase(s, t, f))
    return cases


def head_case_table(head: dict[str, Any], anatomy: AnatomyCase, preset: Preset, reference_A: float) -> dict[str, Any]:
    """The head's case table for one anatomy case and one preset's waveform and session.

    The head's ``[[layer]]`` tables are replaced by the site's (with every layer at its min or max
    for a corner); each pad's contact resistance is scaled; every channel drives
    ``reference_A``; the waveform and the session length are the preset's.
    """
    t = copy.deepcopy(head)
    if anatomy.site is not None:
        t["site"] = anatomy.site
        t.pop("layer", None)
        if anatomy.thickness != "nominal":
            k = 0 if anatomy.thickness == "min" else 1
            t["layer"] = [{"label": layer.label, "thickness_mm": layer.range_m[k] * 1e3}
                          for layer in site_named(anatomy.site).layers]  # fmt: skip
    for e in t.get("electrode", []):
        contact = e.get("contact")
        if isinstance(contact, dict) and "resistance_ohm_cm2" in contact:
            e["contact"] = {**contact, "resistance_ohm_cm2": contact["resistance_ohm_cm2"] * anatomy.contact_factor}
    channels = t.get("channel")
    for row in [channels] if isinstance(channels, dict) else (channels or []):
        row["current_mA"] = reference_A * 1e3
    t["waveform"] = preset.waveform_table()
    t["thermal"] = {**t.get("thermal", {}), "session_min": preset.session_min}
    t["name"] = f"{head.get('name', 'head')} [{anatomy.label}]"
    return t
