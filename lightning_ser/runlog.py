"""A run folder's `log.txt`: what a `cv` fold or a `sweep` run printed, kept beside its results.

The terminal still shows everything; the copy is made at the Python level (prints, warnings,
progress bars, and the records of the `pytorch_lightning` and `lightning_ser` loggers), which
is where this project and Lightning write. A restarted run appends to the same file; a run
that fails leaves its traceback there.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

LOG_FILE = "log.txt"
#: Set by a parent that already sends a child's whole output into the log (`sweep --parallel`).
LOGGED_ENV = "LIGHTNING_SER_LOGGED"
#: The loggers whose records go into the file (Lightning's writes to a handler of its own).
LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_ser")


class _Tee:
    """A text stream that writes to `stream` and to `copy`."""

    def __init__(self, stream: Any, copy: IO[str]) -> None:
        self._stream, self._copy = stream, copy

    def write(self, text: str) -> int:
        self._copy.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._copy.flush()
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: the terminal's
        return getattr(self._stream, name)


@contextmanager
def logged_to(run_dir: Path, command: list[str]) -> Iterator[Path]:
    """Copy this process's output into `run_dir/log.txt` while the block runs."""
    path = run_dir / LOG_FILE
    if os.environ.get(LOGGED_ENV):  # the parent sends this whole process's output there
        try:
            yield path
        except BaseException:
            sys.stderr.write(traceback.format_exc())  # the log's copy of what main shortens
            raise
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as copy:  # lines survive a kill
        copy.write(f"\n[{time.strftime('%Y-%m-%d %H:%M:%S')}] {' '.join(command)}\n")
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(stdout, copy), _Tee(stderr, copy)
        handlers = []
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if logger.hasHandlers():  # Lightning's own handler writes to the terminal
                handler = logging.StreamHandler(copy)
            else:  # records would reach the terminal by logging's last resort: keep that
                handler = logging.StreamHandler(sys.stderr)
                handler.setLevel(logging.lastResort.level if logging.lastResort else 30)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
            handlers.append((logger, handler))
        try:
            yield path
        except BaseException:  # the terminal gets one line (main); the log the whole story
            copy.write(traceback.format_exc())
            raise
        finally:
            sys.stdout, sys.stderr = stdout, stderr
            for logger, handler in handlers:
                logger.removeHandler(handler)
