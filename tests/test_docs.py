"""Every code block of the documentation runs, so the docs cannot rot (as scikit-fem tests its examples).

The pages are README.md and docs/*.md. Fenced blocks are taken by their language:

- ``python``: the blocks of one page run in order in one namespace (as a reader pastes them), in a
  temporary folder; every block asserts a reference number or property (it contains ``assert``).
  ``emsim.solve`` is memoised by the case digest, so pages that solve the same case pay once.
- ``toml``: parsed, then loaded through emsim's own loader, which checks it: a study (it has
  ``[sweep]``), a presets file (``[device]``) or a case. A block preceded by
  ``<!-- toml: fragment of X -->`` is merged onto X (a built-in case name or a file of the
  repository) first; one preceded by ``<!-- toml: same as X -->`` must equal the file X.
- ``console``/``sh``: every command is parsed: ``emsim ...`` by the command line's own argument
  parser, with the input files it names (case, study, presets) loaded and checked; ``make T``
  needs the target, ``python X.py`` and ``cc ... X.c`` need their files. A block preceded by
  ``<!-- test: run -->`` is also run (in a temporary folder) and must exit 0.
- ``json``: parsed as JSON (an excerpt of an output file must still be valid JSON).
- ``text``: not code (an equation, a file layout); nothing to run.

A block preceded by ``<!-- no-test: REASON -->`` is skipped: keep those rare.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import pytest

import emsim
from emsim.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("python", "toml", "console", "sh", "json", "text")
_FENCE = re.compile(r"^```([A-Za-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_MARKER = re.compile(r"<!--\s*(no-test|test|toml)\s*:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: Path
    line: int
    lang: str
    text: str
    marker: tuple[str, str] | None

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def page_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, each with the marker comment just before it (if any)."""
    text = page.read_text("utf-8")
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        line = text.count("\n", 0, m.start()) + 1
        out.append(Block(page, line, m.group(1), m.group(2), (marker.group(1), marker.group(2)) if marker else None))
    return out


BLOCKS = [b for page in PAGES for b in page_blocks(page)]


def _tested(lang: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == lang and (b.marker is None or b.marker[0] != "no-test")]


# ----------------------------------------------------------------------------- every block


def test_the_documentation_has_its_pages_and_every_block_a_known_language():
    names = {p.name for p in PAGES}
    for page in ("case-file.md", "physics.md", "studies.md", "device.md", "api.md", "performance.md"):
        assert page in names, f"docs/{page} is missing"
    for b in BLOCKS:
        assert b.lang in LANGUAGES, f"{b.id}: a ```{b.lang} block; use one of {LANGUAGES}"
        if b.marker and b.marker[0] == "no-test":
            assert b.marker[1], f"{b.id}: <!-- no-test: REASON --> needs its reason"
    skipped = [b for b in BLOCKS if b.marker and b.marker[0] == "no-test"]
    assert len(skipped) <= 3, f"keep no-test blocks rare: {[b.id for b in skipped]}"


def test_the_readme_starts_with_the_two_commands():
    """The CI and the before-stop hook read the README's first two lines."""
    first = (ROOT / "README.md").read_text("utf-8").splitlines()[:2]
    assert first[0].split("#")[0].split() == ["make", "run"], first
    assert first[1].split("#")[0].split() == ["make", "test"], first
    targets = _make_targets()
    assert {"run", "test"} <= targets


def test_the_pages_link_to_each_other_and_the_links_resolve():
    readme = (ROOT / "README.md").read_text("utf-8")
    for page in ("case-file.md", "physics.md", "studies.md", "device.md", "api.md", "performance.md",
                 "files-and-guarantees.md"):  # fmt: skip
        assert f"docs/{page}" in readme, f"README.md does not link docs/{page}"
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text("utf-8")):
            if "://" in target or target.endswith("files-and-guarantees.md"):
                continue  # web addresses; the page another change adds
            linked = page.parent / target if target else page
            assert linked.exists(), f"{page.name}: link to {target} does not resolve"
            if anchor:
                assert anchor in _anchors(linked), f"{page.name}: {target}#{anchor}: no such heading"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces as -."""
    headings = re.findall(r"^#+ (.+)$", page.read_text("utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


# ----------------------------------------------------------------------------- toml


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _base_table(name: str) -> tuple[dict, Path]:
    path = ROOT / name
    if not path.is_file():
        path = emsim.builtin_case(name)
    return tomllib.loads(path.read_text("utf-8")), path.parent


def load_toml_block(block: Block, tmp: Path):
    """Parse a toml block and load it through emsim's loader; returns what the loader built."""
    from emsim.device.presets import head_case_text, parse_presets
    from emsim.models import parse_case
    from emsim.studies.study import parse_study

    table = tomllib.loads(block.text)
    folder = ROOT
    if block.marker and block.marker[0] == "toml":
        kind, _, base = re.sub(r"^(fragment of|same as)", r"\1|", block.marker[1]).partition("|")
        assert kind in ("fragment of", "same as") and base.strip(), f"{block.id}: <!-- toml: fragment of X --> or same as X"
        base_table, folder = _base_table(base.strip())
        if kind == "same as":  # a copy of a file of the repository: it must still be that file
            assert table == base_table, f"{block.id}: differs from {base.strip()}"
        table = _deep_merge(base_table, table)
    if "sweep" in table:
        return parse_study(table, folder)
    if "device" in table:
        presets = parse_presets(table, base=folder)
        _, path = head_case_text(presets.device.electrode_head)
        emsim.load_case(path)  # the electrode head is a case too
        return presets
    mesh_file = table.get("mesh", {}).get("file")
    if mesh_file and not (folder / mesh_file).is_file():  # the imported-mesh example's mesh is generated
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_example_mesh.py"), str(tmp / mesh_file)],
                       check=True, capture_output=True, timeout=300)  # fmt: skip
        folder = tmp
    return parse_case(table, base_dir=folder)


