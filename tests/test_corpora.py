"""Corpus adapters: each test builds a tiny corpus in its real layout and reads its table back."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lightning_ser.data.corpora import (
    CLASS_NAMES,
    LOADERS,
    CorpusError,
    Utterance,
    class_names_for,
    load_corpus,
)
from lightning_ser.data.corpora.cremad import load_cremad
from lightning_ser.data.corpora.emodb import load_emodb
from lightning_ser.data.corpora.generic import load_folder, load_manifest
from lightning_ser.data.corpora.iemocap import CLASS_NAMES as IEMOCAP_NINE
from lightning_ser.data.corpora.iemocap import FOUR_CLASS_NAMES, load_iemocap
from lightning_ser.data.corpora.ravdess import load_ravdess, parse_name
from lightning_ser.data.corpora.tess import load_tess

REAL_RAVDESS = Path(__file__).parents[1] / "../shared/data/ravdess"


# --- helpers --------------------------------------------------------------------------------------


def write_tone(path: Path) -> Path:
    """A 0.1 s 220 Hz tone at 16 kHz; the format follows the extension (.wav, .flac, .aiff)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(1600) / 16000)
    sf.write(path, tone.astype("float32"), 16000)
    return path


def write_tones(root: Path, *names: str) -> None:
    for name in names:
        write_tone(root / name)


def labels(table: list[Utterance]) -> Counter[str]:
    return Counter(u.label for u in table)


def by_name(table: list[Utterance]) -> dict[str, Utterance]:
    """Rows keyed by file stem."""
    return {Path(u.path).stem: u for u in table}


# --- RAVDESS --------------------------------------------------------------------------------------


def test_ravdess_parse_name_reads_every_field():
    assert parse_name("03-01-05-02-02-01-12") == {
        "modality": "audio-only",
        "vocal_channel": "speech",
        "emotion": "angry",
        "intensity": "strong",
        "statement": "02",
        "repetition": "01",
        "actor": "12",
        "gender": "female",
    }
    assert parse_name("01-02-01-01-01-02-07")["modality"] == "audio-video"
    assert parse_name("02-02-08-01-01-02-07")["vocal_channel"] == "song"


@pytest.mark.parametrize(
    ("stem", "gender"),
    [
        ("03-01-01-01-01-01-01", "male"),
        ("03-01-01-01-01-01-02", "female"),
        ("03-01-01-01-01-01-23", "male"),
        ("03-01-01-01-01-01-24", "female"),
    ],
)
def test_ravdess_gender_follows_actor_number(stem, gender):
    assert parse_name(stem)["gender"] == gender


@pytest.mark.parametrize(
    ("stem", "message"),
    [
        ("03-01-05-02-02-01", "not of the RAVDESS form"),
        ("03-01-05-02-02-01-1x", "not of the RAVDESS form"),
        ("04-01-05-02-02-01-12", "unknown modality code '04'"),
        ("03-03-05-02-02-01-12", "unknown vocal channel code '03'"),
        ("03-01-09-02-02-01-12", "unknown emotion code '09'"),
        ("03-01-05-03-02-01-12", "unknown intensity code '03'"),
        ("03-01-05-02-03-01-12", "unknown statement code '03'"),
        ("03-01-05-02-02-03-12", "unknown repetition code '03'"),
        ("03-01-05-02-02-01-25", "outside 01..24"),
        ("03-01-05-02-02-01-00", "outside 01..24"),
    ],
)
def test_ravdess_parse_name_rejects_bad_fields(stem, message):
    with pytest.raises(ValueError, match=message):
        parse_name(stem)


@pytest.fixture
def ravdess(tmp_path: Path) -> Path:
    """Two actors, speech in .wav and .flac, plus two song files."""
    write_tones(
        tmp_path,
        "Actor_01/03-01-01-01-01-01-01.wav",
        "Actor_01/03-01-05-02-01-02-01.flac",
        "Actor_02/03-01-03-01-02-01-02.wav",
        "Actor_02/03-01-04-02-02-02-02.flac",
        "Actor_01/03-02-03-01-01-01-01.wav",
        "Actor_02/03-02-06-02-01-01-02.flac",
    )
    (tmp_path / "Actor_01" / "notes.txt").write_text("not audio")
    return tmp_path


