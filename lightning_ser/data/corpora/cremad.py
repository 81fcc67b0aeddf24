"""CREMA-D: file names like `1001_DFA_ANG_XX.wav` (actor, sentence, emotion, intensity)."""

from __future__ import annotations

from operator import itemgetter
from pathlib import Path

from .base import OnBadFile, Utterance, load_named_files

EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happiness",
    "NEU": "neutral",
    "SAD": "sadness",
}
CLASS_NAMES = list(EMOTIONS.values())
INTENSITIES = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}


def parse_name(stem: str) -> dict[str, str]:
    """Parse a CREMA-D file stem into its fields; raise ValueError naming the bad part."""
    parts = stem.split("_")
    if len(parts) != 4:
        raise ValueError("file name is not of the CREMA-D form ACTOR_SEN_EMO_IN")
    actor, sentence, emotion, intensity = parts
    if not (actor.isdigit() and len(actor) == 4 and 1001 <= int(actor) <= 1091):
        raise ValueError(f"actor id {actor!r} is outside 1001..1091")
    for value, table, name in (
        (sentence, SENTENCES, "sentence"),
        (emotion, EMOTIONS, "emotion"),
        (intensity, INTENSITIES, "intensity"),
    ):
        if value not in table:
            raise ValueError(f"unknown {name} code {value!r}")
    return {
        "actor": actor,
        "sentence": sentence,
        "emotion": EMOTIONS[emotion],
        "intensity": INTENSITIES[intensity],
    }


def load_cremad(root: str | Path, on_bad_file: OnBadFile = "error") -> list[Utterance]:
    """Utterances of a CREMA-D folder (`AudioWAV/*.wav` or audio anywhere below `root`)."""
    return load_named_files(root, "CREMA-D", parse_name, itemgetter("actor"), on_bad_file)
