"""The frequency sweep behind a waveform response: sampling, adaptive refinement, synthesis.

:func:`waveform_response` solves the frequency problem (:class:`~emsim.solvers.frequency.
FrequencyProblem`) at log-spaced frequencies, adds frequencies (halving the log spacing) until
the interpolation error estimate of the sampled transfers is below ``[solver]
waveform_tolerance``, and synthesises every quantity of :class:`~emsim.solvers.waveform.
WaveformLeadField` per unit peak current of each channel (method: :mod:`emsim.solvers.waveform`,
:mod:`emsim.solvers.synthesis`, :mod:`emsim.solvers.heat`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, SolverError
from ..meshes.patch import PatchMesh
from ..models.case import Case
from . import activation as act
from .electrodes import channel_potentials
from .exclusion import zone_cells
from .frequency import FrequencyProblem
from .heat import CycleHeat, channel_pairs, pair_products
from .metrics import ElectricLeadField, cell_volumes
from .points import locate_points, point_volumes
from .presb import SweepState
from .sensory import dermis_cells, sensory_model
from .skin import PEAK_AVERAGING_RADIUS_M, DiscAverage, SkinFacets, gather_facets, skin_facets
from .synthesis import Spectrum, Synthesis
from .waveform import DEFAULT_N_FREQUENCIES, WaveformLeadField, pulse_instants

__all__ = ["MAX_FREQUENCIES", "waveform_response"]

#: Most frequencies an adaptive sweep may sample before it stops with an error.
MAX_FREQUENCIES = 400


@dataclass
class _Sample:
    """Everything one frequency contributes, per channel (last axis) or channel pair."""

    H: np.ndarray  # (n_electrodes, n_c) electrode potentials per ampere
    Em: np.ndarray  # (n_muscle, 3, n_c) muscle field
    Af: np.ndarray  # (n_muscle, n_c) activating function
    Jn: np.ndarray  # (n_facets, n_c) skin normal current density
    P: np.ndarray  # (6 n_probes, n_c) probe E and J
    Q: np.ndarray  # (n_owned_cells, n_pairs) Re(J . conj E)
    R: np.ndarray  # (n_robin, n_pairs) Re(G) Re(dV_c conj dV_d)
    Ez: np.ndarray  # (n_zone, 3, n_c) exclusion-zone field
    Jz: np.ndarray  # (n_zone, 3, n_c) exclusion-zone current density
    Es: np.ndarray  # (n_dermis, 3, n_c) field in the dermis (sensory estimate)
    MEz: np.ndarray  # (n_zone, n_pairs) Re(E_c . conj E_d) in the zone
    MJz: np.ndarray  # (n_zone, n_pairs) Re(J_c . conj J_d) in the zone


class _Sampler:
    """The per-frequency work of a sweep, with everything that does not depend on f set up once."""

    def __init__(self, case: Case, patch: PatchMesh, skin: SkinFacets, pairs: tuple) -> None:
        self.case, self.patch, self.skin, self.pairs = case, patch, skin, pairs
        self.names = [e.name for e in case.electrodes]
        channels = case.channels
        # With one channel its cathodes stay at 0 V: their unit fields are never needed.
        held = set(channels[0].cathode) if len(channels) == 1 else set()
        self.needed = [n for n in self.names if n not in held]
        self.directions = act.fibre_directions(case)
        tags = patch.cell_tags
        self.n_owned = patch.mesh.topology.index_map(3).size_local
        cells = np.concatenate(
            [tags.find(patch.volumes[f"layer:{m}"]) for m in self.directions] or [np.empty(0, np.int32)]
        )
        self.muscle_cells = np.sort(cells[cells < self.n_owned])
        self.fibre = np.zeros((len(self.muscle_cells), 3))
        for label, f in self.directions.items():
            mask = np.isin(self.muscle_cells, tags.find(patch.volumes[f"layer:{label}"]))
            self.fibre[mask] = act.cell_fibres(patch, self.muscle_cells[mask], f)  # follows a curved skin
        self.probe_points = np.array([p.point_m for p in case.probes], dtype=float).reshape(-1, 3)
        if patch.surface is not None:  # probes are given along the skin: onto the curved patch
            self.probe_points = patch.surface.to_curved(self.probe_points)
        found = len(self.probe_points) > 0
        self.probe_cells = (
            locate_points(patch.mesh, self.probe_points, surface=patch.surface) if found else np.empty(0, np.int32)
        )
        self.probe_volumes = point_volumes(patch, self.probe_cells) if found else []
        self.robin_pts, self.robin_cells, self.robin_owner = skin.robin_points()
        self.zone_cells, self.zone_member = zone_cells(case, patch)
        self.dermis_cells = dermis_cells(case, patch)
        self.sweep = SweepState()  # one matrix, preconditioner and KSP for all samples

    def sample(self, f: float) -> _Sample:
        """Solve at ``f`` and extract every per-ampere quantity of every channel."""
        prob = FrequencyProblem(self.case, self.patch, f, sweep=self.sweep)
        Y = prob.admittance(self.needed)
        out: dict[str, list] = {k: [] for k in ("H", "Em", "Af", "Jn", "P", "E", "J", "dV", "Ez", "Jz", "Es")}
        for ch in self.case.channels:
            h = channel_potentials(Y, self.names, ch, 1.0)
            phi = prob.combine(h)
            E, J = prob.cell_fields(phi)
            flux, dv = None, np.zeros(0, dtype=complex)
            if len(self.robin_pts):
                values = np.asarray(phi.eval(self.robin_pts, self.robin_cells)).reshape(-1, 2)
                hv = dict(zip(self.names, h, strict=True))
                dv = np.array([hv[o] for o in self.robin_owner]) - (values[:, 0] + 1j * values[:, 1])
                flux = np.array([prob.robin[o] for o in self.robin_owner]) * dv
            af = np.zeros(E.shape[0], dtype=complex)
            if self.directions:
                d = self.directions
                af = act.fibre_second_derivative(self.patch, phi[0], d) + 1j * act.fibre_second_derivative(
                    self.patch, phi[1], d
                )
            if len(self.probe_points):
                pe, pj = prob.point_fields(phi, self.probe_points, self.probe_cells, self.probe_volumes)
                out["P"].append(np.concatenate([pe.ravel(), pj.ravel()]))
            else:
                out["P"].append(np.zeros(0, dtype=complex))
            out["H"].append(h)
            out["Em"].append(E[self.muscle_cells])
            out["Af"].append(af[self.muscle_cells])
            out["Jn"].append(self.skin.normal_current_density(J, flux))
            out["E"].append(E[: self.n_owned])
            out["J"].append(J[: self.n_owned])
            out["dV"].append(dv)
            out["Ez"].append(E[self.zone_cells])
            out["Jz"].append(J[self.zone_cells])
            out["Es"].append(E[self.dermis_cells])
        g_re = np.array([prob.robin[o].real for o in self.robin_owner])
        robin_heat = pair_products(out["dV"], out["dV"], self.pairs) * g_re[:, None] if len(g_re) else None
        prob.close()
        return _Sample(
            H=np.stack(out["H"], axis=-1), Em=np.stack(out["Em"], axis=-1), Af=np.stack(out["Af"], axis=-1),
            Jn=np.stack(out["Jn"], axis=-1), P=np.stack(out["P"], axis=-1),
            Q=pair_products(out["J"], out["E"], self.pairs),
            R=robin_heat if robin_heat is not None else np.zeros((0, len(self.pairs))),
            Ez=np.stack(out["Ez"], axis=-1), Jz=np.stack(out["Jz"], axis=-1), Es=np.stack(out["Es"], axis=-1),
            MEz=pair_products(out["Ez"], out["Ez"], self.pairs), MJz=pair_products(out["Jz"], out["Jz"], self.pairs),
        )  # fmt: skip

    def close(self) -> None:
        """Free the shared solver state."""
        self.sweep.close()


def _key(f: float) -> int:
    return -1 if f == 0 else round(math.log(f) * 1e9)


def waveform_response(
    case: Case,
    patch: PatchMesh,
    *,
    n_frequencies: int = DEFAULT_N_FREQUENCIES,
    tolerance: float | None = None,
    max_frequencies: int = MAX_FREQUENCIES,
    max_frequency_Hz: float | None = None,
    strength_duration: act.StrengthDuration | None = None,
    electric: ElectricLeadField | None = None,
    progress: Callable[[str], None] | None = None,
) -> WaveformLeadField:
    """The case's periodic steady-state response to ``case.waveform``, per unit channel current.

    Solves ``n_frequencies`` (+1 d.c. when the waveform has a d.c. component) frequency problems,
    each set up (factorised) once for all its electrodes' unit solves, then doubles the density
    of the log-spaced samples (reusing every solved one) until the interpolation error estimate
    is at most ``tolerance``; stops with an error naming the case past ``max_frequencies``.

    Args:
        case: the case; ``case.waveform`` must be set.
        patch: its tagged mesh.
        n_frequencies: number of frequencies sampled first (>= 7).
        tolerance: interpolation error estimate to reach (default ``[solver] waveform_tolerance``).
        max_frequencies: most frequencies the sweep may sample (default :data:`MAX_FREQUENCIES`).
        max_frequency_Hz: truncation frequency f_N (default 500 / shortest phase).
        strength_duration: the activation threshold model (default one).
        electric: the d.c. lead field, whose skin-peak operator is reused (built when None).
        progress: optional callable taking a short text.
    """
    w = case.waveform
    if w is None:
        raise InputError("waveform", None, "the case has no [waveform]")
    if isinstance(n_frequencies, bool) or not isinstance(n_frequencies, int) or n_frequencies < 7:
        # 7: the error estimate fits a cubic spline through every other sample (>= 4 points).
        raise InputError("n_frequencies", n_frequencies, "must be an integer >= 7")
    tol = case.solver.waveform_tolerance if tolerance is None else tolerance
    channels = case.channels
    pairs = channel_pairs(len(channels), case.timing)
    robin_names = {e.name for e in case.electrodes if e.gel is None and e.contact is not None}
    skin = skin_facets(case, patch, robin_names)
    sampler = _Sampler(case, patch, skin, pairs)
    cache: dict[int, _Sample] = {}
    n = n_frequencies
    rounds = []
    while True:
        spec = Spectrum.of(w, n, max_frequency_Hz)
        todo = [f for f in spec.samples_Hz if _key(f) not in cache]
        for i, f in enumerate(todo):
            if progress:
                progress(f"frequency {len(cache) + 1}/{len(cache) + len(todo) - i}: {f:.4g} Hz")
            cache[_key(f)] = sampler.sample(f)
        samples = [cache[_key(f)] for f in spec.samples_Hz]
        syn = Synthesis(spec, w, np.array([0.0]) if spec.dc_shape else pulse_instants(w))
        H = np.array([s.H for s in samples]).reshape(len(samples), -1)
        err = syn.interpolation_error(H[1:] if spec.need_dc and not spec.dc_shape else H)
        rounds.append({"frequencies": len(spec.samples_Hz), "interpolation_error_estimate": err})
        if spec.dc_shape or err <= tol:
            break
        if 2 * n - 1 > max_frequencies:
            sampler.close()
            raise SolverError(
                f"case {case.name}: the waveform sweep's interpolation error estimate {err:.2g} is above "
                f"[solver] waveform_tolerance = {tol:g} with {len(spec.samples_Hz)} frequencies"
            )
        n = 2 * n - 1
    sampler.close()
    lead = _assemble(case, patch, skin, sampler, spec, syn, samples, pairs, electric, strength_duration)
    method = {
        "tolerance": tol,
        "sweep_rounds": rounds,
        "harmonics_capped": spec.n_harmonics >= 2**19,
    }
    return WaveformLeadField(**lead, interpolation_error=err, method=method)


def _assemble(
    case: Case, patch: PatchMesh, skin: SkinFacets, sampler: _Sampler, spec: Spectrum, syn: Synthesis,
    samples: list[_Sample], pairs: tuple, electric: ElectricLeadField | None, sd: Any,
) -> dict[str, Any]:  # fmt: skip
    """Synthesise the sampled quantities into the fields of a :class:`WaveformLeadField`."""
    w = case.waveform
    names = sampler.names
    n_c, n_s = len(case.channels), len(samples)

    def split(attr: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        X = np.array([getattr(s, attr) for s in samples]).reshape(n_s, -1)
        if spec.dc_shape:
            return None, X[0]
        return (X[1:], X[0]) if spec.need_dc else (X, None)

    (Hs, H0), (Ps, P0) = split("H"), split("P")
    X = None if Hs is None else np.concatenate([Hs, Ps], axis=1)
    X0 = None if H0 is None else np.concatenate([H0, P0])
    series, i_unit = syn.series(X, X0)
    n_t, n_h = len(series), len(names) * n_c
    instants = syn.instants

    def at_instants(attr: str) -> np.ndarray:
        Xs, Xs0 = split(attr)
        shape = getattr(samples[0], attr).shape
        return syn.at_instants(Xs, Xs0).reshape(len(instants), *shape)

    jn_local, em_local, af_local = at_instants("Jn"), at_instants("Em"), at_instants("Af")
    comm = patch.mesh.comm
    _, _, _, jn_all = gather_facets(comm, skin, np.moveaxis(jn_local, 1, 0))
    vol = cell_volumes(patch)
    parts = comm.allgather((em_local, af_local, sampler.fibre, vol[sampler.muscle_cells]))
    disc = electric.disc if electric is not None else None
    if disc is None:
        tri, area, _, carries = gather_facets(comm, skin, np.any(jn_local != 0, axis=(0, 2)))
        disc = DiscAverage(tri.mean(axis=1), area, carries, PEAK_AVERAGING_RADIUS_M)
    index = {n: i for i, n in enumerate(names)}
    # Exclusion zones and dermis: fields at the pulse instants; zones also the plateau mean squares.
    ez, jz, es = at_instants("Ez"), at_instants("Jz"), at_instants("Es")
    weights = syn.power_weights(w.rms_pulse_train(1.0) ** 2)
    mez = np.tensordot(weights, np.array([s.MEz for s in samples]), axes=1)
    mjz = np.tensordot(weights, np.array([s.MJz for s in samples]), axes=1)
    n_z = len(sampler.zone_cells)
    zparts = comm.allgather((ez, jz, mez.reshape(n_z, len(pairs)), mjz.reshape(n_z, len(pairs))))
    sparts = comm.allgather((es, vol[sampler.dermis_cells]))
    return {
        "waveform": w,
        "timing": case.timing,
        "electrodes": tuple(names),
        "channels": tuple(ch.name for ch in case.channels),
        "anode": tuple(index[ch.anode[0]] for ch in case.channels),
        "cathode": tuple(-1 if ch.grounded else index[ch.cathode[0]] for ch in case.channels),
        "times_s": syn.t,
        "unit_current": i_unit,
        "potentials_V_per_A": series[:, :n_h].reshape(n_t, len(names), n_c),
        "sample_frequencies_Hz": np.array(spec.samples_Hz),
        "transfer_V_per_A": np.array([s.H for s in samples]),
        "n_harmonics": spec.n_harmonics,
        "instants_s": instants,
        "skin_jn_per_A": np.moveaxis(jn_all, 0, 1),
        "disc": disc,
        "muscle_field_per_A": np.concatenate([p[0] for p in parts], axis=1),
        "muscle_af_per_A": np.concatenate([p[1] for p in parts], axis=1),
        "fibre": np.concatenate([p[2] for p in parts]),
        "muscle_volumes_m3": np.concatenate([p[3] for p in parts]),
        "has_target": bool(sampler.directions),
        "probes": tuple(p.name for p in case.probes),
        "probe_field_per_A": series[:, n_h:].reshape(n_t, 2, len(case.probes), 3, n_c)[:, 0],
        "probe_current_density_per_A": series[:, n_h:].reshape(n_t, 2, len(case.probes), 3, n_c)[:, 1],
        "heat": _cycle_heat(case, patch, skin, sampler, syn, samples, pairs, vol),
        "strength_duration": sd or act.StrengthDuration(),
        "target_volume_m3": case.activation.target_volume_m3,
        "zone_pulse_field_per_A": np.concatenate([p[0] for p in zparts], axis=1),
        "zone_pulse_current_density_per_A": np.concatenate([p[1] for p in zparts], axis=1),
        "zone_field_ms_per_A2": np.concatenate([p[2] for p in zparts]),
        "zone_current_density_ms_per_A2": np.concatenate([p[3] for p in zparts]),
        "pairs": pairs,
        "dermis_field_per_A": np.concatenate([p[0] for p in sparts], axis=1),
        "dermis_volumes_m3": np.concatenate([p[1] for p in sparts]),
        "onset_volume_m3": case.activation.onset_volume_m3,
        "sensory": sensory_model(case),
    }


def _cycle_heat(
    case: Case, patch: PatchMesh, skin: SkinFacets, sampler: _Sampler, syn: Synthesis,
    samples: list[_Sample], pairs: tuple, vol: np.ndarray,
) -> CycleHeat:  # fmt: skip
    """The cycle-averaged heat (module :mod:`emsim.solvers.heat`) from the sampled products."""
    w = case.waveform
    unit_ms = w.rms_pulse_train(1.0) ** 2
    weights = syn.power_weights(unit_ms) * w.mean_square_envelope
    Q = np.tensordot(weights, np.array([s.Q for s in samples]), axes=1)  # (n_owned, n_pairs)
    R = np.tensordot(weights, np.array([s.R for s in samples]), axes=1)  # (n_robin, n_pairs)
    n_owned = sampler.n_owned
    tag_of = np.full(n_owned, -1)
    keep = patch.cell_tags.indices < n_owned
    tag_of[patch.cell_tags.indices[keep]] = patch.cell_tags.values[keep]
    comm = patch.mesh.comm
    labels: dict[str, np.ndarray] = {}
    for name, tag in patch.volumes.items():
        m = tag_of == tag
        label = name.split(":", 1)[1] if name.startswith("layer:") else name
        labels[label] = comm.allreduce(vol[:n_owned][m] @ Q[m])
    robin = np.flatnonzero(skin.robin)
    owners = skin.under[robin]
    for e in case.electrodes:
        if e.gel is None and e.contact is not None:
            m = owners == e.name
            labels[f"contact:{e.name}"] = comm.allreduce(skin.areas_m2[robin][m] @ R[m])
    surface_tag = {e.name: patch.surfaces[f"electrode:{e.name}"] for e in case.electrodes}
    return CycleHeat(
        pairs=pairs,
        cell_W_per_m3_A2=Q,
        robin_cells=skin.entry_cells[robin],
        robin_tags=np.array([surface_tag[o] for o in owners], dtype=np.int64),
        robin_W_per_m2_A2=R,
        label_W_per_A2=labels,
    )
