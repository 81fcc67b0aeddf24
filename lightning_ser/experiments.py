"""Many trainings: one experiment (fit + test into a named run directory), cross-validation, and a
local runner for W&B sweep files.

An experiment's result is `<run dir>/result.json`, written atomically once fit and test are done;
its presence is what lets an interrupted `cv` or `sweep` skip finished work when run again.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from .argparsing import ArgumentParser
from .atomic import atomic_open, write_json_atomic
from .provenance import provenance
from .report.tables import format_percent
from .runlog import LOG_FILE, LOGGED_ENV, logged_to

RESULT_FILE = "result.json"
#: The arguments an experiment's fit started with, written before it trains.
ARGS_FILE = "args.json"
#: Options that say where things are, how a run reports progress or when it is tested, not
#: what it computes: a run done with other values of these (another machine's data path)
#: still counts.
NOT_SETTINGS = (
    "--test_after_fit",
    "--data.root",
    "--data.cache_dir",
    "--data.progress",
    "--data.workers",
    "--trainer.enable_progress_bar",
)


def settings(args: list[str], contents: bool = True) -> list[str]:
    """What two runs must share: the `-c` files in their order, then each option's last value
    (`--key value` and `--key=value` alike; jsonargparse lets the last one win), without
    NOT_SETTINGS. A `-c` file counts by its name and a digest of its contents (an edited
    config is another setting, `./a.yaml` and `a.yaml` the same); `contents=False` gives the
    form that folders made before the digests recorded (the path as written)."""
    configs: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "--config") and i + 1 < len(args):
            configs.append(config_setting(args[i + 1]) if contents else f"-c={args[i + 1]}")
            i += 2
            continue
        key, equals, value = arg.partition("=")
        if not equals and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 1  # `--key value`, a negative number included
        values[key] = value
        i += 1
    kept = {k: v for k, v in values.items() if k not in NOT_SETTINGS}
    return [*configs, *(f"{k}={v}" for k, v in sorted(kept.items()))]


def settings_keys(args: list[str]) -> set[str]:
    """The option names (`--model.layers`, also when written `--model.init_args.layers`) that
    `args` set."""
    keys = (item.partition("=")[0] for item in settings(args, contents=False))
    return {key.replace(".init_args.", ".") for key in keys}


def config_setting(path: str) -> str:
    """A `-c` file as a setting: `-c=NAME@DIGEST`, the first 12 hex digits of the SHA-256 of
    its parsed contents without NOT_SETTINGS (comments, layout and a data path do not count)."""
    try:
        content = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return f"-c={Path(path).name}@unreadable"
    for option in NOT_SETTINGS:
        section, _, key = option.removeprefix("--").partition(".")
        part = content.get(section) if isinstance(content, dict) else None
        for where in (part, (part or {}).get("init_args") if isinstance(part, dict) else None):
            if isinstance(where, dict):
                where.pop(key, None)
    canonical = json.dumps(_without_empty(content), sort_keys=True, default=str)
    return f"-c={Path(path).name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


def _without_empty(value: Any) -> Any:
    """`value` without the mappings that are empty (once NOT_SETTINGS are gone)."""
    if not isinstance(value, dict):
        return value
    kept = {k: _without_empty(v) for k, v in value.items()}
    return {k: v for k, v in kept.items() if v != {}}


def other_settings(run_dir: Path, args: list[str]) -> str | None:
    """Why `run_dir` may not count for a run with `args` (made with other settings), or None.

    A folder whose run never saved a checkpoint (it failed at start-up: a wrong option, a
    missing corpus) holds nothing of those settings to protect, so it does not count."""
    for name in (RESULT_FILE, ARGS_FILE):
        path = run_dir / name
        if path.exists() and (name == RESULT_FILE or has_trained(run_dir)):
            record = json.loads(path.read_text())
            if "settings" in record:
                before, now = record["settings"], settings(args)
            else:  # written before settings were recorded: the paths as written
                before, now = settings(record.get("args", []), False), settings(args, False)
            if before == now:
                return None
            old = [a for a in before if a not in now] or ["-"]
            new = [a for a in now if a not in before] or ["-"]
            there, here = " ".join(old), " ".join(new)
            return f"{run_dir} was run with other settings ({there} there, {here} now)"
    return None


def refuse_other_settings(run_dir: Path, args: list[str]) -> None:
    """Refuse, in one line, to count or resume a run folder made with other settings (a cv or
    sweep run again with a changed option or an edited config would otherwise report the old
    folds under the new command)."""
    if why := other_settings(run_dir, args):
        raise ValueError(f"{why}: pass another --out, or remove that folder to run it again")


HEADLINE = ("least_angle/wa", "least_angle/ua", "least_angle/macro_f1", "softmax/wa", "softmax/ua")


def logger_override(run_dir: Path, wandb: bool, group: str) -> Path:
    """A config file that points the run's loggers at `run_dir` (replacing the config's list)."""
    loggers: list[dict[str, Any]] = [
        {
            "class_path": "lightning_ser.loggers.RunLogger",
            "init_args": {
                "save_dir": str(run_dir.parent.parent),
                "name": run_dir.parent.name,
                "version": run_dir.name,
            },
        }
    ]
    if wandb:
        loggers.append(
            {
                "class_path": "pytorch_lightning.loggers.WandbLogger",
                "init_args": {
                    "project": "lightning-ser",
                    "save_dir": str(run_dir),
                    "offline": True,
                    "group": group,
                    "name": f"{run_dir.parent.name}/{run_dir.name}",
                },
            }
        )
    path = run_dir / "loggers.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"trainer": {"logger": loggers}}))
    return path


def run_experiment(
    args: list[str], run_dir: Path, wandb: bool = False, group: str = "experiments"
) -> dict[str, Any]:
    """Fit then test (best checkpoint) one configuration into `run_dir`; return its result.

    `args` are LightningCLI arguments without the subcommand (`-c conf.yaml --model.layers 7`).
    A fit interrupted before (a `last.ckpt` but no result) resumes from its last checkpoint, so
    a long cv or sweep that spans sessions loses at most the epoch that was running.
    """
    from .lightning_cli import lightning_main

    result_path = run_dir / RESULT_FILE
    args = [a for a in args if not a.startswith("--test_after_fit")]  # tested below, once
    refuse_other_settings(run_dir, args)
    if result_path.exists():
        return json.loads(result_path.read_text())
    start = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    recorded = settings(args)  # before training: a config edited meanwhile is not this run's
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed_at = interrupted_epoch(last)
    if resumed_at is None:  # a first start, or one after a start that failed
        write_json_atomic(run_dir / ARGS_FILE, {"args": args, "settings": recorded})
    loggers = ["-c", str(logger_override(run_dir, wandb, group))]
    resume = ["--ckpt_path", str(last)] if resumed_at is not None else []
    if resumed_at is not None:
        print(f"[experiment] {run_dir}: resuming the interrupted fit after epoch {resumed_at}")
    elif (run_dir / "metrics.csv").exists():  # a fit that died before its first checkpoint:
        set_aside(run_dir / "metrics.csv")  # kept, but not mixed with the new fit's rows
    with logged_to(run_dir, ["fit", *args, *resume]):
        fit = lightning_main(["fit", *args, *loggers, *resume])
        epochs = fit.trainer.current_epoch
        stage_start = fit.model.stage_start_epoch
        selector = fit.trainer.checkpoint_callback
        val_best = selector.best_model_score if selector is not None else None
        tested = lightning_main(["test", *args, *loggers, "--ckpt_path", "best"])
    metrics = {
        k.removeprefix("test/"): float(v)
        for k, v in tested.trainer.callback_metrics.items()
        if k.startswith("test/")
    }
    result = {
        "args": args,
        "settings": recorded,
        "run_dir": str(run_dir),
        "protocol": tested.datamodule.split.protocol,
        "fold": tested.datamodule.split.fold,
        "epochs": epochs,
        "softmax_epochs": stage_start,
        "triplet_epochs": epochs - stage_start,
        "seconds": round(time.perf_counter() - start, 1),
        # seconds count this process only; a resumed fit says after which epoch it resumed
        "resumed_after_epoch": resumed_at,
        "metrics": metrics,
        # what chose the checkpoint (on the validation part): comparisons of settings use this
        # (`data.val_size: 0`: no validation part, the last epoch is the model)
        "selected_by": (selector.monitor or "last epoch") if selector is not None else None,
        "val_best": float(val_best) if val_best is not None else None,
        **provenance(["experiment", str(run_dir), *args]),
    }
    write_json_atomic(result_path, result)
    return result


def has_trained(run_dir: Path) -> bool:
    """Whether a fit in `run_dir` finished an epoch (its `last.ckpt` can be read)."""
    return interrupted_epoch(run_dir / "checkpoints" / "last.ckpt") is not None


def interrupted_epoch(last: Path) -> int | None:
    """The last finished epoch of an interrupted fit's `last.ckpt`, or None when there is none
    (a checkpoint that cannot be read counts as none: the fit starts again)."""
    if not last.exists():
        return None
    try:
        import torch

        return int(torch.load(last, weights_only=True, map_location="cpu")["epoch"])
    except Exception:  # noqa: BLE001 - a truncated file from a killed process: start over
        return None


def set_aside(path: Path) -> Path:
    """Rename `path` to the first free `<stem>.interrupted-<n><suffix>` beside it."""
    n = 1
    while (target := path.with_name(f"{path.stem}.interrupted-{n}{path.suffix}")).exists():
        n += 1
    return path.rename(target)


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and (sample) standard deviation of every metric over the given results."""
    keys = sorted(set().union(*(r["metrics"] for r in results)))
    summary = {}
    for key in keys:
        values = [r["metrics"][key] for r in results if key in r["metrics"]]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[key] = {"mean": statistics.fmean(values), "std": std, "n": len(values)}
    return summary


