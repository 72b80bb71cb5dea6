"""Parameter and MAC counts of SR networks.

MACs (multiply-accumulates) are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the
``meta`` device, so no image memory is allocated and a 1280x720 count of a large teacher is
instant. ``FlopCounterMode`` counts 2 FLOPs per MAC of convolutions and matrix products, so
MACs = FLOPs / 2. What is (and is not) counted:

* every convolution, including the two 1x1 ``MeanShift`` convs (9 MACs per pixel each, at LR
  and at output resolution) and RCAN's channel-attention 1x1 convs (on a 1x1 map);
* linear layers (SwinIR's qkv, projections and MLPs) and the attention matrix products
  ``Q K^T`` and ``softmax(.) V`` (reported separately as ``attention_macs``, since published
  transformer counts often leave them out);
* bias additions, ReLU, sigmoid, softmax, LayerNorm, residual additions, scaling, pooling and
  pixel shuffle are **not** counted (pixel shuffle only moves data).

This matches the hand formula ``sum over convs of H_out * W_out * C_in * C_out * k * k`` and the
figures SR papers print as "FLOPs" (which are in fact MACs), e.g. ~316 G for EDSR-baseline x2
at a 1280x720 output.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "Complexity",
    "count_macs",
    "count_macs_by_op",
    "count_params",
    "lr_size",
    "model_complexity",
]

#: The unit label printed by ``facd info``.
MAC_UNIT = "GMACs (what SR papers call FLOPs)"


@dataclass(frozen=True)
class Complexity:
    """Size and cost of a network at one output size (W x H)."""

    params: int
    trainable_params: int
    macs: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    attention_macs: int = 0

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gmacs"] = self.gmacs
        return d


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters); shared tensors are counted once."""
    seen: dict[int, nn.Parameter] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total, trainable


def lr_size(output_size: tuple[int, int], scale: int) -> tuple[int, int]:
    """LR input (W, H) for an output (W, H): floor division by the scale."""
    w, h = output_size
    if w < scale or h < scale:
        raise ValueError(f"output size {w}x{h} is smaller than the scale {scale}")
    return w // scale, h // scale


def count_macs(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> int:
    """MACs of one forward pass on a (1, C, H, W) input, ``input_size`` = (W, H).

    The model is copied to the ``meta`` device (no data is computed); the original is untouched.
    """
    return sum(count_macs_by_op(model, input_size, in_channels).values())


def count_macs_by_op(
    model: nn.Module, input_size: tuple[int, int], in_channels: int = 3
) -> dict[str, int]:
    """MACs by aten operator (``convolution``, ``addmm``/``mm`` for linear layers, ``bmm`` for
    batched matrix products such as attention)."""
    w, h = input_size
    meta_model = copy.deepcopy(model).to("meta") if _has_data(model) else model
    x = torch.empty(1, in_channels, h, w, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_model(x)
    counts = counter.get_flop_counts().get("Global", {})
    return {str(op).removeprefix("aten."): int(n) // 2 for op, n in counts.items()}


def _has_data(model: nn.Module) -> bool:
    return any(t.device.type != "meta" for t in [*model.parameters(), *model.buffers()])


def model_complexity(
    model: nn.Module, scale: int, output_size: tuple[int, int] = (1280, 720)
) -> Complexity:
    """Parameters and MACs of ``model`` producing ``output_size`` (W, H) at ``scale``.

    The LR input is ``output_size // scale``; the reported output size is ``input * scale``
    (e.g. 1278x720 for 1280x720 at x3).
    """
    total, trainable = count_params(model)
    lw, lh = lr_size(output_size, scale)
    by_op = count_macs_by_op(model, (lw, lh))
    return Complexity(
        total,
        trainable,
        sum(by_op.values()),
        (lw, lh),
        (lw * scale, lh * scale),
        attention_macs=by_op.get("bmm", 0),
    )
