"""TESS (Toronto Emotional Speech Set): file names like `OAF_back_angry.wav`, `YAF_dog_ps.wav`.

The name is speaker (OAF = older, YAF = younger actress), target word and emotion. Real copies
are not quite uniform (`OA_bite_neutral.wav`, `YAF_germ_Neutral.wav`), so speaker and emotion are
normalised: `OA` -> `OAF`, emotion lower-cased, `ps` -> `pleasant_surprise`.
"""

from __future__ import annotations

from operator import itemgetter
from pathlib import Path

from .base import OnBadFile, Utterance, load_named_files

CLASS_NAMES = ["angry", "disgust", "fear", "happy", "neutral", "pleasant_surprise", "sad"]
#: Emotion spellings found in file names, mapped to the class names.
EMOTIONS = {name: name for name in CLASS_NAMES} | {
    "ps": "pleasant_surprise",
    "pleasant_surprised": "pleasant_surprise",
}
SPEAKERS = {"OAF": "OAF", "OA": "OAF", "YAF": "YAF", "YA": "YAF"}
AGES = {"OAF": "older", "YAF": "younger"}


def parse_name(stem: str) -> dict[str, str]:
    """Parse a TESS file stem into speaker, word and emotion; raise ValueError when it is bad."""
    parts = stem.split("_", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError("file name is not of the TESS form SPEAKER_word_emotion")
    speaker, word, emotion = parts
    if speaker.upper() not in SPEAKERS:
        raise ValueError(f"unknown speaker {speaker!r} (expected OAF or YAF)")
    if emotion.lower() not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}")
    speaker = SPEAKERS[speaker.upper()]
    return {
        "speaker": speaker,
        "word": word.lower(),
        "emotion": EMOTIONS[emotion.lower()],
        "age": AGES[speaker],
    }


def load_tess(root: str | Path, on_bad_file: OnBadFile = "error") -> list[Utterance]:
    """Utterances of a TESS folder (audio anywhere below `root`)."""
    return load_named_files(root, "TESS", parse_name, itemgetter("speaker"), on_bad_file)
