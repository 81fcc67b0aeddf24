"""Phase III inference: loading checkpoints safely, predictions, embeddings, exports, the CLI."""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lightning_ser import inference
from lightning_ser.data.features import FeatureConfig, FeatureExtractor
from lightning_ser.embeddings import least_angle_predict
from lightning_ser.inference import (
    CheckpointError,
    EmotionModel,
    Prediction,
    embed_files,
    export_onnx,
    export_torchscript,
    find_audio,
    load_checkpoint,
    predictions_to_json,
    write_predictions,
)
from lightning_ser.inference_cli import embed_command, export_command, predict_command
from lightning_ser.module import CHECKPOINT_FORMAT, EmotionEmbeddingModule

CLASSES = ["neutral", "happy", "sad"]


def make_module(seed: int = 0) -> EmotionEmbeddingModule:
    """A tiny untrained module with non-trivial buffers and BatchNorm statistics."""
    torch.manual_seed(seed)
    module = EmotionEmbeddingModule(
        num_classes=3,
        class_names=CLASSES,
        channels=8,
        layers=6,
        embedding_dim=16,
        feature_config=asdict(FeatureConfig()),
    )
    with torch.no_grad():
        module.embedder.feature_mean.copy_(torch.randn(39) * 5)
        module.embedder.feature_std.copy_(torch.rand(39) * 20 + 1)
        module.class_embeddings.copy_(torch.nn.functional.normalize(torch.randn(3, 16), dim=1))
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
    return module.eval()


def save_ckpt(module: EmotionEmbeddingModule, path: Path, **extra) -> Path:
    """Save the module the way Lightning's checkpoint holds it (the parts inference reads)."""
    ckpt = {
        "epoch": 0,
        "hyper_parameters": dict(module.hparams),
        "state_dict": module.state_dict(),
        "lightning_ser_format": CHECKPOINT_FORMAT,
        "embedder": dict(module.embedder.config),
    }
    ckpt.update(extra)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_ckpt(make_module(), tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture(scope="module")
def model(ckpt: Path) -> EmotionModel:
    return load_checkpoint(ckpt)


@pytest.fixture
def clips(tmp_path: Path, tone_writer) -> dict[str, Path]:
    """Good clips (nested folder, two formats, a RAVDESS name) and three broken files."""
    root = tmp_path / "clips"
    good = {
        "a": tone_writer(root / "a.wav", seconds=0.5, freq=300),
        "b": tone_writer(root / "sub" / "03-01-03-01-01-01-01.flac", seconds=0.7, freq=900),
        "c": tone_writer(root / "sub" / "c.wav", seconds=0.4, rate=8000, freq=500, kind="chirp"),
    }
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("this is not audio\n")
    sf.write(str(root / "silent.wav"), np.zeros(8000, dtype=np.float32), 16000)
    (root / "notes.txt").write_text("ignored: not an audio extension\n")
    return {**good, "root": root}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------------- loading
def test_load_checkpoint_builds_eval_model(model: EmotionModel) -> None:
    assert model.class_names == CLASSES
    assert not model.embedder.training and not model.embedder.net.training
    assert model.features == FeatureConfig()
    assert model.class_embeddings.shape == (3, 16)
    assert model.n_features == 39 and model.embedding_dim == 16
    assert inference.CHECKPOINT_FORMAT == CHECKPOINT_FORMAT


def test_loading_uses_weights_only(ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        assert kwargs.get("weights_only") is True
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(ckpt)
    assert calls == [True]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "checkpoint not found"),
        ("text", "not a PyTorch checkpoint"),
        ("truncated", "not a PyTorch checkpoint"),
        ("tensor", "not a lightning-ser checkpoint"),
        ("no_format", "no 'lightning_ser_format'"),
        ("format7", "made by another version of lightning-ser (format 7, this version reads 1, 2)"),
        ("pickled_code", "holds objects that would run code when loaded (pathlib.PosixPath)"),
        ("no_class_embeddings", "no class embeddings"),
        ("incomplete", "missing feature_mean"),
        ("torchscript", "is a TorchScript export (`lightning-ser export`), not a training"),
    ],
)
def test_bad_checkpoints_raise_checkpoint_error(tmp_path: Path, case: str, expected: str) -> None:
    path = tmp_path / f"{case}.ckpt"
    module = make_module()
    if case == "text":
        path.write_text("not a checkpoint")
    elif case == "truncated":
        save_ckpt(module, path)
        path.write_bytes(path.read_bytes()[:2000])
    elif case == "tensor":
        torch.save(torch.zeros(3), path)
    elif case == "no_format":
        torch.save({"state_dict": module.state_dict(), "hyper_parameters": {}}, path)
    elif case == "format7":
        save_ckpt(module, path, lightning_ser_format=7)
    elif case == "pickled_code":
        save_ckpt(module, path, extra=Path("/tmp"))  # a class weights_only refuses
    elif case == "no_class_embeddings":
        module.class_embeddings.zero_()
        save_ckpt(module, path)
    elif case == "incomplete":
        save_ckpt(module, path)
        ck = torch.load(path, weights_only=True)
        del ck["state_dict"]["embedder.feature_mean"]
        torch.save(ck, path)
    elif case == "torchscript":
        save_ckpt(module, tmp_path / "trained.ckpt")
        export_torchscript(load_checkpoint(tmp_path / "trained.ckpt"), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


# ---------------------------------------------------------------------------- predictions
def test_predictions_match_the_training_module(model: EmotionModel, ckpt: Path, clips) -> None:
    paths = [clips["a"], clips["b"], clips["c"]]
    preds = model.predict_files(paths)

    module = make_module(seed=123)  # other weights, replaced by the checkpoint's
    module.load_state_dict(torch.load(ckpt, weights_only=True)["state_dict"])
    module.eval()
    extractor = FeatureExtractor(FeatureConfig())
    feats = [extractor.from_file(p) for p in paths]
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    with torch.no_grad():
        emb, logits = module(x, lengths)
    pred, angles = least_angle_predict(emb, module.class_embeddings)

    torch.testing.assert_close(model.embed(feats), emb, atol=1e-5, rtol=1e-5)
    for k, p in enumerate(preds):
        assert p.status == "ok" and p.error is None
        assert p.emotion == CLASSES[int(pred[k])]
        assert p.softmax_emotion == CLASSES[int(logits[k].argmax())]
        assert p.frames == lengths[k]
        np.testing.assert_allclose(list(p.angles.values()), angles[k].numpy(), atol=1e-3)


def test_angles_and_cosine_are_consistent(model: EmotionModel, clips) -> None:
    for p in model.predict_files([clips["a"], clips["b"], clips["c"]]):
        assert list(p.angles) == CLASSES
        least = min(p.angles, key=p.angles.get)
        assert p.emotion == least
        assert p.cosine == pytest.approx(math.cos(math.radians(p.angles[least])), abs=1e-5)
        assert p.least_angle == p.angles[least]


def test_padding_and_batch_size_do_not_change_embeddings(model: EmotionModel) -> None:
    gen = torch.Generator().manual_seed(1)
    frames = [torch.randn(t, 39, generator=gen) * 10 for t in (5, 37, 90, 12)]
    together = model.embed(frames)
    alone = torch.cat([model.embed([f]) for f in frames])
    tiny_batches = model.embed(frames, batch_frames=40)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tiny_batches, alone, atol=1e-5, rtol=1e-5)
    assert torch.allclose(together.norm(dim=1), torch.ones(4))
    assert model.embed([]).shape == (0, 16)
    with pytest.raises(ValueError, match="expected features of shape"):
        model.embed([torch.zeros(4, 13)])


