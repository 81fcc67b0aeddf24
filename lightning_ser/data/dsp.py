"""torchaudio's resampling, MFCC and deltas, recomputed with op layouts that are fast on CPU.

Why this exists: building the feature cache spent most of its time in torchaudio calls whose CPU
kernels are slow for one short utterance at a time (per RAVDESS clip, one thread, this project's
2-core machine): `functional.resample` is a one-channel strided conv1d (2.9 ms; the same sums as
one banded matrix product: 0.5 ms), `transforms.MFCC` squares a strided complex STFT with
`abs().pow(2)` (2.4 ms in all; frames-first unfold + rfft + `real**2 + imag**2`: 1.2 ms), and
`functional.compute_deltas` is a grouped conv1d (0.3 ms; one product over unfolded frames:
0.1 ms). `frame_power` (silence trimming) sums blocks once instead of squaring every sample
frame/hop times. Each function reuses torchaudio's own filters (sinc kernel, mel filterbank, DCT
matrix) and only rearranges the arithmetic, so results equal torchaudio's to float32 rounding;
tests/test_dsp.py holds them to it. Outputs are frames-first ([frames, coefficients]), the
layout the cache stores, where torchaudio's are [coefficients, frames].
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
import torchaudio

# Outputs computed per matrix row when resampling: 16 keeps the product large enough for BLAS
# while the band of zeros in the matrix stays small (measured best of 4..64 for 48 kHz -> 16 kHz).
_OUTPUTS_PER_ROW = 16


# A few rates per corpus; a near-coprime pair (say 7999 Hz) makes a matrix of hundreds of MB.
@lru_cache(maxsize=4)
def _resample_matrix(
    orig_rate: int, new_rate: int, dtype: torch.dtype
) -> tuple[torch.Tensor, int, int, int, int]:
    """torchaudio's sinc kernel laid out as a banded matrix: one row of input -> many outputs.

    The kernel is computed in `dtype`, as `functional.resample` computes it in the waveform's.
    """
    resampler = torchaudio.transforms.Resample(orig_rate, new_rate, dtype=dtype)
    gcd = math.gcd(orig_rate, new_rate)
    orig, new, width = orig_rate // gcd, new_rate // gcd, resampler.width
    kernel = resampler.kernel[:, 0, :]  # [new, 2 * width + orig]: output phase x input taps
    taps = kernel.shape[1]
    blocks = max(1, _OUTPUTS_PER_ROW // new)  # each block turns `orig` inputs into `new` outputs
    span = (blocks - 1) * orig + taps
    matrix = torch.zeros(span, blocks * new, dtype=dtype)
    for b in range(blocks):
        matrix[b * orig : b * orig + taps, b * new : (b + 1) * new] = kernel.T
    return matrix, orig, new, width, blocks


def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """`torchaudio.functional.resample(wave, orig_rate, new_rate)` of a 1-D waveform."""
    if orig_rate == new_rate:
        return wave
    matrix, orig, new, width, blocks = _resample_matrix(orig_rate, new_rate, wave.dtype)
    length = wave.numel()
    # torchaudio's own length formula, float32 rounding included, so lengths always agree
    n_out = int(torch.ceil(torch.as_tensor(new * length / orig)))
    rows = -(-n_out // (new * blocks))
    padded = F.pad(wave, (width, rows * blocks * orig + width - length))
    frames = padded.unfold(0, matrix.shape[0], blocks * orig)  # [rows, span], overlapping
    return (frames @ matrix).reshape(-1)[:n_out]


@lru_cache(maxsize=16)
def _spectral_constants(
    sample_rate: int, n_fft: int, win_length: int, n_mels: int, f_min: float, f_max: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.stft's Hann window (centred in n_fft) and torchaudio's mel filterbank [freq, mels]."""
    left = (n_fft - win_length) // 2
    window = F.pad(torch.hann_window(win_length), (left, n_fft - win_length - left))
    fbank = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1,
        f_min,
        f_max if f_max is not None else float(sample_rate // 2),
        n_mels,
        sample_rate,
    )
    return window, fbank


