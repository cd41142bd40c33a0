"""Atomic writes: a file or a whole folder appears complete, or not at all.

A file is written to a temporary sibling (same folder, so the same file system), flushed to
disk (``fsync``) and renamed over its target (:func:`os.replace`, atomic on POSIX). A folder is
built as a temporary sibling and switched into place with one atomic exchange of the two
directory entries (Linux ``renameat2(RENAME_EXCHANGE)``), so a reader, or a run killed at any
moment, sees the old folder or the new one, never a mix and never neither. Where the exchange is
not available (another OS, a file system without it) the switch is two renames (old aside, new
in); a kill between them leaves the old folder aside under its temporary name, and the next
emsim run that writes there puts it back (:func:`clean_stale`).

Temporary names: ``.NAME.tmp-PID.HOST[.ext]`` for what is being built and ``.NAME.old-PID.HOST``
for an old folder set aside, where PID and HOST are the writing process and machine (the
extension is kept so that writers that pick the format from the name still can). A temporary is
stale when its process is gone from this machine; :func:`clean_stale` removes stale ones and
never touches those of a live process or of another machine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_file",
    "clean_stale",
    "exchange",
    "swap_in",
    "temp_sibling",
    "write_bytes",
    "write_text",
]

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
#: ``.NAME.tmp-PID.HOST[.ext]``: the host has no dot, so the PID and the host parse from the right.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)\.(?P<host>[A-Za-z0-9-]+)(?P<ext>\.[^.]*)?$")


def temp_sibling(path: Path, kind: str = "tmp") -> Path:
    """The temporary sibling of ``path`` for this process: ``.NAME.tmp-PID.HOST[.ext]``.

    Args:
        path: the target file or folder.
        kind: ``"tmp"`` (being built) or ``"old"`` (an old folder set aside during a switch).
    """
    if kind not in ("tmp", "old"):
        raise ValueError(f"kind = {kind!r}: 'tmp' or 'old'")
    path = Path(path)
    return path.parent / f".{path.name}.{kind}-{os.getpid()}.{_HOST}{path.suffix}"


def _alive(pid: int, host: str) -> bool:
    """Whether the owner of a temporary may still run (another machine's: assume so)."""
    if host != _HOST:
        return True  # no way to tell from here: never remove another machine's work
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a live process of another user
    return True


def _fsync_path(path: Path) -> None:
    """Flush a file or a folder's entries to disk (a read-only descriptor suffices on POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems cannot fsync a directory: the data still is
        if err.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _sync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` before it is switched into place."""
    for root, dirs, files in os.walk(folder):
        for name in files:
            _fsync_path(Path(root) / name)
        for name in dirs:
            _fsync_path(Path(root) / name)
    _fsync_path(folder)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends, move it into place.

    For writers that want a file name (matplotlib, pyarrow, numpy, VTK): they write the
    temporary (its extension is the target's, so the format still follows the name); then it is
    flushed to disk and renamed over ``path`` in one step. If the block raises, the temporary
    is removed and ``path`` is untouched. The parent folder is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_path(path.parent)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling, fsync, rename)."""
    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return path


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; the text is encoded before anything is written."""
    return write_bytes(path, text.encode(encoding))


# ----------------------------------------------------------------------------- folders


def _load_renameat2():
    """Libc's ``renameat2`` (glibc >= 2.28), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Swap the directory entries ``a`` and ``b`` in one atomic step.

    Returns:
        True when swapped; False when this system or file system cannot exchange (the caller
        falls back to two renames). Other errors raise :class:`OSError`.
    """
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def swap_in(tmp: Path, target: Path, *, replace: bool) -> None:
    """Put the complete folder ``tmp`` in place of ``target`` with one atomic switch.

    ``target`` missing or an empty folder: one rename. Otherwise (only with ``replace``, which
    the caller grants after checking the target is emsim's) one atomic exchange, then the old
    folder (now under the temporary name) is removed; without the exchange, two renames.

    Raises:
        FileExistsError: ``target`` is not empty and ``replace`` is False.
    """
    _sync_tree(tmp)
    try:
        os.rename(tmp, target)  # a missing target, or an empty folder (POSIX replaces it)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        if not replace:
            raise FileExistsError(errno.EEXIST, "not empty", str(target)) from None
        if exchange(tmp, target):
            _fsync_path(target.parent)
            _remove(tmp)  # the old folder, now under the temporary name
            return
        old = temp_sibling(target, "old")
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(old, target)
            raise
        _remove(old)
    _fsync_path(target.parent)


def clean_stale(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temporaries in ``folder`` whose process is gone (of ``name`` only, if given).

    An old folder set aside by a switch that was killed half-way (``.NAME.old-...``, with no
    ``NAME`` any more) is put back instead of removed. Temporaries of live processes and of
    other machines are left alone.

    Returns:
        The paths removed or restored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    touched = []
    for entry in sorted(folder.iterdir()):
        m = _TEMP.match(entry.name)
        if m is None or (name is not None and m["name"] != name):
            continue
        if _alive(int(m["pid"]), m["host"]):
            continue
        target = folder / m["name"]
        if m["kind"] == "old" and not target.exists() and not target.is_symlink():
            os.rename(entry, target)
        else:
            _remove(entry)
        touched.append(entry)
    return touched