def test_ravdess_loads_speech_from_wav_and_flac(ravdess):
    table = load_ravdess(ravdess)
    assert len(table) == 4
    assert {Path(u.path).suffix for u in table} == {".wav", ".flac"}
    assert labels(table) == {"neutral": 1, "angry": 1, "happy": 1, "sad": 1}
    assert {u.speaker for u in table} == {"actor01", "actor02"}
    row = by_name(table)["03-01-05-02-01-02-01"]
    assert row.meta["intensity"] == "strong" and row.meta["gender"] == "male"


@pytest.mark.parametrize(("channel", "count"), [("speech", 4), ("song", 2), ("both", 6)])
def test_ravdess_vocal_channel_filters_song_files(ravdess, channel, count):
    table = load_corpus("ravdess", ravdess, vocal_channel=channel)
    assert len(table) == count
    if channel != "both":
        assert {u.meta["vocal_channel"] for u in table} == {channel}


def test_ravdess_real_data():
    root = REAL_RAVDESS.resolve()
    if not root.is_dir():
        pytest.skip(f"real RAVDESS not found at {root}")
    table = load_corpus("ravdess", root)
    assert len(table) == 1440
    assert len({u.speaker for u in table}) == 24
    counts = labels(table)
    assert counts["neutral"] == 96
    assert {c: n for c, n in counts.items() if c != "neutral"} == {
        c: 192 for c in CLASS_NAMES["ravdess"] if c != "neutral"
    }
    assert class_names_for("ravdess", table) == CLASS_NAMES["ravdess"]


# --- IEMOCAP --------------------------------------------------------------------------------------


