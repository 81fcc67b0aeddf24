"""RAVDESS: every field of the file name `MM-VV-EE-II-SS-RR-AA`, speech and song."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .base import CorpusError, OnBadFile, Utterance, load_named_files

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
CLASS_NAMES = list(EMOTIONS.values())
MODALITIES = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


def parse_name(stem: str) -> dict[str, str]:
    """Parse a RAVDESS file stem into its named fields; raise ValueError naming the bad field."""
    parts = stem.split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        raise ValueError("file name is not of the RAVDESS form MM-VV-EE-II-SS-RR-AA")
    modality, channel, emotion, intensity, statement, repetition, actor = parts
    for value, table, name in (
        (modality, MODALITIES, "modality"),
        (channel, VOCAL_CHANNELS, "vocal channel"),
        (emotion, EMOTIONS, "emotion"),
        (intensity, INTENSITIES, "intensity"),
        (statement, STATEMENTS, "statement"),
    ):
        if value not in table:
            raise ValueError(f"unknown {name} code {value!r}")
    if repetition not in ("01", "02"):
        raise ValueError(f"unknown repetition code {repetition!r}")
    if not 1 <= int(actor) <= 24:
        raise ValueError(f"actor number {actor!r} is outside 01..24")
    return {
        "modality": MODALITIES[modality],
        "vocal_channel": VOCAL_CHANNELS[channel],
        "emotion": EMOTIONS[emotion],
        "intensity": INTENSITIES[intensity],
        "statement": statement,
        "repetition": repetition,
        "actor": actor,
        "gender": "male" if int(actor) % 2 else "female",
    }


def load_ravdess(
    root: str | Path,
    vocal_channel: Literal["speech", "song", "both"] = "speech",
    on_bad_file: OnBadFile = "error",
) -> list[Utterance]:
    """Utterances of a RAVDESS folder (any layout below `root`, .wav or .flac)."""
    if vocal_channel not in ("speech", "song", "both"):
        raise CorpusError(
            f"RAVDESS: vocal_channel must be speech, song or both, got {vocal_channel!r}"
        )
    return load_named_files(
        root,
        "RAVDESS",
        parse_name,
        lambda meta: f"actor{meta['actor']}",
        on_bad_file,
        keep=lambda meta: vocal_channel in ("both", meta["vocal_channel"]),
    )
