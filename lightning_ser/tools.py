"""The project's own subcommands (all but LightningCLI's fit/validate/test/predict)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def is_lightning_predict(argv: list[str]) -> bool:
    """`predict -c CONFIG ...` is LightningCLI's; `predict --ckpt PATH INPUT...` is Phase III."""
    return not any(a == "--ckpt" or a.startswith("--ckpt=") for a in argv)


def cache_command(argv: list[str]) -> dict[str, Any]:
    """`cache -c CONFIG [--data.root DIR] [--json] [--prune]`: build or load the cache, summarise.

    `--prune` deletes this corpus's cache files for other settings or file lists.
    """
    from .cli import lightning_main

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
            elif key == "pruned":
                value = f"{len(value)} file(s)"
            print(f"{key:<{width}}  {value}")
    return summary


def download_command(argv: list[str]) -> Any:
    """`download ravdess TARGET`: fetch, verify and unpack a corpus archive."""
    from .data.download import DownloadError, download_corpus

    parser = argparse.ArgumentParser(prog="lightning-ser download")
    parser.add_argument("corpus", help="corpus name (ravdess)")
    parser.add_argument("target", help="folder to unpack into")
    parser.add_argument("--cache-dir", default=None, help="where the archive is kept")
    parser.add_argument("--url", default=None, help="mirror URL of the archive")
    parser.add_argument("--md5", default=None, help="expected md5 of the archive")
    parser.add_argument("--no-progress", action="store_true")
    ns = parser.parse_args(argv)
    try:
        target = download_corpus(
            ns.corpus, ns.target, ns.cache_dir, ns.url, ns.md5, progress=not ns.no_progress
        )
    except DownloadError as err:
        raise SystemExit(f"download failed: {err}") from err
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
}