def write_iemocap_dialog(
    root: Path, session: int, dialog: str, turns: dict[str, str], no_audio: tuple[str, ...] = ()
) -> None:
    """One dialog's EmoEvaluation file (label, C- and A- lines) and its sentence wavs.

    `turns` maps the utterance id's last part (`F000`) to its emotion code.
    """
    session_dir = root / f"Session{session}"
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for i, (turn, code) in enumerate(turns.items()):
        utterance, start = f"{dialog}_{turn}", 1.5 + 3 * i
        lines += [
            f"[{start:.4f} - {start + 2:.4f}]\t{utterance}\t{code}\t[2.5000, 3.0000, 3.5000]",
            "C-E1:\tNeutral;\t()",
            "A-E1:\tval 3; act 2; dom  2;\t()",
            "",
        ]
        if turn not in no_audio:
            write_tone(session_dir / "sentences" / "wav" / dialog / f"{utterance}.wav")
    label_dir = session_dir / "dialog" / "EmoEvaluation"
    label_dir.mkdir(parents=True, exist_ok=True)
    (label_dir / f"{dialog}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def iemocap(tmp_path: Path) -> Path:
    """Two sessions, improvised and scripted dialogs, every code including xxx and oth."""
    write_iemocap_dialog(
        tmp_path,
        1,
        "Ses01F_impro01",
        {"F000": "neu", "F001": "hap", "M000": "exc", "M001": "xxx", "F002": "ang"},
    )
    write_iemocap_dialog(
        tmp_path,
        1,
        "Ses01F_script01_1",
        {"F000": "sad", "M000": "fru", "M001": "oth", "F001": "sur"},
    )
    write_iemocap_dialog(
        tmp_path, 2, "Ses02M_impro03", {"M000": "fea", "F000": "dis", "M001": "ang"}
    )
    return tmp_path


def test_iemocap_nine_classes(iemocap):
    table = load_iemocap(iemocap)
    assert len(table) == 10  # 12 label lines less one xxx and one oth
    assert labels(table) == {
        "neutral": 1,
        "happiness": 1,
        "excitement": 1,
        "anger": 2,
        "sadness": 1,
        "frustration": 1,
        "surprise": 1,
        "fear": 1,
        "disgust": 1,
    }
    assert {u.meta["code"] for u in table}.isdisjoint({"xxx", "oth"})
    assert class_names_for("iemocap", table) == IEMOCAP_NINE
    assert IEMOCAP_NINE == [
        "anger",
        "sadness",
        "happiness",
        "neutral",
        "excitement",
        "surprise",
        "fear",
        "disgust",
        "frustration",
    ]


def test_iemocap_speaker_is_session_and_gender_of_the_speaking_actor(iemocap):
    rows = by_name(load_iemocap(iemocap))
    assert rows["Ses01F_impro01_F000"].speaker == "Ses01F"
    assert rows["Ses01F_impro01_M000"].speaker == "Ses01M"  # a male turn in a female-led dialog
    assert rows["Ses02M_impro03_F000"].speaker == "Ses02F"
    assert {u.speaker for u in rows.values()} == {"Ses01F", "Ses01M", "Ses02F", "Ses02M"}


def test_iemocap_meta(iemocap):
    rows = by_name(load_iemocap(iemocap))
    row = rows["Ses01F_impro01_M000"]
    assert Path(row.path).relative_to(iemocap).as_posix() == (
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav"
    )
    assert row.meta == {
        "utterance": "Ses01F_impro01_M000",
        "session": "Ses01",
        "gender": "male",
        "dialog": "Ses01F_impro01",
        "improvised": True,
        "start": 7.5,
        "end": 9.5,
        "valence": 2.5,
        "arousal": 3.0,
        "dominance": 3.5,
        "code": "exc",
    }
    scripted = rows["Ses01F_script01_1_F000"].meta
    assert scripted["dialog"] == "Ses01F_script01_1" and scripted["improvised"] is False


def test_iemocap_four_classes_merge_excitement_into_happiness(iemocap):
    table = load_corpus("iemocap", iemocap, classes="four")
    assert labels(table) == {"anger": 2, "happiness": 2, "sadness": 1, "neutral": 1}
    assert by_name(table)["Ses01F_impro01_M000"].meta["code"] == "exc"
    assert class_names_for("iemocap", table) == FOUR_CLASS_NAMES
    assert FOUR_CLASS_NAMES == ["anger", "happiness", "sadness", "neutral"]


def test_iemocap_unknown_code_is_a_bad_file(iemocap):
    write_iemocap_dialog(iemocap, 3, "Ses03F_impro02", {"F000": "zzz", "M000": "neu"})
    with pytest.raises(CorpusError, match=r"Ses03F_impro02_F000\.wav.*unknown emotion code 'zzz'"):
        load_iemocap(iemocap)
    table = load_iemocap(iemocap, on_bad_file="skip")
    assert len(table) == 11 and "Ses03F_impro02_F000" not in by_name(table)


def test_iemocap_missing_wav_is_a_bad_file(iemocap):
    write_iemocap_dialog(iemocap, 3, "Ses03M_impro02", {"F000": "ang", "M000": "neu"}, ("M000",))
    with pytest.raises(CorpusError, match=r"Ses03M_impro02_M000\.wav: audio file not found"):
        load_iemocap(iemocap)
    assert len(load_iemocap(iemocap, on_bad_file="skip")) == 11


def test_iemocap_missing_audio_of_a_dropped_class_is_no_error(iemocap):
    turns = {"F000": "fru", "M000": "xxx"}
    write_iemocap_dialog(iemocap, 3, "Ses03M_impro02", turns, no_audio=("F000", "M000"))
    assert len(load_iemocap(iemocap, classes="four")) == 6


def test_iemocap_root_without_sessions(tmp_path):
    (tmp_path / "Session1" / "sentences").mkdir(parents=True)
    with pytest.raises(CorpusError, match=f"no Session.*EmoEvaluation folder under {tmp_path}"):
        load_iemocap(tmp_path)


def test_iemocap_rejects_unknown_class_setting(iemocap):
    with pytest.raises(CorpusError, match="'nine' or 'four'"):
        load_iemocap(iemocap, classes="five")


# --- EMO-DB ---------------------------------------------------------------------------------------


@pytest.fixture
def emodb(tmp_path: Path) -> Path:
    """The release layout (`wav/`, plus label folders without audio) and one file at the top."""
    write_tones(
        tmp_path / "wav",
        "03a01Fa.wav",
        "08b02Wb.wav",
        "10a04Lc.wav",
        "13a05Ea.wav",
        "11b09Ad.wav",
        "16b10Ta.wav",
        "14a07Na.wav",
    )
    write_tone(tmp_path / "15a01Nb.wav")
    (tmp_path / "lablaut").mkdir()
    (tmp_path / "lablaut" / "03a01Fa.lab").write_text("label file, not audio")
    return tmp_path


def test_emodb(emodb):
    table = load_emodb(emodb)
    assert len(table) == 8
    assert labels(table) == {
        "happiness": 1,
        "anger": 1,
        "boredom": 1,
        "disgust": 1,
        "fear": 1,
        "sadness": 1,
        "neutral": 2,
    }
    row = by_name(table)["03a01Fa"]
    assert row.speaker == "03"
    assert row.meta == {
        "speaker": "03",
        "text": "a01",
        "emotion": "happiness",
        "version": "a",
        "gender": "male",
    }
    assert by_name(table)["08b02Wb"].meta["gender"] == "female"
    assert by_name(table)["15a01Nb"].label == "neutral"  # directly under root
    assert {u.meta["gender"] for u in table} == {"male", "female"}


# --- TESS -----------------------------------------------------------------------------------------


@pytest.fixture
def tess(tmp_path: Path) -> Path:
    """The Kaggle layout, with the real copies' irregular names (OA_, Neutral, ps)."""
    data = tmp_path / "TESS Toronto emotional speech set data"
    write_tones(
        data,
        "OAF_angry/OAF_back_angry.wav",
        "OAF_disgust/OAF_back_disgust.wav",
        "OAF_Fear/OAF_back_fear.wav",
        "OAF_happy/OAF_back_happy.wav",
        "OAF_neutral/OA_bite_neutral.wav",
        "OAF_Pleasant_surprise/OAF_back_ps.wav",
        "YAF_sad/YAF_dog_sad.wav",
        "YAF_neutral/YAF_germ_Neutral.wav",
        "YAF_pleasant_surprised/YAF_dog_ps.wav",
    )
    return tmp_path


def test_tess(tess):
    table = load_tess(tess)
    assert labels(table) == {
        "angry": 1,
        "disgust": 1,
        "fear": 1,
        "happy": 1,
        "neutral": 2,
        "pleasant_surprise": 2,
        "sad": 1,
    }
    assert Counter(u.speaker for u in table) == {"OAF": 6, "YAF": 3}
    rows = by_name(table)
    assert rows["OA_bite_neutral"].speaker == "OAF"
    assert rows["YAF_germ_Neutral"].label == "neutral"
    assert rows["YAF_dog_ps"].label == "pleasant_surprise"
    assert rows["OAF_back_angry"].meta["word"] == "back"
    assert class_names_for("tess", table) == CLASS_NAMES["tess"]


# --- CREMA-D --------------------------------------------------------------------------------------


@pytest.fixture
def cremad(tmp_path: Path) -> Path:
    write_tones(
        tmp_path / "AudioWAV",
        "1001_DFA_ANG_XX.wav",
        "1001_IEO_HAP_HI.wav",
        "1002_IEO_SAD_LO.wav",
        "1045_IEO_FEA_MD.wav",
        "1091_TIE_NEU_XX.wav",
        "1002_WSI_DIS_XX.wav",
    )
    return tmp_path


def test_cremad(cremad):
    table = load_cremad(cremad)
    assert labels(table) == {c: 1 for c in CLASS_NAMES["cremad"]}
    assert Counter(u.speaker for u in table) == {"1001": 2, "1002": 2, "1045": 1, "1091": 1}
    rows = by_name(table)
    assert rows["1001_IEO_HAP_HI"].meta["intensity"] == "high"
    assert rows["1002_IEO_SAD_LO"].meta["intensity"] == "low"
    assert rows["1045_IEO_FEA_MD"].meta["intensity"] == "medium"
    assert rows["1001_DFA_ANG_XX"].meta["intensity"] == "unspecified"
    assert rows["1001_DFA_ANG_XX"].meta["sentence"] == "DFA"


# --- bad file names, for every corpus that parses names -------------------------------------------

BAD_NAMES = [
    ("emodb", "wav/03a01Xa.wav", "unknown emotion letter 'X'"),
    ("emodb", "wav/3a01Fa.wav", "not of the EMO-DB form"),
    ("emodb", "wav/05a01Fa.wav", "unknown speaker '05'"),
    ("tess", "OAF_back_bored.wav", "unknown emotion 'bored'"),
    ("tess", "back_angry.wav", "not of the TESS form"),
    ("tess", "MAF_back_angry.wav", "unknown speaker 'MAF'"),
    ("cremad", "AudioWAV/1001_DFA_CAL_XX.wav", "unknown emotion code 'CAL'"),
    ("cremad", "AudioWAV/1001_DFA_ANG.wav", "not of the CREMA-D form"),
    ("cremad", "AudioWAV/0999_DFA_ANG_XX.wav", "outside 1001..1091"),
    ("cremad", "AudioWAV/1001_ABC_ANG_XX.wav", "unknown sentence code 'ABC'"),
    ("cremad", "AudioWAV/1001_IEO_ANG_ZZ.wav", "unknown intensity code 'ZZ'"),
    ("ravdess", "Actor_01/03-01-09-01-01-01-01.wav", "unknown emotion code '09'"),
    ("folder", "stray.wav", "not inside an emotion sub-folder"),
]


@pytest.mark.parametrize(("corpus", "bad_name", "reason"), BAD_NAMES)
def test_bad_file_names(request, tmp_path, corpus, bad_name, reason, caplog):
    root = request.getfixturevalue(corpus)
    good = len(load_corpus(corpus, root))
    write_tone(tmp_path / bad_name)
    with pytest.raises(CorpusError, match=Path(bad_name).name) as error:
        load_corpus(corpus, root)
    assert reason in str(error.value)
    with caplog.at_level(logging.WARNING):
        assert len(load_corpus(corpus, root, on_bad_file="skip")) == good
    assert "skipped 1 bad file(s)" in caplog.text


# --- generic corpora: a folder per emotion --------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_tones(
        tmp_path,
        "angry/a1.wav",
        "angry/spk1/a2.wav",
        "angry/spk1/take2/a3.wav",
        "calm/spk2/c1.flac",
        "happy/h1.aiff",
    )
    (tmp_path / "happy" / "README.txt").write_text("not audio")
    return tmp_path


