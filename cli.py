"""The ``emsim`` command line: a thin layer over :mod:`emsim.studies`.

``emsim run [CASE] [--out DIR]`` runs a case (the built-in default when CASE is omitted, into
``out/default/``); ``emsim verify`` runs the verification cases against their closed forms and
exits non-zero when one exceeds its tolerance. Errors a user can fix print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rich.markup import escape

from .errors import EmsimError

__all__ = ["main"]


_OVERWRITE_HELP = ("replace an earlier emsim output in --out (a folder emsim did not write is never replaced; "
                   "a study folder is resumed)")


def _may_replace(folder: Path, kind: str, field: str, *, overwrite: bool, given: bool) -> bool:
    """Check an output folder before any solve; True when it is emsim's and may be replaced.

    A folder given on the command line is replaced only with ``--overwrite``; the default
    folder (``out/<name>``) also when it holds an earlier output of the same kind (a rerun).
    Raises InputError for a file, a link, a folder emsim did not write (docs/files-and-guarantees.md).
    """
    from .io import check_output_folder

    state = check_output_folder(folder, kind=kind, field=field, overwrite=overwrite, rerun=not given)
    return state == "replace"


_RANKS_PER_CORNER_HELP = (
    "under mpirun: MPI ranks that solve one anatomy corner together (default 1: the corners of a search "
    "step are solved side by side, one per rank)"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emsim", description="Simulate EMS electrodes in layered tissue.")
    p.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a case file (default: the built-in cheek case)")
    run.add_argument("case", nargs="?", help="case file (TOML); omit for the built-in default case")
    run.add_argument("--out", help="output folder (default: out/<case name>, out/default for the default)")
    run.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
    run.add_argument("--quality", choices=("coarse", "default", "fine"), help="override [mesh] quality")
    run.add_argument(
        "--max-dofs", type=_positive, metavar="N",
        help="refuse cases whose estimated dofs exceed N (default 3e6, about 15 GB; see emsim.meshes.estimate)",
    )  # fmt: skip
    run.add_argument(
        "--ranks-per-case", type=int, default=1, metavar="K",
        help="study files: MPI ranks that solve one case together (default 1: one case per rank)",
    )  # fmt: skip
    rep = sub.add_parser("report", help="rebuild a study's results tables and report.html from its ledger")
    rep.add_argument("folder", help="the study's output folder (with ledger.sqlite)")
    ver = sub.add_parser("verify", help="run the verification cases and print error vs tolerance")
    ver.add_argument("--quality", choices=("coarse", "default", "fine"), default="default")
    ver.add_argument("--only", action="append", help="run only the named verification case(s)")
    val = sub.add_parser("validate", help="validate a presets file: every level against every rule over the anatomy spread")
    val.add_argument("presets", help="presets file (TOML)")
    val.add_argument("--out", help="output folder (default: out/validate-<presets file name>)")
    val.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
    val.add_argument("--ranks-per-corner", type=int, default=1, metavar="K", help=_RANKS_PER_CORNER_HELP)
    exp = sub.add_parser("export", help="validate, then export the safe preset table (C header, binary, JSON)")
    exp.add_argument("presets", help="presets file (TOML)")
    exp.add_argument("--into", required=True, help="folder for ems_presets.h, ems_presets.bin, ems_presets.json")
    exp.add_argument("--overwrite", action="store_true", help="replace an earlier package emsim exported there")
    exp.add_argument("--from", dest="from_dir", metavar="DIR",
                     help="evaluate from the figures cached by `emsim validate --out DIR` (same inputs) instead of solving")
    exp.add_argument("--ranks-per-corner", type=int, default=1, metavar="K", help=_RANKS_PER_CORNER_HELP)
    sites = sub.add_parser("sites", help="print the built-in facial sites: layers, thicknesses, ranges, sources")
    sites.add_argument("--json", action="store_true", help="print the library as JSON")
    return p


def _positive(text: str) -> float:
    """A finite positive number from the command line (``2e6`` allowed)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number")
    return value


def _progress_printer(rank: int):
    """Progress lines on stderr, and a console for result tables on stdout."""
    from rich.console import Console

    err = Console(stderr=True)
    out = Console()
    if not out.is_terminal:
        out = Console(width=140)  # a log file or pipe: do not wrap table cells at 80 columns

    def progress(text: str) -> None:
        if rank == 0:
            err.print(f"[bold cyan]emsim[/] {escape(text)} ...")

    return progress, out


def _run(args, comm) -> int:
    from .io import default_output_folder
    from .models.case_file import parse_case, parse_toml, read_case_text
    from .studies.run import default_case_path, run_case

    progress, console = _progress_printer(comm.rank)
    path = Path(args.case) if args.case else default_case_path()
    text = read_case_text(path)  # the file is read once
    table = parse_toml(text, path)
    if "sweep" in table:  # a study file
        return _run_study(args, comm, path, table)
    if args.quality:
        table.setdefault("mesh", {})
        if isinstance(table["mesh"], dict):
            table["mesh"]["quality"] = args.quality
    case = parse_case(table, base_dir=path.parent)  # every input error surfaces here, before anything is written
    # The name is a label: the default folder is a safe name under out/ (never outside it).
    out = Path(args.out) if args.out else default_output_folder("default" if not args.case else case.name)
    replace = _may_replace(out, "case", "--out", overwrite=args.overwrite, given=args.out is not None)
    # The file's own text is kept as case.toml; with --quality the metrics record the override.
    result = run_case(case, out, comm=comm, progress=progress, source_text=text, max_dofs=args.max_dofs,
                      overwrite=replace)  # fmt: skip
    if comm.rank == 0:
        _summary(console, result, out)
    return 0


def _run_study(args, comm, path: Path, table: dict) -> int:
    """Run a study file: every case once (resumable), then results tables and report.html."""
    from .io import default_output_folder
    from .studies.study import parse_study
    from .studies.sweep import run_study

    if args.quality:
        from .errors import InputError

        raise InputError("--quality", args.quality, 'not for a study file: sweep "mesh.quality" or set it in the base')
    study = parse_study(table, path.parent, name=path.stem)  # every input error before anything runs
    out = Path(args.out) if args.out else default_output_folder(study.name, fallback="study")
    replace = _may_replace(out, "study", "--out", overwrite=args.overwrite, given=args.out is not None)
    with _study_progress(comm.rank) as progress:
        summary = run_study(study, out, comm=comm, ranks_per_case=args.ranks_per_case, progress=progress,
                            overwrite=replace)  # fmt: skip
    if comm.rank == 0:
        if summary.nothing_to_do:
            print(f"emsim: study {study.name}: all {summary.total} cases were already done in {out}; "
                  "nothing recomputed", file=sys.stderr)  # fmt: skip
        else:
            others = f", {summary.by_others} by another run" if summary.by_others else ""
            if summary.reset:
                others += f" ({summary.reset} interrupted case(s) redone)"
            print(f"emsim: study {study.name}: {summary.computed} case(s) computed by this run{others}, "
                  f"{summary.already_done} already done, {summary.total} in all ({summary.seconds:.1f} s); "
                  f"results in {out}/results.csv, results.parquet, report.html", file=sys.stderr)  # fmt: skip
        if summary.not_done:
            print(f"emsim: study {study.name}: incomplete: {summary.not_done} of {summary.total} case(s) not done; "
                  "run it again to finish", file=sys.stderr)  # fmt: skip
    return 1 if summary.not_done else 0


class _study_progress:
    """A rich progress bar (done/total, ETA) on a terminal; plain log lines otherwise."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.bar = None

    def __enter__(self):
        from rich.console import Console

        err = Console(stderr=True)
        if self.rank == 0 and err.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("[bold cyan]emsim[/] study"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.description}"), console=err)  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task("", total=None)

        def progress(done: int, total: int, text: str) -> None:
            if self.rank != 0:
                return
            if self.bar is not None:
                short = text if len(text) <= 36 else text[:35] + "\u2026"  # the bar keeps its room
                self.bar.update(self.task, completed=done, total=total, description=short)
            else:
                print(f"emsim: [{done}/{total}] {text}", file=sys.stderr, flush=True)

        return progress

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _report(args, comm) -> int:
    """Rebuild results.csv, results.parquet and report.html from a study's ledger."""
    from .studies.report import write_results

    if comm.rank == 0:
        files = write_results(Path(args.folder))
        print("emsim: wrote " + ", ".join(str(f) for f in files), file=sys.stderr)
    return 0


