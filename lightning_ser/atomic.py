"""Atomic file writes: a temporary file next to the target, moved onto it only when complete,
so a reader (or a killed process) never leaves or sees half a file."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _temp_name(path: Path) -> Path:
    """A fresh hidden name next to `path` (same folder, so os.replace is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to `path`; move it onto `path` only when the block succeeds.

    Text mode writes UTF-8 with newline="" (as the csv module wants). The file gets the usual
    permissions (umask), unlike tempfile.mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    kwargs = {"newline": "", "encoding": "utf-8"} if "b" not in mode else {}
    try:
        with open(tmp, mode.replace("w", "x"), **kwargs) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_via(path: Path, write: Callable[[str], None]) -> Path:
    """Let `write(temporary_path)` produce the file, then move it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    with atomic_open(path) as handle:
        json.dump(payload, handle, indent=1)