def test_folder(folder):
    table = load_folder(folder)
    assert labels(table) == {"angry": 3, "calm": 1, "happy": 1}
    rows = by_name(table)
    assert rows["a1"].speaker == "unknown"
    assert rows["a2"].speaker == rows["a3"].speaker == "spk1"
    assert rows["c1"].speaker == "spk2"
    assert CLASS_NAMES["folder"] is None
    assert class_names_for("folder", table) == ["angry", "calm", "happy"]


def test_a_link_to_a_file_that_is_gone_is_read_and_named_not_dropped(folder):
    from lightning_ser.data.cache import AudioError, file_stamps

    (folder / "angry" / "gone.wav").symlink_to(folder / "nowhere.wav")
    table = load_folder(folder)
    assert labels(table)["angry"] == 4  # listed: reading it names it
    with pytest.raises(AudioError, match=r"gone\.wav.*cannot read file"):
        file_stamps([u.path for u in table])


# --- generic corpora: a CSV manifest --------------------------------------------------------------


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """manifest.csv with relative and absolute paths, a speaker column and an extra column."""
    write_tones(tmp_path, "audio/x1.wav", "audio/x2.flac", "elsewhere/x3.wav")
    (tmp_path / "manifest.csv").write_text(
        "path,label,speaker,split\n"
        "audio/x1.wav,joy,s1,train\n"
        "audio/x2.flac,anger,s2,test\n"
        f"{tmp_path / 'elsewhere' / 'x3.wav'},joy,,train\n"
    )
    return tmp_path


