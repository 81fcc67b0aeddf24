"""Backbones of Table I and the emotion embedding network (lightning_ser.models)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_ser.models import (
    BACKBONES,
    TABLE_I_BACKBONES,
    EmbeddingNet,
    build_backbone,
    masked_mean,
)
from lightning_ser.models.resnet import ResidualBlock, ResNetBackbone

SMALL = dict(channels=16, embedding_dim=8)  # small nets keep the file fast


def make_net(backbone: str, layers: int, **kwargs) -> EmbeddingNet:
    torch.manual_seed(0)
    return EmbeddingNet(backbone, layers, **{**SMALL, **kwargs})


def count_weight_layers(module: nn.Module) -> int:
    """Weight layers as counted in Table I: Conv1d, Linear and every recurrent layer."""
    n = 0
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.Linear):
            n += 1
        elif isinstance(m, nn.RNNBase):
            n += m.num_layers
    return n


def padded_batch(lengths: list[int], features: int = 39) -> tuple[torch.Tensor, torch.Tensor]:
    """Random utterances of the given lengths, right-padded with zeros to the longest."""
    x = torch.zeros(len(lengths), max(lengths), features)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randn(n, features)
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("layers", [6, 11, 15])
def test_embedding_shapes_and_unit_norm(backbone: str, layers: int) -> None:
    net = make_net(backbone, layers).eval()
    for t in (1, 10, 37):
        x = torch.randn(4, t, 39)
        z = net(x)
        assert z.shape == (4, net.embedding_dim)
        x, lengths = padded_batch([t, max(1, t // 2), 1, t])
        e = net.embed(x, lengths)
        assert e.shape == (4, 8)
        torch.testing.assert_close(e.norm(dim=-1), torch.ones(4))


@pytest.mark.parametrize("backbone", TABLE_I_BACKBONES)
@pytest.mark.parametrize("layers", [6, 11, 15])
def test_layer_counting_rule(backbone: str, layers: int) -> None:
    # x in Table I = backbone weight layers + embedding FC + softmax layer
    net = make_net(backbone, layers)
    assert count_weight_layers(net.backbone) == layers - 2
    assert count_weight_layers(net) == layers - 1  # the softmax head lives elsewhere


def test_resnet11_is_the_papers_two_blocks_of_four_convs() -> None:
    backbone = build_backbone("ResNet", 11, channels=16)
    assert isinstance(backbone, ResNetBackbone)
    blocks = [m for m in backbone.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 2
    assert [len(b.convs) for b in blocks] == [4, 4]
    assert backbone.out_features == 16
    # uneven splits put the extra conv first; more blocks are allowed while each gets a conv
    assert build_backbone("resnet", 12).block_sizes == [5, 4]
    assert build_backbone("resnet", 11, blocks=3).block_sizes == [3, 3, 2]


def test_residual_add_comes_before_the_last_activation() -> None:
    block = ResidualBlock(channels=4, n_convs=2, kernel_size=3, negative_slope=0.5, dropout=0.0)
    block.eval()
    h = torch.randn(2, 4, 7)
    first, last = block.convs
    inner = first(h)
    expected = last.act(last.bn(last.conv(inner)) + h)
    torch.testing.assert_close(block(h), expected)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_padding_does_not_change_embeddings(backbone: str) -> None:
    net = make_net(backbone, 6).eval()
    x, lengths = padded_batch([5, 12, 30])
    with torch.no_grad():
        batched = net.embed(x, lengths)
        alone = torch.cat([net.embed(x[i : i + 1, :n]) for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backbone", ["fc", "cnn", "resnet"])
def test_training_batch_norm_ignores_padding(backbone: str) -> None:
    # In training mode BatchNorm statistics come from valid frames only, so extra padding
    # changes neither the outputs nor the running statistics.
    x, lengths = padded_batch([5, 12, 30])
    longer = torch.cat([x, torch.zeros(3, 10, 39)], dim=1)
    net_a, net_b = make_net(backbone, 6).train(), make_net(backbone, 6).train()
    torch.testing.assert_close(net_a(x, lengths), net_b(longer, lengths), atol=1e-5, rtol=0)
    for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_bidirectional_recurrent_backbone_doubles_the_features() -> None:
    backbone = build_backbone("GRU", 6, channels=16, bidirectional=True)
    assert backbone.out_features == 32
    x, lengths = padded_batch([3, 9])
    assert backbone(x, lengths).shape == (2, 9, 32)
    assert torch.all(backbone(x, lengths)[0, 3:] == 0)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_gradients_reach_the_first_layer(backbone: str) -> None:
    net = make_net(backbone, 6).train()
    x, lengths = padded_batch([4, 10, 7])
    loss = net(x, lengths).pow(2).sum()
    loss.backward()
    first = next(p for name, p in net.backbone.named_parameters() if "weight" in name)
    assert first.grad is not None
    assert first.grad.abs().sum() > 0


def test_masked_mean_is_eq1_over_valid_frames() -> None:
    h = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    torch.testing.assert_close(masked_mean(h, torch.tensor([2, 3])), torch.tensor([[2.0], [4.0]]))
    torch.testing.assert_close(masked_mean(h), h.mean(dim=1))


def test_unknown_backbone_is_rejected_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="transformer.*fc, cnn, rnn, lstm, gru, resnet"):
        build_backbone("transformer", 11)


@pytest.mark.parametrize("layers", [1, 65, 0])
def test_layers_out_of_range_is_rejected(layers: int) -> None:
    with pytest.raises(ValueError, match="layers"):
        EmbeddingNet("resnet", layers)


def test_too_many_resnet_blocks_is_rejected() -> None:
    with pytest.raises(ValueError, match="blocks"):
        build_backbone("resnet", 6, blocks=4)  # 3 convs after the stem cannot fill 4 blocks
    with pytest.raises(ValueError, match="layers"):
        build_backbone("lstm", 2)  # no recurrent layer left


def test_shallowest_fc_and_cnn_are_pooling_plus_embedding() -> None:
    net = make_net("fc", 2)
    assert count_weight_layers(net.backbone) == 0
    assert net(torch.randn(2, 5, 39)).shape == (2, 8)


def test_jit_trace_generalises_to_other_lengths() -> None:
    net = EmbeddingNet("resnet", 11, **SMALL).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)  # no shape-specialised branches
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation notice
        traced = torch.jit.trace(net, torch.randn(2, 50, 39))
    x = torch.randn(3, 20, 39)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), net(x))


def test_fixed_seed_is_deterministic() -> None:
    x, lengths = padded_batch([6, 11])
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        net = EmbeddingNet("resnet", 11, dropout=0.1, **SMALL).train()
        outputs.append(net.embed(x, lengths))
    torch.testing.assert_close(outputs[0], outputs[1], atol=0, rtol=0)


def test_default_is_the_papers_resnet11_with_128_dims() -> None:
    net = EmbeddingNet()
    assert net.backbone_name == "resnet" and net.layers == 11
    assert net.in_features == 39 and net.embedding_dim == 128
    assert net.backbone.out_features == 128


def test_masked_batch_norm_under_mixed_precision() -> None:
    """Statistics in float32 (bfloat16 on a CPU stands in for a GPU's float16)."""
    from lightning_ser.models.layers import MaskedBatchNorm1d, sequence_mask

    bn = MaskedBatchNorm1d(4).train()
    x = torch.randn(3, 4, 9) * 300  # x * x would overflow float16
    mask = sequence_mask(torch.tensor([9, 5, 2]), 9).unsqueeze(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bn(x.to(torch.bfloat16), mask)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert bn.running_mean.dtype == torch.float32 and torch.isfinite(bn.running_var).all()
