"""Atomic file writes: write to a temporary file in the same folder, fsync, ``os.replace``.

A reader never sees a half-written file, and an error (or a kill) while writing leaves the
previous version of the file untouched: the temporary file is removed on error.

Temporary files are named ``.<name>.<pid>.<random>.tmp``. A kill during a write leaves one
behind; the first atomic write of a process into a folder removes such leftovers there
(:func:`remove_stale_temp_files`: ours by name, and older than a minute or written by a
process that is gone). An :class:`OSError` while writing (a full disk, a read-only folder)
names the destination file, not the temporary one, in :attr:`OSError.filename`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write", "atomic_save_torch", "temp_path",
           "remove_stale_temp_files"]

#: Temporary files of this module (``.<name>.<pid>.<token>.tmp``), of older versions
#: (``tempfile.mkstemp``: ``.<name>.<8 chars>.tmp``) and of the dataset cache
#: (``.<name>.<pid>.tmp``).
_TMP_RE = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.[0-9a-f]{8}|(?P<pid2>\d+)|"
                     r"[a-z0-9_]{8})\.tmp$")
#: A leftover older than this (s) is stale even when its writer's pid is alive
#: (pids are reused; a live writer keeps its file's mtime fresh).
STALE_AFTER = 60.0
_CLEANED: set[str] = set()


def temp_path(path: str | os.PathLike[str]) -> Path:
    r"""A fresh temporary name next to :obj:`path` (``.<name>.<pid>.<token>.tmp``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike[str], *,
                            max_age: float = STALE_AFTER) -> list[Path]:
    r"""Removes leftover temporary files of atomic writes in :obj:`folder`.

    Only names of our own pattern (see :data:`_TMP_RE`) are touched, and only when they
    are older than :obj:`max_age` seconds or their writer's pid (in the name) is no
    longer running. Returns the removed paths; errors are ignored (best effort).
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        m = _TMP_RE.match(name)
        if m is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid = m.group("pid") or m.group("pid2")
        if age > max_age or (pid is not None and not _pid_alive(int(pid))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _clean_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _CLEANED:
        _CLEANED.add(key)
        remove_stale_temp_files(folder)


def _name_destination(e: OSError, tmp: Path, path: Path) -> OSError:
    """The error with :obj:`path` (not the temporary file) as its filename."""
    if e.filename is None or os.fspath(e.filename) == os.fspath(tmp):
        new = type(e)(e.errno, e.strerror or str(e), str(path)) if e.errno else e
        if new is not e:
            new.__cause__ = e
        return new
    return e


def _new_file_mode(path: Path) -> int:
    # Keep the permissions of the file we replace; new files get 0o666 & ~umask like open().
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    r"""Open :obj:`path` for writing so that it appears complete or not at all.

    Data goes to a temporary file next to :obj:`path`, which is flushed, fsync-ed and moved over
    :obj:`path` with :func:`os.replace` when the :obj:`with` block ends without an exception.
    On an exception the temporary file is deleted and :obj:`path` keeps its old content.

    .. code-block:: python

        with atomic_open("results.json") as f:
            json.dump(obj, f)

    Args:
        path (str or os.PathLike): Destination file. Its folder must exist.
        mode (str, optional): :obj:`"w"` (text) or :obj:`"wb"` (binary). (default: :obj:`"w"`)
        encoding (str, optional): Text encoding, ignored in binary mode.
            (default: :obj:`"utf-8"`)
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: folder '{folder}' does not exist")
    file_mode = _new_file_mode(path)
    _clean_once(folder)
    tmp = temp_path(path)
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            raise _name_destination(e, tmp, path) from None
        try:
            kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": ""}
            with os.fdopen(fd, mode, **kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, file_mode)
            os.replace(tmp, path)
        except OSError as e:
            new = _name_destination(e, tmp, path)
            if new is e:
                raise
            raise new from e
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def atomic_write(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8") -> None:
    r"""Write :obj:`data` (text or bytes) to :obj:`path` atomically, see :func:`atomic_open`.

    Args:
        path (str or os.PathLike): Destination file.
        data (str or bytes): Content; :obj:`str` is encoded with :obj:`encoding`.
        encoding (str, optional): Text encoding. (default: :obj:`"utf-8"`)
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write: data must be str or bytes, got {type(data).__name__}")
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_save_torch(obj: Any, path: str | os.PathLike[str]) -> None:
    r"""Atomic :func:`torch.save`: a checkpoint is either the old or the new one, never torn.

    Args:
        obj (Any): Object to save.
        path (str or os.PathLike): Destination file.
    """
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