def _summary(console, result, out: Path) -> None:
    """The result's summary rows (generated from its typed records) as a table."""
    from rich.table import Table

    t = Table(title=f"{result.case.name}: metrics (also in {out / 'metrics.json'})")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("unit")
    for name, value, unit in result.summary_rows():
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "yes" if value else "NO"
        else:
            text = f"{value:d}" if isinstance(value, int) else f"{value:.5g}"
        t.add_row(name, text, unit)
    console.print(t)
    console.print(f"outputs in {out}/: metrics.json, mesh_report.json, case.toml, fields/, *.png")


def _verify(args, comm) -> int:
    from .studies.verification import run_verification

    progress, console = _progress_printer(comm.rank)
    rows = run_verification(args.quality, only=args.only, comm=comm, progress=progress)
    if comm.rank == 0:
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=f"emsim verification (quality {args.quality})")
        for col in ("case", "quantity", "computed", "reference", "rel. error", "tolerance", "result"):
            t.add_column(col)
        for r in rows:
            t.add_row(
                r.case, escape(r.quantity), f"{r.computed:.6g}", f"{r.reference:.6g}", f"{r.error:.2e}",
                f"{r.tolerance:.1e}", "[green]pass[/]" if r.passed else "[red]FAIL[/]",
            )  # fmt: skip
        console.print(t)
    return 0 if all(r.passed for r in rows) else 1


