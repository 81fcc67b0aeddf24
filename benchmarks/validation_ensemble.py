"""Validation WA of several runs' checkpoints of one fold, alone and averaged (an ensemble).

Not a protocol of the library: a screening aid, for RAVDESS (its file names give the labels).
Each run folder holds a `cv` fold (or a `fit` run) whose `split.json` lists its validation
utterances; every run must have the same ones. Each checkpoint predicts them through
`lightning_ser.inference` (its own feature settings), and an ensemble answers with the emotion
of the largest mean cosine to the class embeddings. Only the validation part is read, never the
test part.

`best.ckpt` was chosen on this very validation part, so its numbers (and those of ensembles that
include it) are optimistic; `last.ckpt` (the end of a fixed schedule) is not chosen by anything.

Example::

    python benchmarks/validation_ensemble.py --fold 0 --checkpoint last \\
        recipe=runs/cv-kfold-long-init mixup=runs/screen-kfold-mixup
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from lightning_ser.inference.checkpoint import load_checkpoint
from lightning_ser.inference.files import ravdess_label


def validation_paths(run_dir: Path) -> list[str]:
    """The validation utterances of a run, from its `split.json`."""
    return json.loads((run_dir / "split.json").read_text())["val_paths"]


def cosines(run_dir: Path, checkpoint: str, paths: list[str], names: list[str]) -> torch.Tensor:
    """[utterances, emotions] cosines to the class embeddings, emotions in the order `names`."""
    model = load_checkpoint(run_dir / "checkpoints" / f"{checkpoint}.ckpt")
    predictions = model.predict_files(paths)
    failed = [p.path for p in predictions if p.status == "error"]
    if failed:
        raise SystemExit(f"{run_dir}: {len(failed)} validation files unreadable: {failed[0]}")
    if sorted(predictions[0].angles) != sorted(names):
        raise SystemExit(f"{run_dir}: other emotions than {names}")
    angles = torch.tensor([[p.angles[n] for n in names] for p in predictions])
    return torch.cos(torch.deg2rad(angles))


def ensemble_wa(members: list[torch.Tensor], names: list[str], truth: list[str]) -> float:
    """Weighted accuracy (%) of the mean cosine of `members`."""
    answer = torch.stack(members).mean(0).argmax(1)
    right = sum(names[i] == t for i, t in zip(answer.tolist(), truth, strict=True))
    return 100 * right / len(truth)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="NAME=FOLDER (a cv output folder or a run folder)")
    parser.add_argument("--fold", type=int, help="the fold_K below each cv folder")
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    args = parser.parse_args(argv)
    folders = {}
    for item in args.runs:
        name, _, folder = item.partition("=")
        path = Path(folder) / (f"fold_{args.fold}" if args.fold is not None else "")
        if not name or not folder or not (path / "split.json").is_file():
            parser.error(f"{item}: not NAME=FOLDER with a split.json in {path}")
        folders[name] = path
    paths = validation_paths(next(iter(folders.values())))
    for name, path in folders.items():
        if validation_paths(path) != paths:
            parser.error(f"{name}: {path} validates on other utterances than the first run")
    truth = [ravdess_label(p) for p in paths]  # RAVDESS file names carry the emotion
    names = sorted(set(truth))
    scored = {name: cosines(path, args.checkpoint, paths, names) for name, path in folders.items()}
    print(f"| {args.checkpoint}.ckpt, {len(paths)} validation utterances | validation WA |")
    print("|---|---|")
    for size in range(1, len(scored) + 1):
        for group in itertools.combinations(scored, size):
            wa = ensemble_wa([scored[n] for n in group], names, truth)
            print(f"| {' + '.join(group)} | {wa:.2f}% |")


if __name__ == "__main__":
    main()