@lru_cache(maxsize=16)
def _dct(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """The DCT-II matrix torchaudio.transforms.MFCC uses (norm "ortho"), [n_mels, n_mfcc]."""
    return torchaudio.functional.create_dct(n_mfcc, n_mels, "ortho")


def log_mel(
    wave: torch.Tensor,
    sample_rate: int,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    top_db: float = 80.0,
) -> torch.Tensor:
    """Log-mel energies in dB, [frames, n_mels]: MelSpectrogram + AmplitudeToDB("power").

    The STFT is torch.stft's (centred frames, reflect padding) spelled out as unfold + rfft so
    every step runs on a frames-first contiguous tensor; the dB step is AmplitudeToDB's formula
    for one spectrogram (amin 1e-10, reference 1, floor at top_db below the maximum).
    """
    window, fbank = _spectral_constants(sample_rate, n_fft, win_length, n_mels, f_min, f_max)
    padded = F.pad(wave[None], (n_fft // 2, n_fft // 2), mode="reflect")[0]
    spec = torch.fft.rfft(padded.unfold(0, n_fft, hop_length) * window.to(wave.dtype))
    power = spec.real.square() + spec.imag.square()  # [frames, freq]
    db = 10.0 * torch.log10((power @ fbank.to(wave.dtype)).clamp_min(1e-10))
    return db.clamp_min(db.max() - top_db)


def mfcc(
    wave: torch.Tensor,
    sample_rate: int,
    n_mfcc: int,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> torch.Tensor:
    """`torchaudio.transforms.MFCC` (norm "ortho", top_db 80) transposed: [frames, n_mfcc]."""
    db = log_mel(wave, sample_rate, n_fft, win_length, hop_length, n_mels, f_min, f_max)
    return db @ _dct(n_mfcc, n_mels).to(wave.dtype)


def deltas(features: torch.Tensor, win_length: int = 5) -> torch.Tensor:
    """`torchaudio.functional.compute_deltas` along the frames of [frames, coefficients].

    Edge frames are repeated, as torchaudio's replicate padding does; the regression weights
    (-n..n) / (2 * sum(i**2)) are applied to each frame's neighbourhood in one product.
    """
    n = (win_length - 1) // 2
    weights = torch.arange(-n, n + 1, dtype=features.dtype) / (2 * sum(i * i for i in range(n + 1)))
    padded = torch.cat([features[:1].expand(n, -1), features, features[-1:].expand(n, -1)])
    return padded.unfold(0, win_length, 1) @ weights


def frame_power(wave: torch.Tensor, frame: int, hop: int) -> torch.Tensor:
    """Mean square of every full frame: `wave.unfold(0, frame, hop).pow(2).mean(1)`.

    Sums blocks of gcd(frame, hop) samples first, so each sample is squared once (48 kHz, 25 ms
    frames every 10 ms: 0.19 ms per RAVDESS clip instead of 0.43 ms).
    """
    block = math.gcd(frame, hop)
    if wave.numel() < frame:
        return wave.new_zeros(0)
    if block == 1:
        return wave.unfold(0, frame, hop).pow(2).mean(dim=1)
    n = (wave.numel() - frame) // hop + 1
    blocks = wave[: (n - 1) * hop + frame].reshape(-1, block)
    sums = torch.linalg.vector_norm(blocks, dim=1).square()  # no squared copy of the wave
    return sums.unfold(0, frame // block, hop // block).sum(1) / frame


def centre_fit(wave: torch.Tensor, length: int) -> torch.Tensor:
    """`wave` zero-padded or cut to `length` samples around its centre, as TIM-Net's feature
    extraction does (Ye et al. 2023, `extract_feature.py`): padding puts half the missing
    samples before and the rest (one more when odd) after; a cut drops half the excess from the
    start and the rest from the end. Written here because librosa's `fix_length` pads or cuts
    at the end only."""
    excess = wave.numel() - length
    if excess >= 0:
        start = excess // 2
        return wave[start : start + length]
    before = -excess // 2
    return torch.nn.functional.pad(wave, (before, -excess - before))