def test_length_batches_bound_the_padded_frames() -> None:
    lengths = [3, 50, 7, 7, 120, 20, 1]
    groups = inference._length_batches(lengths, 60)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        assert len(g) == 1 or len(g) * max(lengths[i] for i in g) <= 60


def test_broken_files_become_error_rows(model: EmotionModel, clips) -> None:
    root = clips["root"]
    files = find_audio([root])
    assert {p.name for p in files} == {
        "a.wav", "03-01-03-01-01-01-01.flac", "c.wav", "empty.wav", "text.wav", "silent.wav"
    }  # fmt: skip
    preds = {Path(p.path).name: p for p in model.predict_files(files, batch_frames=50)}
    for name in ("empty.wav", "text.wav", "silent.wav"):
        assert preds[name].status == "error" and preds[name].emotion is None
        assert preds[name].error
    assert "silent" in preds["silent.wav"].error
    assert "decode" in preds["text.wav"].error
    for name in ("a.wav", "c.wav"):
        assert preds[name].status == "ok" and preds[name].duration_s > 0


def test_find_audio_mixes_files_and_folders(clips, tmp_path: Path) -> None:
    odd = tmp_path / "clip.xyz"
    odd.write_bytes(b"")
    found = find_audio([clips["a"], clips["root"] / "sub", odd, clips["a"]])
    assert found[0] == clips["a"] and found[-1] == odd and len(found) == 4
    assert find_audio([tmp_path / "nowhere"]) == [tmp_path / "nowhere"]  # an error row later


