"""The project's own subcommands (all but LightningCLI's fit/validate/test/predict)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .argparsing import ArgumentParser

log = logging.getLogger(__name__)


#: Every command with one line each, for `lightning-ser --help`.
COMMAND_HELP = (
    ("fit", "train: softmax stage, then the metric (triplet / ArcFace) stage   -c CONFIG"),
    ("validate", "evaluate a checkpoint on the validation part   -c CONFIG --ckpt_path best|FILE"),
    (
        "test",
        "evaluate on the test part, write the paper's report   -c CONFIG --ckpt_path best|FILE",
    ),
    ("predict", "Phase III: emotions of audio files   --ckpt FILE INPUT... [-o CSV] [--json]"),
    ("embed", "embeddings of audio files as .npy   --ckpt FILE INPUT... -o DIR"),
    ("export", "TorchScript / ONNX embedder   --ckpt FILE -o DIR [--format torchscript onnx]"),
    ("cv", "cross-validation: fit + test per fold, summary   -c CONFIG [--folds 0,3] [--out DIR]"),
    ("ensemble", "cv runs of one split answering together   RUN... --out DIR | --part val"),
    ("answers", "keep a cv's answers (answers.csv) for ensembles without checkpoints   RUN..."),
    ("sweep", "run a W&B grid sweep file locally (Table I)   SWEEP.yaml [--parallel N]"),
    ("cache", "build / inspect the feature cache   -c CONFIG [--json] [--prune]"),
    ("download", "fetch a corpus archive (RAVDESS speech)   ravdess DIR"),
    ("experiment", "fit + test one configuration into a folder (used by sweep)   RUN_DIR -c ..."),
)


def top_level_help() -> str:
    """`lightning-ser --help`: every command with one line, and where to read more."""
    width = max(len(name) for name, _ in COMMAND_HELP)
    lines = [
        "usage: lightning-ser COMMAND [options]    (`lightning` and `python -m lightning_ser` "
        "are the same program)",
        "",
        "Speech emotion recognition with triplet-loss emotion embeddings (Kumar et al.).",
        "",
        "commands:",
        *(f"  {name:<{width}}  {text}" for name, text in COMMAND_HELP),
        "",
        "`lightning-ser COMMAND --help` shows a command's options. fit / validate / test take",
        "every setting of the YAML config on the command line (--data.split kfold, --model.layers",
        "7), and several -c files (a corpus: -c conf/ravdess.yaml -c conf/corpora/emodb.yaml);",
        "`predict -c CONFIG --ckpt_path best` is Lightning's own predict on the test part",
        "(test_predictions.csv in the run folder, with each utterance's true label). --debug",
        "shows tracebacks instead of one-line errors.",
    ]
    return "\n".join(lines)


def is_lightning_predict(argv: list[str]) -> bool:
    """`predict -c CONFIG ...` is LightningCLI's; `predict --ckpt PATH INPUT...` is Phase III
    (and so is `predict --help`, which explains both)."""
    if any(a in ("-h", "--help") for a in argv):
        return False
    return not any(a == "--ckpt" or a.startswith("--ckpt=") for a in argv)


def cache_command(argv: list[str]) -> dict[str, Any]:
    """`cache -c CONFIG [--data.root DIR] [--json] [--prune]`: build or load the cache, summarise.

    `--prune` deletes this corpus's cache files for other settings or file lists, and speed
    copies other than those of this config's `data.speed_perturbation`.
    """
    from .lightning_cli import lightning_main

    if any(a in ("-h", "--help") for a in argv):
        print(
            "usage: lightning-ser cache -c CONFIG [--data.root DIR] [--data.* ...] [--json] "
            "[--prune]\n\nBuild (or load) the feature cache of the config's corpus and print a "
            "summary.\n\noptions:\n  -c CONFIG      the training config (its data settings "
            "are used)\n  --data.*       any data setting, as for `fit`\n  --json         "
            "print the summary as one JSON line\n  --prune        delete this corpus's caches "
            "of other settings or file lists (speed copies too, but those this config "
            "trains on)"
        )
        return {}
    if not any(a == "-c" or a.startswith(("-c=", "--config")) for a in argv):
        raise ValueError("cache: needs -c CONFIG (a training config, e.g. conf/ravdess.yaml)")
    as_json, prune = "--json" in argv, "--prune" in argv
    rest = [a for a in argv if a not in ("--json", "--prune")]
    cli = lightning_main([*rest, "--trainer.logger", "false"], run=False)
    if prune:
        removed = cli.datamodule.stale_caches()
        for path in removed:
            path.unlink(missing_ok=True)
            log.info("removed stale cache %s", path)
    summary = cli.datamodule.summary()
    if prune:
        summary["pruned"] = [str(p) for p in removed]
    if as_json:
        print(json.dumps(summary))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            if key == "emotions":
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            elif key == "pruned":  # which: the cache folder may be shared with other clones
                value = f"{len(value)} file(s)" + "".join(f"\n  {path}" for path in value)
            print(f"{key:<{width}}  {value}")
    return summary


def download_command(argv: list[str]) -> Any:
    """`download ravdess TARGET`: fetch, verify and unpack a corpus archive."""
    from .data.download import DownloadError, download_corpus

    parser = ArgumentParser(prog="lightning-ser download")
    parser.add_argument("corpus", help="corpus name (ravdess)")
    parser.add_argument("target", help="folder to unpack into")
    parser.add_argument("--cache-dir", default=None, help="where the archive is kept")
    parser.add_argument("--url", default=None, help="mirror URL of the archive")
    parser.add_argument("--md5", default=None, help="expected md5 of the archive")
    parser.add_argument("--no-progress", action="store_true")
    ns = parser.parse_args(argv)
    for option, folder in (("TARGET", ns.target), ("--cache-dir", ns.cache_dir)):
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise ValueError(f"download: {option} {folder} is a file; name a folder")
    try:
        target = download_corpus(
            ns.corpus, ns.target, ns.cache_dir, ns.url, ns.md5, progress=not ns.no_progress
        )
    except DownloadError as err:
        raise ValueError(f"download failed: {err}") from err
    print(target)
    return target


def _lazy(module: str, name: str) -> Callable[[list[str]], Any]:
    """A command imported only when it runs (keeps `lightning-ser predict` startup short)."""

    def run(argv: list[str]) -> Any:
        import importlib

        return getattr(importlib.import_module(module, __package__), name)(argv)

    return run


COMMANDS: dict[str, Callable[[list[str]], Any]] = {
    "cache": cache_command,
    "download": download_command,
    "predict": _lazy(".inference_cli", "predict_command"),
    "embed": _lazy(".inference_cli", "embed_command"),
    "export": _lazy(".inference_cli", "export_command"),
    "cv": _lazy(".experiments", "cv_command"),
    "sweep": _lazy(".experiments", "sweep_command"),
    "experiment": _lazy(".experiments", "experiment_command"),
    "ensemble": _lazy(".ensemble", "ensemble_command"),
    "answers": _lazy(".answers", "answers_command"),
}
