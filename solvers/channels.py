"""The channels of a case as the solvers see them: current vectors, firing groups, heating pairs.

Channels either fire together (``simultaneous``: their fields add, so products of two channels'
fields have cross terms) or one after another (``interleaved``: never overlapping in time, so
their heats add with no cross terms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..models.case import Case

__all__ = ["ChannelLayout", "Currents", "channel_pairs", "current_vector", "firing_groups"]

#: Channel currents [A]: by channel name (channels left out at 0 A), or one per channel in case order.
Currents = Mapping[str, float] | Sequence[float] | np.ndarray


def current_vector(channels: Sequence[str], currents_A: Currents) -> np.ndarray:
    """Channel currents [A] as a vector in channel order, checked.

    Args:
        channels: the channel names, in case order.
        currents_A: a mapping by channel name (channels left out are at 0 A) or one value per
            channel in case order.

    Raises:
        InputError: an unknown channel name, or a vector of the wrong length.
    """
    if isinstance(currents_A, Mapping):
        unknown = set(currents_A) - set(channels)
        if unknown:
            raise InputError("channel", sorted(unknown), f"one of {', '.join(channels)}")
        return np.array([float(currents_A.get(c, 0.0)) for c in channels])
    vec = np.asarray(currents_A, dtype=float).reshape(-1)
    if len(vec) != len(channels):
        raise InputError("channel_currents_A", vec.tolist(), f"{len(channels)} values, one per channel")
    return vec


def firing_groups(current: np.ndarray, timing: str) -> list[np.ndarray]:
    """The channel currents that flow together: all when simultaneous, one by one interleaved."""
    if timing == "simultaneous" or len(current) == 1:
        return [current]
    return [np.where(np.arange(len(current)) == c, current, 0.0) for c in range(len(current))]


def channel_pairs(n_channels: int, timing: str) -> tuple[tuple[int, int], ...]:
    """The channel pairs whose products heat: (c, c), and (c, d), c < d, for simultaneous channels."""
    pairs = [(c, c) for c in range(n_channels)]
    if timing == "simultaneous":
        pairs += [(c, d) for c in range(n_channels) for d in range(c + 1, n_channels)]
    return tuple(pairs)


@dataclass(frozen=True)
class ChannelLayout:
    """The channels of a case as the solvers see them: names, timing and the electrodes they drive.

    Attributes:
        names: channel names, in case order.
        timing: ``"simultaneous"`` (fields add) or ``"interleaved"`` (one after another).
        electrodes: electrode names, in case order (the rows of a lead field's electrode axis).
        anode: per channel, the index in ``electrodes`` of its first anode.
        cathode: per channel, the index of its first cathode (-1: the grounded deep face).
    """

    names: tuple[str, ...]
    timing: str
    electrodes: tuple[str, ...] = ()
    anode: tuple[int, ...] = ()
    cathode: tuple[int, ...] = ()

    @classmethod
    def of(cls, case: Case, channels: Sequence[str] | None = None) -> ChannelLayout:
        """The layout of a case's channels (``channels``: those named, in that order; default all)."""
        chans = [case.channel(n) for n in channels] if channels is not None else list(case.channels)
        electrodes = tuple(e.name for e in case.electrodes)
        index = {n: i for i, n in enumerate(electrodes)}
        return cls(
            names=tuple(c.name for c in chans),
            timing=case.timing,
            electrodes=electrodes,
            anode=tuple(index[c.anode[0]] for c in chans),
            cathode=tuple(-1 if c.grounded else index[c.cathode[0]] for c in chans),
        )

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """The channel pairs whose products heat (:func:`channel_pairs`)."""
        return channel_pairs(len(self.names), self.timing)

    def vector(self, currents_A: Currents) -> np.ndarray:
        """Channel currents [A] as a checked vector in case order (:func:`current_vector`)."""
        return current_vector(self.names, currents_A)

    def groups(self, current: np.ndarray) -> list[np.ndarray]:
        """The channel currents that flow together (:func:`firing_groups`)."""
        return firing_groups(current, self.timing)
