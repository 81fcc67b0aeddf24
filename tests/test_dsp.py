"""lightning_ser.data.dsp against torchaudio itself: same numbers, faster layout.

Each test is an oracle test: the torchaudio call the dsp function replaces is run on the same
input and the outputs must agree to float32 rounding.
"""

from __future__ import annotations

import pytest
import torch
import torchaudio

from lightning_ser.data import dsp


def _signal(n: int, seed: int = 0) -> torch.Tensor:
    """Speech-like test signal: a few harmonics plus noise, peak below 1."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    tone = sum(torch.sin(2 * torch.pi * f * t) / k for k, f in enumerate((220, 440, 1250), 1))
    return 0.3 * tone + 0.05 * torch.randn(n, generator=g)


@pytest.mark.parametrize(
    ("orig", "new"),
    [
        (48000, 16000),
        (44100, 16000),
        (22050, 16000),
        (24000, 16000),
        (11025, 16000),
        (8000, 16000),
        (16000, 8000),
    ],
)
@pytest.mark.parametrize("length", [1, 7, 1000, 48001])
def test_resample_equals_torchaudio(orig: int, new: int, length: int) -> None:
    wave = _signal(length)
    expected = torchaudio.functional.resample(wave, orig, new)
    got = dsp.resample(wave, orig, new)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)


def test_resample_length_follows_torchaudio_even_where_float32_rounds() -> None:
    # 16000 * 48001 / 7999 = 96014.0018: torchaudio's float32 ceil gives 96014, not 96015
    wave = _signal(48001)
    expected = torchaudio.functional.resample(wave, 7999, 16000)
    got = dsp.resample(wave, 7999, 16000)
    assert got.shape == expected.shape == (96014,)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)


def test_resample_same_rate_returns_the_input() -> None:
    wave = _signal(100)
    assert dsp.resample(wave, 16000, 16000) is wave


@pytest.mark.parametrize("orig", [48000, 44100, 22050])
def test_resample_keeps_float64(orig: int) -> None:
    wave = _signal(3000).double()
    got = dsp.resample(wave, orig, 16000)
    assert got.dtype == torch.float64
    expected = torchaudio.functional.resample(wave, orig, 16000)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


SPECTRA = [
    {"sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40},
    {"sample_rate": 16000, "n_fft": 400, "win_length": 400, "hop_length": 100, "n_mels": 26},
    {
        "sample_rate": 8000,
        "n_fft": 256,
        "win_length": 200,
        "hop_length": 80,
        "n_mels": 30,
        "f_min": 60.0,
        "f_max": 3800.0,
    },
    {"sample_rate": 11025, "n_fft": 256, "win_length": 256, "hop_length": 110, "n_mels": 20},
]


@pytest.mark.parametrize("spectrum", SPECTRA)
@pytest.mark.parametrize("length", [300, 16000, 37123])
def test_mfcc_equals_torchaudio_mfcc(spectrum: dict, length: int) -> None:
    wave = _signal(length, seed=length)
    melkwargs = {k: v for k, v in spectrum.items() if k != "sample_rate"}
    reference = torchaudio.transforms.MFCC(spectrum["sample_rate"], 13, melkwargs=melkwargs)
    expected = reference(wave).T  # torchaudio: [coefficients, frames]
    got = dsp.mfcc(wave, n_mfcc=13, **spectrum)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=1e-5)


@pytest.mark.parametrize("spectrum", SPECTRA)
def test_log_mel_equals_torchaudio_melspectrogram_in_db(spectrum: dict) -> None:
    wave = _signal(20000, seed=3)
    reference = torch.nn.Sequential(
        torchaudio.transforms.MelSpectrogram(**spectrum),
        torchaudio.transforms.AmplitudeToDB("power", top_db=80.0),
    )
    torch.testing.assert_close(
        dsp.log_mel(wave, **spectrum), reference(wave).T, atol=2e-3, rtol=1e-5
    )


def test_log_mel_floors_at_top_db_below_the_maximum() -> None:
    wave = torch.cat([_signal(8000), torch.zeros(8000)])  # loud half, digital-silence half
    db = dsp.log_mel(wave, 16000, 512, 400, 160, 40, top_db=50.0)
    assert float(db.max() - db.min()) == pytest.approx(50.0, abs=1e-4)


@pytest.mark.parametrize("win_length", [3, 5, 9])
@pytest.mark.parametrize("frames", [1, 2, 6, 300])
def test_deltas_equal_torchaudio_compute_deltas(win_length: int, frames: int) -> None:
    features = torch.randn(frames, 13, generator=torch.Generator().manual_seed(frames))
    expected = torchaudio.functional.compute_deltas(features.T.contiguous(), win_length).T
    torch.testing.assert_close(dsp.deltas(features, win_length), expected)


def test_deltas_of_a_ramp_are_its_slope() -> None:
    ramp = torch.arange(20, dtype=torch.float32)[:, None].repeat(1, 3) * 0.5
    inner = dsp.deltas(ramp, 5)[2:-2]  # away from the repeated edge frames
    torch.testing.assert_close(inner, torch.full_like(inner, 0.5))


@pytest.mark.parametrize(("frame", "hop"), [(1200, 480), (400, 160), (551, 220), (10, 10)])
@pytest.mark.parametrize("length", [1200, 5000, 48017])
def test_frame_power_equals_unfolded_mean_square(frame: int, hop: int, length: int) -> None:
    wave = _signal(length, seed=1)
    expected = wave.unfold(0, frame, hop).pow(2).mean(dim=1)
    torch.testing.assert_close(dsp.frame_power(wave, frame, hop), expected, rtol=1e-5, atol=1e-9)


def test_frame_power_of_a_wave_shorter_than_a_frame_is_empty() -> None:
    assert dsp.frame_power(torch.ones(5), 10, 5).numel() == 0