def write_table(rows: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    """Write rows as CSV (atomically) with the given columns."""
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def cv_command(argv: list[str]) -> dict[str, Any]:
    """`cv -c CONFIG [--data.split kfold] [--folds 0,3] [--out DIR] [--wandb]`: every fold.

    Each finished fold also keeps its answers (`answers.csv`: every validation and test
    utterance's cosines and probabilities), small enough to commit, so `ensemble` can combine
    it once its checkpoints are gone; a fold finished before answers were kept gets them when
    its cv runs again."""
    from .answers import ANSWERS_FILE, write_answers
    from .data.splits import num_folds
    from .lightning_cli import lightning_main

    parser = ArgumentParser(
        prog="lightning-ser cv",
        usage="lightning-ser cv -c CONFIG [--data.split kfold] [--data.* ...] [--folds 0,3] "
        "[--out DIR] [--wandb]",
        description="Fit + test every fold of the config's protocol (data.split), each into "
        "OUT/fold_<k>/, then write folds.csv, summary.md and summary.json. Folds already done "
        "are skipped, so an interrupted cv resumes. Every other option is passed to `fit` and "
        "`test` (any setting of the config). Each fold keeps its answers (answers.csv) for "
        "`lightning-ser ensemble`.",
    )
    parser.add_argument(
        "--out", default=None, help="results folder (default runs/cv-<corpus>-<split>)"
    )
    parser.add_argument("--folds", default=None, help="comma-separated folds (default: all)")
    parser.add_argument("--wandb", action="store_true", help="also log each fold to W&B")
    ns, args = parser.parse_known_args(argv)
    probe = lightning_main([*args, "--trainer.logger", "false"], run=False)
    datamodule = probe.datamodule
    protocol = datamodule.split_args["protocol"]
    groups = [datamodule.group_of(u) for u in datamodule.utterances]
    total = num_folds(
        protocol, groups, datamodule.split_args["n_folds"], datamodule.split_args["speaker_folds"]
    )
    try:
        folds = [int(f) for f in ns.folds.split(",")] if ns.folds else list(range(total))
    except ValueError:
        folds = [-1]
    if any(not 0 <= fold < total for fold in folds):
        raise ValueError(f"--folds {ns.folds}: {protocol} has folds 0 to {total - 1}")
    folds = list(dict.fromkeys(folds))  # `--folds 0,0` trains and counts fold 0 once
    out = Path(ns.out or f"runs/cv-{datamodule.corpus}-{protocol}")
    for fold in folds:  # before any fold trains
        refuse_other_settings(out / f"fold_{fold}", [*args, "--data.fold", str(fold)])
    for i, fold in enumerate(folds):
        run_dir = out / f"fold_{fold}"
        done = (run_dir / RESULT_FILE).exists()
        print(
            f"[cv] fold {fold} ({i + 1}/{len(folds)}){' already done' if done else ''}", flush=True
        )
        result = run_experiment([*args, "--data.fold", str(fold)], run_dir, ns.wandb, str(out))
        if not (run_dir / ANSWERS_FILE).exists():
            write_answers(run_dir)
        wa = result["metrics"].get("least_angle/wa", float("nan"))
        print(f"[cv] fold {fold}: least-angle WA {format_percent(wa)}", flush=True)
    results = finished_folds(out, total, args)
    return write_cv_summary(results, out, datamodule.corpus, protocol, total, argv)


def finished_folds(out: Path, total: int, args: list[str]) -> list[dict[str, Any]]:
    """The results of every fold finished in `out` with these settings (those of earlier `cv
    --folds` calls included, so the summary never forgets a fold); folds made with other
    settings are named and left out."""
    results = []
    for fold in range(total):
        run_dir = out / f"fold_{fold}"
        if not (run_dir / RESULT_FILE).exists():
            continue
        if why := other_settings(run_dir, [*args, "--data.fold", str(fold)]):
            print(f"[cv] left out of the summary: {why}", flush=True)
            continue
        results.append(json.loads((run_dir / RESULT_FILE).read_text()))
    return results


def write_cv_summary(
    results: list[dict[str, Any]],
    out: Path,
    corpus: str,
    protocol: str,
    total: int,
    argv: list[str],
    command: str = "cv",
) -> dict[str, Any]:
    """folds.csv, summary.md and summary.json of a cross-validation (or of an `ensemble` of
    cross-validations): per-fold numbers, mean and sample std, and where they came from
    (command, commits, dates, machine)."""
    summary = summarise(results)
    columns = ["fold", *HEADLINE, "epochs", "seconds", "commit", "date", "machine"]
    rows = [{**r, **r["metrics"]} for r in results]
    write_table(rows, columns, out / "folds.csv")
    meta = provenance([command, *argv])
    done_how = "trained" if command == "cv" else "scored"  # an ensemble trains nothing
    commits = sorted({r.get("commit", "unknown") for r in results})
    done = [r["fold"] for r in results]
    machines: dict[str, list[str]] = {}
    for r in results:
        machines.setdefault(r.get("machine", "unknown"), []).append(str(r["fold"]))
    lines = [
        f"# {corpus}: {protocol}, {len(results)} of {total} fold(s)",
        "",
        f"- command: `{meta['command']}`",
        f"- commit(s) of the folds: {', '.join(commits)} (per fold in folds.csv)",
        *(f"- fold(s) {', '.join(f)} {done_how} on {m}" for m, f in machines.items()),
        f"- summarised {meta['date']} on {meta['machine']}",
        "",
        "| metric | mean | std (sample) |",
        "|---|---|---|",
    ]
    for key in HEADLINE:
        if key in summary:
            s = summary[key]
            std = format_percent(s["std"]).removesuffix("%")
            lines.append(f"| {key} | {format_percent(s['mean'])} | {std} |")
    lines += ["", "| fold | " + " | ".join(HEADLINE) + " | minutes | commit |"]
    lines.append("|---" * (len(HEADLINE) + 3) + "|")
    for r in results:
        cells = [format_percent(r["metrics"].get(k, float("nan"))) for k in HEADLINE]
        minutes = f"{r.get('seconds', float('nan')) / 60:.1f}"
        if r.get("resumed_after_epoch") is not None:
            minutes += f" (after epoch {r['resumed_after_epoch']})"
        lines.append(
            f"| {r['fold']} | "
            + " | ".join(cells)
            + f" | {minutes} | {r.get('commit', 'unknown')} |"
        )
    with atomic_open(out / "summary.md") as handle:
        handle.write("\n".join(lines) + "\n")
    payload = {
        "corpus": corpus,
        "protocol": protocol,
        "folds": done,
        "folds_total": total,
        **meta,
        "commits": commits,
        "per_fold": [
            {
                k: r.get(k)
                for k in ("fold", "metrics", "epochs", "seconds", "commit", "date", "machine")
            }
            for r in results
        ],
        **summary,
    }
    write_json_atomic(out / "summary.json", payload)
    print("\n".join(lines))
    return summary


def read_sweep(path: Path) -> dict[str, Any]:
    """A W&B sweep file, refused in one line when it is missing or not a sweep (a training
    config given by mistake)."""
    if not path.is_file():
        raise ValueError(f"{path}: no such sweep file")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("parameters"), dict):
        raise ValueError(
            f"{path} is not a W&B sweep file (no `parameters:` mapping; a training config goes "
            "after the sweep file: `sweep SWEEP.yaml -c CONFIG`)"
        )
    if "${program}" in (spec.get("command") or ["${program}"]) and "program" not in spec:
        raise ValueError(f"{path}: its command runs ${{program}} but it names no `program:`")
    return spec


