"""Write a validation: ``validation.json``, ``validation.html`` and the worst-case pictures.

``validation.html`` has, per preset, its therapeutic window and headroom heatmap
(:mod:`emsim.device.pictures`), a level x limit-rule table of headroom in current (the binding
rule highlighted, numbers with 3 significant digits) with each rule's I_max_safe, the anatomy
spread searched, and the skin current-density map and depth section of each preset's worst
anatomy case at its top level.

The folder is built beside its target and switched into place when complete
(:func:`emsim.io.folders.staged_folder`): a validation folder is never half-written, and a
folder emsim did not write is never replaced.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import __version__
from ..formatting import current as fmt_current
from ..formatting import sig
from ..io import save_figure, staged_folder, write_json, write_text
from ..meshes.morph import place_layers
from ..solvers.records import jsonable
from ..studies.pictures import depth_section_figure, depth_sections, skin_current_map
from .figures import save_figures
from .pictures import headroom_heatmap, therapeutic_window_figure, window_inputs
from .validate import ValidationReport, group_key

__all__ = ["write_validation"]

log = logging.getLogger(__name__)

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>emsim validation: {{ device }}</title>
<style>
body { font-family: sans-serif; margin: 2em; } table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #bbb; padding: 3px 7px; font-size: 13px; } th { background: #eee; }
.fail { background: #fdd; } .pass { background: #efe; } .binding { font-weight: bold; background: #ffe08a; }
.small { color: #555; font-size: 12px; }
</style></head><body>
<h1>Preset validation: {{ device }}</h1>
<p>Electrode head <code>{{ head }}</code>; compliance voltage {{ compliance }} V; safety factor {{ sf }}:
a level passes a rule when the rule holds at {{ sf }} x the level current.
Headroom = I_max_safe / I - 1, the fraction by which the level current could rise before the rule fails
(I_max_safe: the current at which the rule reaches its limit, divided by the safety factor, worst anatomy case);
&lt; 0 fails. {{ solves }} anatomy cases solved. Overall: <b>{{ "PASS" if passed else "FAIL (some levels exceed a limit)" }}</b>.</p>
<p class="small">inputs sha256 {{ digest }}; emsim {{ version }}</p>
{% for p in presets %}
<h2>Preset {{ p.id }}: {{ p.name }} (max safe level {{ p.max_safe_level }} of {{ p.levels|length }},
{{ p.max_safe_current_uA }} uA)</h2>
{% if p.level_independent_failures %}<p class="fail">Breaks a level-independent rule:
{{ p.level_independent_failures|join(", ") }}: the export refuses this file.</p>{% endif %}
{% if p.window %}<p><img src="{{ p.window }}" alt="therapeutic window, preset {{ p.id }}" width="860"></p>{% endif %}
{% if p.headroom %}<p><img src="{{ p.headroom }}" alt="headroom in current, preset {{ p.id }}" width="1100"></p>{% endif %}
<table><tr><th>level</th><th>current uA</th><th>result</th><th>binding rule</th><th>headroom</th><th>binding anatomy</th>
{% for r in limit_rules %}<th>{{ r }}</th>{% endfor %}</tr>
<tr class="small"><td colspan="6">I_max_safe, uA (anatomy)</td>{% for r in limit_rules %}{% set m = p.max_safe_current_by_rule[r] %}
<td>{% if m.max_safe_current_uA is defined %}{{ m.max_safe_current_uA|num }}{% if m.max_safe_current_uA is number and m.anatomy and not m.anatomy.startswith("every") %} ({{ m.anatomy }}){% endif %}{% else %}{{ m.status }}{% endif %}</td>{% endfor %}</tr>
{% for lv in p.levels %}<tr class="{{ 'pass' if lv.pass else 'fail' }}"><td>{{ lv.level }}</td><td>{{ lv.current_uA }}</td>
<td>{{ "pass" if lv.pass else "FAIL" }}</td><td>{{ lv.binding_rule }}</td><td>{{ lv.headroom|num }}</td><td>{{ lv.binding_anatomy.label }}</td>
{% for r in limit_rules %}{% set c = lv.rules[r] %}<td class="{{ 'binding' if r == lv.binding_rule else '' }}">
{% if c.headroom is defined %}{{ c.headroom|num }}{% else %}<span class="small">{{ c.status }}</span>{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if p.picture %}{% set wa = p.levels[-1].binding_anatomy %}<p>Worst case at the top level ({{ wa.label }}{% if wa.contact is mapping %};
contact {{ wa.contact.resistance_ohm_cm2|num }} ohm cm^2, {{ wa.contact.capacitance_uF_per_cm2|num }} uF/cm^2{% elif wa.contact %}; {{ wa.contact }}{% endif %}):<br>
<img src="{{ p.picture }}" alt="skin current density, worst case" width="720">
{% if p.depth %}<br><img src="{{ p.depth }}" alt="field in depth, worst case" width="860">{% endif %}</p>{% endif %}
{% endfor %}
<h2>Anatomy spread</h2>
{% for s in search %}<p>Site {{ s.site or "head stack" }}: {{ s.method }}; {% if s.search_mesh %}{{ s.search_mesh.corners_solved }} of {{ s.corners_total }} corners solved on the search mesh
({{ s.search_mesh.mesh.cells_across_layer|num }} cell(s) across each tissue layer{% if s.search_mesh.mesh.size_factor != 1 %}, every target size x {{ s.search_mesh.mesh.size_factor|num }}{% endif %}), {{ s.solves }} of them again on the validation mesh{% else %}{{ s.solves }} of {{ s.corners_total }} corners solved{% endif %}{% if s.parallel_groups %},
{{ s.solved_in_groups }} of them in {{ s.parallel_groups }} parallel groups of {{ s.ranks_per_group }} MPI rank(s) (the rest on all ranks);
{{ s.solved_again_on_all_ranks }} worst corner(s) solved again on all ranks for their pictures{% endif %}.</p>
{% if s.search_mesh %}<table><tr><th>rule</th><th>place of its worst in the search mesh's ranking (0: first)</th><th>validation / search mesh figure over the confirmed corners</th><th>largest unconfirmed corner, bounded (&lt;= 1: none could be worse)</th></tr>
{% for rule, rr in s.search_mesh.ratio_validation_to_search_mesh_by_rule.items() %}<tr><td>{{ rule }}</td><td>{{ s.search_mesh.rank_on_search_mesh_of_the_worst_by_rule.get(rule, "-") }}</td><td>{{ rr[0] }} - {{ rr[1] }}</td><td>{{ s.search_mesh.unconfirmed_bound_by_rule.get(rule, "-") }}</td></tr>{% endfor %}
</table>{% endif %}
{% if s.factors %}<table><tr><th>factor</th><th>min</th><th>max</th><th>unit</th><th>source</th></tr>
{% for f in s.factors %}<tr><td>{{ f.name }}</td><td>{{ f.min }}</td><td>{{ f.max }}</td><td>{{ f.unit }}</td><td class="small">{{ f.source }}</td></tr>{% endfor %}
</table>{% endif %}{% endfor %}
<p class="small">{{ conductivity }}</p>
<h2>Rules</h2><table><tr><th>rule</th><th>what</th><th>kind</th><th>limit</th><th>unit</th><th>source</th><th>note</th></tr>
{% for r in rules %}<tr><td>{{ r.rule }}</td><td>{{ r.title }}</td><td>{{ r.kind }} ({{ r.basis }}, {{ r.scales_with_current }}){{ ", level-independent" if r.level_independent else "" }}</td>
<td>{{ r.limit if r.limit is not none else "device" }}</td><td>{{ r.unit }}</td><td class="small">{{ r.source }}</td>
<td class="small">{{ r.not_evaluated or "" }}</td></tr>{% endfor %}</table>
<script>
window.addEventListener("error", function () {
  document.body.dataset.jsErrors = String(Number(document.body.dataset.jsErrors || 0) + 1);
});
window.addEventListener("load", function () {
  const imgs = Array.from(document.images);
  document.body.dataset.imagesLoaded = String(imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
  document.body.dataset.imagesBroken = String(imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length);
});
</script>
</body></html>
"""