@pytest.mark.parametrize("block", _tested("toml"), ids=lambda b: b.id)
def test_toml_block_loads_through_the_emsim_loader(block, tmp_path):
    loaded = load_toml_block(block, tmp_path)
    assert loaded is not None


def test_json_blocks_are_valid_json():
    for block in _tested("json"):
        assert json.loads(block.text) is not None, block.id


# ----------------------------------------------------------------------------- console / sh


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text("utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))


def _session(text: str) -> list[tuple[list[str], list[str]]]:
    """The commands of a shell block, each with the output lines shown after it.

    In a block with ``$ `` prompts only the prompted lines are commands and the lines after one
    are its output (an excerpt); without prompts every line is a command. Comments and
    continuation lines are handled.
    """
    prompted = any(line.lstrip().startswith("$ ") for line in text.splitlines())
    out: list[tuple[list[str], list[str]]] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        stripped = line.strip()
        if prompted and not stripped.startswith("$ "):
            if stripped and out:
                out[-1][1].append(stripped)
            continue
        stripped = stripped.removeprefix("$ ")
        if not stripped or stripped.startswith("#"):
            continue
        words = shlex.split(stripped, comments=True)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value prefixes
            words = words[1:]
        if words:
            out.append((words, []))
    return out


def _commands(text: str) -> list[list[str]]:
    return [words for words, _ in _session(text)]


def _strip_launcher(words: list[str]) -> list[str]:
    """``mpirun -n 2 X`` / ``srun -n 64 X`` -> ``X``."""
    if Path(words[0]).name in ("mpirun", "mpiexec", "srun"):
        i = 1
        while i < len(words) and words[i].startswith("-"):
            i += 2  # -n N, -f hosts
        return words[i:]
    return words


def _repo_file(arg: str) -> Path | None:
    """A file of the repository the command names (None for a placeholder such as my-case.toml)."""
    if arg.startswith(("studies/", "device/", "scripts/", "benchmarks/", "tests/")):
        path = ROOT / arg
        assert path.exists(), f"{arg} does not exist"
        return path
    return None


def check_command(words: list[str], tmp: Path) -> None:
    """Parse one documented command and load the inputs it names."""
    from emsim.cli import _parser  # the command line's own parser (no public name for it yet)

    words = _strip_launcher(words)
    prog, args = Path(words[0]).name, words[1:]
    if prog == "emsim":
        ns = _parser().parse_args(args)
        if ns.command == "run" and ns.case and _repo_file(ns.case):
            from emsim.models.case_file import read_case_table
            from emsim.studies.study import is_study_table, load_study

            path = _repo_file(ns.case)
            assert (load_study(path) if is_study_table(read_case_table(path)) else emsim.load_case(path))
        if ns.command in ("validate", "export") and _repo_file(ns.presets):
            from emsim.device.presets import read_presets

            assert read_presets(_repo_file(ns.presets)).presets
    elif prog == "make":
        assert set(args) <= _make_targets(), f"make {args}: no such target"
    elif prog.startswith("python"):
        assert _repo_file(args[0]), f"{args[0]}: a script of the repository"
    elif prog in ("cc", "gcc"):
        sources = [a for a in args if a.endswith(".c")]
        assert sources and all(_repo_file(a) for a in sources)
    elif "/" in words[0]:  # a program the docs built (out/ems_test): built by the block itself
        assert words[0].startswith("out/"), f"{words[0]}: not a program the docs build"
    else:
        raise AssertionError(f"{prog}: a command the docs test does not know; add it to tests/test_docs.py")


@pytest.mark.parametrize("block", _tested("console") + _tested("sh"), ids=lambda b: b.id)
def test_shell_block_parses_with_the_emsim_command_line(block, tmp_path):
    commands = _commands(block.text)
    assert commands, f"{block.id}: no command"
    for words in commands:
        check_command(words, tmp_path)


def _run_blocks() -> list[Block]:
    return [b for b in _tested("console") + _tested("sh") if b.marker == ("test", "run")]


@pytest.mark.slow
@pytest.mark.parametrize("block", _run_blocks(), ids=lambda b: b.id)
def test_shell_block_marked_run_exits_zero(block, tmp_path):
    from mpi4py import MPI

    if MPI.COMM_WORLD.size > 1:
        pytest.skip("the documented commands run serially here")
    for words, shown in _session(block.text):
        assert Path(words[0]).name == "emsim", f"{block.id}: only emsim commands run"
        proc = subprocess.run([sys.executable, "-m", "emsim.cli", *words[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600, check=False)  # fmt: skip
        assert proc.returncode == 0, f"{' '.join(words)}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        printed = " ".join((proc.stdout + proc.stderr).split())
        for line in shown:  # the output the page shows is the output the command prints
            assert " ".join(line.split()) in printed, f"{block.id}: {line!r} not in the output\n{proc.stdout}"


# ----------------------------------------------------------------------------- python

_SOLVED: dict[str, object] = {}


def _memo_solve(real):
    def solve(case, **kwargs):
        if kwargs:
            return real(case, **kwargs)
        key = case.digest()
        if key not in _SOLVED:
            _SOLVED[key] = real(case)
        return _SOLVED[key]

    return solve


def _python_pages() -> list[Path]:
    return [p for p in PAGES if any(b.page == p for b in _tested("python"))]


def test_every_python_block_asserts_something():
    for b in _tested("python"):
        assert re.search(r"^\s*assert ", b.text, re.MULTILINE), f"{b.id}: an example asserts a reference number"


@pytest.mark.slow
@pytest.mark.parametrize("page", _python_pages(), ids=lambda p: p.name)
def test_python_blocks_of_the_page_run_in_order(page, tmp_path, monkeypatch):
    from mpi4py import MPI

    if MPI.COMM_WORLD.size > 1:
        pytest.skip("the examples are serial scripts")
    import matplotlib

    matplotlib.use("Agg")  # no display in the tests
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(emsim, "solve", _memo_solve(emsim.solve))
    namespace: dict = {"__name__": "__docs__"}
    for b in _tested("python"):
        if b.page != page:
            continue
        code = compile("\n" * (b.line) + b.text, str(page), "exec")  # tracebacks point at the page's line
        exec(code, namespace)  # noqa: S102  (the documented example)


# ----------------------------------------------------------------------------- the case-file reference


def _reference_rows() -> dict[tuple[str, str], list[str]]:
    """Rows of docs/case-file.md's key tables: (table heading, key) -> cells."""
    rows: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in (ROOT / "docs" / "case-file.md").read_text("utf-8").splitlines():
        heading = re.match(r"^#+ .*?`([^`]+)`", line)
        if heading:
            section = heading.group(1)
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        key = re.fullmatch(r"`([^`]+)`", cells[0]) if cells else None
        if key:
            rows[(section, key.group(1))] = cells
    return rows


def _range_text(q) -> str:
    parts = []
    if q.low is not None:
        parts.append(f"{'>' if q.low_open else '>='} {q.low:g}")
    if q.high is not None:
        parts.append(f"<= {q.high:g}")
    return ("integer " if q.integer else "") + ", ".join(parts)


def _quantity_sections():
    from emsim.models.anisotropy import muscle
    from emsim.models.case import (
        ActivationSettings,
        Layer,
        MeshSettings,
        Patch,
        SolverSettings,
        ThermalSettings,
    )
    from emsim.models.electrodes import (
        DEFAULT_CONTACT_CAPACITANCE_F_PER_M2,
        Channel,
        Contact,
        GelPad,
    )
    from emsim.models.exclusion import ExclusionZone
    from emsim.models.shapes import Disk, RoundedRectangle

    # Defaults a case FILE gets from the parser where the dataclass has none (or another one).
    file_defaults = {
        ("[[electrode]]", "contact.capacitance_uF_per_cm2"): DEFAULT_CONTACT_CAPACITANCE_F_PER_M2 / 1e-2,
        ("[[layer]]", "anisotropy_ratio"): muscle().low_frequency_ratio,
    }
    sections = [
        ("[patch]", "", Patch), ("[[layer]]", "", Layer), ("[[electrode]]", "", Disk),
        ("[[electrode]]", "", RoundedRectangle), ("[[electrode]]", "gel.", GelPad),
        ("[[electrode]]", "contact.", Contact), ("[channel]", "", Channel), ("[mesh]", "", MeshSettings),
        ("[solver]", "", SolverSettings), ("[thermal]", "", ThermalSettings),
        ("[activation]", "", ActivationSettings), ("[[exclusion]]", "", ExclusionZone),
    ]  # fmt: skip
    return sections, file_defaults


def test_the_case_file_reference_states_every_number_with_the_models_range_and_default():
    rows = _reference_rows()
    sections, file_defaults = _quantity_sections()
    for section, prefix, cls in sections:
        for f in fields(cls):
            q = f.metadata.get("quantity")
            if q is None:
                continue
            key = prefix + q.key
            assert (section, key) in rows, f"docs/case-file.md: no row for {section} {key}"
            allowed, default = rows[(section, key)][2:4]
            assert allowed == _range_text(q), f"{section} {key}: range {allowed!r}, the model says {_range_text(q)!r}"
            if (section, key) in file_defaults:
                want = f"{file_defaults[(section, key)]:g}"
            elif f.default is MISSING:
                want = "required"
            elif f.default is None:
                want = "none"
            else:
                want = f"{f.default / q.to_si:g}"
            assert default.split()[0] == want, f"{section} {key}: default {default!r}, the model says {want}"


def _allowed_keys(table: dict, where: str) -> set[str]:
    """The keys the case parser allows in one table, from its own unknown-key error."""
    from emsim.models import parse_case

    with pytest.raises(InputError) as err:
        parse_case(table)
    assert err.value.field.endswith("zzz_unknown"), err.value
    assert "allowed:" in err.value.allowed, err.value.allowed
    return {k.strip() for k in err.value.allowed.split("allowed:")[1].split(",")}


def test_the_case_file_reference_names_every_key_the_parser_allows():
    from emsim.models import read_case_table

    base = read_case_table(emsim.builtin_case("cheek-two-pads"))
    base["probe"] = [{"name": "p", "point_mm": [0.0, 0.0, -5.0]}]
    base["activation"] = {}
    base["solver"] = {}
    base["material"] = {"gel2": {"conductivity_S_per_m": 0.1}}
    text = (ROOT / "docs" / "case-file.md").read_text("utf-8")
    where = {
        "": base, "patch": base["patch"], "layer": base["layer"][0], "electrode": base["electrode"][0],
        "gel": base["electrode"][0]["gel"], "contact": base["electrode"][0]["contact"], "channel": base["channel"],
        "probe": base["probe"][0], "exclusion": base["exclusion"][0] if "exclusion" in base else None,
        "mesh": base["mesh"], "solver": base["solver"], "thermal": base["thermal"],
        "activation": base["activation"], "waveform": base["waveform"], "material": base["material"]["gel2"],
    }  # fmt: skip
    for name, table in where.items():
        if table is None:
            continue
        table["zzz_unknown"] = 1  # the tables are the base's own: the parser sees the key where it belongs
        try:
            keys = _allowed_keys(base, name)
        finally:
            del table["zzz_unknown"]
        for key in keys:
            # gel = {...} is documented as gel.material, gel.thickness_mm, ...
            named = any(f"`{k}" in text for k in (f"{key}`", f"{key}.", f"{name}.{key}`"))
            assert named, f"docs/case-file.md does not name the {name or 'top-level'} key {key}"


def test_the_case_file_reference_lists_every_library_material_and_site():
    from emsim.models.sites import sites
    from emsim.models.tissues import library

    text = (ROOT / "docs" / "case-file.md").read_text("utf-8")
    for name in [*library(), *sites()]:
        assert f"`{name}`" in text, f"docs/case-file.md does not list {name}"


@pytest.fixture(autouse=True)
def _no_stray_outputs():
    """The examples write into their temporary folder, never into the repository."""
    before = set(os.listdir(ROOT))
    yield
    assert set(os.listdir(ROOT)) - before <= {".pytest_cache"}


def test_the_device_page_lists_every_rule_and_every_limit_with_its_default():
    from emsim.device.rules import LIMITS, RULES

    text = (ROOT / "docs" / "device.md").read_text("utf-8")
    for rule in RULES:
        assert f"| `{rule.name}` | {rule.kind}" in text, f"docs/device.md: rule {rule.name} ({rule.kind}) missing"
    for key, limit in LIMITS.items():
        row = f"| `{key}` | {limit.value:g} | {limit.unit} |"
        assert row in text, f"docs/device.md: no row {row!r}"


def test_every_file_of_the_repository_the_pages_name_exists():
    """A renamed or moved module shows up here, not in a reader's search."""
    for page in PAGES:
        text = page.read_text("utf-8")
        for path in re.findall(r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|toml|c|h|md))`", text):
            if path.startswith(("out/", "DIR/", "/")):
                continue  # outputs of a run
            assert (ROOT / path).exists() or (page.parent / path).exists(), f"{page.name}: {path} does not exist"