def test_manifest(manifest):
    table = load_manifest(manifest)
    assert [(Path(u.path).name, u.label, u.speaker) for u in table] == [
        ("x1.wav", "joy", "s1"),
        ("x2.flac", "anger", "s2"),
        ("x3.wav", "joy", "unknown"),
    ]
    assert table[0].path == str(manifest / "audio" / "x1.wav")
    assert [u.meta for u in table] == [{"split": "train"}, {"split": "test"}, {"split": "train"}]


def test_manifest_root_may_be_the_csv_or_name_it(manifest):
    (manifest / "other.csv").write_text("label,path\nsad,audio/x1.wav\n")
    assert len(load_corpus("manifest", manifest / "manifest.csv")) == 3
    table = load_corpus("manifest", manifest, manifest="other.csv")
    assert [(u.label, u.speaker, u.meta) for u in table] == [("sad", "unknown", {})]


def test_manifest_missing_columns(manifest):
    (manifest / "manifest.csv").write_text("file,emotion\naudio/x1.wav,joy\n")
    expected = r"manifest\.csv: missing column\(s\) \['path', 'label'\]"
    with pytest.raises(CorpusError, match=expected):
        load_manifest(manifest)


def test_a_manifest_that_is_not_utf8_is_named(manifest):
    (manifest / "latin1.csv").write_bytes("path,label\naudio/x1.wav,colère\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"manifest .*latin1\.csv: not UTF-8 text \(byte 0xe8"):
        load_manifest(manifest, manifest="latin1.csv")
    with pytest.raises(CorpusError, match=r"x2\.flac: not UTF-8 text .* not an audio file"):
        load_manifest(manifest / "audio" / "x2.flac")  # an audio file named as the manifest


def test_a_corpus_of_one_emotion_is_refused(manifest):
    from lightning_ser.data.datamodule import EmotionDataModule

    (manifest / "one.csv").write_text("path,label\naudio/x1.wav,joy\naudio/x2.flac,joy\n")
    data = EmotionDataModule(root=str(manifest / "one.csv"), corpus="manifest")
    with pytest.raises(CorpusError, match=r"one\.csv: 2 utterances .*\(only 'joy'\); .* two"):
        _ = data.class_names


def test_manifest_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="manifest file not found: .*nothing.csv"):
        load_manifest(tmp_path, manifest="nothing.csv")


def test_every_bad_row_of_a_manifest_is_named_at_once(manifest):
    with (manifest / "manifest.csv").open("a") as handle:
        handle.write("audio/gone.wav,joy,s3,train\naudio/x1.wav,,s3,train\n")
    with pytest.raises(CorpusError, match=r"2 bad file\(s\): .*gone\.wav: .*; .*x1\.wav: empty"):
        load_manifest(manifest)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("audio/gone.wav,joy,s3,train", r"gone\.wav: audio file not found \(row 4"),
        ("audio/x1.wav,,s3,train", r"x1\.wav: empty label \(row 4"),
    ],
)
def test_manifest_bad_rows(manifest, row, message):
    with (manifest / "manifest.csv").open("a") as handle:
        handle.write(row + "\n")
    with pytest.raises(CorpusError, match=message):
        load_manifest(manifest)
    assert len(load_manifest(manifest, on_bad_file="skip")) == 3


