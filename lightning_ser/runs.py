"""Run folders: where a command's files go, so that no run ever overwrites another.

A run folder is `<save_dir>/<corpus>/<split>[/fold_<k>]/version_<n>`: the experiment (corpus,
protocol, fold) names the folder, and every `fit` gets a new version. `fit --ckpt_path
.../checkpoints/last.ckpt` resumes in the checkpoint's own folder; `test` / `validate` /
`predict` work in the folder of the checkpoint they evaluate (`--ckpt_path best` / `last`: the
newest version of the experiment that has one). A new version is claimed atomically, so two runs
started together never share one. `--run_dir PATH` names the folder outright.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Protocols with a single split: their run folders carry no fold.
SINGLE_SPLIT = ("holdout", "speaker_holdout")
_VERSION = re.compile(r"^version_(\d+)$")


def experiment_folder(save_dir: str | Path, corpus: str, split: str, fold: int) -> Path:
    """`<save_dir>/<corpus>/<split>[/fold_<k>]`: the folder holding an experiment's versions."""
    folder = Path(save_dir) / corpus / split
    return folder if split in SINGLE_SPLIT else folder / f"fold_{fold}"


def versions(folder: Path) -> list[Path]:
    """The `version_<n>` folders of an experiment, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _VERSION.match(p.name))]
    return [p for _, p in sorted(found)]


def next_version(folder: Path) -> Path:
    """A version folder that does not exist yet: one past the newest."""
    existing = versions(folder)
    number = int(_VERSION.match(existing[-1].name).group(1)) + 1 if existing else 0
    return folder / f"version_{number}"


def newest_with(folder: Path, name: str = "best") -> Path | None:
    """The newest version of an experiment with `checkpoints/<name>.ckpt`, or None."""
    for version in reversed(versions(folder)):
        if (version / "checkpoints" / f"{name}.ckpt").is_file():
            return version
    return None


#: Run folders this process created, so that a command failing before it wrote anything there
#: leaves no empty `version_<n>` behind (`forget_empty_runs`).
CREATED: list[Path] = []


def forget_empty_runs() -> None:
    """Remove the run folders this process created that are still empty (a failed start)."""
    while CREATED:
        folder = CREATED.pop()
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def claim(run_dir: Path) -> Path:
    """Create `run_dir` for this run alone: when another run made it first (two fits started
    together), take the next free version instead."""
    while True:
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
            return run_dir
        except FileExistsError:
            run_dir = next_version(run_dir.parent)


def checkpoint_run_dir(ckpt_path: str | Path) -> Path | None:
    """The run folder of a checkpoint saved as `<run>/checkpoints/<name>.ckpt`, else None."""
    path = Path(ckpt_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def resolve_run_dir(
    save_dir: str | Path,
    corpus: str,
    split: str,
    fold: int,
    ckpt_path: str | None,
) -> Path:
    """The run folder of a command (see the module docstring for the rules).

    Raises:
        FileNotFoundError: `--ckpt_path best` and the experiment has no best checkpoint yet.
    """
    folder = experiment_folder(save_dir, corpus, split, fold)
    if ckpt_path in ("best", "last"):
        found = newest_with(folder, ckpt_path)
        if found is None:
            raise FileNotFoundError(
                f"--ckpt_path {ckpt_path}: no run of {corpus} / {split}"
                f"{'' if split in SINGLE_SPLIT else f' / fold {fold}'} has a {ckpt_path} "
                f"checkpoint under {folder}; run `fit` with this config first, or pass the "
                "checkpoint file"
            )
        return found
    if ckpt_path and (own := checkpoint_run_dir(ckpt_path)) is not None:
        return own
    return next_version(folder)  # a new fit (evaluation always names a checkpoint)


def previous(path: Path, n: int) -> Path:
    """Where an earlier evaluation's file or folder is kept: `report` -> `report.previous-1`,
    `test_config.yaml` -> `test_config.previous-1.yaml`."""
    return path.with_name(f"{path.stem}.previous-{n}{path.suffix}")


def keep_earlier(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Move the existing ones of `paths` (files or folders an earlier call wrote and this one
    would replace) to `<stem>.previous-<n><suffix>`, one free n for all; returns the
    (path, where it went) pairs, so that a failed call can put them back."""
    n = 1
    while any(previous(path, n).exists() for path in paths):
        n += 1
    moved = [(path, previous(path, n)) for path in paths if path.exists()]
    for path, aside in moved:
        path.rename(aside)
    return moved
