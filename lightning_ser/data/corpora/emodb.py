"""EMO-DB (Berlin Database of Emotional Speech): file names like `03a01Fa.wav`.

The name is speaker (2 digits), text code (`a01`..`b10`), emotion letter (German initial) and
version letter; the files usually sit in `root/wav/`, but any layout below `root` is accepted.
"""

from __future__ import annotations

import re
from operator import itemgetter
from pathlib import Path

from .base import OnBadFile, Utterance, load_named_files

EMOTIONS = {
    "W": "anger",  # Ärger / Wut
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happiness",  # Freude
    "T": "sadness",  # Trauer
    "N": "neutral",
}
CLASS_NAMES = list(EMOTIONS.values())
MALE_SPEAKERS = ("03", "10", "11", "12", "15")
FEMALE_SPEAKERS = ("08", "09", "13", "14", "16")

_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Za-z])([a-z])$")


def parse_name(stem: str) -> dict[str, str]:
    """Parse an EMO-DB file stem into its fields; raise ValueError naming the bad part."""
    match = _NAME.match(stem)
    if not match:
        raise ValueError("file name is not of the EMO-DB form SSTTTEV (e.g. 03a01Fa)")
    speaker, text, letter, version = match.groups()
    if letter not in EMOTIONS:
        raise ValueError(f"unknown emotion letter {letter!r}")
    if speaker in MALE_SPEAKERS:
        gender = "male"
    elif speaker in FEMALE_SPEAKERS:
        gender = "female"
    else:
        raise ValueError(f"unknown speaker {speaker!r}")
    return {
        "speaker": speaker,
        "text": text,
        "emotion": EMOTIONS[letter],
        "version": version,
        "gender": gender,
    }


def load_emodb(root: str | Path, on_bad_file: OnBadFile = "error") -> list[Utterance]:
    """Utterances of an EMO-DB folder (`root/wav/*.wav`, or audio anywhere below `root`)."""
    return load_named_files(root, "EMO-DB", parse_name, itemgetter("speaker"), on_bad_file)