# --- the registry ---------------------------------------------------------------------------------


def test_registry_lists_every_corpus():
    names = {"ravdess", "iemocap", "emodb", "tess", "cremad", "folder", "manifest"}
    assert set(LOADERS) == set(CLASS_NAMES) == names


@pytest.mark.parametrize("corpus", sorted(LOADERS))
def test_missing_root_folder(tmp_path, corpus):
    with pytest.raises(CorpusError, match="folder not found: .*no_such_corpus"):
        load_corpus(corpus, tmp_path / "no_such_corpus")


@pytest.mark.parametrize("corpus", ["ravdess", "emodb", "tess", "cremad", "folder"])
def test_folder_without_audio(tmp_path, corpus):
    with pytest.raises(CorpusError, match="no usable utterances found under"):
        load_corpus(corpus, tmp_path)


def test_unknown_corpus(tmp_path):
    with pytest.raises(CorpusError, match=r"unknown corpus 'savee'; choose one of \['cremad'"):
        load_corpus("savee", tmp_path)


def test_unknown_option_names_the_allowed_ones(ravdess):
    with pytest.raises(CorpusError) as error:
        load_corpus("ravdess", ravdess, vocal_chanel="song")
    assert "unknown option(s) ['vocal_chanel']" in str(error.value)
    assert "allowed options: ['vocal_channel', 'on_bad_file']" in str(error.value)


def test_bad_on_bad_file_value(ravdess):
    with pytest.raises(CorpusError, match="on_bad_file must be 'error' or 'skip'"):
        load_corpus("ravdess", ravdess, on_bad_file="ignore")


def test_class_names_reject_labels_outside_the_canonical_set():
    with pytest.raises(CorpusError, match=r"unknown labels \['calm'\]"):
        class_names_for("cremad", [Utterance("a.wav", "calm", "1001")])
