"""Helpers shared by the ``tagraph`` sub-commands."""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: errno values of an OSError that mean "this file could not be written here".
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def fail(command: str, message: str) -> int:
    """Prints ``tagraph COMMAND: error: MESSAGE`` to stderr; returns exit code 2."""
    print(f"tagraph {command}: error: {message}", file=sys.stderr)
    return 2


def from_tagraph(filename: str) -> bool:
    """Whether a warning was raised from tagraph's own source files."""
    import tagraph

    try:
        return Path(filename).resolve().is_relative_to(Path(tagraph.__file__).resolve().parent)
    except (OSError, ValueError):
        return False


def print_warnings(caught: Sequence[warnings.WarningMessage],
                   always: tuple[type[Warning], ...] = ()) -> None:
    """Prints tagraph's own warnings (e.g. clipped ground truth) and those of the
    :obj:`always` categories as one ``WARNING: ...`` line each on stderr, each
    distinct message once and without a source line; re-issues any other warning
    as Python prints it."""
    printed: set[str] = set()
    for w in caught:
        if issubclass(w.category, always) or (
                issubclass(w.category, UserWarning) and from_tagraph(w.filename)):
            if str(w.message) not in printed:
                printed.add(str(w.message))
                print(f"WARNING: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _os_error_line(e: OSError) -> str:
    what = e.strerror or str(e)
    if e.filename is None:
        return f"{what} (errno {e.errno}); nothing was left half-written"
    verb = "access" if e.errno in (errno.EACCES, errno.EPERM) else "write"
    return f"cannot {verb} '{e.filename}': {what}; nothing was left half-written"


def os_error_message(e: OSError) -> str:
    """One line for an :class:`OSError`: a file that cannot be written (disk
    full, quota, read-only, permission) as in :func:`run_guarded`, else
    ``STRERROR: 'FILE'``."""
    if e.errno in WRITE_ERRNOS:
        return _os_error_line(e)
    what = e.strerror or str(e)
    return f"{what}: '{e.filename}'" if e.filename else what


def _interrupted_line(command: str, e: KeyboardInterrupt) -> str:
    from pathlib import Path

    from tagraph.engine.trainer import TrainingInterrupted

    if not isinstance(e, TrainingInterrupted):
        return "interrupted"
    msg = str(e)
    out = e.out_dir
    if command == "train" and out is not None and e.epoch > 0:
        cfg = Path(out) / "config.toml"
        config = str(cfg) if cfg.is_file() else "CONFIG"
        msg = (f"interrupted after {e.epoch} of {e.epochs} epochs ('{Path(out) / 'last.pt'}' "
               f"holds epoch {e.epoch}); continue with: tagraph train --config {config} "
               f"--out {out} --resume")
    return msg


def run_guarded(command: str, fn: Callable[[], Any]) -> int:
    """Runs :obj:`fn`; known user errors (bad config, missing dataset or file,
    bad values, unusable checkpoints, a diverging loss) and a file that cannot be
    written (disk full, quota, read-only, permission) become one error line and
    exit code 2, not a stack trace; Ctrl-C becomes one line and exit code 130."""
    from tagraph.engine.config import ConfigError
    from tagraph.engine.runner import DatasetNotFoundError
    from tagraph.engine.trainer import NonFiniteLossError

    try:
        out = fn()
    except DatasetNotFoundError as e:
        return fail(command, str(e))
    except (ConfigError, FileNotFoundError, ValueError, KeyError, ImportError,
            NonFiniteLossError) as e:
        msg = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
        return fail(command, msg)
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        return fail(command, _os_error_line(e))
    except KeyboardInterrupt as e:
        print(f"tagraph {command}: {_interrupted_line(command, e)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(out or 0)
