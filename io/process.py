"""The process's own memory, read from Linux's ``/proc/self/status`` (read only; nothing written).

Benchmarks and :class:`emsim.solvers.electric.problem.ElectricProblem` record the resident set
size per stage with it, so memory per dof is measured where it is spent.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["resident_memory_MB"]

_STATUS = Path("/proc/self/status")


def resident_memory_MB() -> tuple[float | None, float | None]:
    """(resident set size now, its peak so far) of this process [MB]; None where /proc has none."""
    try:
        text = _STATUS.read_text(encoding="ascii")
    except OSError:
        return None, None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB -> MB
    return values.get("VmRSS"), values.get("VmHWM")
