"""Helpers shared by the ``tagraph`` sub-commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def fail(command: str, message: str) -> int:
    """Prints ``tagraph COMMAND: error: MESSAGE`` to stderr; returns exit code 2."""
    print(f"tagraph {command}: error: {message}", file=sys.stderr)
    return 2


def run_guarded(command: str, fn: Callable[[], Any]) -> int:
    """Runs :obj:`fn`; known user errors (bad config, missing dataset or file,
    bad values) become one error message and exit code 2, not a stack trace."""
    from tagraph.engine.config import ConfigError
    from tagraph.engine.runner import DatasetNotFoundError

    try:
        out = fn()
    except DatasetNotFoundError as e:
        return fail(command, str(e))
    except (ConfigError, FileNotFoundError, ValueError, KeyError, ImportError) as e:
        msg = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
        return fail(command, msg)
    return int(out or 0)
