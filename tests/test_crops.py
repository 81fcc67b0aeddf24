"""Evaluation over crops (`data.eval_crops`, linked to `model.eval_crops`): where the windows
fall, how they are averaged, and that the training module, Phase III inference and the CLI agree
on them."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from lightning_ser.data.features import FeatureConfig
from lightning_ser.inference import load_checkpoint
from lightning_ser.models.crops import crop_mean, evenly_spaced_crops
from lightning_ser.module import CHECKPOINT_FORMAT, EmotionEmbeddingModule


def padded_batch(lengths: list[int], features: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame t of utterance b holds the value 100 * b + t + 1 in every feature; padding is 0."""
    x = torch.zeros(len(lengths), max(lengths), features)
    for b, n in enumerate(lengths):
        x[b, :n] = (100 * b + torch.arange(n) + 1.0)[:, None]
    return x, torch.tensor(lengths)


def test_crops_run_from_the_first_frame_to_the_last() -> None:
    x, lengths = padded_batch([25, 40])
    crops, crop_lengths = evenly_spaced_crops(x, lengths, crops=3, window=10)
    assert crops.shape == (6, 10, 4) and crop_lengths.tolist() == [10] * 6
    starts = crops[:, 0, 0].tolist()
    assert starts == [1, 8, 16, 101, 116, 131]  # 25 frames: starts 0, 7, 15; 40: 0, 15, 30
    for row in range(6):  # consecutive frames
        assert torch.equal(crops[row, :, 0], crops[row, 0, 0] + torch.arange(10.0))


def test_one_crop_is_the_middle_window() -> None:
    x, lengths = padded_batch([30])
    crops, _ = evenly_spaced_crops(x, lengths, crops=1, window=10)
    assert crops[0, :, 0].tolist() == list(range(11, 21))  # frames 10..19


def test_a_short_utterance_gives_copies_of_itself_zero_padded() -> None:
    x, lengths = padded_batch([4, 12])
    crops, crop_lengths = evenly_spaced_crops(x, lengths, crops=2, window=10)
    assert crop_lengths.tolist() == [4, 4, 10, 10]
    for row in (0, 1):
        assert crops[row, :, 0].tolist() == [1, 2, 3, 4] + [0] * 6


def test_crop_mean_is_the_mean_direction_and_the_mean_logits() -> None:
    x, lengths = padded_batch([25, 13], features=3)
    calls = []

    def embed(batch, batch_lengths):  # a stand-in network: per-row sums of valid frames
        calls.append(batch.shape)
        valid = torch.arange(batch.shape[1])[None, :] < batch_lengths[:, None]
        raw = (batch * valid[..., None]).sum(1) * torch.tensor([1.0, -0.5, 0.25])
        return F.normalize(raw, dim=-1), raw[:, :2]

    emb, logits = crop_mean(embed, x, lengths, crops=4, window=6)
    assert calls == [(8, 6, 3)]  # one call for all crops of the batch
    crops, crop_lengths = evenly_spaced_crops(x, lengths, 4, 6)
    for b in range(2):
        each = [embed(crops[b * 4 + k][None], crop_lengths[b * 4 + k][None]) for k in range(4)]
        direction = F.normalize(torch.cat([e for e, _ in each]).mean(0), dim=0)
        torch.testing.assert_close(emb[b], direction)
        torch.testing.assert_close(logits[b], torch.cat([lg for _, lg in each]).mean(0))
    assert crop_mean(embed, x, lengths, crops=0, window=6)[0].shape == (2, 3)
    assert calls[-1] == x.shape  # no crops: the batch as given


def make_module(eval_crops: int, crop_frames: int) -> EmotionEmbeddingModule:
    torch.manual_seed(0)
    module = EmotionEmbeddingModule(
        num_classes=3,
        channels=8,
        layers=6,
        embedding_dim=16,
        feature_config=asdict(FeatureConfig()),
        eval_crops=eval_crops,
        crop_frames=crop_frames,
    )
    with torch.no_grad():
        module.embedder.feature_std.copy_(torch.rand(39) + 0.5)
        module.class_embeddings.copy_(F.normalize(torch.randn(3, 16), dim=1))
    return module


def test_crops_longer_than_every_utterance_change_nothing() -> None:
    x, lengths = torch.randn(3, 50, 39), torch.tensor([50, 31, 12])
    whole = make_module(eval_crops=0, crop_frames=10).eval()
    cropped = make_module(eval_crops=3, crop_frames=64).eval()
    with torch.no_grad():
        for a, b in zip(whole(x, lengths), cropped(x, lengths), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_training_ignores_eval_crops() -> None:
    x, lengths = torch.randn(6, 10, 39), torch.full((6,), 10)
    plain = make_module(eval_crops=0, crop_frames=10).train()
    cropped = make_module(eval_crops=4, crop_frames=3).train()
    torch.testing.assert_close(plain(x, lengths)[0], cropped(x, lengths)[0])


def test_invalid_crop_settings_are_named() -> None:
    with pytest.raises(ValueError, match="model.eval_crops"):
        make_module(eval_crops=-1, crop_frames=10)


def test_inference_uses_the_checkpoints_crops(tmp_path) -> None:
    module = make_module(eval_crops=3, crop_frames=8).eval()
    path = tmp_path / "crops.ckpt"
    torch.save(
        {
            "epoch": 0,
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
            "lightning_ser_format": CHECKPOINT_FORMAT,
        },
        path,
    )
    frames = [torch.randn(40, 39), torch.randn(17, 39)]
    with torch.no_grad():
        expected = [module(f[None], torch.tensor([len(f)]))[0][0] for f in frames]
    embedded = load_checkpoint(path).embed(frames)
    torch.testing.assert_close(embedded, torch.stack(expected), atol=1e-5, rtol=1e-5)