def _sites(args, comm) -> int:
    """Print the site library as a table per site, or as JSON."""
    import json

    from .models.sites import sites

    if comm.rank != 0:
        return 0
    library = sites()
    if args.json:
        print(json.dumps({name: s.to_table() for name, s in library.items()}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for s in library.values():
        table = Table(title=s.description, title_justify="left")
        for col in ("layer", "tissue", "thickness mm", "range mm", "target", "source"):
            table.add_column(col, overflow="fold")
        for layer in s.layers:
            table.add_row(
                layer.label, layer.tissue, f"{layer.thickness_m * 1e3:g}",
                f"{layer.range_m[0] * 1e3:g}-{layer.range_m[1] * 1e3:g}", "yes" if layer.target else "", layer.source,
            )  # fmt: skip
        console.print(table)
        console.print(f"  sources: {escape(s.source)}\n")
    return 0


def _validation_table(console, report) -> None:
    """Print the verdict: per level its binding rule, headroom and anatomy; per rule its largest safe current.

    The meaning of the safety factor, the headroom and I_max_safe is printed first.
    """
    from rich.table import Table

    from .device.rules import RULES

    sf = report.presets_file.validation.safety_factor
    console.print(f"A level passes a rule when the rule holds at {sf:g} x its current (safety factor). "
                  "headroom = I_max_safe / I - 1: how far the level current could rise before the rule fails "
                  "(< 0 fails); I_max_safe = the current at which the rule reaches its limit / the safety factor, "
                  "in the worst anatomy case.")  # fmt: skip
    for s in report.search:
        solved = f"{s['solves']} of {s['corners_total']} corners solved"
        if "search_mesh" in s:
            solved = (f"{s['search_mesh']['corners_solved']} of {s['corners_total']} corners solved on the search mesh, "
                      f"{s['solves']} of them again on the validation mesh")  # fmt: skip
        console.print(f"anatomy, site {s['site'] or 'head stack'}: {s['method']}, {solved}"
                      + (f" (factors: {', '.join(f['name'] for f in s['factors'])})" if s["factors"] else ""))  # fmt: skip
    for p in report.presets:
        t = Table(title=f"preset {p.preset.id} {p.preset.name}: max safe level {p.max_safe_level} of "
                        f"{len(p.levels)} ({p.max_safe_current_uA} uA)", title_justify="left")  # fmt: skip
        for col in ("level", "current uA", "result", "binding rule", "headroom", "binding anatomy"):
            t.add_column(col, overflow="fold")
        for lv in p.levels:
            t.add_row(str(lv.level), str(lv.current_uA), "[green]pass[/]" if lv.passed else "[red]FAIL[/]",
                      lv.binding_rule, f"{lv.headroom:+.3g}", escape(lv.worst_anatomy))  # fmt: skip
        console.print(t)
        r = Table(title=f"preset {p.preset.id}: largest safe current per limit rule", title_justify="left")
        for col in ("rule", "basis", "I_max_safe uA", "scales with I", "binding anatomy"):
            r.add_column(col, overflow="fold")
        for rule in RULES:
            if rule.kind != "limit":
                continue
            m = p.max_safe_current[rule.name]
            if "max_safe_current_uA" not in m:
                r.add_row(rule.name, rule.basis, "-", escape(m["status"]), "")
                continue
            how = m.get("note") or m["scales_with_current"].split(":")[0]  # an "inf" or 0 says why
            r.add_row(rule.name, rule.basis, str(m["max_safe_current_uA"]), escape(how), escape(m["anatomy"]))
        console.print(r)
        if p.level_independent_failures:
            console.print(f"  [red]level-independent failure[/]: {', '.join(p.level_independent_failures)}")
    for name, reason in report.not_evaluated.items():
        console.print(f"  {name}: {escape(reason)}")


def _validate(args, comm) -> int:
    """Validate a presets file; exit 0 when every level passes, 1 when some level fails."""
    from .device.presets import read_presets
    from .device.report import write_validation
    from .device.validate import validate
    from .io import default_output_folder

    progress, console = _progress_printer(comm.rank)
    pf = read_presets(args.presets)  # every consistency check before any physics
    given = args.out is not None
    out = Path(args.out) if given else default_output_folder(Path(args.presets).stem, prefix="validate-", fallback="presets")
    replace = _may_replace(out, "validation", "--out", overwrite=args.overwrite, given=given)
    report, results = validate(pf, progress=progress, comm=comm, ranks_per_corner=args.ranks_per_corner)
    if comm.rank == 0:
        files = write_validation(report, out, results, overwrite=replace)
        _validation_table(console, report)
        groups = max((s.get("parallel_groups", 1) for s in report.search), default=1)
        side = f" ({groups} parallel groups of corners)" if groups > 1 else ""
        console.print(f"{report.solves} anatomy cases solved in {report.seconds:.0f} s{side}; wrote " + ", ".join(str(f) for f in files[:2]))
    return 0 if report.passed else 1


def _export(args, comm) -> int:
    """Validate, then export the safe table; exit 1 (nothing written) when the export is refused."""
    from .device.export import ExportRefused, export_files, precheck, write_export
    from .device.presets import read_presets
    from .device.validate import validate

    progress, console = _progress_printer(comm.rank)
    pf = read_presets(args.presets)
    try:
        reasons = precheck(pf)  # level-independent rules decidable without physics
        if reasons:
            raise ExportRefused("export refused, nothing written: " + "; ".join(reasons))
        into = Path(args.into)
        replace = _may_replace(into, "driver", "--into", overwrite=args.overwrite, given=True)  # before any solve
        if args.from_dir:
            from .device.figures import load_figures
            from .device.validate import evaluate

            report = evaluate(pf, load_figures(Path(args.from_dir) / "figures.npz", pf.digest_sha256))
        else:
            report, _ = validate(pf, progress=progress, comm=comm, ranks_per_corner=args.ranks_per_corner)
        files = export_files(report)
    except ExportRefused as err:
        if comm.rank == 0:
            print(f"emsim: {err}", file=sys.stderr)
        return 1
    if comm.rank == 0:
        written = write_export(files, into, overwrite=replace)
        _validation_table(console, report)
        for check in report.presets:
            dropped = check.levels[check.max_safe_level:]
            if dropped:
                lv = dropped[0]
                console.print(f"preset {check.preset.id} ({check.preset.name}): dropped levels "
                              f"{', '.join(str(d.level) for d in dropped)} ({', '.join(str(d.current_uA) for d in dropped)} uA): "
                              f"level {lv.level} fails {lv.binding_rule} (headroom {lv.headroom:+.3g}) on {lv.worst_anatomy}")  # fmt: skip
        console.print("wrote " + ", ".join(str(f) for f in written))
    return 0


_COMMANDS = {
    "run": _run, "report": _report, "verify": _verify, "sites": _sites, "validate": _validate, "export": _export,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emsim`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    try:
        status = _COMMANDS[args.command](args, comm)
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader went away (`emsim sites --json | head`): the Python docs' recipe, point
        # stdout at devnull so that the final flush at exit cannot raise again; no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except EmsimError as err:
        if comm.rank == 0:
            print(f"emsim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if comm.rank == 0:
            print("emsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