def test_write_predictions_csv_and_json(tmp_path: Path, model: EmotionModel, clips) -> None:
    preds = model.predict_files([clips["a"], clips["root"] / "text.wav"])
    out = write_predictions(preds, tmp_path / "out" / "p.csv")
    rows = read_csv(out)
    assert list(rows[0]) == [
        "path", "status", "emotion", "cosine", "softmax_emotion",
        *(f"angle_{c}" for c in CLASSES), "frames", "duration_s", "error",
    ]  # fmt: skip
    assert rows[0]["status"] == "ok" and float(rows[0][f"angle_{rows[0]['emotion']}"]) >= 0
    assert rows[1]["status"] == "error" and rows[1]["error"] and rows[1]["emotion"] == ""
    assert not list(out.parent.glob(".*.tmp"))
    data = json.loads(json.dumps(predictions_to_json(preds)))
    assert data[0]["angles"].keys() == set(CLASSES) and data[1]["error"]
    errors_only = write_predictions([Prediction("x.wav", "error", error="bad")], tmp_path / "e.csv")
    assert read_csv(errors_only)[0]["error"] == "bad"
    labelled = write_predictions(preds, tmp_path / "l.csv", labels=["happy", ""])
    assert [row["label"] for row in read_csv(labelled)] == ["happy", ""]
    with pytest.raises(ValueError, match="1 labels for 2 predictions"):
        write_predictions(preds, tmp_path / "l.csv", labels=["happy"])


def test_a_second_embed_keeps_the_first_ones_files(model: EmotionModel, clips, tmp_path) -> None:
    out = tmp_path / "emb"
    embed_files(model, find_audio([clips["root"]]), out)
    first = (out / "index.csv").read_text()
    result = embed_files(model, [clips["a"]], out)
    assert (out / "index.previous-1.csv").read_text() == first
    assert np.load(out / "embeddings.previous-1.npy").shape == (3, 16)
    assert np.load(out / "embeddings.npy").shape == (1, 16)
    assert result["kept"] == [out / "embeddings.previous-1.npy", out / "index.previous-1.csv"]


def test_embed_files_writes_npy_and_index(model: EmotionModel, clips, tmp_path: Path) -> None:
    files = find_audio([clips["root"]])
    result = embed_files(model, files, tmp_path / "emb")
    emb = np.load(tmp_path / "emb" / "embeddings.npy")
    assert emb.shape == (3, 16) and emb.dtype == np.float32
    rows = read_csv(tmp_path / "emb" / "index.csv")
    assert list(rows[0]) == ["row", "path", "label", "status", "error"]
    assert (result["ok"], result["errors"]) == (3, 3)
    ok = [r for r in rows if r["status"] == "ok"]
    assert [int(r["row"]) for r in ok] == [0, 1, 2]
    labels = {Path(r["path"]).name: r["label"] for r in rows}
    assert labels["03-01-03-01-01-01-01.flac"] == "happy" and labels["a.wav"] == ""
    row_b = next(r for r in ok if r["path"].endswith(".flac"))
    np.testing.assert_allclose(
        emb[int(row_b["row"])], model.embed([model.features_of(clips["b"])[0]])[0], atol=1e-5
    )


