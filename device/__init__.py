"""Presets, validation against safety limits, export into the firmware driver package.

Not implemented yet: see the roadmap in DESIGN.md.
"""
