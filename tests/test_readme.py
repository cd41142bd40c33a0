"""The README's Python example runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


@pytest.mark.slow
def test_the_readme_python_example_runs_and_the_impedance_falls_with_the_pad_diameter(tmp_path, monkeypatch):
    from mpi4py import MPI

    if MPI.COMM_WORLD.size > 1:
        pytest.skip("the example is a serial script")
    blocks = python_blocks()
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102  (the documented example)
    z = namespace["impedance_ohm"]
    assert len(z) == 3 and z[0] > z[1] > z[2] > 0  # a bigger pad, a lower impedance
    # The pad resistance scales with 1/area: 10 -> 20 mm divides the contact part by 4.
    assert z[0] / z[2] > 2.0
    assert os.path.getsize(tmp_path / "impedance_vs_diameter.png") > 10_000
