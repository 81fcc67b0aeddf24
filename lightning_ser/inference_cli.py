"""`lightning-ser predict | embed | export`: Phase III from the command line.

    lightning-ser predict --ckpt best.ckpt my_clips/ other.wav [-o predictions.csv] [--json]
    lightning-ser embed   --ckpt best.ckpt my_clips/ -o embeddings/
    lightning-ser export  --ckpt best.ckpt -o exported/ [--format torchscript onnx]

Each function takes the arguments after the subcommand and returns the exit status. Mistakes a
user can make (missing checkpoint or input, a file that is not a checkpoint) end in SystemExit
with a one-line message; bad audio files only give error rows.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .argparsing import ArgumentParser
from .inference import (
    CSV_HEAD,
    DEFAULT_BATCH_FRAMES,
    CheckpointError,
    EmotionModel,
    Prediction,
    atomic_open,
    embed_files,
    export_metadata,
    export_onnx,
    export_torchscript,
    find_audio,
    load_checkpoint,
    predictions_to_json,
    write_predictions,
)

EXPORT_FORMATS = ("torchscript", "onnx")
EXPORT_FILES = {"torchscript": "embedder.pt", "onnx": "embedder.onnx"}


def _parser(prog: str, description: str, inputs: bool = True) -> ArgumentParser:
    parser = ArgumentParser(prog=f"lightning-ser {prog}", description=description)
    parser.add_argument("--ckpt", required=True, help="checkpoint written by `lightning fit`")
    if inputs:
        parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
        parser.add_argument(
            "--batch-frames",
            type=int,
            default=DEFAULT_BATCH_FRAMES,
            help="bound on padded frames per forward pass (default %(default)s)",
        )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return parser


def _load(prog: str, ckpt: str, device: str) -> EmotionModel:
    try:
        return load_checkpoint(ckpt, device=device)
    except CheckpointError as err:
        raise ValueError(f"{prog}: {err}") from None


def _files(prog: str, inputs: Sequence[str]) -> list[Path]:
    files = find_audio(inputs)
    if not files:
        raise ValueError(f"{prog}: no audio files in {', '.join(inputs)}")
    return files


def _is_predictions(path: Path) -> bool:
    """Whether `path` is a predictions CSV this command wrote (its first columns) or empty."""
    if path.stat().st_size == 0:
        return True
    with open(path, newline="", errors="replace") as handle:
        header = handle.readline().strip().split(",")
    return header[: len(CSV_HEAD)] == list(CSV_HEAD)


def input_notes(model: EmotionModel, batch_frames: int) -> list[str]:
    """What the model's training features do to a user's files that the user cannot see."""
    notes = []
    if model.hparams.get("feature_normalisation") == "speaker":
        notes.append(
            "this model was trained on features normalised per speaker; the files of each "
            f"batch of up to {batch_frames} frames are normalised together, as one speaker's "
            "(give one speaker's files per call)"
        )
    if model.features.fixed_seconds is not None:
        seconds = model.features.fixed_seconds
        notes.append(
            f"this model was trained on clips centre-padded or cut to {seconds:g} s; every file "
            f"is too, so a longer file is judged by its central {seconds:g} s only"
        )
    return notes


def summary_line(preds: Sequence[Prediction]) -> str:
    """`N files: K ok, M errors` (and how many of the ok ones are truncated)."""
    ok = sum(p.status != "error" for p in preds)
    truncated = sum(p.status == "truncated" for p in preds)
    note = f" ({truncated} truncated)" if truncated else ""
    return f"{len(preds)} files: {ok} ok{note}, {len(preds) - ok} errors"


def format_table(preds: Sequence[Prediction]) -> str:
    """A short human-readable table: path, emotion, least angle, cosine (or the error)."""
    header = ("path", "emotion", "angle", "cosine")
    rows = []
    for p in preds:
        if p.status != "error":
            emotion = (p.emotion or "") + (" (truncated file)" if p.status == "truncated" else "")
            rows.append((p.path, emotion, f"{p.least_angle:.2f}", f"{p.cosine:.4f}"))
        else:
            rows.append((p.path, f"error: {p.error}", "", ""))
    width = max([len(header[0])] + [len(r[0]) for r in rows])
    emo = max([len(header[1])] + [len(r[1]) for r in rows if not r[1].startswith("error")])
    lines = [f"{header[0]:<{width}}  {header[1]:<{emo}}  {header[2]:>7}  {header[3]:>7}"]
    for path, emotion, angle, cosine in rows:
        if not angle:
            lines.append(f"{path:<{width}}  {emotion}")
        else:
            lines.append(f"{path:<{width}}  {emotion:<{emo}}  {angle:>7}  {cosine:>7}")
    return "\n".join(lines)


def predict_command(argv: list[str]) -> int:
    """`predict --ckpt PATH INPUT... [-o CSV] [--json]`: emotions of files and folders."""
    parser = _parser(
        "predict",
        "Phase III: classify audio files by the least angle to each emotion's class embedding. "
        "(`lightning-ser predict -c CONFIG --ckpt_path best` is Lightning's predict on the "
        "config's test part instead.)",
    )
    parser.add_argument(
        "-o", "--output", default=None, help="CSV to write (default: predictions.csv here)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list instead of the table (writes the CSV only when -o is given)",
    )
    ns = parser.parse_args(argv)
    if ns.output is not None and Path(ns.output).is_dir():
        raise ValueError(f"predict: -o {ns.output} is a folder; name a CSV file")
    model = _load("predict", ns.ckpt, ns.device)
    out = ns.output if ns.output is not None else (None if ns.json else "predictions.csv")
    if out is not None and Path(out).is_file() and not _is_predictions(Path(out)):
        raise ValueError(
            f"predict: {out} exists and holds no predictions; name another -o "
            "(a predictions CSV is replaced, any other file kept)"
        )
    files = _files("predict", ns.inputs)
    for note in input_notes(model, ns.batch_frames):
        print(f"note: {note}", file=sys.stderr)
    preds = model.predict_files(files, batch_frames=ns.batch_frames)
    worked = any(p.status != "error" for p in preds)
    if out is not None and worked:  # a mistyped input never replaces earlier predictions
        write_predictions(preds, out, class_names=model.class_names)
    if ns.json:
        print(json.dumps(predictions_to_json(preds), indent=2))
    else:
        print(format_table(preds))
        if out is not None and worked:
            print(f"wrote {Path(out).resolve()}")
    summary = summary_line(preds) + ("" if worked or out is None else f"; {out} not written")
    print(summary, file=sys.stderr if ns.json else sys.stdout)
    return 0 if worked else 1


def embed_command(argv: list[str]) -> int:
    """`embed --ckpt PATH INPUT... -o DIR`: embeddings.npy + index.csv of files and folders."""
    parser = _parser("embed", "Write the emotion embeddings of audio files.")
    parser.add_argument("-o", "--output", required=True, help="folder to write into")
    ns = parser.parse_args(argv)
    if Path(ns.output).exists() and not Path(ns.output).is_dir():
        raise ValueError(f"embed: -o {ns.output} is a file; name a folder")
    model = _load("embed", ns.ckpt, ns.device)
    files = _files("embed", ns.inputs)
    for note in input_notes(model, ns.batch_frames):
        print(f"note: {note}", file=sys.stderr)
    result = embed_files(model, files, ns.output, batch_frames=ns.batch_frames)
    counts = f"{result['files']} files: {result['ok']} ok, {result['errors']} errors"
    if not result["ok"]:
        for path, error in result["failures"][:5]:
            print(f"{path}: {error}")
        print(f"{counts}; nothing written to {ns.output}")
        return 1
    print(f"wrote {Path(result['embeddings']).resolve()} and {Path(result['index']).resolve()}")
    if result["kept"]:
        print(f"the earlier call's files are kept as {', '.join(p.name for p in result['kept'])}")
    print(counts)
    return 0


def export_command(argv: list[str]) -> int:
    """`export --ckpt PATH -o DIR [--format torchscript onnx]`: embedder files + export.json."""
    parser = _parser("export", "Export the embedder (normalisation + network).", inputs=False)
    parser.add_argument("-o", "--output", required=True, help="folder to write into")
    parser.add_argument(
        "--format",
        nargs="+",
        choices=EXPORT_FORMATS,
        default=list(EXPORT_FORMATS),
        help="formats to write (default: both)",
    )
    ns = parser.parse_args(argv)
    out_dir = Path(ns.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"export: -o {ns.output} is a file; name a folder")
    model = _load("export", ns.ckpt, "cpu")
    meta: dict[str, Any] = export_metadata(model)
    meta["checkpoint"] = str(ns.ckpt)
    meta["files"] = {}
    exporters = {"torchscript": export_torchscript, "onnx": export_onnx}
    for fmt in dict.fromkeys(ns.format):
        target = out_dir / EXPORT_FILES[fmt]
        try:
            exporters[fmt](model, target)
        except (ImportError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"export: {fmt} export failed: {first}") from None
        meta["files"][fmt] = EXPORT_FILES[fmt]
        print(f"wrote {target}")
    with atomic_open(out_dir / "export.json") as handle:
        json.dump(meta, handle, indent=2)
    print(f"wrote {out_dir / 'export.json'}")
    for fmt, name in EXPORT_FILES.items():  # an earlier export's other format: another model
        if fmt not in meta["files"] and (out_dir / name).is_file():
            (out_dir / name).unlink()
            print(f"removed {out_dir / name} (an earlier export's; export.json describes this one)")
    return 0


COMMANDS = {"predict": predict_command, "embed": embed_command, "export": export_command}