def write_validation(
    report: ValidationReport, out: str | Path, results: dict | None = None, *, overwrite: bool = False
) -> list[Path]:
    """Write ``validation.json``, ``validation.html``, the worst-case pictures and ``figures.npz``.

    Args:
        report: the validation.
        out: the output folder: missing, empty, or (with ``overwrite``) an earlier emsim output;
            a folder emsim did not write is never replaced (:mod:`emsim.io.folders`).
        results: the solved cases by (group key, anatomy index), for the pictures (optional).
        overwrite: replace an earlier emsim output in ``out``.

    Returns:
        The files written (their final paths).
    """
    import jinja2  # local: jinja2 is needed only for the HTML report

    out = Path(out)
    body = report.to_json()
    pictures: dict[int, str] = {}
    depths: dict[int, str] = {}
    with staged_folder(out, kind="validation", overwrite=overwrite, field="out") as tmp:
        if results:
            for check in report.presets:
                top = check.levels[-1]
                if top.worst_anatomy not in report.anatomy:
                    continue
                key = (group_key(check.preset), report.anatomy.index(top.worst_anatomy))
                result = results.get(key)
                if result is None:
                    continue
                name = f"worst_preset_{check.preset.id}.png"
                # the anatomy cases share one mesh moved per case: put its nodes back to this case's stack
                place_layers(result.mesh)
                try:
                    current = [top.current_uA * 1e-6] * len(result.channels)
                    save_figure(skin_current_map(result, current), tmp / name)
                    pictures[check.preset.id] = name
                    if result.mesh.mesh.comm.size == 1 and result.case.mesh.file is None:
                        # sampling the field is collective and this runs on rank 0 alone: serial runs only
                        depth = f"worst_depth_preset_{check.preset.id}.png"
                        text = f"{fmt_current(top.current_uA * 1e-6)}, every channel"
                        figure = depth_section_figure(depth_sections(result, current), case_name=top.worst_anatomy,
                                                      current_text=text)  # fmt: skip
                        save_figure(figure, tmp / depth)
                        depths[check.preset.id] = depth
                except Exception as err:  # noqa: BLE001  (a picture must not lose the report)
                    log.warning("picture of preset %s not drawn: %s", check.preset.id, err)
        report.worst_pictures = pictures
        charts = _preset_charts(report, tmp)
        write_json(tmp / "validation.json", jsonable(body))
        if report.figures:
            save_figures(tmp / "figures.npz", report.figures, report.presets_file.digest_sha256)
        presets: list[dict[str, Any]] = []
        for p in body["presets"]:
            presets.append({**p, "picture": pictures.get(p["id"]), "depth": depths.get(p["id"]), **charts.get(p["id"], {})})
        env = jinja2.Environment(autoescape=True)
        env.filters["num"] = _num
        html = env.from_string(_TEMPLATE).render(
            device=body["device"], head=Path(body["electrode_head"]).name, compliance=report.presets_file.device.compliance_voltage_V,
            sf=body["safety_factor"], solves=body["solves"], anatomy=body["anatomy_cases"], passed=body["passed"],
            digest=body["inputs_digest_sha256"], version=__version__, presets=presets,
            limit_rules=[r["rule"] for r in body["rules"] if r["kind"] == "limit"], rules=body["rules"],
            search=body["anatomy_search"], conductivity=body["conductivity_spread"],
        )  # fmt: skip
        write_text(tmp / "validation.html", html)
    drawn = [out / n for c in charts.values() for n in c.values()] + [out / n for n in depths.values()]
    return [out / "validation.json", out / "validation.html", *(out / n for n in pictures.values()), *drawn]


