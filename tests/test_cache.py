"""The feature cache: built once, loaded without decoding, rebuilt when anything it depends on
changes, written atomically, and honest about files without usable audio."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

import lightning_ser.data.cache as cache
from lightning_ser.data.cache import (
    FeatureTable,
    UnusableFilesError,
    cache_key,
    default_cache_dir,
    extract_all,
    load_or_build,
    load_table,
    save_table,
)
from lightning_ser.data.corpora import load_ravdess
from lightning_ser.data.features import AudioError, FeatureConfig, FeatureExtractor

CONFIG = FeatureConfig()
REAL_RAVDESS = Path(__file__).resolve().parents[2] / "shared/data/ravdess"


@pytest.fixture
def clips(tmp_path: Path, tone_writer) -> list[str]:
    """Six short clips of different rates, kinds and containers."""
    specs = [
        ("a.wav", 0.3, 16000, 300, "tone"),
        ("b.wav", 0.4, 48000, 500, "chirp"),
        ("c.flac", 0.25, 16000, 700, "noise"),
        ("d.wav", 0.35, 22050, 900, "tone"),
        ("e.aiff", 0.3, 16000, 1200, "chirp"),
        ("f.wav", 0.2, 8000, 400, "tone"),
    ]
    return [
        str(tone_writer(tmp_path / "clips" / name, sec, rate, freq, kind, seed=i))
        for i, (name, sec, rate, freq, kind) in enumerate(specs)
    ]


@pytest.fixture
def broken(tmp_path: Path) -> str:
    """A text file with an audio name."""
    path = tmp_path / "clips" / "broken.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not audio at all\n")
    return str(path)


def build(paths, cache_dir, config=CONFIG, **options):
    """load_or_build in this process, quietly."""
    options = {"workers": 1, "progress": False, "name": "clips"} | options
    return load_or_build(paths, config, cache_dir, **options)


def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to extract features fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("audio was decoded although the cache is valid")

    monkeypatch.setattr(cache, "extract_all", refuse)
    monkeypatch.setattr(FeatureExtractor, "from_file", refuse)


def assert_same_table(a: FeatureTable, b: FeatureTable) -> None:
    assert a.paths == b.paths and a.failures == b.failures
    assert torch.equal(a.frames, b.frames) and torch.equal(a.offsets, b.offsets)


# --- building and loading -------------------------------------------------------------------------


def test_the_table_holds_each_files_features(clips, cache_dir):
    table, info = build(clips, cache_dir)
    assert info.built and info.path.is_file() and info.path.parent == cache_dir
    assert info.path.name.startswith("clips-") and info.path.suffix == ".pt"
    assert len(table) == len(clips) and table.paths == clips and table.failures == []
    assert table.frames.dtype == torch.float32 and table.frames.shape[1] == 39
    assert int(table.offsets[0]) == 0 and int(table.offsets[-1]) == table.frames.shape[0]
    extractor = FeatureExtractor(CONFIG)
    for i, path in enumerate(clips):
        expected = extractor.from_file(path)
        assert int(table.lengths[i]) == len(expected)
        torch.testing.assert_close(table.utterance(i), expected)


def test_a_second_load_decodes_no_audio(clips, cache_dir, monkeypatch):
    first, info = build(clips, cache_dir)
    forbid_decoding(monkeypatch)
    second, again = build(clips, cache_dir)
    assert info.built and not again.built and again.path == info.path
    assert_same_table(first, second)


def test_a_touched_file_rebuilds_the_cache(clips, cache_dir, monkeypatch):
    _, info = build(clips, cache_dir)
    stat = os.stat(clips[2])
    os.utime(clips[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    _, rebuilt = build(clips, cache_dir)
    assert rebuilt.built and rebuilt.path != info.path
    forbid_decoding(monkeypatch)
    assert not build(clips, cache_dir)[1].built


def test_changed_content_is_seen_in_the_rebuilt_table(clips, cache_dir, tone_writer):
    before, info = build(clips, cache_dir)
    stat = os.stat(clips[0])
    tone_writer(clips[0], 0.3, 16000, 2500)  # same length and size, another tone
    os.utime(clips[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after, rebuilt = build(clips, cache_dir)
    assert rebuilt.built and rebuilt.path != info.path
    assert not torch.equal(after.utterance(0), before.utterance(0))
    torch.testing.assert_close(after.utterance(1), before.utterance(1))


def test_another_feature_config_gets_its_own_cache_file(clips, cache_dir, monkeypatch):
    _, mfcc = build(clips, cache_dir)
    logmel, info = build(clips, cache_dir, FeatureConfig(kind="logmel", deltas=0))
    assert info.built and info.path != mfcc.path and mfcc.path.exists()
    assert logmel.frames.shape[1] == 40
    forbid_decoding(monkeypatch)
    assert not build(clips, cache_dir)[1].built  # the first one is still valid


def test_cache_key_depends_on_config_files_and_their_order(clips):
    key = cache_key(clips, CONFIG)
    assert key == cache_key(clips, FeatureConfig())
    assert key != cache_key(clips, FeatureConfig(n_mfcc=20))
    assert key != cache_key(clips[:-1], CONFIG)
    assert key != cache_key(clips[::-1], CONFIG)


def test_one_folder_spelt_two_ways_is_one_cache(clips, tmp_path, monkeypatch):
    folder = Path(clips[0]).parent
    monkeypatch.chdir(folder.parent)
    relative = [str(Path(folder.name) / Path(c).name) for c in clips]
    (tmp_path / "link").symlink_to(folder)
    linked = [str(tmp_path / "link" / Path(c).name) for c in clips]
    assert cache_key(relative, CONFIG) == cache_key(clips, CONFIG) == cache_key(linked, CONFIG)


def test_a_missing_file_is_named(clips, cache_dir, tmp_path):
    missing = str(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match="gone.wav"):
        build([*clips, missing], cache_dir)


def test_skip_also_skips_a_file_that_vanished_after_listing(clips, cache_dir, tmp_path):
    missing = str(tmp_path / "gone.wav")
    table, _ = build([*clips, missing], cache_dir, on_bad_file="skip")
    assert table.paths == clips and [p for p, _ in table.failures] == [missing]


# --- reusing an older cache of the same files ---------------------------------------------------


def count_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the files the cache decodes (serial builds call cache._extract per file)."""
    decoded: list[str] = []
    extract = cache._extract

    def counting(path, extractor=None):
        decoded.append(path)
        return extract(path, extractor)

    monkeypatch.setattr(cache, "_extract", counting)
    return decoded


