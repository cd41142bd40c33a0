"""Presets, validation against safety limits, export into the firmware driver package.

Modules: presets (files and consistency checks), rules (the safety rules with their sources),
anatomy (the designed anatomy spread), figures (per-unit figures of a solved head), validate
(every level against every rule), report (validation.json/html), export (C header, binary,
JSON) and driver/ (the C side).
"""
