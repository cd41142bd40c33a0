"""The pictures: their data show what they claim (no golden images), and the pages render in chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib

import numpy as np
import pytest
from device_helpers import PRESETS_TOML, synthetic_figures

from emsim.formatting import current, headroom, quantity, sig


def test_numbers_carry_three_or_four_significant_digits_and_a_unit():
    assert sig(0.808501247) == "0.809" and sig(0.808501247, 4) == "0.8085"
    assert sig(9.9996) == "10.0" and sig(123456.0) == "1.23e5" and sig(1.2345e-7) == "1.23e-7"
    assert sig(-0.0) == "0" and sig(float("inf")) == "inf" and sig(float("nan")) == "nan"
    assert quantity(59.123, "A/m^2") == "59.1 A/m^2" and quantity(1.5, "-") == "1.50"
    assert current(0.0123) == "12.3 mA" and current(5e-5) == "50.0 uA" and current(2.0) == "2.00 A"
    assert headroom(0.2345) == "+23.4 %" and headroom(-1.0) == "-100 %" and headroom(float("inf")) == "no limit"


# ----------------------------------------------------------------------------- device (no physics)


def _validation():
    from emsim.device.presets import parse_presets
    from emsim.device.validate import evaluate, group_key

    raw = tomllib.loads(PRESETS_TOML)
    pf = parse_presets(raw, text=json.dumps(raw))
    figures = {group_key(p): synthetic_figures(p, volts_per_A=(100.0, 100.0)) for p in pf.presets}
    report = evaluate(pf, figures)
    report.figures = figures
    return pf, report


def test_window_inputs_are_the_verdicts_safe_currents_binding_rules_and_thresholds():
    from emsim.device.pictures import window_inputs
    from emsim.device.validate import group_key

    _, report = _validation()
    body = report.to_json()
    for check, pj in zip(report.presets, body["presets"], strict=True):
        F = report.figures[group_key(check.preset)]
        w = window_inputs(report, check)
        # each column's I_max_safe is the one validation.json reports for that rule (6 digits there)
        by_rule = pj["max_safe_current_by_rule"]
        for name, m in zip(w.rules, w.max_safe_A, strict=True):
            written = by_rule[name]["max_safe_current_uA"]
            assert (m == np.inf and written == "inf") or m * 1e6 == pytest.approx(written, rel=1e-5), name
        assert "rms_current_density" in w.rules and "cem43" in w.rules
        # the density rule in closed form: 1.5 x 0.08 mA/cm^2 per mA x I = 2 mA/cm^2 in the worst case
        j = w.rules.index("rms_current_density")
        assert w.max_safe_A[j] == pytest.approx(2.0 / (1.5 * 0.08) * 1e-3, rel=1e-6)
        # the window's safe maximum is the smallest column, set by the verdict's binding rule and anatomy
        assert w.safe_max_A[0] == pytest.approx(w.max_safe_A.min(), rel=1e-12)
        assert w.binding_rule == w.rules[int(np.argmin(w.max_safe_A))] == check.levels[0].binding_rule
        assert w.level_binding_anatomy == [lv["binding_anatomy"]["label"] for lv in pj["levels"]]
        # the last passing level is below the safe maximum and the first failing one above it
        last = check.max_safe_level
        assert w.levels_A[last - 1] <= w.safe_max_A[0] * (1 + 1e-6)
        if last < len(w.levels_A):
            assert w.levels_A[last] > w.safe_max_A[0]
        # the thresholds: the comfort and efficacy figures over the anatomy cases
        assert w.motor_A == (F.current_for_target_A.min(), F.current_for_target_A.max())
        if F.sensory_threshold_A is not None and not F.comfort_absent:
            assert w.sensory_A == (F.sensory_threshold_A.min(), F.sensory_threshold_A.max())


def test_window_and_heatmap_draw_the_levels_with_their_verdict():
    from matplotlib.colors import to_rgba

    from emsim.device.pictures import headroom, headroom_heatmap, therapeutic_window_figure

    levels = np.array([2e-3, 4e-3, 6e-3, 8e-3])
    fig = therapeutic_window_figure(levels, [True, True, True, False], sensory_A=(1e-3, 1.5e-3), motor_A=(5e-3, 7e-3),
                                    safe_max_A=(7e-3, 9e-3), binding_rule="rms_current_density", binding_anatomy="case1")  # fmt: skip
    dots = next(c for c in fig.axes[0].collections if len(c.get_offsets()) == 4)
    colours = [tuple(c) for c in dots.get_facecolors()]
    assert colours[:3] == [to_rgba("#2a9d3a")] * 3 and colours[3] == to_rgba("#d62728")
    assert np.allclose(dots.get_offsets()[:, 0], levels * 1e3)  # mA on the axis
    h = headroom([7e-3, np.inf, np.nan], levels)
    assert h[0] == pytest.approx(7e-3 / levels - 1) and np.isinf(h[1]).all() and np.isnan(h[2]).all()
    heat = headroom_heatmap(levels, ["a", "b", "c"], [7e-3, np.inf, np.nan], binding_anatomy=["x"] * 4)
    texts = [t.get_text() for t in heat.axes[0].texts]
    assert "+250 %" in texts and "-12 %" in texts and "none" in texts and "n/e" in texts
    outlined = [p for p in heat.axes[0].patches if p.get_linewidth() > 2]
    assert [(p.get_x(), p.get_y()) for p in outlined] == [(0, i) for i in range(4)]  # rule a binds every level


def test_the_window_title_keeps_a_ten_factor_corner_inside_the_figure():
    """The binding corner's label (ten factors on the cheek) is wrapped, not cut off at the figure's edge."""
    from emsim.device.pictures import therapeutic_window_figure

    corner = "cheek/" + " ".join(f"{f}-" for f in ("skin", "fat", "zygomaticus", "buccal_fat", "masseter", "R", "C",
                                                    "sigma_skin", "sigma_fat", "sigma_muscle"))  # fmt: skip
    fig = therapeutic_window_figure([2e-3, 4e-3, 6e-3], [True, True, False], motor_A=(4e-3, 1.6e-2), safe_max_A=(5.8e-3, 9.9e-3),
                                    binding_rule="compliance_voltage", binding_anatomy=corner, title="preset 1: lift")  # fmt: skip
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    title = fig.axes[0].title
    box, page = title.get_window_extent(renderer), fig.bbox
    assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5, (box, page)
    assert "sigma_muscle-" in title.get_text() and corner.split()[0] in title.get_text()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _render(page, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("EMSIM_CI"):
            pytest.fail("chromium is missing: .ci/run installs the Debian package")
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run does it)")
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run([*base, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower() or "uncaught" in line.lower()], console
    assert "data-js-errors" not in dom.stdout
    return dom.stdout


def test_validation_page_renders_its_charts_in_headless_chromium(tmp_path):
    from emsim.device.report import write_validation

    pf, report = _validation()
    written = write_validation(report, tmp_path / "out")
    html = _render(tmp_path / "out" / "validation.html", tmp_path)
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(srcs) == sorted(f"{k}_preset_{p.id}.png" for p in pf.presets for k in ("window", "headroom"))
    assert all((tmp_path / "out" / s) in written for s in srcs)
    n = len(srcs)
    assert 'data-images-broken="0"' in html and f'data-images-loaded="{n}"' in html
    rows = re.findall(r'<tr class="(pass|fail)">', html)
    assert len(rows) == sum(len(p.levels_uA) for p in pf.presets)  # one row per level
    assert not re.search(r"\d\.\d{6,}", html.split("<h2>Rules")[0])  # no 9-digit numbers in the level tables


# ----------------------------------------------------------------------------- a solved case


@pytest.fixture(scope="module")
def solved():
    import emsim
    from emsim.models import parse_case

    from conftest import small_two_pad_table

    table = small_two_pad_table()
    table["exclusion"] = [{"name": "eye", "center_mm": [-7.0, 7.0], "radius_mm": 2.5, "depth_mm": 3.0,
                           "field_max_V_per_m": 5.0, "source": "test"}]  # fmt: skip
    return emsim.solve(parse_case(table))


def test_the_profile_rises_toward_the_rim_like_the_bare_disk(solved):
    from emsim.studies.pictures import disk_reference_profile, pad_profiles

    profiles = pad_profiles(solved)
    assert [p.electrode for p in profiles] == ["A", "B"]
    for p in profiles:
        assert p.disk and p.rho.max() <= 1.0 + 1e-6
        assert np.dot(p.areas_m2, p.ratio) / p.areas_m2.sum() == pytest.approx(1.0, rel=1e-12)
        c, b = p.binned(10)
        assert b[-1] > 1.2 * b[0]  # the rim ring carries more than the centre (100 ohm cm^2 contact)
        assert b[-1] < disk_reference_profile(c[-1]) * 1.5  # and no more than a bare disk's rim would
    assert disk_reference_profile(0.0) == 0.5


def test_the_depth_section_is_strongest_under_the_pads_and_falls_with_depth(solved):
    from emsim.studies.pictures import depth_section_figure, depth_sections

    sections = depth_sections(solved, n_s=80, n_z=50)
    first = sections[0]
    e = first.field_V_per_m
    tissue = first.z_mm < 0
    assert np.isfinite(e[tissue]).mean() > 0.99  # the tissue is inside the mesh
    near = np.nanmedian(e[(first.z_mm < 0) & (first.z_mm > -1.0)])
    deep = np.nanmedian(e[first.z_mm < first.z_mm[0] + 1.0])
    assert near > 3.0 * deep
    assert [p[0] for p in first.pads] == ["A", "B"]
    assert [z[0] for z in sections[0].zones] == [] and "eye" in sections[1].title  # the zone gets its own plane
    fig = depth_section_figure(sections, case_name="t", current_text="10 mA")
    assert len([a for a in fig.axes if a.get_title().startswith("section")]) == 2


def test_the_skin_map_shows_the_rim_brighter_than_the_centre(solved, tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from emsim.studies.pictures import skin_current_map

    fig = skin_current_map(solved)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    ax = fig.axes[0]
    e = solved.case.electrodes[0]
    height = rgba.shape[0]

    def pixel(x_mm, y_mm):
        px, py = ax.transData.transform((x_mm, y_mm))
        return rgba[round(height - py), round(px), :3].astype(float)

    cx, cy = e.center_m[0] * 1e3, e.center_m[1] * 1e3
    a = e.shape.diameter_m / 2 * 1e3
    centre, rim = pixel(cx, cy), pixel(cx + 0.93 * a, cy)
    assert np.abs(centre - rim).sum() > 60  # different colours: blue-ish centre, red rim
    assert rim[0] > centre[0]  # redder at the rim
    outside = pixel(0.0, 0.0)  # exposed skin between the pads: grey
    assert np.ptp(outside) < 5
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "peak (1 mm disc)" in texts and "A/m^2" in texts and "eye" in texts


def test_write_outputs_writes_the_three_pictures(solved, tmp_path):
    from matplotlib.image import imread

    from emsim.studies.outputs import write_outputs

    out = write_outputs(solved, tmp_path / "case")
    for name in ("skin_current_density.png", "skin_current_profile.png", "depth_section.png"):
        img = imread(out / name)
        assert img.shape[0] > 300 and img.shape[1] > 500 and np.ptp(img[..., :3]) > 0.5


def test_validation_page_with_worst_cases_shows_their_map_and_depth_in_chromium(solved, tmp_path):
    from emsim.device.report import write_validation
    from emsim.device.validate import group_key

    pf, report = _validation()
    # the solved small case stands in for every anatomy case of the head (pictures only)
    results = {(group_key(p), i): solved for p in pf.presets for i in range(len(report.anatomy))}
    write_validation(report, tmp_path / "out", results)
    html = _render(tmp_path / "out" / "validation.html", tmp_path)
    srcs = re.findall(r'<img src="([^"]+)"', html)
    for p in pf.presets:
        assert {f"worst_preset_{p.id}.png", f"worst_depth_preset_{p.id}.png"} <= set(srcs)
    assert 'data-images-broken="0"' in html and f'data-images-loaded="{len(srcs)}"' in html
    assert len(srcs) == 4 * len(pf.presets)


def test_the_sections_point_location_picks_the_cells_dolfinx_collision_picks():
    """first_colliding_cells (vectorised, for the depth sections) against compute_colliding_cells.

    Points inside cells, on shared faces, edges and vertices (grid points of the mesh), within
    the collision distance (1e-6 m) of the faces around interior vertices, just beyond a face of
    the box, and far outside.
    """
    from dolfinx import geometry
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    from emsim.solvers.electric.points import first_colliding_cells

    m = dmesh.create_box(MPI.COMM_WORLD, [[0.0, 0.0, 0.0], [0.02, 0.01, 0.01]], [8, 4, 4], dmesh.CellType.tetrahedron)
    n_owned = m.topology.index_map(3).size_local
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(*(np.linspace(0, e, k) for e, k in ((0.02, 9), (0.01, 5), (0.01, 5))), indexing="ij"), -1)
    pts = np.vstack([
        rng.uniform([0, 0, 0], [0.02, 0.01, 0.01], size=(400, 3)),
        grid.reshape(-1, 3),
        grid[1:-1, 1:-1, 1:-1].reshape(-1, 3) + rng.normal(scale=5e-7, size=(63, 3)),  # within 1e-6 m of faces
        [[0.01, 0.005, 0.01 + 1e-12], [0.01, 0.005, 0.01 + 5e-6], [0.05, 0.0, 0.0]],
    ])  # fmt: skip
    tree = geometry.bb_tree(m, 3, entities=np.arange(n_owned, dtype=np.int32))
    colliding = geometry.compute_colliding_cells(m, geometry.compute_collisions_points(tree, pts), pts)
    expected = np.full(len(pts), -1, dtype=np.int32)
    for i in range(len(pts)):
        found = colliding.links(i)
        found = found[found < n_owned]
        if len(found):
            expected[i] = found[0]
    got = first_colliding_cells(m, pts, n_owned)
    assert np.array_equal(got, expected)
    if MPI.COMM_WORLD.size == 1:
        assert (got[:-3] >= 0).all() and (got[-3:] == -1).all()
