"""Output folders: which folder emsim may write, replace or resume, and safe folder names.

Every folder emsim publishes carries a marker file, ``.emsim-output.json`` (what kind of output
it is and the emsim version; no time stamp, so reruns stay byte-identical). The rules, checked
before any solve and again at the moment of the switch:

* a missing folder is created; an empty folder is taken;
* an existing file, a symbolic link, or a folder without the marker is never replaced nor
  written into (a user's folder), whatever the flags;
* a folder with the marker is replaced only when the caller allows it (``--overwrite``; the CLI
  also allows it for its own default folder ``out/<name>`` when the marker shows the same kind
  of output, so that a rerun refreshes it);
* a study folder with the marker is resumed, never replaced.

Names are labels: :func:`safe_name` turns a case or study name into one folder name (no path
separator, no ``..``, no control character, ASCII), so a default folder is always inside
``out/``. :func:`staged_folder` builds a folder beside its target and switches it into place
(:mod:`emsim.io.atomic`), collectively under MPI.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import EmsimError, InputError
from .atomic import clean_stale, swap_in, temp_sibling, write_text

if TYPE_CHECKING:  # mpi4py only names the communicator type here
    from mpi4py import MPI

__all__ = [
    "KINDS",
    "MARKER_NAME",
    "check_output_folder",
    "default_output_folder",
    "prepare_study_folder",
    "read_marker",
    "safe_name",
    "spread_work",
    "staged_folder",
]

#: The marker file in every folder emsim publishes.
MARKER_NAME = ".emsim-output.json"
#: The kinds of output folder, as written in the marker.
KINDS = ("case", "study", "validation", "driver")
#: The longest folder name :func:`safe_name` returns (well under the 255 bytes of most file systems).
_MAX_NAME = 80


def safe_name(label: str, fallback: str = "case") -> str:
    """A folder name for a label: ASCII letters, digits, ``-``, ``_`` and ``.``; never ``.``/``..``.

    Accents are dropped (NFKD: ``"Wange-\u00e4"`` -> ``"Wange-a"``), every other character (path
    separators, control characters, spaces, other scripts) becomes ``-``, leading dots and
    dashes go. When the label had to change, the first 8 hex digits of its SHA-256 are appended,
    so two labels that differ only in dropped characters still get two folders. A label with
    nothing left gives ``fallback`` plus the digest.

    Examples: ``"cheek"`` -> ``"cheek"``; ``"../../x"`` -> ``"x-<hash>"``; ``"/etc"`` ->
    ``"etc-<hash>"``.
    """
    ascii_ = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_)
    name = re.sub(r"-{2,}", "-", name).strip(".-")[:_MAX_NAME].strip(".-")
    if name and name == label:
        return name
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name or fallback}-{digest}"


def default_output_folder(label: str, *, root: str | Path = "out", prefix: str = "", fallback: str = "case") -> Path:
    """``root/<prefix><safe_name(label)>``: always a direct child of ``root``."""
    return Path(root) / (prefix + safe_name(label, fallback))


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a folder emsim wrote (``kind``, ``emsim_version``), or None."""
    path = Path(folder) / MARKER_NAME
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        return None
    return data


def _marker_text(kind: str) -> str:
    return json.dumps({"written_by": "emsim", "kind": kind, "emsim_version": __version__}, sort_keys=True) + "\n"