def expand_sweep(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every parameter combination of a W&B grid sweep (values / value entries)."""
    if spec.get("method", "grid") != "grid":
        raise ValueError(f"only grid sweeps run locally, got method {spec.get('method')!r}")
    names, choices = [], []
    for name, param in spec.get("parameters", {}).items():
        if not isinstance(param, dict):
            raise ValueError(
                f"sweep parameter {name!r}: {param!r} is not a mapping such as "
                f"`{name}: {{values: [{param}]}}`"
            )
        if "values" in param:
            values = list(param["values"])
        elif "value" in param:
            values = [param["value"]]
        else:
            raise ValueError(f"sweep parameter {name!r} needs `values` or `value` for a grid")
        names.append(name)
        choices.append(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def sweep_arguments(
    spec: dict[str, Any], params: dict[str, Any], overrides: Sequence[str] = ()
) -> list[str]:
    """The sweep's command for one combination, without its program (`lightning fit`), then
    `overrides` (the command line's `--data.root ...`, `-c more.yaml`), which beat the
    command's fixed flags. A grid value must beat an override's `-c` file (a later config
    replaces earlier values), so after one the combination's values are given again."""
    command = spec.get("command") or ["${env}", "${program}", "${args}"]
    grid = [f"--{k}={v}" for k, v in params.items()]
    rendered: list[str] = []
    for token in command:
        if token == "${args}":
            rendered += grid
        elif token == "${env}":
            continue
        elif token == "${program}":
            rendered.append(spec["program"])
        else:
            rendered.append(token)
    for program in ("lightning", "lightning-ser"):
        if rendered and rendered[0] == program:
            rendered = rendered[1:]
    if rendered and rendered[0] == "fit":
        rendered = rendered[1:]
    configs = any(a in ("-c", "--config") or a.startswith("--config=") for a in overrides)
    return [*rendered, *overrides, *(grid if configs and "${args}" in command else [])]


def slug(params: dict[str, Any]) -> str:
    """A folder name for one combination, e.g. `backbone-lstm_layers-7`."""
    parts = [f"{k.rsplit('.', 1)[-1]}-{v}" for k, v in params.items()]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts)) or "default"


def sweep_command(argv: list[str]) -> list[dict[str, Any]]:
    """`sweep SWEEP.yaml [--out DIR] [--parallel N] [--dry-run] [overrides...]`: run a grid here."""
    parser = ArgumentParser(prog="lightning-ser sweep")
    parser.add_argument("sweep", help="a W&B sweep YAML with method: grid")
    parser.add_argument("--out", default=None, help="results folder (default runs/sweep-<name>)")
    parser.add_argument("--parallel", type=int, default=1, help="configurations run at once")
    parser.add_argument("--dry-run", action="store_true", help="list the runs, train nothing")
    parser.add_argument(
        "--summarise",
        action="store_true",
        help="write the tables and plot of the runs already done, train nothing",
    )
    ns, extra = parser.parse_known_args(argv)
    spec = read_sweep(Path(ns.sweep))
    out = Path(ns.out or f"runs/sweep-{Path(ns.sweep).stem}")
    grid = expand_sweep(spec)
    if grid and (fixed := [k for k in grid[0] if f"--{k}" in settings_keys(extra)]):
        raise ValueError(
            f"--{fixed[0]} is a parameter of {ns.sweep}: change it there, not on the command line"
        )
    jobs = [(p, sweep_arguments(spec, p, extra), out / slug(p)) for p in grid]
    if jobs and not ns.summarise:
        check_arguments(jobs[0][1], ns.sweep)
    pending = [j for j in jobs if not (j[2] / RESULT_FILE).exists()]
    print(
        f"[sweep] {len(jobs)} configurations, {len(jobs) - len(pending)} already done", flush=True
    )
    if ns.dry_run:
        for _, args, run_dir in jobs:
            print(run_dir, " ".join(args))
        return []
    if ns.summarise:
        pending = []  # tables of what is done, nothing trained
    else:
        for _, args, run_dir in jobs:
            refuse_other_settings(run_dir, args)  # a changed sweep would count the old runs
    if ns.parallel > 1:
        failed = _run_parallel(pending, ns.parallel)
    else:
        failed = []
        for i, (_, args, run_dir) in enumerate(pending):
            print(f"[sweep] {i + 1}/{len(pending)}: {run_dir.name}", flush=True)
            try:
                run_experiment(args, run_dir, group=str(out))
            except (Exception, SystemExit) as err:  # noqa: BLE001 - one run does not stop all
                from .cli import one_line, stop_status  # the command line's own wording

                if stop_status(err) is not None:  # Ctrl-C or SIGTERM stops the sweep
                    raise

                print(f"[sweep] {run_dir.name}: failed: {one_line(err)}", flush=True)
                failed.append(run_dir.name)
    results = []
    for params, _, run_dir in jobs:
        path = run_dir / RESULT_FILE
        if path.exists():
            results.append({**params, **json.loads(path.read_text())})
    if ns.summarise and not results:  # a mistyped --out: say so, write no empty tables
        raise ValueError(f"sweep --summarise: no finished runs of {ns.sweep} in {out}")
    _write_sweep_tables(results, list(grid[0]) if grid else [], out, len(jobs))
    if failed:
        raise ValueError(
            f"{len(failed)} of {len(pending)} configurations failed ({', '.join(failed)}); the "
            "others are in the tables, and the same command runs the failed ones again"
        )
    return results


