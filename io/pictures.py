"""Pictures: matplotlib figures and pyvista screenshots, written atomically.

The caller draws; these functions only save, through a temporary sibling with the target's
extension (the format follows the name) renamed into place when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_file

if TYPE_CHECKING:  # matplotlib and pyvista are heavy: the callers import them when they draw
    from matplotlib.figure import Figure
    from pyvista import Plotter

__all__ = ["save_figure", "save_screenshot"]


def save_figure(figure: Figure, path: str | Path, **savefig_kwargs: object) -> Path:
    """Save a matplotlib figure (``figure.savefig``, e.g. ``dpi=120``) atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or None, **savefig_kwargs)
    return path


def save_screenshot(plotter: Plotter, path: str | Path) -> Path:
    """Save a pyvista plotter's off-screen render (``plotter.screenshot``) atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        plotter.screenshot(str(tmp))
    return path
