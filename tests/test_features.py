"""The feature front end: decoding, downmix, resampling, trimming, MFCC + deltas, errors."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.fftpack
import soundfile as sf
import torch

from lightning_ser.data import dsp
from lightning_ser.data.features import AudioError, FeatureConfig, FeatureExtractor, read_audio

RATE = 16000


def chirp(seconds: float = 1.0, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A 200 -> 3200 Hz sweep with a little noise: energy in every mel band, no silent frame."""
    t = np.arange(round(seconds * rate)) / rate
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * (200 * t + 1500 * t**2)) + noise).astype(np.float32)


def reference_mfcc(y: np.ndarray, rate: int = RATE) -> np.ndarray:
    """13 MFCC [frames, 13] by librosa + scipy, with the settings torchaudio's MFCC uses.

    torchaudio.transforms.MFCC(melkwargs=...) is: MelSpectrogram (periodic Hann window,
    center=True with reflect padding, power=2, HTK mel scale, unnormalised triangles), then
    AmplitudeToDB("power", top_db=80): 10 log10(max(power, 1e-10)) relative to 1.0, floored at
    80 dB below the maximum of the whole spectrogram, then a type-II orthonormal DCT keeping the
    first n_mfcc coefficients. The librosa equivalent is below (librosa's default window "hann"
    is the periodic one too).
    """
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=rate,
        n_fft=512,
        win_length=400,
        hop_length=160,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=40,
        fmin=0.0,
        fmax=rate / 2,
        htk=True,
        norm=None,
    )
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)
    return scipy.fftpack.dct(db, axis=0, type=2, norm="ortho")[:13].T


def reference_deltas(c: np.ndarray, window: int = 5) -> np.ndarray:
    """Regression deltas along time of [frames, coefficients], edges repeated (the HTK formula)."""
    n = (window - 1) // 2
    padded = np.pad(c, ((n, n), (0, 0)), mode="edge")
    frames = len(c)
    num = sum(
        k * (padded[n + k : n + k + frames] - padded[n - k : n - k + frames])
        for k in range(1, n + 1)
    )
    return num / (2 * sum(k * k for k in range(1, n + 1)))


# --- shapes and values ----------------------------------------------------------------------------


def test_paper_features_are_39_values_at_100_frames_per_second(tone_writer, tmp_path):
    path = tone_writer(tmp_path / "a.wav", seconds=2.0, rate=RATE, freq=300, kind="chirp")
    feats = FeatureExtractor().from_file(path)
    assert feats.dtype == torch.float32
    assert feats.shape[1] == 39 == FeatureConfig().n_features
    assert abs(feats.shape[0] - 200) <= 2  # hop 10 ms; center=True adds one frame
    assert torch.isfinite(feats).all()


def test_mfcc_matches_librosa_reference():
    y = chirp()
    extractor = FeatureExtractor(FeatureConfig(trim=False))
    ours = extractor.from_waveform(torch.from_numpy(y), RATE).numpy()[:, :13]
    ref = reference_mfcc(y)
    assert ours.shape == ref.shape
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.9999
    np.testing.assert_allclose(ours, ref, atol=1e-2)


def test_deltas_are_regression_deltas_of_the_mfcc():
    feats = (
        FeatureExtractor(FeatureConfig(trim=False))
        .from_waveform(torch.from_numpy(chirp()), RATE)
        .numpy()
    )
    mfcc, delta, delta2 = feats[:, :13], feats[:, 13:26], feats[:, 26:]
    np.testing.assert_allclose(delta, reference_deltas(mfcc), atol=1e-3)
    np.testing.assert_allclose(delta2, reference_deltas(reference_deltas(mfcc)), atol=1e-3)


def test_delta_window_and_count_follow_the_config():
    wave = torch.from_numpy(chirp(0.5))
    feats = (
        FeatureExtractor(FeatureConfig(trim=False, deltas=1, delta_window=9))
        .from_waveform(wave, RATE)
        .numpy()
    )
    assert feats.shape[1] == 26
    np.testing.assert_allclose(feats[:, 13:], reference_deltas(feats[:, :13], 9), atol=1e-3)


def test_logmel_gives_n_mels_times_one_plus_deltas(tone_writer, tmp_path):
    path = tone_writer(tmp_path / "a.wav", seconds=0.5, kind="chirp")
    for deltas in (0, 2):
        config = FeatureConfig(kind="logmel", n_mels=32, deltas=deltas)
        feats = FeatureExtractor(config).from_file(path)
        assert feats.shape[1] == config.n_features == 32 * (1 + deltas)


# --- decoding, trimming, resampling ---------------------------------------------------------------


def test_leading_and_trailing_silence_is_trimmed(tone_writer, tmp_path):
    path = tone_writer(
        tmp_path / "padded.wav", seconds=1.0, freq=300, lead_silence=0.5, trail_silence=0.5
    )
    trimmed = FeatureExtractor().from_file(path)
    untrimmed = FeatureExtractor(FeatureConfig(trim=False)).from_file(path)
    assert abs(untrimmed.shape[0] - 201) <= 1  # 2 s
    assert abs(trimmed.shape[0] - 101) <= 5  # the 1 s tone, give or take a window


