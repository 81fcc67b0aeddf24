"""Where the project keeps files of its own on a machine (feature caches, downloaded archives)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/lightning_ser`, i.e. `~/.cache/lightning_ser` by default."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "lightning_ser"
