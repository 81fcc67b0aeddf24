"""Where a result came from: the command, the code's commit, the date and the machine.

Every result file the experiments write carries this, so a number can always be traced to the
command that reproduces it.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

#: The commit a tree without git metadata was copied from (a Docker image, a copy on another
#: machine): set it where the copy is made, e.g. `--build-arg LIGHTNING_SER_COMMIT=$(git rev-parse
#: --short HEAD)`.
COMMIT_ENV = "LIGHTNING_SER_COMMIT"


def git_commit(where: Path | None = None) -> str:
    """The checked-out commit (short hash, `+dirty` when files differ from it).

    Outside a git checkout: `$LIGHTNING_SER_COMMIT` (marked `(copied tree)`), else "unknown"."""
    folder = where or Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "lightning_ser", "conf")
    except (OSError, subprocess.SubprocessError):
        commit = dirty = ""
    if not commit:
        copied = os.environ.get(COMMIT_ENV, "")
        return f"{copied} (copied tree)" if copied else "unknown"
    return f"{commit}+dirty" if dirty else commit


def machine() -> str:
    """CPU, cores and the accelerator, in words."""
    cpu = platform.processor() or platform.machine()
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text + f", {torch.get_num_threads()} torch thread(s)"


#: The commit of the code this process loaded, read once when it starts: a long run keeps
#: naming the code it runs while the checkout moves on under it.
LOADED_COMMIT = git_commit()


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """{command, commit (of the code loaded), date (UTC), machine} of the running command."""
    args = sys.argv[1:] if argv is None else argv
    return {
        "command": "lightning-ser " + shlex.join(args),
        "commit": LOADED_COMMIT,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }
