"""`lightning-ser ensemble`: several trainings of one split answering together.

Members are trainings of the same split, typically one `cv` run repeated with other seeds
(`--seed_everything 1`, `2`, ...: the trainings differ, the split does not, since `data.seed`
draws it), or runs of other settings on that split. For each utterance an ensemble averages the
members' cosines to their own class embeddings (its least-angle answer is the emotion of the
largest mean cosine: each member's embedding space is its own, so cosines are averaged, never
embeddings) and their softmax probabilities (its softmax answer). One member alone re-scores its
run, e.g. on crops (`--eval-crops`). A member whose checkpoints are gone (a results folder
committed without them) answers from the `answers.csv` its cv kept (`lightning_ser.answers`).

Nothing here chooses anything on the test part: each member brings the checkpoint its `cv`
tested (`best.ckpt`: the best validation epoch, or the last epoch of a refit) or the end of its
schedule (`last.ckpt`), and the members are whatever runs are given. `--part val` scores the
validation parts instead, the honest place to decide members and `--eval-crops` (a `best.ckpt`
was chosen on that very part, so its validation numbers flatter it; `last.ckpt` does not). Test
numbers are only written (`--out`), never just printed, so each one has its record.

Example::

    for seed in 0 1 2; do
        lightning-ser cv -c conf/ravdess.yaml --data.split kfold --seed_everything $seed \\
            --out runs/kfold-seed$seed
    done
    lightning-ser ensemble runs/kfold-seed0 runs/kfold-seed1 runs/kfold-seed2 \\
        --out runs/kfold-ensemble
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from .argparsing import ArgumentParser
from .atomic import write_json_atomic
from .data.datamodule import EmotionDataModule
from .data.splits import num_folds
from .experiments import RESULT_FILE, write_cv_summary
from .member import ANSWERS_FILE, MemberAnswers, has_answers, member_answers
from .metrics import classification_metrics
from .provenance import provenance
from .report.tables import format_percent


def answers_kept(run_dir: Path, checkpoint: str) -> bool:
    """Whether `run_dir` can answer as `checkpoint`: the checkpoint, or its kept answers."""
    return (run_dir / "checkpoints" / checkpoint).is_file() or has_answers(run_dir, checkpoint)


def fold_runs(folder: Path, checkpoint: str) -> dict[int, Path]:
    """The run folders of `folder` by fold: a `cv` output's finished folds (`fold_<k>/` with a
    result.json: a fold still training is not a member), or one trained run folder; each with
    the checkpoint or, where it is gone, the answers `cv` kept of it (answers.csv)."""
    if (folder / "split.json").is_file() and answers_kept(folder, checkpoint):
        try:
            return {int(json.loads((folder / "split.json").read_text()).get("fold", 0)): folder}
        except (ValueError, AttributeError) as err:
            raise ValueError(f"{folder / 'split.json'} is unreadable ({err})") from err
    runs = {
        int(run.name.removeprefix("fold_")): run
        for run in folder.glob("fold_*")
        if run.name.removeprefix("fold_").isdigit()
        and (run / RESULT_FILE).is_file()
        and answers_kept(run, checkpoint)
    }
    if not runs:
        raise ValueError(
            f"{folder}: no trained run (a run folder with split.json and checkpoints/{checkpoint} "
            f"or its {ANSWERS_FILE}, or a cv output whose finished fold_<k>/ folders have them)"
        )
    return runs


def ensemble_metrics(members: list[MemberAnswers], num_classes: int) -> dict[str, float]:
    """Least-angle (mean cosine) and softmax (mean probability) WA, UA and macro-F1 of the
    members answering together, named as `cv` names a training's test metrics."""
    labels = members[0].labels
    answers = {
        "least_angle": torch.stack([m.cosines for m in members]).mean(0).argmax(1),
        "softmax": torch.stack([m.probabilities for m in members]).mean(0).argmax(1),
    }
    metrics = {}
    for name, predicted in answers.items():
        result = classification_metrics(predicted, labels, num_classes)
        metrics |= {f"{name}/{key}": result[key] for key in ("wa", "ua", "macro_f1")}
    return metrics


def without_normalisation(identity: dict[str, Any]) -> dict[str, Any]:
    """A split's identity less its feature normalisation (members may normalise differently)."""
    return {k: v for k, v in identity.items() if k != "normalisation"}


def fold_members(
    run_dirs: list[Path], checkpoint: str, part: str, eval_crops: int | None = None
) -> tuple[list[MemberAnswers], list[EmotionDataModule]]:
    """Each run's answers on one fold's `part` and its data module; refused when the runs
    trained on different splits or label the utterances differently."""
    members, datamodules = [], []
    for run_dir in run_dirs:
        answers, datamodule = member_answers(run_dir, checkpoint, part, eval_crops)
        if members:
            reference, reference_data = members[0], datamodules[0]
            split = without_normalisation(datamodule.split_identity)
            if split != without_normalisation(reference_data.split_identity) or (
                answers.paths != reference.paths
            ):
                raise ValueError(f"{run_dir} trained on another split than {run_dirs[0]}")
            if not torch.equal(answers.labels, reference.labels):
                raise ValueError(f"{run_dir} labels its utterances otherwise than {run_dirs[0]}")
        members.append(answers)
        datamodules.append(datamodule)
    return members, datamodules


def common_folds(folders: list[Path], checkpoint: str) -> tuple[list[int], list[dict[int, Path]]]:
    """The folds every folder finished (sorted), and each folder's runs by fold."""
    by_member = [fold_runs(folder, checkpoint) for folder in folders]
    folds = sorted(set.intersection(*(set(runs) for runs in by_member)))
    if not folds:
        raise ValueError(f"the {len(folders)} runs have no finished fold in common")
    return folds, by_member


def score_fold(
    run_dirs: list[Path], checkpoint: str, part: str, eval_crops: int | None = None
) -> dict[str, Any]:
    """The ensemble's metrics on one fold's `part`, and each member's own least-angle WA."""
    start = time.perf_counter()
    members, datamodules = fold_members(run_dirs, checkpoint, part, eval_crops)
    first = datamodules[0]
    return {
        "fold": first.split.fold,
        "protocol": first.split.protocol,
        "corpus": first.corpus,
        "folds_total": num_folds(
            first.split.protocol,
            first.groups,
            first.split_args["n_folds"],
            first.split_args["speaker_folds"],
        ),
        "part": part,
        "checkpoint": checkpoint,
        "members": [str(r) for r in run_dirs],
        "members_least_angle_wa": [
            ensemble_metrics([m], first.num_classes)["least_angle/wa"] for m in members
        ],
        "members_view": [list(m.view) for m in members],  # (crops, frames); (0, 0): whole
        "members_normalisation": [dm.normalisation for dm in datamodules],  # speaker: transductive
        "metrics": ensemble_metrics(members, first.num_classes),
        "seconds": round(time.perf_counter() - start, 1),
    }


def refuse_other_results(out: Path, command: str) -> None:
    """Refuse an --out folder that holds another command's results (they would be mixed or
    overwritten); the same command may write again (scoring is deterministic)."""
    summary, folds = out / "summary.json", list(out.glob(f"fold_*/{RESULT_FILE}"))
    earlier = None
    if summary.is_file():
        earlier = json.loads(summary.read_text()).get("command")
    elif folds:
        earlier = json.loads(folds[0].read_text()).get("command")
    if earlier is not None and earlier != command:
        raise ValueError(f"--out {out} holds the results of `{earlier}`: choose another folder")


def ensemble_command(argv: list[str]) -> dict[str, Any]:
    """`ensemble RUN [RUN ...] [--checkpoint best|last] [--part test|val] [--eval-crops K]
    [--out DIR]`: score every fold all RUNs have, then write (test) or print (val)."""
    parser = ArgumentParser(
        prog="lightning-ser ensemble",
        description="Score several trainings of the same split answering together (mean "
        "cosine to the class embeddings; mean softmax probability), fold by fold. Each RUN is "
        "a cv output folder or one run folder; folds every RUN has finished are scored. Test "
        "parts need --out: each fold's result and a cv-like summary (folds.csv, summary.md, "
        "summary.json) are written there. Choose members and --eval-crops with --part val.",
    )
    parser.add_argument(
        "runs", nargs="+", type=Path, metavar="RUN", help="cv output or run folders"
    )
    parser.add_argument(
        "--checkpoint",
        choices=["best", "last"],
        default="best",
        help="best: what each cv tested (default); last: the end of each schedule",
    )
    parser.add_argument(
        "--part",
        choices=["test", "val"],
        default="test",
        help="val: the validation parts, printed only, for choosing without the test parts",
    )
    parser.add_argument(
        "--eval-crops",
        type=int,
        default=None,
        metavar="K",
        help="evaluate on the mean direction of K windows of the checkpoints' crop length "
        "(0: whole utterances; default: as each checkpoint was tested)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="results folder (test parts)"
    )
    ns = parser.parse_args(argv)
    if ns.eval_crops is not None and ns.eval_crops < 0:
        parser.error(f"--eval-crops must be >= 0, got {ns.eval_crops}")
    if ns.part == "val" and ns.out is not None:
        parser.error("--out writes test results; validation scores (--part val) are printed only")
    if ns.part == "test" and ns.out is None:
        parser.error("test parts are scored into --out DIR (choose with --part val first)")
    if ns.out is not None:
        refuse_other_results(ns.out, provenance(["ensemble", *argv])["command"])
    resolved = [folder.resolve() for folder in ns.runs]
    if len(set(resolved)) < len(resolved):
        parser.error("a run is given twice (it would count twice)")
    checkpoint = f"{ns.checkpoint}.ckpt"
    folds, member_runs = common_folds(ns.runs, checkpoint)
    by_member = dict(zip(ns.runs, member_runs, strict=True))
    for folder, runs in by_member.items():
        if left := sorted(set(runs) - set(folds)):
            print(f"[ensemble] {folder}: fold(s) {left} left out (not in every run)", flush=True)
    results = []
    for fold in folds:
        runs = [member_runs[fold] for member_runs in by_member.values()]
        result = score_fold(runs, checkpoint, ns.part, ns.eval_crops)
        alone = ", ".join(format_percent(wa) for wa in result["members_least_angle_wa"])
        print(
            f"[ensemble] fold {fold} ({ns.part}): least-angle WA "
            f"{format_percent(result['metrics']['least_angle/wa'])}; members alone {alone}",
            flush=True,
        )
        results.append(result | {"eval_crops": ns.eval_crops} | provenance(["ensemble", *argv]))
    if ns.out is None:
        return {"folds": results}
    for result in results:  # every fold scored before anything is written
        write_json_atomic(ns.out / f"fold_{result['fold']}" / RESULT_FILE, result)
    first = results[0]
    return write_cv_summary(
        results,
        ns.out,
        first["corpus"],
        first["protocol"],
        first["folds_total"],
        argv,
        command="ensemble",
    )
