"""The globe of an orbit zone in the free mesher's OpenCASCADE model (:mod:`emsim.models.orbit`).

Two concentric spheres per orbit zone, fragmented with the layers: the inner sphere's pieces are
the vitreous (``globe:ZONE:vitreous``), the rest of the outer sphere's the sclera
(``globe:ZONE:sclera``); the layer pieces around them keep their layer names. The mesh is refined
at the inner surface (the retina, where the criterion is evaluated): the size grows from
``retina_size_m`` with the distance to that surface, and faster in front of the centre (the
criterion reads the posterior half only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models.case import Case
from ..models.orbit import GlobeGeometry, globe_geometry

__all__ = ["add_globe_solids", "globe_pieces", "globe_size_expressions"]


def add_globe_solids(occ: Any, case: Case) -> list[tuple[tuple[int, int], str]]:
    """Add each orbit zone's two spheres to the OCC model: ((dim, tag), "outer" or "inner" key) pairs.

    The key is ``"ZONE:sclera"`` for the outer sphere and ``"ZONE:vitreous"`` for the inner one.
    """
    out = []
    for g in globe_geometry(case):
        cx, cy, cz = g.center_m
        out.append(((3, occ.addSphere(cx, cy, cz, g.outer_radius_m)), f"{g.zone}:sclera"))
        out.append(((3, occ.addSphere(cx, cy, cz, g.inner_radius_m)), f"{g.zone}:vitreous"))
    return out


def globe_pieces(
    inputs: Sequence[tuple[int, int]], children: Sequence[Sequence[tuple[int, int]]],
    solids: Sequence[tuple[tuple[int, int], str]],
) -> dict[int, str]:  # fmt: skip
    """Volume tag -> ``globe:ZONE:PART`` of every fragment piece of the globes.

    Args:
        inputs: the fragment's input entities, in order.
        children: the fragment's map (the pieces of each input).
        solids: :func:`add_globe_solids`'s output.
    """
    parent = {dimtag: i for i, dimtag in enumerate(inputs)}
    names: dict[int, str] = {}
    for dimtag, key in solids:  # the sclera (outer) before the vitreous (inner): the inner overrides
        for dim, tag in children[parent[dimtag]]:
            if dim == 3:
                names[tag] = f"globe:{key}"
    return names


def _expression(g: GlobeGeometry, grading_per_m: float) -> str:
    cx, cy, cz = g.center_m
    r = f"sqrt((x-({cx:.12g}))^2+(y-({cy:.12g}))^2+(z-({cz:.12g}))^2)"
    front = f"(0.5*((z-({cz:.12g}))+abs(z-({cz:.12g}))))"  # max(z - cz, 0): coarser in front
    return f"{g.retina_size_m:.9g} + {grading_per_m:.9g}*(abs({r}-{g.inner_radius_m:.12g}) + {front})"


def globe_size_expressions(case: Case, sizes: dict[str, float]) -> list[str]:
    """The gmsh MathEval size expressions [m] refining each globe toward its retina."""
    return [_expression(g, sizes["grading_per_m"]) for g in globe_geometry(case)]
