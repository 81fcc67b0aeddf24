"""Compiling the embedding network (torch.compile) so that one compiled graph serves every
batch size and utterance length.

`compile(dynamic=True)` alone is not enough with torch 2.14: TorchInductor's lowering of
`aten.convolution_backward` turns the gradient's strides into integers
(`guard_int_seq(layout_dx.stride)` in `torch/_inductor/kernel/conv.py`), and the stride of a
[B, C, T] gradient is T. Every new length in training then recompiles the network (about 1.5
minutes on a CPU) until dynamo's recompile limit (8) leaves later lengths eager: whole-utterance
training ran at under half the speed of fixed crops. On a CPU that lowering finds no kernel of
its own and calls ATen's convolution_backward anyway, so it is replaced here by the plain ATen
fallback, which keeps T symbolic and computes the same values. Written by hand because no
torch setting turns the specialisation off.
"""

from __future__ import annotations

import torch
from torch import nn

#: Added to torch.compile's cache keys while the convolution backward lowering is replaced.
CACHE_TAG = "lightning-ser:aten-convolution-backward"


def require_cpp_compiler() -> None:
    """Refuse `compile` at construction, in one line, where TorchInductor finds no C++ compiler.

    Without one, torch.compile would fail only at the first training step, deep in a traceback.
    The search is TorchInductor's own (its `cxx` setting: the CXX variable, then g++ on Linux,
    clang++ on macOS, cl on Windows); a torch without that search is not checked here.
    """
    try:
        from torch._inductor import cpp_builder, exc
    except ImportError:
        return
    try:
        cpp_builder.get_cpp_compiler()
    except (exc.InvalidCxxCompiler, RuntimeError, OSError):
        raise ValueError(
            "model.compile: true needs a C++ compiler on PATH (g++ or clang++, or one named by "
            "CXX): install one or pass --model.compile false"
        ) from None


def keep_lengths_symbolic_in_convolution_backward() -> None:
    """Lower `aten.convolution_backward` to ATen's kernel (TorchInductor's fallback) instead of
    TorchInductor's own lowering, which specialises the time dimension (module docstring).
    Idempotent; a torch without these internals is left as it is."""
    try:
        from torch._inductor import lowering
    except ImportError:
        return
    op = torch.ops.aten.convolution_backward.default
    fallback = getattr(lowering, "fallback_handler", None)
    if fallback is None or getattr(lowering.lowerings.get(op), "_lightning_ser", False):
        return
    lowering.lowerings.pop(op, None)
    handler = lowering.register_lowering(op, type_promotion_kind=None)(fallback(op))
    handler._lightning_ser = True
    # Graphs compiled before the change sit in TorchInductor's on-disk caches with the length
    # fixed in their guards, under keys that do not see the lowering: tag the keys (torch's
    # setting "to break caches") so those graphs are not loaded again.
    config = torch.compiler.config
    config.cache_key_tag = ",".join(filter(None, (config.cache_key_tag, CACHE_TAG)))


def compile_for_any_length(net: nn.Module) -> None:
    """Compile `net` in place for batches of any size and length (one graph per mode)."""
    require_cpp_compiler()
    keep_lengths_symbolic_in_convolution_backward()
    net.compile(dynamic=True)
