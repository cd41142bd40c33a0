"""emsim: physics-based simulation of electrical muscle stimulation (EMS) devices.

Subpackages follow the one path data takes (see DESIGN.md):
``emsim.models`` (plain data with units and sources) -> ``emsim.meshes`` (gmsh
geometry, tagged DOLFINx meshes) -> ``emsim.solvers`` (FEM problems and metrics)
-> ``emsim.device`` (presets, validation, export) with ``emsim.studies`` driving
runs, sweeps and reports.
"""

# The DOLFINx wheel must order MPI ahead of petsc4py/dolfinx: done once, here,
# so that no user code ever has to.
import dolfinx_solver  # noqa: F401  (import for its side effect)

__version__ = "0.1.0"