def check_arguments(args: list[str], source: str) -> None:
    """Parse one configuration's `fit` arguments without running anything, so that a misspelt
    grid key or setting is refused once, before the grid starts, instead of failing every run."""
    from .lightning_cli import lightning_main

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            lightning_main(["fit", *args, "--print_config"])
    except SystemExit as done:  # --print_config prints the parsed config and exits 0
        if done.code not in (0, None):
            raise
    except (ValueError, argparse.ArgumentError) as err:
        from .cli import one_line

        raise ValueError(f"{source}: {one_line(err)}") from None


def _run_parallel(jobs: list[tuple[dict, list[str], Path]], parallel: int) -> list[str]:
    """Run experiments as separate processes, `parallel` at a time, each appending its output
    to its run folder's `log.txt` (a resumed run's earlier log is kept); returns the names of
    the runs that failed."""
    running: list[tuple[subprocess.Popen, Path, IO[str]]] = []
    queue = list(jobs)
    failed = []
    while queue or running:
        while queue and len(running) < parallel:
            _, args, run_dir = queue.pop(0)
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "lightning_ser", "experiment", str(run_dir), *args]
            log = open(run_dir / LOG_FILE, "a")  # noqa: SIM115 - closed when the process ends
            log.write(f"\n[sweep] {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(cmd)}\n")
            log.flush()
            env = {**os.environ, LOGGED_ENV: "1"}  # the whole output goes to log.txt here
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((proc, run_dir, log))
            print(f"[sweep] started {run_dir.name}", flush=True)
        for proc, run_dir, log in list(running):
            if proc.poll() is not None:
                running.remove((proc, run_dir, log))
                log.close()
                if proc.returncode != 0:
                    failed.append(run_dir.name)
                state = "done" if proc.returncode == 0 else f"failed ({run_dir / LOG_FILE})"
                print(f"[sweep] {run_dir.name}: {state}", flush=True)
        time.sleep(1)
    return failed


