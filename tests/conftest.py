"""Shared fixtures: seeded synthetic audio and a tiny corpus in the real RAVDESS layout.

Fixtures:
    tone_writer: the `write_tone` function below (conftest modules are not importable).
    tiny_ravdess: a session-wide 96-file RAVDESS-layout folder (6 actors x 8 emotions x 2
        statements); each emotion has its own tone frequency, so a model can learn it.
    cache_dir: an empty folder for feature caches.
    benchmark_script: loads `benchmarks/<name>.py` as a module (the benchmarks are scripts).
    WANDB_MODE=disabled for every test (autouse).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
import pytest
import soundfile as sf
import torch

# The test machines have few, shared cores: one intra-op thread is many times faster there than
# several threads fighting over them (and results do not depend on it).
torch.set_num_threads(1)

#: Tone frequency (Hz) of each RAVDESS emotion code in `tiny_ravdess`; far apart on the mel scale.
TINY_EMOTION_FREQS = {
    "01": 200.0,
    "02": 300.0,
    "03": 450.0,
    "04": 650.0,
    "05": 900.0,
    "06": 1250.0,
    "07": 1700.0,
    "08": 2300.0,
}
TINY_ACTORS = 6
TINY_STATEMENTS = ("01", "02")


def write_tone(
    path: str | Path,
    seconds: float = 0.6,
    rate: int = 16000,
    freq: float = 440.0,
    kind: Literal["tone", "noise", "chirp"] = "tone",
    channels: int = 1,
    amplitude: float = 0.3,
    lead_silence: float = 0.0,
    trail_silence: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    format: str | None = None,
) -> Path:
    """Write a deterministic synthetic signal and return its path.

    Args:
        path: target file; the format follows the extension (.wav, .flac, .aiff) unless `format`
            (a soundfile format name such as "FLAC") says otherwise.
        seconds: length of the signal, without the silences.
        rate: sample rate (Hz).
        freq: tone frequency; a chirp sweeps linearly from `freq` to `4 * freq` (Hz).
        kind: "tone" (sine), "noise" (Gaussian, seeded) or "chirp".
        channels: channel count; every channel holds the same signal.
        amplitude: peak level of tones and chirps, three standard deviations of noise.
        lead_silence: seconds of digital silence (zeros) before the signal.
        trail_silence: seconds of digital silence after the signal.
        noise: Gaussian noise added to the signal, relative to `amplitude`.
        seed: seed of every random part.
        format: soundfile format overriding the extension (e.g. FLAC data in a .wav name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    if kind == "tone":
        signal = amplitude * np.sin(2 * np.pi * freq * t)
    elif kind == "chirp":
        sweep = 3 * freq / max(seconds, 1e-9)  # Hz per second, freq -> 4 * freq
        signal = amplitude * np.sin(2 * np.pi * (freq * t + sweep * t**2 / 2))
    elif kind == "noise":
        signal = amplitude / 3 * rng.standard_normal(len(t))
    else:
        raise ValueError(f"kind must be tone, noise or chirp, got {kind!r}")
    if noise:
        signal = signal + noise * amplitude / 3 * rng.standard_normal(len(t))
    signal = np.concatenate(
        [np.zeros(round(lead_silence * rate)), signal, np.zeros(round(trail_silence * rate))]
    )
    data = np.clip(signal, -1, 1).astype(np.float32)
    if channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    sf.write(str(path), data, rate, format=format)
    return path


@pytest.fixture
def tone_writer() -> Callable[..., Path]:
    """The `write_tone(path, seconds, rate, freq, kind=..., ...)` function."""
    return write_tone


@pytest.fixture(scope="session")
def tiny_ravdess(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 96-file corpus in RAVDESS layout: `Actor_XX/03-01-EE-01-SS-01-XX.{wav,flac}`.

    6 actors x 8 emotions x 2 statements, 0.5-0.65 s each, with a little noise. Emotion EE is a
    tone of TINY_EMOTION_FREQS[EE] (shifted by a few percent per actor); each actor has its own
    level (so speaker-dependent statistics differ). Odd actors are 16 kHz, even ones 48 kHz;
    Actor_02 is FLAC; Actor_01's neutral statement 01 is stereo; every third file starts with
    50 ms of silence. Treat it as read-only: it is shared by the whole session.
    """
    root = tmp_path_factory.mktemp("ravdess")
    n = 0
    for actor in range(1, TINY_ACTORS + 1):
        for emotion, freq in TINY_EMOTION_FREQS.items():
            for statement in TINY_STATEMENTS:
                ext = "flac" if actor == 2 else "wav"
                name = f"03-01-{emotion}-01-{statement}-01-{actor:02d}.{ext}"
                write_tone(
                    root / f"Actor_{actor:02d}" / name,
                    seconds=0.5 + 0.05 * ((actor + int(emotion) + int(statement)) % 4),
                    rate=16000 if actor % 2 else 48000,
                    freq=freq * (1 + 0.02 * (actor - 3.5)),
                    channels=2 if (actor, emotion, statement) == (1, "01", "01") else 1,
                    amplitude=0.1 + 0.08 * actor,
                    lead_silence=0.05 if n % 3 == 0 else 0.0,
                    noise=0.05,
                    seed=n,
                )
                n += 1
    return root


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """An empty folder for feature caches (never the user's ~/.cache)."""
    path = tmp_path / "cache"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """`benchmark_script("validation_curve")` is `benchmarks/validation_curve.py` as a module."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(autouse=True)
def _wandb_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test talks to W&B."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
