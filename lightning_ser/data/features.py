"""Audio to frame features: decode, downmix, resample, trim silence, MFCC (or log-mel) + deltas.

Everything here is torch/torchaudio (through `dsp`, which computes torchaudio's resampling, MFCC
and deltas with faster CPU layouts) and works on one utterance at a time, so the feature
cache (many files, in parallel) and Phase III inference (a user's new clips) share one code path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch

from lightning_ser.data import dsp


class AudioError(ValueError):
    """A file that cannot be turned into features (unreadable, empty, silent); names the file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


#: Settings added after the first feature caches were built, with the defaults that leave the
#: features as they were: at those defaults they stay out of the cache key.
LATER_SETTINGS: dict[str, object] = {"speed": 1.0, "fixed_seconds": None}


@dataclass(frozen=True)
class FeatureConfig:
    """Every parameter of the feature front end; its hash keys the feature cache.

    Args:
        sample_rate: rate every file is resampled to (Hz).
        kind: "mfcc" (the paper: 13 MFCC) or "logmel" (log-mel filterbank energies).
        n_mfcc: cepstral coefficients kept when kind is "mfcc".
        n_mels: mel bands of the filterbank.
        win_ms: analysis window length (ms).
        hop_ms: hop between frames (ms).
        n_fft: FFT size (samples at `sample_rate`), at least the window length.
        f_min: lowest filterbank frequency (Hz).
        f_max: highest filterbank frequency (Hz); None means sample_rate // 2.
        deltas: 0, 1 or 2 orders of time derivatives appended (the paper: 2, i.e. 39 values).
        delta_window: frames used by each delta (as torchaudio.functional.compute_deltas, odd >= 3).
        trim: cut leading and trailing silence (the paper trims silence when it builds its cache).
        trim_top_db: a frame is silence when its energy is this many dB below the loudest frame.
        silence_floor_db: a file whose peak is below this level (dBFS) is all silence: an error.
        speed: playback speed of the audio before analysis (speed perturbation, as Kaldi's: the
            waveform is resampled by 1/speed, so tempo and pitch change together; 0.9 is 11%
            longer). 1.0, the default, leaves the audio as it is. The data module's
            `speed_perturbation` builds extra training copies this way.
        fixed_seconds: None (the paper) keeps each utterance's own length; a number of seconds
            zero-pads or cuts every waveform around its centre to that length before analysis
            (after `trim` and `speed`): the network then sees padding as ordinary frames, and
            every utterance has the same number of frames. TIM-Net's input is 4.99 s with
            `trim: false` (silence kept); with trimming on, the trimmed speech is what is padded.
    """

    sample_rate: int = 16000
    kind: Literal["mfcc", "logmel"] = "mfcc"
    n_mfcc: int = 13
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    f_min: float = 0.0
    f_max: float | None = None
    deltas: int = 2
    delta_window: int = 5
    trim: bool = True
    trim_top_db: float = 60.0
    silence_floor_db: float = -70.0
    speed: float = 1.0
    fixed_seconds: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate < 1000:
            problems.append(f"sample_rate={self.sample_rate} (needs >= 1000)")
        if self.kind not in ("mfcc", "logmel"):
            problems.append(f"kind={self.kind!r} (mfcc or logmel)")
        if self.n_mels < 1:
            problems.append(f"n_mels={self.n_mels} (needs >= 1)")
        elif self.kind == "mfcc" and not 1 <= self.n_mfcc <= self.n_mels:
            problems.append(f"n_mfcc={self.n_mfcc} (needs 1..n_mels={self.n_mels})")
        nyquist = self.sample_rate / 2
        if not 0 <= self.f_min < (nyquist if self.f_max is None else self.f_max) <= nyquist:
            problems.append(
                f"f_min={self.f_min}, f_max={self.f_max} (need 0 <= f_min < f_max <= {nyquist})"
            )
        if self.trim_top_db <= 0:
            problems.append(f"trim_top_db={self.trim_top_db} (must be > 0)")
        if self.deltas not in (0, 1, 2):
            problems.append(f"deltas={self.deltas} (0, 1 or 2)")
        if self.delta_window < 3 or self.delta_window % 2 == 0:
            problems.append(f"delta_window={self.delta_window} (odd, >= 3)")
        if self.hop_ms <= 0 or self.win_ms <= 0:
            problems.append(f"win_ms={self.win_ms}, hop_ms={self.hop_ms} (must be > 0)")
        elif self.n_fft < self.win_length:
            problems.append(f"n_fft={self.n_fft} (needs >= window of {self.win_length} samples)")
        if not 0.5 <= self.speed <= 2.0:
            problems.append(f"speed={self.speed} (0.5 .. 2.0)")
        if self.fixed_seconds is not None and self.fixed_seconds * self.sample_rate < self.n_fft:
            problems.append(f"fixed_seconds={self.fixed_seconds} (None, or at least one FFT)")
        if problems:
            raise ValueError("bad feature setting: " + "; ".join(problems))

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        """Hop length in samples."""
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def n_features(self) -> int:
        """Values per frame: base coefficients times (1 + deltas), 39 for the paper."""
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * (1 + self.deltas)

    def key(self) -> str:
        """A stable hash of the configuration (part of the cache key).

        Settings added after the first caches (`LATER_SETTINGS`) enter only when they differ
        from their defaults, so caches built before they existed stay valid.
        """
        fields = asdict(self)
        for name, default in LATER_SETTINGS.items():
            if fields[name] == default:
                del fields[name]
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def truncation(path: str | Path) -> str | None:
    """Why a WAV file is truncated (its header promises more data than the file holds), or None.

    libsndfile reads such a file without complaint, returning only what is there; this reads the
    RIFF chunk headers to tell. Other containers are not checked.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            while chunk := handle.read(8):
                if len(chunk) < 8:
                    return None
                size = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"data":
                    held = Path(path).stat().st_size - handle.tell()
                    if held < size:
                        return (
                            f"truncated: the header promises {size} bytes of audio, "
                            f"the file holds {held}"
                        )
                    return None
                handle.seek(size + (size & 1), 1)
    except OSError:
        return None
    return None


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Decode any file soundfile reads (format from its header) to a mono float32 waveform."""
    try:
        data, rate = sf.read(str(path), dtype="float32")  # 1-D for mono, [samples, channels]
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioError(path, f"cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise AudioError(path, "audio file is empty (0 samples)")
    mono = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data
    return torch.from_numpy(mono), int(rate)


class FeatureExtractor:
    """Turns waveforms into [frames, n_features] tensors following a FeatureConfig."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()

    def resample(self, wave: torch.Tensor, rate: int) -> torch.Tensor:
        """Resample a mono waveform to the configured rate (torchaudio's sinc filter)."""
        return dsp.resample(wave, rate, self.config.sample_rate)

    def coefficients(self, wave: torch.Tensor) -> torch.Tensor:
        """MFCC or log-mel of a waveform at the configured rate, [frames, coefficients]."""
        c = self.config
        spectrum = {
            "sample_rate": c.sample_rate,
            "n_fft": c.n_fft,
            "win_length": c.win_length,
            "hop_length": c.hop_length,
            "n_mels": c.n_mels,
            "f_min": c.f_min,
            "f_max": c.f_max,
        }
        if c.kind == "mfcc":
            return dsp.mfcc(wave, n_mfcc=c.n_mfcc, **spectrum)
        return dsp.log_mel(wave, **spectrum)

    def trim(self, wave: torch.Tensor, rate: int | None = None) -> torch.Tensor:
        """Cut leading and trailing frames quieter than `trim_top_db` below the loudest frame.

        Frames are `win_ms` long every `hop_ms` at `rate` (default: the configured rate).
        Written by hand because torchaudio has no librosa-style trim (its `vad` cuts only the
        front and is slow); this is the same rule as `librosa.effects.trim(top_db=...)`.
        """
        c = self.config
        rate = rate or c.sample_rate
        frame, hop = round(rate * c.win_ms / 1000), round(rate * c.hop_ms / 1000)
        if wave.numel() <= frame:
            return wave
        # dB above the loudest frame minus top_db, compared as powers (log10 is monotonic)
        power = dsp.frame_power(wave, frame, hop).clamp_min_(1e-20)
        voiced = torch.nonzero(power > power.max() * 10 ** (-c.trim_top_db / 10))
        first, last = voiced[[0, -1], 0].tolist()
        return wave[first * hop : min(wave.numel(), last * hop + frame)]

    def from_waveform(
        self, wave: torch.Tensor, rate: int, name: str = "<waveform>"
    ) -> torch.Tensor:
        """Features [frames, n_features] (float32) of a mono waveform sampled at `rate`."""
        c = self.config
        wave = wave.float()
        peak = 0.0
        if wave.numel():
            low, high = torch.aminmax(wave)  # one pass, no |wave| copy
            peak = max(-float(low), float(high))
        if peak <= 10 ** (c.silence_floor_db / 20):
            raise AudioError(name, f"audio is silent (peak below {c.silence_floor_db} dBFS)")
        if c.trim:  # before resampling: RAVDESS clips are about 40% silence, not worth resampling
            wave = self.trim(wave, rate)
        wave = self.resample(wave, rate)
        if c.speed != 1.0:  # played at `speed`: as if recorded at speed x the rate
            wave = dsp.resample(wave, round(c.sample_rate * c.speed), c.sample_rate)
        if c.fixed_seconds is not None:
            wave = dsp.centre_fit(wave, round(c.fixed_seconds * c.sample_rate))
        if wave.numel() <= c.n_fft // 2:  # the STFT's reflect padding needs more: pad with zeros
            wave = torch.nn.functional.pad(wave, (0, c.n_fft // 2 + 1 - wave.numel()))
        with torch.no_grad():
            parts = [self.coefficients(wave)]
            for _ in range(c.deltas):
                parts.append(dsp.deltas(parts[-1], c.delta_window))
            return torch.cat(parts, dim=1)

    def from_file(self, path: str | Path) -> torch.Tensor:
        """Features [frames, n_features] of an audio file; AudioError names the file on failure."""
        wave, rate = read_audio(path)
        return self.from_waveform(wave, rate, name=str(path))
