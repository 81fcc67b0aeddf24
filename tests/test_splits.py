"""Evaluation protocols: disjoint, complete, deterministic, and speaker-disjoint where promised."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lightning_ser.data.splits import PROTOCOLS, Split, make_split, num_folds

SPEAKERS = [f"actor{s:02d}" for s in range(1, 13)]
EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
SPEAKER_PROTOCOLS = ("speaker_holdout", "speaker_kfold", "loso", "speaker_folds")


def synthetic_table() -> tuple[list[str], list[str]]:
    """Labels and speakers of 12 speakers x 8 emotions x 6 utterances (576 rows)."""
    labels, speakers = [], []
    for speaker in SPEAKERS:
        for emotion in EMOTIONS:
            for _ in range(6):
                labels.append(emotion)
                speakers.append(speaker)
    return labels, speakers


LABELS, GROUPS = synthetic_table()
FIXED_FOLDS = [[1, 5, 9], [2, 6, 10], [3, 7, 11], [4, 8, 12]]  # actor numbers, as in a config
OPTIONS = {"speaker_kfold": {"n_folds": 4}, "speaker_folds": {"speaker_folds": FIXED_FOLDS}}


def split(protocol: str, **kwargs) -> Split:
    return make_split(LABELS, GROUPS, protocol, **(OPTIONS.get(protocol, {}) | kwargs))


def speakers_of(indices: list[int], groups: list[str] = GROUPS) -> set[str]:
    return {groups[i] for i in indices}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_parts_are_disjoint_sorted_and_cover_everything(protocol):
    s = split(
        protocol, fold=1 if protocol in ("kfold", "speaker_kfold", "loso", "speaker_folds") else 0
    )
    train, val, test = set(s.train), set(s.val), set(s.test)
    assert train and val and test
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(range(len(LABELS)))
    assert all(part == sorted(part) for part in (s.train, s.val, s.test))
    assert s.protocol == protocol and s.speaker_independent == (protocol in SPEAKER_PROTOCOLS)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_seed_fixes_the_split_and_another_seed_changes_it(protocol):
    assert split(protocol, seed=3) == split(protocol, seed=3)
    if protocol in ("loso", "speaker_folds"):  # the fold fixes the test speakers; val moves
        assert split(protocol, seed=3).test == split(protocol, seed=4).test
        assert split(protocol, seed=3).val != split(protocol, seed=4).val
    else:
        assert split(protocol, seed=3).test != split(protocol, seed=4).test


@pytest.mark.parametrize("protocol", SPEAKER_PROTOCOLS)
def test_speaker_protocols_share_no_speaker_between_parts(protocol):
    for fold in range(num_folds(protocol, GROUPS, OPTIONS.get(protocol, {}).get("n_folds", 10))):
        s = split(protocol, fold=fold)
        train, val, test = speakers_of(s.train), speakers_of(s.val), speakers_of(s.test)
        assert not (train | val) & test, f"fold {fold}: a test speaker is also trained on"
        assert not train & val, f"fold {fold}: a validation speaker is also trained on"
        assert train | val | test == set(SPEAKERS)


def test_utterance_protocols_mix_speakers_as_the_paper_does():
    s = split("holdout")
    assert speakers_of(s.train) == speakers_of(s.test) == set(SPEAKERS)
    assert not s.speaker_independent


def test_holdout_is_stratified():
    s = split("holdout", test_size=0.3)
    per_class = Counter(LABELS)
    test_counts = Counter(LABELS[i] for i in s.test)
    for emotion in EMOTIONS:
        assert abs(test_counts[emotion] - 0.3 * per_class[emotion]) <= 1
    assert abs(len(s.test) - 0.3 * len(LABELS)) <= 1
    val_counts = Counter(LABELS[i] for i in s.val)
    assert set(val_counts) == set(EMOTIONS)  # validation is stratified too


def test_kfold_test_folds_partition_the_data():
    seen: list[int] = []
    for fold in range(10):
        s = split("kfold", fold=fold)
        assert s.n_folds == 10 and s.fold == fold
        counts = Counter(LABELS[i] for i in s.test)
        assert max(counts.values()) - min(counts.values()) <= 1  # stratified
        seen += s.test
    assert sorted(seen) == list(range(len(LABELS)))  # every row tested exactly once


def test_speaker_kfold_test_folds_partition_the_speakers():
    seen: list[str] = []
    for fold in range(4):
        seen += sorted(speakers_of(split("speaker_kfold", fold=fold).test))
    assert sorted(seen) == SPEAKERS


def test_loso_holds_out_one_speaker_per_fold_in_sorted_order():
    assert num_folds("loso", GROUPS, 10) == len(SPEAKERS)
    for fold, speaker in enumerate(sorted(SPEAKERS)):
        s = split("loso", fold=fold)
        assert s.n_folds == 12
        assert speakers_of(s.test) == {speaker}
        assert len(s.test) == GROUPS.count(speaker)


def test_num_folds_per_protocol():
    assert num_folds("holdout", GROUPS, 10) == 1
    assert num_folds("speaker_holdout", GROUPS, 10) == 1
    assert num_folds("kfold", GROUPS, 7) == 7
    assert num_folds("speaker_kfold", GROUPS, 4) == 4
    assert num_folds("loso", GROUPS, 10) == 12


def test_groups_can_be_sessions_or_any_strings():
    # IEMOCAP style: leave one session out, two speakers per session
    sessions = [f"Ses0{(SPEAKERS.index(g)) // 2 + 1}" for g in GROUPS]
    assert num_folds("loso", sessions, 10) == 6
    for fold in range(6):
        s = make_split(LABELS, sessions, "loso", fold=fold)
        assert speakers_of(s.test, sessions) == {f"Ses0{fold + 1}"}
        assert not speakers_of(s.train, sessions) & speakers_of(s.val, sessions)
        assert speakers_of(s.test, GROUPS) == set(SPEAKERS[2 * fold : 2 * fold + 2])


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"protocol": "random"}, "data.split"),
        ({"protocol": "kfold", "fold": 10}, "data.fold"),
        ({"protocol": "kfold", "fold": -1}, "data.fold"),
        ({"protocol": "loso", "fold": 12}, "data.fold"),
        ({"protocol": "holdout", "fold": 3}, "data.fold"),
        ({"protocol": "speaker_holdout", "fold": 1}, "data.fold"),
        ({"protocol": "kfold", "n_folds": 1}, "data.n_folds"),
        ({"protocol": "speaker_kfold", "n_folds": 13}, "data.n_folds"),
        ({"protocol": "holdout", "test_size": 0.0}, "data.test_size"),
        ({"protocol": "holdout", "test_size": 1.5}, "data.test_size"),
        ({"protocol": "holdout", "val_size": 1.0}, "data.val_size"),
    ],
)
def test_bad_settings_are_named(kwargs, setting):
    with pytest.raises(ValueError, match=setting.replace(".", r"\.")):
        make_split(LABELS, GROUPS, **kwargs)


@pytest.mark.parametrize("protocol", ["holdout", "kfold", "speaker_folds"])
def test_no_validation_part_leaves_the_whole_training_part_training(protocol):
    fold = 0 if protocol == "holdout" else 1
    carved, whole = split(protocol, fold=fold), split(protocol, fold=fold, val_size=0)
    assert whole.val == []
    assert whole.test == carved.test  # the test part does not move
    assert sorted(whole.train) == sorted(carved.train + carved.val)


def test_a_single_training_speaker_cannot_give_a_speaker_disjoint_validation():
    two = [g for g in GROUPS if g in ("actor01", "actor02")]
    labels = LABELS[: len(two)]
    with pytest.raises(ValueError, match="two speakers"):
        make_split(labels, two, "loso", fold=0)


def test_too_small_a_validation_part_names_val_size():
    # 96 rows: 67 train, 10% of them is 7 utterances, fewer than the 8 classes to stratify
    with pytest.raises(ValueError, match=r"data\.val_size"):
        make_split(LABELS[::6], GROUPS[::6], "holdout", val_size=0.1)


def test_to_json_records_paths_speakers_and_independence(tmp_path):
    paths = [f"/corpus/{g}/{i:03d}.wav" for i, g in enumerate(GROUPS)]
    s = split("speaker_holdout", seed=7)
    target = tmp_path / "run" / "split.json"
    s.to_json(target, paths, GROUPS)
    record = json.loads(target.read_text())
    assert record["protocol"] == "speaker_holdout" and record["seed"] == 7
    assert record["speaker_independent"] is True
    for part in ("train", "val", "test"):
        assert record[part] == getattr(s, part)
        assert record[f"{part}_paths"] == [paths[i] for i in getattr(s, part)]
        assert record[f"{part}_speakers"] == sorted(speakers_of(getattr(s, part)))
    assert not set(record["test_speakers"]) & set(record["train_speakers"])
    split("holdout").to_json(target, paths, GROUPS)
    assert json.loads(target.read_text())["speaker_independent"] is False


def test_fixed_speaker_folds_test_exactly_the_configured_speakers() -> None:
    for fold, speakers in enumerate(FIXED_FOLDS):
        s = split("speaker_folds", fold=fold)
        assert speakers_of(s.test) == {f"actor{n:02d}" for n in speakers}
        assert not speakers_of(s.train + s.val) & speakers_of(s.test)
        assert not speakers_of(s.train) & speakers_of(s.val)
    tests = [set(split("speaker_folds", fold=k).test) for k in range(len(FIXED_FOLDS))]
    assert set().union(*tests) == set(range(len(LABELS)))
    assert sum(map(len, tests)) == len(LABELS)  # every utterance is tested exactly once
    assert num_folds("speaker_folds", GROUPS, 10, FIXED_FOLDS) == 4


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        (None, "needs data.speaker_folds"),
        ([[1, 2], [2, 3]], "speaker 2 is in folds 0 and 1"),
        ([[1, 99]], "speaker 99 .fold 0. is not in the corpus"),
        ([[1], []], "fold 1 is empty"),
    ],
)
def test_bad_speaker_folds_name_the_setting(folds, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_split(LABELS, GROUPS, "speaker_folds", speaker_folds=folds)


def test_speaker_folds_accept_names_or_numbers() -> None:
    by_number = make_split(LABELS, GROUPS, "speaker_folds", speaker_folds=[[1, 2], [3]])
    by_name = make_split(LABELS, GROUPS, "speaker_folds", speaker_folds=[["actor01", "02"], [3]])
    assert by_number == by_name


def test_speaker_names_sharing_a_number_stay_apart() -> None:
    """f1 and m1 are two speakers: a number only stands for a name when it is unambiguous."""
    groups = [s for s in ("f1", "m1", "f2", "m2") for _ in range(16)]
    labels = [str(i % 8) for i in range(len(groups))]
    s = make_split(labels, groups, "speaker_folds", speaker_folds=[["f1"], ["m1"]], val_size=0.3)
    assert speakers_of(s.test, groups) == {"f1"}
    with pytest.raises(ValueError, match="ambiguous"):
        make_split(labels, groups, "speaker_folds", speaker_folds=[[1]])


@pytest.mark.parametrize("protocol", SPEAKER_PROTOCOLS)
def test_speaker_protocols_on_one_speaker_say_a_speaker_column_is_missing(protocol) -> None:
    with pytest.raises(ValueError, match=rf"{protocol} needs .* several speakers; .*1 \(unknown"):
        make_split(LABELS, ["unknown"] * len(LABELS), protocol, **OPTIONS.get(protocol, {}))