# ---------------------------------------------------------------------------- exports
def test_torchscript_and_onnx_exports_agree(model: EmotionModel, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    ts_path = export_torchscript(model, tmp_path / "e.pt")
    onnx_path = export_onnx(model, tmp_path / "e.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still works
        scripted = torch.jit.load(str(ts_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(2)
    for frames in (17, 131):
        x = (
            torch.randn(2, frames, 39, generator=gen) * model.embedder.feature_std
            + model.embedder.feature_mean
        )
        expected = model.embed(list(x))
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), expected, atol=1e-4, rtol=1e-4)
        (got,) = session.run(["embedding"], {"frames": x.numpy()})
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)


# ---------------------------------------------------------------------------- CLI
def test_predict_command_writes_csv_and_table(
    ckpt: Path, clips, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status = predict_command(["--ckpt", str(ckpt), str(clips["root"])])
    out = capsys.readouterr().out
    assert status == 0
    assert out.strip().splitlines()[-1] == "6 files: 3 ok, 3 errors"
    rows = read_csv(tmp_path / "predictions.csv")
    assert len(rows) == 6
    assert {r["status"] for r in rows if Path(r["path"]).stem in ("empty", "text", "silent")} == {
        "error"
    }
    assert all(r["error"] for r in rows if r["status"] == "error")
    assert sum(r["status"] == "ok" for r in rows) == 3


def test_predict_command_json(ckpt: Path, clips, tmp_path: Path, capsys) -> None:
    out_csv = tmp_path / "p.csv"
    status = predict_command(["--ckpt", str(ckpt), str(clips["a"]), "--json", "-o", str(out_csv)])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert status == 0 and len(data) == 1 and data[0]["status"] == "ok"
    assert "1 files: 1 ok, 0 errors" in captured.err
    assert len(read_csv(out_csv)) == 1


def test_predict_command_all_broken_exits_1(
    ckpt: Path, clips, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = clips["root"]
    broken = [str(root / n) for n in ("empty.wav", "text.wav", "silent.wav")]
    assert predict_command(["--ckpt", str(ckpt), *broken, "--json"]) == 1
    assert not (tmp_path / "predictions.csv").exists()  # --json without -o writes no CSV
    assert "3 files: 0 ok, 3 errors" in capsys.readouterr().err


def test_a_mistyped_input_keeps_the_earlier_predictions_and_embeddings(
    ckpt: Path, clips, tmp_path: Path, capsys
) -> None:
    out_csv, out_dir = tmp_path / "p.csv", tmp_path / "emb"
    typo = str(clips["root"]) + "_typo"
    assert predict_command(["--ckpt", str(ckpt), str(clips["root"]), "-o", str(out_csv)]) == 0
    assert embed_command(["--ckpt", str(ckpt), str(clips["root"]), "-o", str(out_dir)]) == 0
    before = (out_csv.read_bytes(), (out_dir / "embeddings.npy").read_bytes())
    capsys.readouterr()
    assert predict_command(["--ckpt", str(ckpt), typo, "-o", str(out_csv)]) == 1
    assert f"1 files: 0 ok, 1 errors; {out_csv} not written" in capsys.readouterr().out
    assert embed_command(["--ckpt", str(ckpt), typo, "-o", str(out_dir)]) == 1
    printed = capsys.readouterr().out
    assert f"{typo}: " in printed and f"nothing written to {out_dir}" in printed
    assert (out_csv.read_bytes(), (out_dir / "embeddings.npy").read_bytes()) == before


def test_predict_says_that_a_fixed_length_model_judges_the_central_seconds(
    clips, tmp_path: Path, capsys
) -> None:
    module = make_module()
    module.hparams["feature_config"] = asdict(FeatureConfig(fixed_seconds=4.99))
    fixed = save_ckpt(module, tmp_path / "fixed.ckpt")
    for command, out in ((predict_command, "p.csv"), (embed_command, "embeddings")):
        assert command(["--ckpt", str(fixed), str(clips["a"]), "-o", str(tmp_path / out)]) == 0
        assert "longer file is judged by its central 4.99 s only" in capsys.readouterr().err


def test_predict_of_a_model_on_whole_utterances_has_no_notes(ckpt: Path, clips, capsys) -> None:
    assert predict_command(["--ckpt", str(ckpt), str(clips["a"]), "--json"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_predict_replaces_its_own_csv_but_no_other_file(ckpt: Path, clips, tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    for _ in range(2):  # a predictions CSV is replaced
        assert predict_command(["--ckpt", str(ckpt), str(clips["a"]), "-o", str(out)]) == 0
    log = tmp_path / "metrics.csv"
    log.write_text("epoch,train/loss\n0,1.0\n")
    with pytest.raises(ValueError, match="metrics.csv exists and holds no predictions"):
        predict_command(["--ckpt", str(ckpt), str(clips["a"]), "-o", str(log)])
    assert log.read_text() == "epoch,train/loss\n0,1.0\n"


def test_an_output_of_the_wrong_kind_ends_in_one_line(ckpt: Path, clips, tmp_path: Path) -> None:
    a_file = tmp_path / "taken.csv"
    a_file.write_text("kept")
    for command, out in ((predict_command, tmp_path), (embed_command, a_file)):
        with pytest.raises(ValueError) as info:
            command(["--ckpt", str(ckpt), str(clips["a"]), "-o", str(out)])
        assert str(out) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="taken.csv is a file; name a folder"):
        export_command(["--ckpt", str(ckpt), "-o", str(a_file)])
    assert a_file.read_text() == "kept"


@pytest.mark.parametrize("problem", ["missing_ckpt", "bad_ckpt"])
def test_cli_user_errors_end_in_one_line(problem: str, ckpt: Path, clips, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_text("nope")
    ck = {"missing_ckpt": tmp_path / "none.ckpt", "bad_ckpt": bad}.get(problem, ckpt)
    inputs = tmp_path / "no_such_dir" if problem == "missing_input" else clips["a"]
    for command in (predict_command, embed_command):
        with pytest.raises(ValueError) as info:
            command(["--ckpt", str(ck), str(inputs), "-o", str(tmp_path / "o")])
        message = str(info.value)
        assert "\n" not in message
        assert str(inputs if problem == "missing_input" else ck) in message


def test_embed_and_export_commands(ckpt: Path, model: EmotionModel, clips, tmp_path: Path) -> None:
    assert embed_command(["--ckpt", str(ckpt), str(clips["root"]), "-o", str(tmp_path / "e")]) == 0
    assert np.load(tmp_path / "e" / "embeddings.npy").shape == (3, 16)
    out = tmp_path / "x"
    assert export_command(["--ckpt", str(ckpt), "-o", str(out), "--format", "torchscript"]) == 0
    assert (out / "embedder.pt").exists() and not (out / "embedder.onnx").exists()
    meta = json.loads((out / "export.json").read_text())
    assert meta["class_names"] == CLASSES
    np.testing.assert_allclose(meta["class_embeddings"], model.class_embeddings.numpy())
    np.testing.assert_allclose(meta["mean"], model.embedder.feature_mean.numpy())
    np.testing.assert_allclose(meta["std"], model.embedder.feature_std.numpy())
    assert FeatureConfig(**meta["feature_config"]) == model.features
    assert meta["files"] == {"torchscript": "embedder.pt"}
    pytest.importorskip("onnx")
    assert export_command(["--ckpt", str(ckpt), "-o", str(out), "--format", "onnx"]) == 0
    assert not (out / "embedder.pt").exists()  # the folder holds what export.json lists
    assert json.loads((out / "export.json").read_text())["files"] == {"onnx": "embedder.onnx"}


def test_format_1_checkpoints_still_load(tmp_path: Path) -> None:
    """Before the Embedder (format 1) the weights sat at the top of the state dict."""
    module = make_module()
    old_state = {k.removeprefix("embedder."): v for k, v in module.state_dict().items()}
    path = tmp_path / "old.ckpt"
    torch.save(
        {"hyper_parameters": dict(module.hparams), "state_dict": old_state,
         "lightning_ser_format": 1},
        path,
    )  # fmt: skip
    model = load_checkpoint(path)
    x = torch.randn(1, 40, 39)
    with torch.no_grad():
        expected, _ = module(x)
    torch.testing.assert_close(model.embed([x[0]]), expected)


def test_inference_rebuilds_every_backbone_and_pooling_from_the_checkpoint(tmp_path: Path) -> None:
    for backbone, pooling in (("tim", "mean"), ("resnet", "attentive_stats"), ("gru", "mean")):
        torch.manual_seed(0)
        module = EmotionEmbeddingModule(
            num_classes=3, class_names=CLASSES, backbone=backbone, layers=6, channels=8,
            kernel_size=2 if backbone == "tim" else 3, pooling=pooling, embedding_dim=16,
            feature_config=asdict(FeatureConfig()),
        ).eval()  # fmt: skip
        module.class_embeddings.copy_(torch.nn.functional.normalize(torch.randn(3, 16), dim=1))
        model = load_checkpoint(save_ckpt(module, tmp_path / f"{backbone}.ckpt"))
        x = torch.randn(1, 33, 39)
        with torch.no_grad():
            expected, _ = module(x)
        torch.testing.assert_close(model.embed([x[0]]), expected)


def test_a_missing_input_gets_an_error_row_and_the_run_goes_on(
    ckpt: Path, clips, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "p.csv"
    missing = tmp_path / "gone.wav"
    assert (
        predict_command(["--ckpt", str(ckpt), str(missing), str(clips["a"]), "-o", str(out)]) == 0
    )
    rows = read_csv(out)
    assert rows[0]["status"] == "error" and rows[0]["error"] == "input not found"
    assert rows[1]["status"] == "ok"
    assert f"wrote {out.resolve()}" in capsys.readouterr().out


def test_a_truncated_wav_is_flagged(model: EmotionModel, tmp_path: Path, tone_writer) -> None:
    whole = tone_writer(tmp_path / "whole.wav", seconds=1.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    good, truncated = model.predict_files([whole, cut])
    assert good.status == "ok" and good.error is None
    assert truncated.status == "truncated" and "header promises" in truncated.error
    assert truncated.emotion in CLASSES  # still classified, on what the file holds


def test_symlinked_folders_are_followed_once(model: EmotionModel, clips, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "sub").symlink_to(clips["root"] / "sub", target_is_directory=True)
    (linked / "loop").symlink_to(linked, target_is_directory=True)  # must not hang
    found = find_audio([linked])
    assert found and all("sub" in str(p) for p in found)
    assert len({p.resolve() for p in found}) == len(found)
