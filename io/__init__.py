"""Every file emsim writes goes through this package; no other module opens a file for writing.

The modules that decide content (``studies.outputs``, ``studies.report``, ``studies.sweep``,
``device.report``, ``device.export``, ``device.figures``) hand their bytes, tables, figures and
fields to:

* :mod:`emsim.io.atomic`: a file written atomically (temporary sibling, fsync, rename); a folder
  switched into place in one atomic exchange; stale temporaries of killed runs cleaned;
* :mod:`emsim.io.folders`: the output-folder rules (emsim's marker file; what may be replaced
  or resumed), safe folder names from labels, folders staged beside their target;
* :mod:`emsim.io.tables`: JSON, CSV, Parquet and ``.npz``;
* :mod:`emsim.io.fields`: XDMF fields for ParaView (collective under MPI);
* :mod:`emsim.io.pictures`: matplotlib figures and pyvista screenshots;
* :mod:`emsim.io.cache`: a cache on disk of data files with their records (the mesh cache's
  store, :mod:`emsim.meshes.cache`), under a size cap, outside any output folder.

The one exception: the study ledger's SQLite database is opened by
:mod:`emsim.studies.ledger` (SQLite does its own atomic commits).
"""

from __future__ import annotations

from .atomic import atomic_file, clean_stale, write_bytes, write_text
from .fields import write_xdmf
from .folders import (
    MARKER_NAME,
    check_output_folder,
    default_output_folder,
    prepare_study_folder,
    read_marker,
    safe_name,
    spread_work,
    staged_folder,
)
from .pictures import save_figure, save_screenshot
from .tables import write_csv_array, write_csv_rows, write_json, write_npz, write_parquet

__all__ = [
    "MARKER_NAME",
    "atomic_file",
    "check_output_folder",
    "clean_stale",
    "default_output_folder",
    "prepare_study_folder",
    "read_marker",
    "safe_name",
    "save_figure",
    "save_screenshot",
    "spread_work",
    "staged_folder",
    "write_bytes",
    "write_csv_array",
    "write_csv_rows",
    "write_json",
    "write_npz",
    "write_parquet",
    "write_text",
    "write_xdmf",
]
