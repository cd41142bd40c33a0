"""A study's results from its ledger: ``results.csv``, ``results.parquet`` and ``report.html``.

Everything here is rebuilt from ``DIR/ledger.sqlite`` alone (``emsim report DIR``). One row per
done case, in study order: ``case_digest_sha256``, ``case_index``, the swept parameters (their
axis paths, which carry the unit: ``electrode.A.diameter_mm``), then every metric with its unit
in the name (per-channel and per-electrode values as ``name[key]``). The report plots the main
metrics against each swept parameter (matplotlib PNGs in ``DIR/report/``), shows the per-case
skin current density pictures and a sortable table. :mod:`emsim.io` writes the files (each
through a temporary file and an atomic rename).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..formatting import sig
from ..io import save_figure, write_csv_rows, write_parquet, write_text
from .ledger import LEDGER_NAME, Ledger

__all__ = ["MAIN_METRICS", "results_table", "write_report", "write_results"]

#: The metrics the report plots against each swept parameter (those the cases have).
MAIN_METRICS = (
    "impedance_ohm",
    "skin_current_density_peak_A_per_m2",
    "muscle_field_mean_V_per_m",
    "joule_power_dc_at_peak_W",
    "joule_power_cycle_mean_W",
    "skin_current_density_peak_pulse_A_per_m2",
    "current_for_target_volume_A",
    "skin_temperature_peak_C",
    "muscle_field_max_V_per_m",
    "sensory_threshold_current_A",
    "motor_threshold_current_A",
    "motor_to_sensory_threshold_ratio",
    "exclusion_limit_ratio_max",
    "exclusion_placement_gap_min_mm",
)
#: Metrics by name prefix (one column per zone, electrode ...) that the report plots too.
MAIN_METRIC_PREFIXES = ("exclusion_field_max_V_per_m[",)


def _flatten(metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if key in ("absent", "definitions"):
            continue
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float, str, bool)) or v is None:
                    out[f"{key}[{sub}]"] = v
        elif isinstance(value, list):
            if all(isinstance(v, (int, float)) for v in value):
                out |= {f"{key}[{i}]": v for i, v in enumerate(value)}
        else:
            out[key] = value
    return out


def _cell(value: object) -> object:
    return json.dumps(value) if isinstance(value, list) else value


def results_table(folder: str | Path) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    """The results of a study folder from its ledger.

    Returns:
        (columns, rows as dicts, the study's meta: name, axes, digests), done cases only,
        in study order.
    """
    folder = Path(folder)
    if not (folder / LEDGER_NAME).exists():
        raise InputError("report", str(folder), f"a study folder with a {LEDGER_NAME}")
    ledger = Ledger(folder)
    try:
        meta = ledger.meta()
        rows_db = ledger.rows(meta.get("digests"))
    finally:
        ledger.close()
    axes = list(meta.get("axes", []))
    columns = ["case_digest_sha256", "case_index", *axes]
    rows: list[dict[str, Any]] = []
    for r in rows_db:
        if r.status != "done" or r.metrics is None:
            continue
        row = {"case_digest_sha256": r.digest, "case_index": r.position}
        row |= {a: _cell(r.params.get(a)) for a in axes}
        flat = _flatten(r.metrics)
        for k in flat:
            if k not in columns:
                columns.append(k)
        row |= flat
        row["_folder"] = r.folder
        rows.append(row)
    return columns, rows, meta


def write_results(folder: str | Path, *, report: bool = True) -> list[Path]:
    """Write ``results.csv``, ``results.parquet`` (and ``report.html``) from the ledger.

    Returns:
        The files written.
    """
    folder = Path(folder)
    columns, rows, meta = results_table(folder)
    csv_path = write_csv_rows(folder / "results.csv", columns, ([r.get(c) for c in columns] for r in rows))
    pq_path = write_parquet(folder / "results.parquet", {c: [r.get(c) for r in rows] for c in columns})
    written = [csv_path, pq_path]
    if report:
        written.append(write_report(folder, columns=columns, rows=rows, meta=meta))
    return written


# ----------------------------------------------------------------------------- report


def _numeric(values: Sequence[object]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _plots(folder: Path, axes: list[str], rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One PNG per swept parameter: each main metric against it (other axes as series)."""
    import matplotlib  # local: matplotlib is heavy; pictures only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # local: matplotlib is heavy; pictures only

    named = list(MAIN_METRICS) + sorted({k for r in rows for k in r if k.startswith(MAIN_METRIC_PREFIXES)})
    metrics = [m for m in named if any(isinstance(r.get(m), (int, float)) for r in rows)]
    if not metrics or not rows:
        return []
    out_dir = folder / "report"  # created by the first picture saved into it
    plots = []
    for i, axis in enumerate(axes):
        xs_all = [r.get(axis) for r in rows]
        numeric = _numeric(xs_all)
        labels = sorted({str(x) for x in xs_all}) if not numeric else []
        others = [a for a in axes if a != axis]
        series: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            key = ", ".join(f"{a.rsplit('.', 1)[-1]}={r.get(a)}" for a in others) or "cases"
            series.setdefault(key, []).append(r)
        ncol = min(2, len(metrics))
        nrow = math.ceil(len(metrics) / ncol)
        fig, axs = plt.subplots(nrow, ncol, figsize=(6.0 * ncol, 3.6 * nrow), squeeze=False)
        for ax, m in zip(axs.ravel(), metrics, strict=False):
            for name, rs in series.items():
                pts = sorted(
                    ((r.get(axis) if numeric else labels.index(str(r.get(axis))), r.get(m)) for r in rs
                     if isinstance(r.get(m), (int, float))),
                    key=itemgetter(0),  # by x
                )  # fmt: skip
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=4, lw=1, label=name)
            if not numeric:
                ax.set_xticks(range(len(labels)), labels)
            ax.set_xlabel(axis)
            ax.set_ylabel(m)
            ax.grid(alpha=0.3)
        for ax in axs.ravel()[len(metrics):]:
            ax.axis("off")
        if 1 < len(series) <= 12:
            axs.ravel()[0].legend(fontsize=7)
        fig.suptitle(f"main metrics vs {axis}")
        fig.tight_layout()
        path = save_figure(fig, out_dir / f"metrics_vs_axis{i}.png", dpi=90)
        plt.close(fig)
        plots.append({"axis": axis, "src": f"report/{path.name}"})
    return plots


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>emsim study {{ name }}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.plots img { max-width: 100%; border: 1px solid #ddd; margin-bottom: 1em; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { margin: 0; width: 300px; font-size: 0.8em; }
.gallery img { width: 300px; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.78em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #eef; cursor: pointer; position: sticky; top: 0; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
.wrap { overflow: auto; max-height: 70vh; }
</style></head>
<body>
<h1>emsim study: {{ name }}</h1>
<p>{{ done }} of {{ total }} cases done (base case {{ base }}, {{ mode }} sweep over
{{ axes|join(", ") }}). Tables: <a href="results.csv">results.csv</a>,
<a href="results.parquet">results.parquet</a>. Rebuilt from ledger.sqlite by <code>emsim report</code>.</p>
<h2>Main metrics against each swept parameter</h2>
<div class="plots">
{% for p in plots %}<img src="{{ p.src }}" alt="main metrics vs {{ p.axis }}">
{% endfor %}</div>
<h2>Skin current density per case</h2>
<div class="gallery">
{% for g in gallery %}<figure><a href="{{ g.folder }}/"><img src="{{ g.src }}" alt="case {{ g.index }}"></a>
<figcaption>case {{ g.index }}: {{ g.caption }}{% for name, src in g.more %} | <a href="{{ src }}">{{ name }}</a>{% endfor %}</figcaption></figure>
{% endfor %}</div>
<h2>All cases (click a column to sort)</h2>
<div class="wrap"><table id="results">
<thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in table %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
<script>
window.addEventListener("error", function () {
  document.body.dataset.jsErrors = String(Number(document.body.dataset.jsErrors || 0) + 1);
});
window.addEventListener("load", function () {
  const imgs = Array.from(document.images);
  document.body.dataset.imagesLoaded = String(imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
  document.body.dataset.imagesBroken = String(imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length);
});
(function () {
  const table = document.getElementById("results");
  const heads = table.tHead.rows[0].cells;
  Array.from(heads).forEach(function (th, col) {
    th.addEventListener("click", function () {
      const asc = !th.classList.contains("asc");
      Array.from(heads).forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = a.cells[col].textContent, y = b.cells[col].textContent;
        const nx = parseFloat(x), ny = parseFloat(y);
        const c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
</script>
</body></html>
"""


#: The other pictures of a case, linked under its skin map in the gallery (studies/pictures.py).
_CASE_PICTURES = (("profile across the pads", "skin_current_profile.png"), ("depth section", "depth_section.png"))


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return sig(value, 4)  # the column names carry the units; results.csv keeps every digit
    return str(value)


def write_report(
    folder: str | Path,
    *,
    columns: list[str] | None = None,
    rows: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``report.html`` (and its plots in ``report/``) from the ledger.

    Returns:
        The report's path.
    """
    import jinja2  # local: jinja2 is needed only for the HTML report

    folder = Path(folder)
    if columns is None or rows is None or meta is None:
        columns, rows, meta = results_table(folder)
    axes = list(meta.get("axes", []))
    plots = _plots(folder, axes, rows)
    gallery = []
    for r in rows:
        src = f"{r['_folder']}/skin_current_density.png"
        if (folder / src).exists():
            caption = ", ".join(f"{a} = {r.get(a)}" for a in axes)
            more = [(what, f"{r['_folder']}/{name}") for what, name in _CASE_PICTURES if (folder / r["_folder"] / name).exists()]
            gallery.append({"index": r["case_index"], "src": src, "folder": r["_folder"], "caption": caption, "more": more})
    shown = [c for c in columns if c != "case_digest_sha256"]
    table = [[r.get("case_digest_sha256", "")[:12], *(_fmt(r.get(c)) for c in shown)] for r in rows]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    text = env.from_string(_TEMPLATE).render(
        name=meta.get("name", "study"), done=len(rows), total=len(meta.get("digests", [])),
        base=meta.get("base", ""), mode=meta.get("mode", ""), axes=axes, plots=plots, gallery=gallery,
        columns=["case (digest)", *shown], table=table,
    )  # fmt: skip
    return write_text(folder / "report.html", text)

