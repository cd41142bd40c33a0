"""Geometry and tagged meshes: gmsh builds the layered patch, DOLFINx receives it."""