def test_adding_a_file_decodes_only_that_file(clips, cache_dir, tmp_path, monkeypatch):
    build(clips[:-1], cache_dir)
    decoded = count_decoding(monkeypatch)
    table, info = build(clips, cache_dir)
    assert info.built and decoded == [clips[-1]]
    fresh, _ = build(clips, tmp_path / "fresh-cache")  # everything decoded: the same table
    assert_same_table(table, fresh)


def test_a_touched_file_is_decoded_again_and_the_others_reused(clips, cache_dir, monkeypatch):
    build(clips, cache_dir)
    stat = os.stat(clips[2])
    os.utime(clips[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    decoded = count_decoding(monkeypatch)
    assert build(clips, cache_dir)[1].built and decoded == [clips[2]]


def test_files_that_failed_are_tried_again(clips, broken, cache_dir, monkeypatch):
    build([broken, *clips[:-1]], cache_dir, on_bad_file="skip")
    decoded = count_decoding(monkeypatch)
    table, _ = build([broken, *clips], cache_dir, on_bad_file="skip")
    assert decoded == [broken, clips[-1]] and [p for p, _ in table.failures] == [broken]


def test_a_rewrite_that_keeps_size_and_mtime_is_not_reused(
    clips, cache_dir, tone_writer, monkeypatch
):
    before, _ = build(clips, cache_dir)
    stat = os.stat(clips[0])
    tone_writer(clips[0], 0.3, 16000, 2500)  # same size, another tone
    os.utime(clips[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime put back: cp -p
    assert os.stat(clips[0]).st_size == stat.st_size
    later = os.stat(clips[1])
    os.utime(clips[1], ns=(later.st_atime_ns, later.st_mtime_ns + 5_000_000_000))  # a rebuild
    decoded = count_decoding(monkeypatch)
    after, _ = build(clips, cache_dir)
    assert decoded == [clips[0], clips[1]]
    assert not torch.equal(after.utterance(0), before.utterance(0))


def test_nothing_is_reused_from_other_settings(clips, cache_dir, monkeypatch):
    build(clips[:-1], cache_dir, FeatureConfig(n_mfcc=20))
    decoded = count_decoding(monkeypatch)
    build(clips, cache_dir)
    assert decoded == clips


# --- stale caches ----------------------------------------------------------------------------


def test_stale_caches_are_this_names_other_settings_and_old_temporary_files(clips, cache_dir):
    _, old = build(clips, cache_dir, FeatureConfig(n_mfcc=20))
    _, current = build(clips, cache_dir)
    other_corpus = cache_dir / ("clips-more-" + "0" * 20 + ".pt")  # a longer name, same prefix
    other_corpus.write_bytes(b"x")
    fresh_tmp = cache_dir / f"{current.path.name}.abc.tmp"  # a build running right now
    fresh_tmp.write_bytes(b"x")
    old_tmp = cache_dir / f"{old.path.name}.def.tmp"  # left by a killed build
    old_tmp.write_bytes(b"x")
    os.utime(old_tmp, (0, 0))
    assert cache.stale_caches(cache_dir, "clips", {current.path}) == sorted([old.path, old_tmp])


# --- damaged cache files --------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "foreign"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(clips, cache_dir, caplog, damage):
    good, info = build(clips, cache_dir)
    data = info.path.read_bytes()
    if damage == "garbage":
        info.path.write_bytes(bytes(range(256)) * 8)
    elif damage == "truncated":
        info.path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        info.path.write_bytes(b"")
    else:  # a readable file that is not one of ours
        torch.save({"version": 99, "frames": torch.zeros(3)}, info.path)
    with caplog.at_level(logging.WARNING, logger="lightning_ser.data.cache"):
        table, rebuilt = build(clips, cache_dir)
    assert rebuilt.built and rebuilt.path == info.path
    assert "rebuilding" in caplog.text
    assert_same_table(table, good)
    assert_same_table(load_table(info.path, CONFIG), good)


def test_load_table_rejects_another_config(clips, cache_dir):
    _, info = build(clips, cache_dir)
    with pytest.raises(ValueError, match="configuration"):
        load_table(info.path, FeatureConfig(deltas=1))


def test_a_cache_written_before_a_setting_existed_still_loads(clips, cache_dir):
    good, info = build(clips, cache_dir)
    payload = torch.load(info.path, weights_only=True)
    del payload["config"]["speed"]  # as written before FeatureConfig.speed existed
    torch.save(payload, info.path)
    assert_same_table(load_table(info.path, CONFIG), good)
    with pytest.raises(ValueError, match="configuration"):
        load_table(info.path, FeatureConfig(speed=0.9))


def test_a_failed_write_leaves_the_old_cache_intact(clips, cache_dir, monkeypatch):
    good, info = build(clips, cache_dir)
    assert list(cache_dir.glob("*.tmp")) == []

    def save_half_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    smaller = FeatureTable(good.frames[:5], torch.tensor([0, 5]), clips[:1], CONFIG)
    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        save_table(smaller, info.path)
    monkeypatch.undo()
    assert list(cache_dir.iterdir()) == [info.path]  # no temporary file left behind
    assert_same_table(load_table(info.path, CONFIG), good)


# --- files without usable audio -------------------------------------------------------------------


def test_bad_files_are_listed_at_once_and_what_decoded_is_kept(
    clips, broken, cache_dir, monkeypatch
):
    other = Path(broken).with_name("other.wav")
    other.write_bytes(b"RIFF....not really")
    with pytest.raises(UnusableFilesError) as err:
        build([*clips, broken, str(other)], cache_dir)
    message = str(err.value)
    assert "2 file(s) without usable audio" in message and "on_bad_file" in message
    assert broken in message and str(other) in message
    listing = next(cache_dir.glob("*.skipped.tsv"))
    assert broken in listing.read_text() and str(other) in listing.read_text()
    assert len(list(cache_dir.glob("*.pt"))) == 1  # the good files' features are kept
    # the user removes the bad files: nothing is decoded again
    reused = []
    real = cache.extract_all

    def spy(paths, config, workers, progress, on_bad_file, reuse):
        reused.append(set(reuse))
        return real(paths, config, workers, progress, on_bad_file, reuse)

    monkeypatch.setattr(cache, "extract_all", spy)
    table, _ = build(clips, cache_dir)
    assert table.paths == clips and reused == [set(clips)]


def test_skip_drops_and_records_a_bad_file_and_the_cache_remembers(
    clips, broken, cache_dir, monkeypatch
):
    paths = [clips[0], broken, *clips[1:]]
    table, info = build(paths, cache_dir, on_bad_file="skip")
    assert info.built and table.paths == clips
    assert [p for p, _ in table.failures] == [broken]
    assert "cannot decode" in table.failures[0][1]
    forbid_decoding(monkeypatch)
    again, info = build(paths, cache_dir, on_bad_file="skip")
    assert not info.built and again.failures == table.failures
    with pytest.raises(UnusableFilesError, match="broken.wav"):  # still stops an "error" run
        build(paths, cache_dir, on_bad_file="error")


def test_parallel_extraction_equals_serial(clips, broken):
    paths = [*clips, broken]
    serial = extract_all(paths, CONFIG, workers=1, progress=False, on_bad_file="skip")
    parallel = extract_all(paths, CONFIG, workers=2, progress=False, on_bad_file="skip")
    assert_same_table(parallel, serial)
    assert len(serial) == len(clips)


def test_serial_extraction_leaves_the_torch_thread_count_alone(clips):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        extract_all(clips[:2], CONFIG, workers=1, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "lightning_ser"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "lightning_ser"


# --- real data ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not REAL_RAVDESS.is_dir(), reason=f"no RAVDESS at {REAL_RAVDESS}")
def test_full_ravdess_cache(cache_dir):
    paths = [u.path for u in load_ravdess(REAL_RAVDESS)]
    assert len(paths) == 1440
    table, info = load_or_build(paths, CONFIG, cache_dir, "ravdess", progress=False)
    assert info.built and len(table) == 1440 and table.failures == []
    assert table.frames.shape[1] == 39 and torch.isfinite(table.frames).all()
    assert int(table.lengths.min()) >= 10
    again, info = load_or_build(paths, CONFIG, cache_dir, "ravdess", progress=False)
    assert not info.built and len(again) == 1440
    assert torch.equal(again.offsets, table.offsets)


def test_frames_changed_in_place_are_detected_and_rebuilt(clips, cache_dir, caplog):
    table, info = build(clips, cache_dir)
    payload = torch.load(info.path, weights_only=True)
    payload["frames"][5, 3] += 1.0  # a valid archive with one wrong value
    torch.save(payload, info.path)
    with caplog.at_level(logging.WARNING):
        again, info2 = build(clips, cache_dir)
    assert info2.built and "checksum" in caplog.text
    torch.testing.assert_close(again.frames, table.frames)


def test_an_unwritable_cache_folder_keeps_the_features_in_memory(clips, tmp_path, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING):
        table, info = build(clips, blocker / "cache")  # a folder cannot be made inside a file
    assert table.paths == clips and info.built
    assert "not writable" in caplog.text and not info.path.exists()


@pytest.mark.skipif(not os.sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_build_workers_are_set_to_die_with_their_parent():
    import subprocess
    import sys

    code = (
        "import ctypes; from lightning_ser.data.cache import _die_with_parent; _die_with_parent();"
        "v = ctypes.c_int(); ctypes.CDLL('libc.so.6').prctl(2, ctypes.byref(v)); print(v.value)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "9"  # SIGKILL when the parent dies


def test_a_cache_folder_that_is_a_file_is_refused_in_one_line(clips, tmp_path):
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text("model: {}\n")
    with pytest.raises(ValueError, match=r"data.cache_dir .*tiny.yaml is a file; name a folder"):
        build(clips, config_file)
    assert config_file.read_text() == "model: {}\n"