def test_48k_and_16k_versions_of_a_sound_give_nearly_the_same_features(tone_writer, tmp_path):
    low = FeatureExtractor().from_file(tone_writer(tmp_path / "16k.wav", 1.0, 16000, 300, "chirp"))
    high = FeatureExtractor().from_file(
        tone_writer(tmp_path / "48k.flac", 1.0, 48000, 300, "chirp")
    )
    assert low.shape == high.shape
    assert np.corrcoef(low.ravel(), high.ravel())[0, 1] > 0.999
    # away from the edges (where the resampling filter starts up) frames agree closely; what
    # differs is mostly the 16-bit quantisation noise in the bands the chirp does not reach
    torch.testing.assert_close(high[3:-3, :13], low[3:-3, :13], atol=1.0, rtol=0)
    torch.testing.assert_close(high[:, :13].mean(0), low[:, :13].mean(0), atol=0.3, rtol=0)


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = chirp(0.5, seed=1), 0.5 * chirp(0.5, seed=2)[::-1].copy()
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    wave, rate = read_audio(tmp_path / "stereo.wav")
    assert rate == RATE and wave.shape == (len(left),)
    torch.testing.assert_close(wave, torch.from_numpy((left + right) / 2))
    extractor = FeatureExtractor()
    torch.testing.assert_close(
        extractor.from_file(tmp_path / "stereo.wav"), extractor.from_waveform(wave, RATE)
    )


def test_identical_channels_give_the_mono_features(tone_writer, tmp_path):
    mono = tone_writer(tmp_path / "mono.wav", 0.5, RATE, 500, channels=1)
    stereo = tone_writer(tmp_path / "stereo.wav", 0.5, RATE, 500, channels=2)
    extractor = FeatureExtractor()
    torch.testing.assert_close(extractor.from_file(stereo), extractor.from_file(mono))


def test_format_comes_from_the_header_not_the_extension(tone_writer, tmp_path):
    disguised = tone_writer(tmp_path / "flac-inside.wav", 0.5, RATE, 400, format="FLAC")
    assert sf.info(str(disguised)).format == "FLAC"
    honest = tone_writer(tmp_path / "real.wav", 0.5, RATE, 400)
    # both hold the same 16-bit samples (libsndfile may round float -> int16 differently per format)
    torch.testing.assert_close(read_audio(disguised)[0], read_audio(honest)[0], atol=1e-4, rtol=0)
    extractor = FeatureExtractor()
    torch.testing.assert_close(
        extractor.from_file(disguised), extractor.from_file(honest), atol=0.1, rtol=0
    )


@pytest.mark.parametrize("ext", ["wav", "flac", "aiff"])
def test_every_container_decodes(tone_writer, tmp_path, ext):
    wave, rate = read_audio(tone_writer(tmp_path / f"a.{ext}", 0.25, 22050, 440))
    assert rate == 22050 and wave.dtype == torch.float32 and wave.ndim == 1
    assert abs(float(wave.abs().max()) - 0.3) < 0.01


def test_a_file_shorter_than_one_window_still_gives_a_frame(tone_writer, tmp_path):
    for seconds in (0.05, 0.01, 0.002):  # 800, 160 and 32 samples; a window is 400
        path = tone_writer(tmp_path / f"short-{seconds}.wav", seconds, RATE, 300)
        feats = FeatureExtractor().from_file(path)
        assert feats.shape[0] >= 1 and feats.shape[1] == 39
        assert torch.isfinite(feats).all()


# --- unusable files -------------------------------------------------------------------------------


