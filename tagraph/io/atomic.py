"""Atomic file writes: write to a temporary file in the same folder, fsync, ``os.replace``.

A reader never sees a half-written file, and an error (or a kill) while writing leaves the
previous version of the file untouched: the temporary file is removed on error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write", "atomic_save_torch"]


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
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
