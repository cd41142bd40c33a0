"""Write a validation: ``validation.json``, ``validation.html`` and the worst-case pictures.

``validation.html`` has one row per level with the binding rule highlighted, and the skin
current-density picture of each preset's worst anatomy case at its top level.

Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..studies.outputs import skin_current_picture, write_json_atomic
from .figures import save_figures
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
<p>Electrode head <code>{{ head }}</code>; compliance voltage {{ compliance }} V; safety factor {{ sf }}
(every figure x {{ sf }} within its limit; the skin temperature: its rise above basal);
{{ solves }} solves over {{ anatomy|length }} anatomy cases: {{ anatomy|join(", ") }}.
Overall: <b>{{ "PASS" if passed else "FAIL (some levels exceed a limit)" }}</b>.</p>
<p class="small">inputs sha256 {{ digest }}; emsim {{ version }}</p>
{% for p in presets %}
<h2>Preset {{ p.id }}: {{ p.name }} (max safe level {{ p.max_safe_level }} of {{ p.levels|length }},
{{ p.max_safe_current_uA }} uA)</h2>
{% if p.level_independent_failures %}<p class="fail">Breaks a level-independent rule:
{{ p.level_independent_failures|join(", ") }}: the export refuses this file.</p>{% endif %}
<table><tr><th>level</th><th>current uA</th><th>result</th><th>binding rule</th><th>margin</th><th>worst anatomy</th>
{% for r in rule_names %}<th>{{ r }}</th>{% endfor %}</tr>
{% for lv in p.levels %}<tr class="{{ 'pass' if lv.pass else 'fail' }}"><td>{{ lv.level }}</td><td>{{ lv.current_uA }}</td>
<td>{{ "pass" if lv.pass else "FAIL" }}</td><td>{{ lv.binding_rule }}</td><td>{{ lv.margin }}</td><td>{{ lv.worst_anatomy }}</td>
{% for r in rule_names %}{% set c = lv.rules[r] %}<td class="{{ 'binding' if r == lv.binding_rule else '' }}">
{% if c.value is defined %}{{ c.value }} / {{ c.limit }} {{ c.unit }}{% if c.margin is not none %} (m {{ c.margin }}){% endif %}
{% else %}<span class="small">{{ c.status }}</span>{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if p.picture %}<p>Worst case at the top level ({{ p.levels[-1].worst_anatomy }}):<br>
<img src="{{ p.picture }}" alt="skin current density, worst case" width="720"></p>{% endif %}
{% endfor %}
<h2>Rules</h2><table><tr><th>rule</th><th>what</th><th>kind</th><th>limit</th><th>unit</th><th>source</th><th>note</th></tr>
{% for r in rules %}<tr><td>{{ r.rule }}</td><td>{{ r.title }}</td><td>{{ r.kind }}{{ ", level-independent" if r.level_independent else "" }}</td>
<td>{{ r.limit if r.limit is not none else "device" }}</td><td>{{ r.unit }}</td><td class="small">{{ r.source }}</td>
<td class="small">{{ r.not_evaluated or "" }}</td></tr>{% endfor %}</table>
</body></html>
"""


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def write_validation(report: ValidationReport, out: str | Path, results: dict | None = None) -> list[Path]:
    """Write ``validation.json``, ``validation.html`` and the worst-case pictures into ``out``.

    Args:
        report: the validation.
        out: the output folder (created).
        results: the solved cases by (group key, anatomy index), for the pictures (optional).
    """
    import jinja2  # local: jinja2 is needed only for the HTML report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    body = report.to_json()
    pictures: dict[int, str] = {}
    if results:
        for check in report.presets:
            top = check.levels[-1]
            key = (group_key(check.preset), report.anatomy.index(top.worst_anatomy))
            result = results.get(key)
            if result is None:
                continue
            name = f"worst_preset_{check.preset.id}.png"
            try:
                current = [top.current_uA * 1e-6] * len(result.channels)
                tmp = out / f".{name}.tmp-{os.getpid()}.png"
                skin_current_picture(result, tmp, current)
                os.replace(tmp, out / name)
                pictures[check.preset.id] = name
            except Exception as err:  # noqa: BLE001  (a picture must not lose the report)
                log.warning("picture of preset %s not drawn: %s", check.preset.id, err)
    report.worst_pictures = pictures
    write_json_atomic(out / "validation.json", body)
    if report.figures:
        save_figures(out / "figures.npz", report.figures, report.presets_file.digest_sha256)
    presets: list[dict[str, Any]] = []
    for p in body["presets"]:
        presets.append({**p, "picture": pictures.get(p["id"])})
    html = jinja2.Environment(autoescape=True).from_string(_TEMPLATE).render(
        device=body["device"], head=Path(body["electrode_head"]).name, compliance=report.presets_file.device.compliance_voltage_V,
        sf=body["safety_factor"], solves=body["solves"], anatomy=body["anatomy_cases"], passed=body["passed"],
        digest=body["inputs_digest_sha256"], version=__version__, presets=presets,
        rule_names=[r["rule"] for r in body["rules"]], rules=body["rules"],
    )  # fmt: skip
    _write_text(out / "validation.html", html)
    return [out / "validation.json", out / "validation.html", *(out / n for n in pictures.values())]