def bad_files(folder: Path) -> dict[str, Path]:
    """One file for each way audio can be unusable."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"empty": folder / "empty.wav", "zero_bytes": folder / "zero-bytes.wav"}
    sf.write(files["empty"], np.zeros(0, np.float32), RATE)  # a valid header, 0 samples
    files["zero_bytes"].write_bytes(b"")
    files["text"] = folder / "notes.wav"
    files["text"].write_text("this is not audio\n")
    files["silent"] = folder / "silent.wav"
    sf.write(files["silent"], np.zeros(RATE, np.float32), RATE)
    files["missing"] = folder / "missing.wav"
    return files


@pytest.mark.parametrize("what", ["empty", "zero_bytes", "text", "silent", "missing"])
def test_unusable_audio_raises_audio_error_naming_the_file(tmp_path, what):
    path = bad_files(tmp_path)[what]
    with pytest.raises(AudioError) as info:
        FeatureExtractor().from_file(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert info.value.reason and info.value.reason in str(info.value)
    assert isinstance(info.value, ValueError)  # callers may catch ValueError


def test_a_truncated_file_is_read_as_far_as_it_goes_or_rejected(tone_writer, tmp_path):
    whole = tone_writer(tmp_path / "whole.wav", 1.0, RATE, 300)
    data = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    try:
        feats = FeatureExtractor().from_file(cut)
    except AudioError as err:  # libsndfile may refuse a header that promises more data
        assert str(cut) in str(err)
    else:  # libsndfile 1.2 reads what is there: about half of the frames
        assert 40 <= feats.shape[0] <= 60


def test_a_quiet_but_not_silent_file_is_fine(tone_writer, tmp_path):
    path = tone_writer(tmp_path / "quiet.wav", 0.5, RATE, 300, amplitude=10 ** (-60 / 20))
    assert FeatureExtractor().from_file(path).shape[0] > 0
    with pytest.raises(AudioError, match="silent"):
        FeatureExtractor(FeatureConfig(silence_floor_db=-50)).from_file(path)


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("sample_rate", 100),
        ("kind", "spectrogram"),
        ("n_mfcc", 41),
        ("n_mels", 0),
        ("deltas", 3),
        ("delta_window", 4),
        ("hop_ms", 0.0),
        ("n_fft", 256),
        ("f_max", 12000.0),
        ("f_min", 9000.0),
        ("trim_top_db", 0.0),
        ("speed", 0.0),
        ("fixed_seconds", 0.01),
    ],
)
def test_bad_config_names_the_setting(setting, value):
    with pytest.raises(ValueError, match=setting):
        FeatureConfig(**{setting: value})


def test_config_defaults_are_the_paper_front_end():
    config = FeatureConfig()
    assert (config.win_length, config.hop_length, config.n_fft) == (400, 160, 512)
    assert (config.n_mfcc, config.deltas, config.n_features) == (13, 2, 39)


def test_key_is_stable_and_changes_with_every_setting():
    base = FeatureConfig()
    assert base.key() == FeatureConfig().key()
    changed = [
        replace(base, sample_rate=8000),
        replace(base, kind="logmel"),
        replace(base, n_mfcc=20),
        replace(base, n_mels=64),
        replace(base, win_ms=20.0),
        replace(base, hop_ms=5.0),
        replace(base, n_fft=1024),
        replace(base, f_min=50.0),
        replace(base, f_max=7000.0),
        replace(base, deltas=1),
        replace(base, delta_window=7),
        replace(base, trim=False),
        replace(base, trim_top_db=40.0),
        replace(base, silence_floor_db=-60.0),
        replace(base, speed=0.9),
        replace(base, fixed_seconds=4.99),
    ]
    keys = {c.key() for c in changed}
    assert len(keys) == len(changed) and base.key() not in keys


FIRST_SETTINGS = {  # the front end's settings when the first caches were built
    "sample_rate", "kind", "n_mfcc", "n_mels", "win_ms", "hop_ms", "n_fft", "f_min", "f_max",
    "deltas", "delta_window", "trim", "trim_top_db", "silence_floor_db",
}  # fmt: skip


def test_later_settings_at_their_defaults_keep_the_keys_of_older_caches():
    fields = {k: v for k, v in asdict(FeatureConfig()).items() if k in FIRST_SETTINGS}
    before = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    assert FeatureConfig().key() == before


def test_speed_perturbation_stretches_time_and_shifts_pitch():
    """0.9 plays 11% slower (more frames) and lower: the tone's energy moves to lower mel bands."""
    t = torch.arange(32000) / 16000
    tone = 0.5 * torch.sin(2 * math.pi * 1000 * t)
    logmel = FeatureConfig(kind="logmel", deltas=0, trim=False)
    frames = {}
    for speed in (0.9, 1.0, 1.1):
        frames[speed] = FeatureExtractor(replace(logmel, speed=speed)).from_waveform(tone, 16000)
    assert [len(frames[s]) for s in (0.9, 1.0, 1.1)] == [223, 201, 182]  # 2 s / speed at 100 Hz
    peak = {s: int(f[10:-10].mean(0).argmax()) for s, f in frames.items()}
    assert peak[0.9] < peak[1.0] < peak[1.1]


def test_centre_fit_pads_and_cuts_around_the_centre_as_timnet_does():
    wave = torch.arange(1.0, 6.0)  # 5 samples
    assert dsp.centre_fit(wave, 8).tolist() == [0, 1, 2, 3, 4, 5, 0, 0]  # odd padding at the end
    assert dsp.centre_fit(wave, 3).tolist() == [2, 3, 4]
    assert dsp.centre_fit(wave, 2).tolist() == [2, 3]  # odd excess: one more cut from the end
    assert dsp.centre_fit(wave, 5).tolist() == wave.tolist()


def test_fixed_seconds_gives_every_utterance_the_same_frames():
    config = FeatureConfig(trim=False, fixed_seconds=1.0)
    extractor = FeatureExtractor(config)
    short, long = torch.randn(8000) * 0.1, torch.randn(40000) * 0.1  # 0.5 s and 2.5 s
    frames = {len(extractor.from_waveform(w, 16000)) for w in (short, long)}
    assert frames == {1 + 16000 // config.hop_length}
    # the short one sits in the middle: its central frames are those of the clip itself
    padded = extractor.from_waveform(short, 16000)[:, :13]
    alone = FeatureExtractor(FeatureConfig(trim=False)).from_waveform(
        torch.nn.functional.pad(short, (4000, 4000)), 16000
    )[:, :13]
    torch.testing.assert_close(padded, alone)
