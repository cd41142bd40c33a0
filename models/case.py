"""A simulation case: the tissue patch, its layers, electrodes, channels and settings.

Every dataclass states its numbers once, with their case-file key, unit and range
(:func:`~emsim.models.quantity.quantity`), and checks itself in ``__post_init__``: a :class:`Case`
built in Python is checked exactly like one read from a file (:mod:`emsim.models.case_file`).
A case has a canonical form (:meth:`Case.to_dict`, :meth:`Case.to_toml`: case-file keys and
units, resolved defaults, stable order, the full data of every material it uses) and a content
hash of it (:meth:`Case.digest`): two files that mean the same case hash the same.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import InputError
from .anisotropy import conductivity_tensor, fibre_conductivities
from .dispersion import QUASI_STATIC_MAX_HZ
from .electrodes import Channel, Electrode
from .exclusion import ExclusionZone
from .geometry import (
    MAX_DEPTH_FRACTION,
    MAX_HALF_ANGLE_RAD,
    MESH_METHODS,
    MESH_SURFACE_ROLES,
    MESH_VOLUME_ROLES,
    MIN_LENGTH_MM,
    PATCH_SHAPES,
    QUALITIES,
    MeshSettings,
    Patch,
    check_mesh_tags,
)
from .orbit import globe_geometry
from .quantity import check_fields, file_value, numbers_to_table, quantity
from .tissues import Tissue, library
from .toml import dumps as toml_dumps

__all__ = [
    "MAX_DEPTH_FRACTION",
    "MAX_HALF_ANGLE_RAD",
    "MAX_THICKNESS_MM",
    "MESH_METHODS",
    "MESH_SURFACE_ROLES",
    "MESH_VOLUME_ROLES",
    "MIN_LENGTH_MM",
    "PATCH_SHAPES",
    "QUALITIES",
    "SOLVER_METHODS",
    "TIMINGS",
    "ActivationSettings",
    "Case",
    "Layer",
    "MeshSettings",
    "Patch",
    "Probe",
    "SolverSettings",
    "ThermalSettings",
]

#: How the channels of a case fire: their pulses interleaved in time (no two channels at once,
#: as most stimulators do) or simultaneous (in phase).
TIMINGS = ("interleaved", "simultaneous")
#: Linear solver choices: "auto" picks MUMPS for small problems, CG + GAMG for large ones, at
#: degree 2 and 3 for the electric problem CG + p-multigrid ("cg-pmg": GAMG on the degree-1
#: operator of the same mesh) (see emsim.solvers.linalg.ksp; the frequency problem:
#: emsim.solvers.spectral.frequency).
SOLVER_METHODS = ("auto", "mumps", "cg-gamg", "cg-pmg")

#: Largest tissue or gel thickness [mm]: a block deeper than 1 m is no skin patch (a 1e9 mm layer
#: meshes, but its solve cannot converge).
MAX_THICKNESS_MM = 1000.0

# Slack on geometric containment tests [m].
_TOL_M = 1e-9


def _choice(value: object, allowed: tuple, name: str) -> None:
    if value not in allowed:
        raise InputError(name, value, f"one of {', '.join(map(str, allowed))}")


@dataclass(frozen=True, slots=True)
class Layer:
    """One tissue layer, counted from the skin surface down.

    Attributes:
        tissue: the layer's material.
        thickness_m: thickness [m] (case file ``thickness_mm``).
        label: unique label used for tags and outputs, e.g. ``"skin"`` or ``"fat_2"``.
        fibre_direction: unit vector of the fibres (muscle), or None for an isotropic layer.
        anisotropy_ratio: the LOW-FREQUENCY ratio r0 of the conductivity along the fibres over
            the conductivity across them (case files default to 5, within the measured 4-10:
            Gielen 1984, Epstein & Foster 1983; ``models/data/anisotropy.toml``). The tissue's own
            conductivity is a mixed, unoriented value (Gabriel's muscle row), split about its
            geometric mean with a ratio r(f) that falls from r0 toward 1 near 1 MHz for a
            dispersive tissue (:mod:`emsim.models.anisotropy`).
        target: the layer is the stimulation target (its field and activation are reported);
            when no layer of a case is marked, the layers of the library's muscle are.
    """

    tissue: Tissue
    thickness_m: float = quantity("thickness_mm", to_si=1e-3, low=MIN_LENGTH_MM, low_open=False, high=MAX_THICKNESS_MM)
    label: str = ""
    fibre_direction: tuple[float, float, float] | None = None
    anisotropy_ratio: float = quantity("anisotropy_ratio", low=0.0, high=100.0, default=1.0)
    target: bool = False

    def __post_init__(self) -> None:
        """Check thickness, label and fibres."""
        where = f"layer[{self.label or self.tissue.name}]"
        if not isinstance(self.label, str) or not self.label:
            raise InputError(f"{where}.label", self.label, "a non-empty label")
        if not isinstance(self.target, bool):
            raise InputError(f"{where}.target", self.target, "true or false")
        check_fields(self, where)
        d = self.fibre_direction
        if d is not None:
            ok = len(d) == 3 and all(isinstance(c, (int, float)) and math.isfinite(c) for c in d)
            if not ok or abs(math.hypot(*d) - 1.0) > 1e-9:
                raise InputError(f"{where}.fibre_direction", d, "a unit vector [x, y, z]")

    def conductivity_tensor(self, sigma_iso: complex, frequency_Hz: float) -> np.ndarray:
        """The layer's 3x3 conductivity tensor [S/m] from its tissue's isotropic value.

        ``sigma_iso`` (at ``frequency_Hz``) may be a complex admittivity; see
        :func:`emsim.models.anisotropy.conductivity_tensor`.
        """
        return conductivity_tensor(
            sigma_iso, frequency_Hz, self.anisotropy_ratio, self.fibre_direction,
            frequency_dependent=self.tissue.dispersion is not None,
        )  # fmt: skip

    def fibre_conductivities(self, frequency_Hz: float) -> dict[str, float] | None:
        """Along/across conductivities [S/m] and ratio at ``frequency_Hz``; None if isotropic."""
        if self.fibre_direction is None:
            return None
        along, across, ratio = fibre_conductivities(
            self.tissue.conductivity_at(frequency_Hz), frequency_Hz, self.anisotropy_ratio,
            frequency_dependent=self.tissue.dispersion is not None,
        )  # fmt: skip
        return {
            "along_S_per_m": float(np.real(along)),
            "across_S_per_m": float(np.real(across)),
            "ratio": float(ratio),
            "frequency_Hz": float(frequency_Hz),
        }


@dataclass(frozen=True, slots=True)
class SolverSettings:
    """Linear solver and material evaluation settings.

    Attributes:
        method: one of :data:`SOLVER_METHODS`.
        rtol: relative residual tolerance of the iterative solves (CG + GAMG; the frequency
            problem's FGMRES, at method "auto" on every case, small ones included).
        quasi_static_frequency_Hz: frequency [Hz] at which dispersive (Cole-Cole) tissues are
            evaluated for the quasi-static solve.
        waveform_frequencies: most frequencies (3-D solves) the waveform sweep may sample; it
            stops with an error naming this past it (emsim.solvers.spectral.sweep).
        waveform_tolerance: the sweep adds frequencies, one where its rational (AAA) model is
            least certain, until its error estimate (the model against the model one support
            point before) is below this.
    """

    method: str = "auto"
    rtol: float = quantity("rtol", low=0.0, high=1e-3, default=1e-10)
    quasi_static_frequency_Hz: float = quantity("quasi_static_frequency_Hz", low=0.0, high=QUASI_STATIC_MAX_HZ, default=10.0)
    waveform_frequencies: int = quantity(
        "waveform_frequencies", low=7, low_open=False, high=200, integer=True, default=24
    )
    waveform_tolerance: float = quantity("waveform_tolerance", low=0.0, high=0.5, default=0.02)

    def __post_init__(self) -> None:
        """Check the choices and ranges."""
        _choice(self.method, SOLVER_METHODS, "solver.method")
        n = self.waveform_frequencies
        if isinstance(n, bool) or not isinstance(n, int) or not 7 <= n <= 200:
            raise InputError("solver.waveform_frequencies", n, "an integer from 7 to 200")
        check_fields(self, "solver")


@dataclass(frozen=True, slots=True)
class ThermalSettings:
    """Settings of the Pennes bioheat solve over a session.

    Attributes:
        h_W_per_m2K: convective heat transfer coefficient at the skin and pads [W/(m^2 K)].
        air_temperature_C: ambient air temperature [C].
        core_temperature_C: temperature of the deep face and of arterial blood [C].
        session_s: session duration [s] (case file ``session_min``).
        time_step_s: time step [s].
    """

    h_W_per_m2K: float = quantity("h_W_per_m2K", low=0.0, low_open=False, high=1e4, default=10.0)
    air_temperature_C: float = quantity("air_temperature_C", low=-50.0, high=60.0, default=25.0)
    core_temperature_C: float = quantity("core_temperature_C", low=30.0, high=42.0, default=37.0)
    session_s: float = quantity("session_min", to_si=60.0, low=0.0, high=240.0, default=900.0)
    time_step_s: float = quantity("time_step_s", low=0.0, high=600.0, default=10.0)

    def __post_init__(self) -> None:
        """Check the ranges."""
        check_fields(self, "thermal")


@dataclass(frozen=True, slots=True)
class ActivationSettings:
    """What the activation estimate reports.

    Attributes:
        target_volume_m3: the volume of target muscle whose activation current is reported
            [m^3] (case file ``[activation] target_volume_cm3``, default 0.5 cm^3: about a third
            of a facial mimetic muscle's belly, e.g. a zygomaticus major 2 mm x 10 mm x 50 mm; a
            reporting choice, not a physiological threshold).
        onset_volume_m3: the volume above threshold at which a response is said to BEGIN [m^3]
            (case file ``onset_volume_mm3``, default 1 mm^3): the motor threshold current is the
            smallest current putting this volume of target muscle above its fibre-field
            threshold, the sensory threshold current the smallest putting this volume of dermis
            above the sensory threshold (:mod:`emsim.solvers.physiology.sensory`). The same volume for
            both, so that their ratio compares like with like; a reporting choice.
        sensory_rheobase_field_V_per_m: rheobase field of the cutaneous afferent terminals in
            the dermis [V/m] (case file ``sensory_rheobase_field_V_per_m``, default 8.3): an
            ESTIMATE, see :data:`emsim.solvers.physiology.sensory.DEFAULT_SENSORY_RHEOBASE_FIELD_V_PER_M`.
    """

    target_volume_m3: float = quantity("target_volume_cm3", to_si=1e-6, low=0.0, high=1000.0, default=0.5e-6)
    onset_volume_m3: float = quantity("onset_volume_mm3", to_si=1e-9, low=0.0, high=1e6, default=1e-9)
    sensory_rheobase_field_V_per_m: float = quantity(
        "sensory_rheobase_field_V_per_m", low=0.0, high=1e4, default=8.3
    )

    def __post_init__(self) -> None:
        """Check the range."""
        check_fields(self, "activation")


@dataclass(frozen=True, slots=True)
class Probe:
    """A point where the waveform response records the field and current density over time.

    Attributes:
        name: unique probe name.
        point_m: (x, y, z) [m]; z <= 0 is tissue (skin surface z = 0), z > 0 only inside a gel pad.
            On a curved patch x, y are arc lengths along the skin and z the height above it.
    """

    name: str
    point_m: tuple[float, float, float]

    def __post_init__(self) -> None:
        """Check the name and the point."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("probe.name", self.name, "a non-empty name")
        p = self.point_m
        if len(p) != 3 or not all(isinstance(c, (int, float)) and math.isfinite(c) for c in p):
            raise InputError(f"probe[{self.name}].point_mm", p, "three finite numbers [x_mm, y_mm, z_mm]")


@dataclass(frozen=True, slots=True)
class Case:
    """Everything one simulation needs, in SI units, checked as a whole on construction.

    Attributes:
        name: case name.
        patch: lateral extent of the tissue block.
        layers: tissue layers from the skin surface down.
        electrodes: electrodes on the skin.
        channels: stimulator outputs.
        mesh: mesh settings.
        solver: solver settings.
        thermal: heating settings, or None when the case asks no thermal solve.
        waveform: the stimulation waveform (``emsim.models.waveforms.Waveform``), or None (DC).
        materials: every material the case uses, by name (derived from the layers and gels
            when not given).
        description: free text.
        probes: points whose E(t) and J(t) the waveform response records.
        channel_timing: ``"interleaved"`` or ``"simultaneous"`` (:data:`TIMINGS`); None resolves
            to the default on construction: interleaved with a waveform, simultaneous for d.c.
        activation: what the activation estimate reports.
        site: the built-in facial site (``emsim.models.sites``) the layers were taken from, or
            "" when the case file states its layers itself.
        exclusions: exclusion zones (``[[exclusion]]``, :mod:`emsim.models.exclusion`): tissue
            where the field must stay below a limit; no electrode may overlap one.
    """

    name: str
    patch: Patch
    layers: tuple[Layer, ...]
    electrodes: tuple[Electrode, ...]
    channels: tuple[Channel, ...]
    mesh: MeshSettings = field(default_factory=MeshSettings)
    solver: SolverSettings = SolverSettings()
    thermal: ThermalSettings | None = None
    waveform: Any = None
    materials: Mapping[str, Tissue] = field(default_factory=dict)
    description: str = ""
    probes: tuple[Probe, ...] = ()
    channel_timing: str | None = None
    activation: ActivationSettings = ActivationSettings()
    site: str = ""
    exclusions: tuple[ExclusionZone, ...] = ()

    def __post_init__(self) -> None:
        """Check what ties the parts together: names, positions, terminals, materials."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("name", self.name, "a non-empty case name")
        if not self.layers:
            raise InputError("layer", [], "at least one [[layer]] table (tissue, thickness_mm)")
        labels = [layer.label for layer in self.layers]
        for label in labels:
            if labels.count(label) > 1:
                raise InputError("layer.label", label, "layer labels must be unique")
        if not self.electrodes:
            raise InputError("electrode", [], "at least one [[electrode]] table")
        R = self.patch.curvature_radius_m
        if R is not None and self.depth_m > MAX_DEPTH_FRACTION * R:
            raise InputError(
                "patch.curvature_radius_mm", file_value(R, 1e-3),
                f">= {self.depth_m / MAX_DEPTH_FRACTION * 1e3:.6g} mm: the tissue depth ({self.depth_m * 1e3:.6g} mm) "
                f"must stay <= {MAX_DEPTH_FRACTION:g} x the radius",
            )  # fmt: skip
        self._check_electrodes()
        self._check_channels()
        check_mesh_tags(
            self.mesh, self.patch, self.layers, self.electrodes, grounded=self.grounded, thermal=self.thermal is not None
        )
        if self.channel_timing is None:  # resolved once: interleaved with a waveform, else simultaneous
            object.__setattr__(self, "channel_timing", "interleaved" if self.waveform is not None else "simultaneous")
        _choice(self.channel_timing, TIMINGS, "channel.timing")
        if self.channel_timing == "interleaved" and self.waveform is None and len(self.channels) > 1:
            raise InputError("channel.timing", "interleaved", "needs a [waveform]: d.c. channels flow together")
        self._check_probes()
        self._check_exclusions()
        globe_geometry(self)  # an orbit zone's globe must fit in the patch (raises naming the zone)
        self._check_materials()
        if not self.materials:  # derived: the materials the layers and gels use
            object.__setattr__(self, "materials", self.used_materials())

    def _check_electrodes(self) -> None:
        names = [e.name for e in self.electrodes]
        for name in names:
            if names.count(name) > 1:
                raise InputError("electrode.name", name, "electrode names must be unique")
        w2, l2 = self.patch.width_m / 2, self.patch.length_m / 2
        for e in self.electrodes:
            (cx, cy), (hx, hy) = e.center_m, e.half_extent_m
            if cx - hx < -w2 - _TOL_M or cx + hx > w2 + _TOL_M or cy - hy < -l2 - _TOL_M or cy + hy > l2 + _TOL_M:
                raise InputError(
                    f"electrode[{e.name}].center_mm",
                    [file_value(cx, 1e-3), file_value(cy, 1e-3)],
                    f"the electrode must lie on the patch, x in [{-w2 * 1e3:g}, {w2 * 1e3:g}] mm and "
                    f"y in [{-l2 * 1e3:g}, {l2 * 1e3:g}] mm including its size",
                )
        for i, a in enumerate(self.electrodes):
            for b in self.electrodes[i + 1 :]:
                gap = a.distance_to_outline(b)
                if gap <= 1e-6:
                    centres = math.dist(a.center_m, b.center_m)
                    # The gap's magnitude when negative is the depth of one outline inside the
                    # other, not an overlap width: the message gives the centres' distance.
                    how = "overlaps" if gap < -1e-9 else "touches"
                    raise InputError(
                        f"electrode[{b.name}].center_mm",
                        [file_value(c, 1e-3) for c in b.center_m],
                        f"{how} electrode {a.name} (centres {centres * 1e3:.3g} mm apart); the footprints "
                        "must be at least 0.001 mm apart, edge to edge",
                    )  # fmt: skip

    def _check_channels(self) -> None:
        if not self.channels:
            raise InputError("channel", [], "a [channel] table or [[channel]] tables")
        names = {e.name for e in self.electrodes}
        cnames = [c.name for c in self.channels]
        for c in self.channels:
            if cnames.count(c.name) > 1:
                raise InputError("channel.name", c.name, "channel names must be unique")
            for key, terminal in (("anode", c.anode), ("cathode", c.cathode)):
                for n in terminal:
                    if n not in names and not (key == "cathode" and c.grounded):
                        allowed = sorted(names) + (["ground"] if key == "cathode" else [])
                        raise InputError(f"channel[{c.name}].{key}", n, f"one of {', '.join(allowed)}")
        if any(c.grounded for c in self.channels) and len(self.channels) > 1:
            raise InputError("channel", len(self.channels), "a grounded (verification) channel must be the only one")

    def _check_probes(self) -> None:
        depth = self.depth_m
        w2, l2 = self.patch.width_m / 2, self.patch.length_m / 2
        seen: set[str] = set()
        for p in self.probes:
            if p.name in seen:
                raise InputError("probe.name", p.name, "probe names must be unique")
            seen.add(p.name)
            x, y, z = p.point_m
            inside = abs(x) <= w2 + _TOL_M and abs(y) <= l2 + _TOL_M and z >= -depth - _TOL_M
            if inside and z > _TOL_M:  # above the skin: only inside a gel pad
                inside = any(
                    e.gel is not None and z <= e.gel.thickness_m + _TOL_M and e.contains(x, y, tol=_TOL_M)
                    for e in self.electrodes
                )
            if not inside:
                raise InputError(
                    f"probe[{p.name}].point_mm",
                    [file_value(c, 1e-3) for c in p.point_m],
                    f"the point must lie in the patch: x in [{-w2 * 1e3:g}, {w2 * 1e3:g}] mm, "
                    f"y in [{-l2 * 1e3:g}, {l2 * 1e3:g}] mm, z in [{-depth * 1e3:g}, 0] mm "
                    "(tissue; skin surface z = 0), or z > 0 inside a gel pad",
                )

    def _check_exclusions(self) -> None:
        w2, l2 = self.patch.width_m / 2, self.patch.length_m / 2
        seen: set[str] = set()
        for z in self.exclusions:
            if not isinstance(z, ExclusionZone):
                raise InputError("exclusion", z, "ExclusionZone objects")
            if z.name in seen:
                raise InputError("exclusion.name", z.name, "exclusion zone names must be unique")
            seen.add(z.name)
            (cx, cy), r = z.center_m, z.radius_m
            if cx - r < -w2 - _TOL_M or cx + r > w2 + _TOL_M or cy - r < -l2 - _TOL_M or cy + r > l2 + _TOL_M:
                raise InputError(
                    f"exclusion[{z.name}].center_mm", [file_value(c, 1e-3) for c in z.center_m],
                    f"the zone (radius {file_value(r, 1e-3)} mm) must lie on the patch, x in "
                    f"[{-w2 * 1e3:g}, {w2 * 1e3:g}] mm and y in [{-l2 * 1e3:g}, {l2 * 1e3:g}] mm; "
                    "enlarge [patch] to hold it",
                )  # fmt: skip
            if z.depth_m > self.depth_m + _TOL_M:
                raise InputError(
                    f"exclusion[{z.name}].depth_mm", file_value(z.depth_m, 1e-3),
                    f"at most the tissue depth, {self.depth_m * 1e3:g} mm",
                )  # fmt: skip
            if z.kind == "orbit" and (self.mesh.method != "free" or self.patch.shape != "flat"):
                raise InputError(
                    f"exclusion[{z.name}].kind", z.kind,
                    'a globe is meshed by the free mesher on a flat patch only: [mesh] method = "free" and '
                    '[patch] shape = "flat", or kind = "cylinder"',
                )  # fmt: skip
            for e in self.electrodes:
                # Distance from the zone's centre to the electrode's (and its gel pad's) outline.
                d = float(e.signed_distance(cx, cy))
                if d <= r + 1e-6:
                    raise InputError(
                        f"exclusion[{z.name}].center_mm", [file_value(c, 1e-3) for c in z.center_m],
                        f"the zone overlaps electrode {e.name} and its pad (gap {(d - r) * 1e3:.3g} mm): "
                        "an electrode must not touch an exclusion zone; move the zone or the electrode",
                    )  # fmt: skip

    def _check_materials(self) -> None:
        if self.thermal is None:
            return
        for layer in self.layers:
            if layer.tissue.thermal is None:
                raise InputError(
                    f"material.{layer.tissue.name}", "no thermal properties",
                    "a [thermal] case needs density_kg_per_m3, heat_capacity_J_per_kgK and "
                    "thermal_conductivity_W_per_mK for every layer and gel",
                )  # fmt: skip
        for e in self.electrodes:
            if e.gel is not None and e.gel.material.thermal is None:
                raise InputError(
                    f"material.{e.gel.material.name}", "no thermal properties",
                    f"gel of electrode {e.name}: a [thermal] case needs its thermal properties",
                )  # fmt: skip

    # ------------------------------------------------------------------ queries

    @property
    def depth_m(self) -> float:
        """Total depth of the tissue layers [m]."""
        return sum(layer.thickness_m for layer in self.layers)

    def electrode(self, name: str) -> Electrode:
        """The electrode called ``name``."""
        for e in self.electrodes:
            if e.name == name:
                return e
        raise KeyError(name)

    def channel(self, name: str) -> Channel:
        """The channel called ``name``."""
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def timing(self) -> str:
        """How the channels fire (:data:`TIMINGS`): interleaved or simultaneous."""
        return self.channel_timing or ("interleaved" if self.waveform is not None else "simultaneous")

    @property
    def grounded(self) -> bool:
        """True when a channel returns through the grounded deep face."""
        return any(c.grounded for c in self.channels)

    def target_layers(self) -> list[str]:
        """Labels of the target layers: those marked ``target``, else the library's muscle layers."""
        marked = [layer.label for layer in self.layers if layer.target]
        if marked:
            return marked
        muscle = library().get("muscle")
        return [layer.label for layer in self.layers if layer.tissue == muscle]

    def used_materials(self) -> dict[str, Tissue]:
        """The materials of the layers and gels, by name (sorted)."""
        used = {layer.tissue.name: layer.tissue for layer in self.layers}
        used |= {e.gel.material.name: e.gel.material for e in self.electrodes if e.gel is not None}
        return {n: used[n] for n in sorted(used)}

    # ------------------------------------------------------------------ canonical form

    def to_dict(self) -> dict[str, Any]:
        """The canonical case table: case-file keys and units, every default resolved.

        Key order is fixed, floats are rounded to 15 significant digits in the file's unit, and
        every material the case uses is written in full (library ones too), so that the table
        alone reproduces the case and a change of the library changes the digest.
        """
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.site:
            out["site"] = self.site
        out["patch"] = numbers_to_table(self.patch)
        if self.patch.shape != "flat":  # flat cases keep the digest they had before shapes existed
            out["patch"] = {"shape": self.patch.shape, **out["patch"]}
        layers = []
        for layer in self.layers:
            row: dict[str, Any] = {
                "label": layer.label, "tissue": layer.tissue.name, **numbers_to_table(layer), "target": layer.target,
            }  # fmt: skip
            if layer.fibre_direction is None:
                row.pop("anisotropy_ratio")
            else:
                row["fibre_direction"] = [float(c) for c in layer.fibre_direction]
            layers.append(row)
        out["layer"] = layers
        electrodes = []
        for e in self.electrodes:
            row = {"name": e.name, **e.shape.to_table(), "center_mm": [file_value(c, 1e-3) for c in e.center_m]}
            if e.gel is not None:
                row["gel"] = {"material": e.gel.material.name, **numbers_to_table(e.gel)}
            if e.contact is not None:
                contact = numbers_to_table(e.contact)
                contact.setdefault("capacitance_uF_per_cm2", 0.0)  # 0: purely resistive
                row["contact"] = contact
            electrodes.append(row)
        out["electrode"] = electrodes
        out["channel"] = [
            {"name": c.name, "anode": list(c.anode), "cathode": list(c.cathode), **numbers_to_table(c),
             "timing": self.timing}
            for c in self.channels
        ]  # fmt: skip
        out["material"] = {n: t.to_table() for n, t in self.used_materials().items()}
        out["mesh"] = {"quality": self.mesh.quality, "method": self.mesh.method, **numbers_to_table(self.mesh)}
        if self.mesh.file is not None:
            out["mesh"] |= {
                "file": self.mesh.file, "file_sha256": self.mesh.file_sha256,
                "tags": {role: list(groups) for role, groups in self.mesh.tags.items()},
            }  # fmt: skip
        out["solver"] = {"method": self.solver.method, **numbers_to_table(self.solver)}
        if self.thermal is not None:
            out["thermal"] = numbers_to_table(self.thermal)
        if self.waveform is not None:
            out["waveform"] = self.waveform.to_table()
        out["activation"] = numbers_to_table(self.activation)
        if self.exclusions:
            out["exclusion"] = [z.to_table() for z in self.exclusions]
        if self.probes:
            out["probe"] = [
                {"name": p.name, "point_mm": [file_value(c, 1e-3) for c in p.point_m]} for p in self.probes
            ]
        return out

    def to_toml(self) -> str:
        """The canonical case table as TOML text (reads back to an equal case)."""
        return toml_dumps(self.to_dict())

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical form: equal for equal cases, whatever the file's layout.

        An imported mesh enters by its content digest, not its path (the same file moved hashes
        the same; an edited one does not).
        """
        table = self.to_dict()
        table["mesh"].pop("file", None)
        text = json.dumps(table, sort_keys=False, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def with_currents(self, currents_A: Mapping[str, float]) -> Case:
        """The same case with other channel currents [A] (by channel name)."""
        unknown = set(currents_A) - {c.name for c in self.channels}
        if unknown:
            raise InputError("channel", sorted(unknown), f"one of {', '.join(c.name for c in self.channels)}")
        channels = tuple(
            replace(c, current_A=float(currents_A[c.name])) if c.name in currents_A else c for c in self.channels
        )
        return replace(self, channels=channels)