def _num(value: object) -> object:
    """A float in a page: 3 significant digits (emsim.formatting); other values as they are."""
    return sig(value) if isinstance(value, float) else value


def _preset_charts(report: ValidationReport, out: Path) -> dict[int, dict[str, str]]:
    """``window_preset_N.png`` and ``headroom_preset_N.png`` of each preset (needs report.figures)."""
    charts: dict[int, dict[str, str]] = {}
    if not report.figures:
        return charts
    for check in report.presets:
        pid = check.preset.id
        try:
            w = window_inputs(report, check)
            figures = {
                "window": therapeutic_window_figure(
                    w.levels_A, w.passed, sensory_A=w.sensory_A, motor_A=w.motor_A, safe_max_A=w.safe_max_A,
                    binding_rule=w.binding_rule, binding_anatomy=w.binding_anatomy, title=w.title,
                ),
                "headroom": headroom_heatmap(w.levels_A, w.rules, w.max_safe_A,
                                             binding_anatomy=w.level_binding_anatomy, title=w.title),
            }  # fmt: skip
            for kind, fig in figures.items():
                name = f"{kind}_preset_{pid}.png"
                save_figure(fig, out / name)
                charts.setdefault(pid, {})[kind] = name
        except Exception as err:  # noqa: BLE001  (a picture must not lose the report)
            log.warning("charts of preset %s not drawn: %s", pid, err)
    return charts
