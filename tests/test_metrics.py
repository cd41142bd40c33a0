"""The disc-averaged peak used for skin current density."""

from __future__ import annotations

import numpy as np
import pytest

from emsim.solvers.electric.skin import disc_averaged_max


def test_disc_average_of_a_step_finds_the_disc_with_most_of_the_hot_side():
    # A 0.1 mm grid on x in [-5, 5] mm; J = 100 A/m^2 for x < 0, 0 beyond: any disc wholly on the
    # hot side averages exactly 100, and no disc can exceed it.
    g = np.arange(-5e-3, 5e-3 + 1e-9, 1e-4)
    x, y = np.meshgrid(g, g)
    xy = np.column_stack([x.ravel(), y.ravel()])
    values = np.where(xy[:, 0] < 0, 100.0, 0.0)
    peak, where = disc_averaged_max(xy, np.ones(len(xy)), values, 0.5e-3)
    assert peak == pytest.approx(100.0, rel=1e-12)
    assert where[0] <= -0.5e-3


def test_disc_average_of_a_single_hot_point_is_diluted_by_its_neighbours():
    g = np.arange(-2e-3, 2e-3 + 1e-9, 1e-4)
    x, y = np.meshgrid(g, g)
    xy = np.column_stack([x.ravel(), y.ravel()])
    values = np.zeros(len(xy))
    values[np.argmin(np.hypot(xy[:, 0], xy[:, 1]))] = 1.0
    peak, _ = disc_averaged_max(xy, np.ones(len(xy)), values, 0.5e-3)
    # Brute force over every centre: lattice discs hold different numbers of points, so the
    # largest mean is at the neighbour whose disc holds the fewest.
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2) <= 0.5e-3
    brute = max(values[row].mean() for row in d)
    assert peak == pytest.approx(brute, rel=1e-12)
    assert 1.0 / 90 < peak < 1.0 / 60  # about pi r^2 / h^2 = 78.5 points per disc


def test_disc_average_operator_is_the_area_weighted_mean_within_the_radius_across_chunks(monkeypatch):
    """DiscAverage, built in chunks, against a brute-force disc mean at every centre."""
    from emsim.solvers.electric import skin

    monkeypatch.setattr(skin, "_DISC_CHUNK", 7)  # many chunks, and a partial last one
    rng = np.random.default_rng(3)
    n, radius = 400, 1e-3
    points = np.column_stack([rng.random((n, 2)) * 8e-3, np.zeros(n)])
    areas = rng.random(n) * 1e-8 + 1e-9
    carries = rng.random(n) < 0.2
    values = rng.random(n)
    disc = skin.DiscAverage(points, areas, carries, radius)
    dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    centres = np.flatnonzero((dist[carries] <= radius).any(axis=0))
    np.testing.assert_array_equal(disc.centres, centres)
    inside = dist[centres] <= radius
    brute = (inside * areas * values).sum(axis=1) / (inside * areas).sum(axis=1)
    np.testing.assert_allclose(disc.matrix @ values, brute, rtol=1e-13)
    peak, where = disc.peak(values)
    assert peak == pytest.approx(brute.max(), rel=1e-13)
    np.testing.assert_array_equal(where, points[centres[np.argmax(brute)]])
