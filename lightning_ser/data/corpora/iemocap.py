"""IEMOCAP: utterance labels from `Session*/dialog/EmoEvaluation/*.txt`, audio from `sentences/wav`.

A label line reads `[START - END]<TAB>UTTERANCE_ID<TAB>CODE<TAB>[V, A, D]`; every other line of
those files (the `C-`/`A-` evaluator lines, headers, blank lines) is ignored. The audio of
`Ses01F_impro01_F000` is `Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from .base import BadFiles, CorpusError, OnBadFile, Utterance, finish, require_dir

EMOTIONS = {
    "ang": "anger",
    "sad": "sadness",
    "hap": "happiness",
    "neu": "neutral",
    "exc": "excitement",
    "sur": "surprise",
    "fea": "fear",
    "dis": "disgust",
    "fru": "frustration",
}
#: Codes without an emotion class ("no agreement", "other"): left out, not an error.
EXCLUDED = ("xxx", "oth")
#: The nine emotions, in the order of the paper.
CLASS_NAMES = list(EMOTIONS.values())
#: The common four-class setting: excitement merged into happiness, the other five dropped.
FOUR_CLASS_NAMES = ["anger", "happiness", "sadness", "neutral"]
FOUR_CLASS_MAP = {
    "anger": "anger",
    "happiness": "happiness",
    "excitement": "happiness",
    "sadness": "sadness",
    "neutral": "neutral",
}

_UTTERANCE_ID = re.compile(r"^(Ses\d{2})([FM])_(.+)_([FM])\d+$")
_TIMES = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]$")
_VAD = re.compile(r"^\[\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*\]$")


def parse_label_line(line: str) -> dict[str, Any]:
    """Parse one EmoEvaluation label line into its fields; raise ValueError when it is malformed."""
    parts = [p.strip() for p in line.strip().split("\t")]
    if len(parts) != 4:
        raise ValueError("label line does not have 4 tab-separated fields")
    times, utterance, code, vad = parts
    times_match = _TIMES.match(times)
    id_match = _UTTERANCE_ID.match(utterance)
    vad_match = _VAD.match(vad)
    if not times_match:
        raise ValueError(f"bad time span {times!r}")
    if not id_match:
        raise ValueError(f"bad utterance id {utterance!r}")
    if not vad_match:
        raise ValueError(f"bad valence/arousal/dominance field {vad!r}")
    session, _dialog_gender, dialog_name, gender = id_match.groups()
    return {
        "utterance": utterance,
        "session": session,
        "gender": "female" if gender == "F" else "male",
        "dialog": utterance.rsplit("_", 1)[0],
        "improvised": dialog_name.startswith("impro"),
        "start": float(times_match.group(1)),
        "end": float(times_match.group(2)),
        "valence": float(vad_match.group(1)),
        "arousal": float(vad_match.group(2)),
        "dominance": float(vad_match.group(3)),
        "code": code,
    }


def label_files(root: Path) -> list[tuple[Path, Path]]:
    """(session folder, label file) pairs of `root/Session*/dialog/EmoEvaluation/*.txt`."""
    sessions = sorted(p for p in root.glob("Session*") if (p / "dialog" / "EmoEvaluation").is_dir())
    if not sessions:
        raise CorpusError(f"IEMOCAP: no Session*/dialog/EmoEvaluation folder under {root}")
    return [
        (session, txt)
        for session in sessions
        for txt in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
        if not txt.name.startswith(".")  # macOS "._" resource forks in some copies
    ]


def load_iemocap(
    root: str | Path,
    classes: Literal["nine", "four"] = "nine",
    on_bad_file: OnBadFile = "error",
) -> list[Utterance]:
    """Utterances of IEMOCAP with the nine emotions, or the four-class setting (`classes="four"`).

    Speaker = session + gender of the speaking actor (`Ses01F_impro01_M003` -> `Ses01M`).
    """
    if classes not in ("nine", "four"):
        raise CorpusError(f"IEMOCAP: classes must be 'nine' or 'four', got {classes!r}")
    root = require_dir(root, "IEMOCAP")
    bad = BadFiles(on_bad_file, "IEMOCAP")
    rows = []
    for session_dir, txt in label_files(root):
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.startswith("["):
                continue
            where = f"{txt}:{number}"
            try:
                meta = parse_label_line(line)
            except ValueError as err:
                bad(where, str(err))
                continue
            wav = session_dir / "sentences" / "wav" / meta["dialog"] / f"{meta['utterance']}.wav"
            code = meta["code"].lower()
            if code in EXCLUDED:
                continue
            if code not in EMOTIONS:
                bad(wav, f"unknown emotion code {meta['code']!r} (label line {where})")
                continue
            label = EMOTIONS[code]
            if classes == "four":
                if label not in FOUR_CLASS_MAP:
                    continue
                label = FOUR_CLASS_MAP[label]
            if not wav.is_file():
                bad(wav, f"audio file not found (label line {where})")
                continue
            speaker = meta["session"] + meta["gender"][0].upper()
            rows.append(Utterance(str(wav), label, speaker, meta))
    return finish(rows, bad, root)