def check_output_folder(
    path: str | Path,
    *,
    kind: str,
    field: str = "folder",
    overwrite: bool = False,
    rerun: bool = False,
) -> str:
    """Whether emsim may write the output folder ``path``; raises before anything is written.

    Args:
        path: the output folder.
        kind: what will be written (one of :data:`KINDS`).
        field: the option or argument named in the error (``--out``, ``--into``).
        overwrite: a folder with emsim's marker may be replaced.
        rerun: a folder with emsim's marker of this same ``kind`` may be replaced (the CLI's
            default folders).

    Returns:
        ``"new"`` (missing), ``"empty"``, ``"replace"`` (emsim's, replacement allowed) or
        ``"resume"`` (a study folder, for a study).

    Raises:
        InputError: a file, a link, a folder emsim did not write, a marked folder without
            permission to replace it, or a parent that is not a writable folder.
    """
    if kind not in KINDS:
        raise ValueError(f"kind = {kind!r}: one of {KINDS}")
    p = Path(path)
    shown = str(p)
    if p.is_symlink():
        raise InputError(field, shown, "a symbolic link: give the folder itself (emsim never replaces a link)")
    if not p.exists():
        parent = p.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(field, shown, f"{parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(field, shown, f"cannot create it: {parent} is not writable")
        return "new"
    if not p.is_dir():
        raise InputError(field, shown, "an existing file: give a folder (emsim never replaces a file)")
    if not any(p.iterdir()):
        return "empty"
    marker = read_marker(p)
    if marker is None:
        raise InputError(field, shown, f"an existing folder emsim did not write (no {MARKER_NAME}): it is never "
                                       "replaced, even with --overwrite; give a new or empty folder")  # fmt: skip
    if kind == "study" and marker["kind"] == "study":
        return "resume"
    if overwrite or (rerun and marker["kind"] == kind):
        return "replace"
    raise InputError(field, shown, f"holds an earlier emsim output ({marker['kind']}); pass --overwrite to replace it")


def _encoded(err: Exception, rank: int) -> tuple[str, Any]:
    """An error of one rank as the other ranks receive it (see :func:`_raise_received`)."""
    if isinstance(err, InputError):
        value = err.value if _picklable(err.value) else repr(err.value)
        return "input", (err.field, value, err.allowed)
    # emsim's errors and the file system's are the user's to mend; anything else is a defect
    kind = "emsim" if isinstance(err, EmsimError | OSError) else "defect"
    return kind, f"rank {rank}: {type(err).__name__}: {err}"


def _raise_received(kind: str, value: Any) -> None:
    """Raise another rank's error: an InputError as itself, an EmsimError, or a RuntimeError (a defect)."""
    if kind == "input":
        raise InputError(*value)
    raise EmsimError(value) if kind == "emsim" else RuntimeError(value)


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 (whatever pickling raises: the value travels as its repr)
        return False
    return True


def _collective[T](comm: MPI.Comm | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 of ``comm`` and give its result, or raise its error, on every rank."""
    if comm is None or comm.size == 1:
        return fn()
    outcome: tuple[str, Any] = ("ok", None)
    failure: Exception | None = None
    if comm.rank == 0:
        try:
            outcome = ("ok", fn())
        except Exception as err:  # noqa: BLE001 (any error: the other ranks must not wait for this one forever)
            failure, outcome = err, _encoded(err, 0)
    kind, value = comm.bcast(outcome, root=0)
    if failure is not None:
        raise failure
    if kind != "ok":
        _raise_received(kind, value)
    return value


def spread_work(comm: MPI.Comm | None, jobs: Sequence[tuple[bool, Callable[[], object]]]) -> None:
    """Run independent jobs (writers of one staged folder) across the ranks; a failure reaches every rank.

    Each job is ``(on_rank_0, fn)``: a job that reads data gathered on rank 0 runs there, the
    others go round robin to the other ranks (all to rank 0 when it runs alone), so that pictures
    render side by side instead of one after another. A job must not be collective. A rank stops
    at its first failing job; then every rank raises: the failing rank its own error (with its
    traceback), the others an :class:`~emsim.errors.InputError` of the same field, an
    :class:`~emsim.errors.EmsimError` (emsim's errors and the file system's), or for any other
    error (a defect, not the user's) a RuntimeError, each naming the rank and the error.
    Collective: every rank calls it with the same jobs.
    """
    size = 1 if comm is None else comm.size
    rank = 0 if comm is None else comm.rank
    others = list(range(1, size)) or [0]
    failure: Exception | None = None
    outcome: tuple[str, Any] | None = None
    spread = 0
    for on_rank_0, fn in jobs:
        owner = 0 if on_rank_0 else others[spread % len(others)]
        spread += 0 if on_rank_0 else 1
        if owner != rank or failure is not None:
            continue
        try:
            fn()
        except Exception as err:  # noqa: BLE001 (any error: the other ranks must not wait for this one forever)
            failure, outcome = err, _encoded(err, rank)
    outcomes = [outcome] if comm is None or size == 1 else comm.allgather(outcome)
    if failure is not None:
        raise failure
    for found in outcomes:
        if found is not None:
            _raise_received(*found)


@contextmanager
def staged_folder(
    target: str | Path,
    *,
    kind: str,
    overwrite: bool = False,
    field: str = "folder",
    comm: MPI.Comm | None = None,
) -> Iterator[Path]:
    """Yield a new temporary folder beside ``target``; switch it into place when the block ends.

    The target is checked first (:func:`check_output_folder`; nothing is written when it is
    refused), stale temporaries of killed runs beside it are removed, and when the block ends
    the marker is added and the folder replaces ``target`` in one atomic switch
    (:func:`emsim.io.atomic.swap_in`). If the block raises, the temporary folder is removed and
    ``target`` is untouched.

    Collective when ``comm`` is given: rank 0 does the file-system work, every rank gets the
    same temporary path (for collective writers such as XDMF), and errors reach every rank.
    """
    target = Path(target)
    rank0 = comm is None or comm.rank == 0

    def begin() -> str:
        check_output_folder(target, kind=kind, field=field, overwrite=overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target.parent, target.name)
        tmp = temp_sibling(target)
        tmp.mkdir()
        return str(tmp)

    def finish() -> None:
        state = check_output_folder(target, kind=kind, field=field, overwrite=overwrite)
        write_text(tmp / MARKER_NAME, _marker_text(kind))
        try:
            swap_in(tmp, target, replace=state == "replace")
        except FileExistsError:
            raise InputError(field, str(target), "was filled by someone else while emsim wrote; nothing replaced") from None

    tmp = Path(_collective(comm, begin))
    try:
        yield tmp
        if comm is not None:
            comm.barrier()
        _collective(comm, finish)
    except BaseException:
        if rank0 and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare_study_folder(target: str | Path, *, overwrite: bool = False, field: str = "--out") -> str:
    """Make ``target`` a study folder: resume one with emsim's study marker, else publish a new one.

    A new study folder appears atomically with its marker (an empty staged folder switched in),
    so a run killed at any moment leaves either no folder or a resumable one. Call on one rank.

    Returns:
        ``"resume"``, or the state the folder had (``"new"``, ``"empty"``, ``"replace"``).
    """
    target = Path(target)
    state = check_output_folder(target, kind="study", field=field, overwrite=overwrite)
    if state == "resume":
        clean_stale(target.parent, target.name)
        return state
    try:
        with staged_folder(target, kind="study", overwrite=overwrite, field=field):
            pass
    except InputError:
        # Two runs started together: the other one published the study folder first; resume it.
        if check_output_folder(target, kind="study", field=field) == "resume":
            return "resume"
        raise
    return state