def _write_sweep_tables(
    results: list[dict[str, Any]], keys: list[str], out: Path, total: int
) -> None:
    """Table I layout (architecture, x, accuracy) as markdown, and every metric as CSV."""
    rows = []
    for r in results:
        row = {k: r.get(k) for k in keys} | r["metrics"]
        extra = ("epochs", "seconds", "val_best", "commit", "date", "machine")
        rows.append(row | {k: r.get(k) for k in extra})
    columns = [*keys, "val_best", *HEADLINE, "epochs", "seconds", "commit", "date", "machine"]
    write_table(rows, columns, out / "results.csv")
    lines = [
        f"{len(rows)} of {total} configurations done (per run: commit, date, machine in "
        "results.csv).",
        "",
        "| Architecture | x | Accuracy (WA, least angle) | UA |",
        "|---|---|---|---|",
    ]
    for r in rows:
        arch = str(r.get("model.backbone", "resnet")).upper().replace("RESNET", "ResNet")
        wa, ua = r.get("least_angle/wa", float("nan")), r.get("least_angle/ua", float("nan"))
        layers = r.get("model.layers", "")
        lines.append(f"| {arch}-x | {layers} | {format_percent(wa)} | {format_percent(ua)} |")
    if rows and "model.layers" in keys and "model.backbone" in keys:
        from .report.figures import plot_accuracy_by_depth

        lines += ["", *beside_the_paper(rows)]
        plot_accuracy_by_depth(rows, out / "accuracy_by_depth.png")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def beside_the_paper(rows: list[dict[str, Any]]) -> list[str]:
    """Per family: the paper's best x and WA, ours at that x, and our best x chosen on the
    validation part (`val_best`; never on the test part) with its test WA."""
    from .report.figures import PAPER_TABLE_I

    lines = [
        "| family | paper: best x | paper: WA | ours at the paper's x: WA | ours: x chosen on "
        "validation (val WA) | its test WA | runs done |",
        "|---|---|---|---|---|---|---|",
    ]
    for family, (paper_x, paper_wa) in PAPER_TABLE_I.items():
        done = [r for r in rows if r.get("model.backbone") == family]
        at_x = [r for r in done if r.get("model.layers") == paper_x]
        same = format_percent(at_x[0]["least_angle/wa"]) if at_x else "not run yet"
        validated = [r for r in done if r.get("val_best") is not None]  # none: data.val_size 0
        best = max(validated, key=lambda r: r["val_best"]) if validated else None
        chosen = f"{best['model.layers']} ({format_percent(best['val_best'])})" if best else "none"
        tested = format_percent(best["least_angle/wa"]) if best else ""
        name = family.upper().replace("RESNET", "ResNet")
        lines.append(
            f"| {name} | {paper_x} | {paper_wa:.2f}% | {same} | {chosen} | {tested} | {len(done)} |"
        )
    return lines


def experiment_command(argv: list[str]) -> dict[str, Any] | int:
    """`experiment RUN_DIR [LightningCLI args]`: fit + test into RUN_DIR (used by `sweep`)."""
    usage = (
        "usage: lightning-ser experiment RUN_DIR -c CONFIG [overrides...]: fit, then test the "
        "best checkpoint, into RUN_DIR (what `cv` and `sweep` run for each fold or setting)"
    )
    if argv[:1] in ([], ["-h"], ["--help"]):
        print(usage)
        return 0 if argv else 2
    if argv[0].startswith("-"):
        raise ValueError(f"experiment: RUN_DIR comes first, got {argv[0]!r}; {usage}")
    return run_experiment(argv[1:], Path(argv[0]))
