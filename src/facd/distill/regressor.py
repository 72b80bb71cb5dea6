"""FACD's deep regressor (DR): 1x1 convs with PReLU between them, student -> teacher channels.

The module is an ``nn.Sequential`` of ``nn.Conv2d`` (1x1) and ``nn.PReLU`` layers, so its
parameters and state-dict keys (``0.weight``, ``0.bias``, ``1.weight``, ``2.weight``, ...) are
those of the plain stack and saved training states load either way.

Speed (``fast=True``, the default): the convolutions run as they are; only PReLU's gradient is
computed differently on the CPU. The native ``_prelu_kernel_backward`` took about 4 ms per layer
at the paper's shapes (4 x 256 x 24 x 24, one thread) and was a fifth of the regressor's time;
``_PReLU`` computes the same gradients with vectorised elementwise ops into one scratch tensor
(about 1.3 ms). Measured and rejected: running the 1x1 convs as matrix products on an
(N*H*W, C) view (channels-last rows). On a contiguous input the layout changes cost more than
the GEMM saved (the regressor was 10-15 % slower in a training step), and on a channels_last
input PyTorch already runs the 1x1 convs through oneDNN at the same speed; see
``docs/performance.md``.

Values are bit-identical to the plain stack (the forward is the same ops); gradients agree to
float32 rounding (checked in ``tests/test_regressor_fast.py``). ``fast=False`` runs the plain
``nn.Sequential`` forward, with forward hooks on the PReLU submodules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _PReLU(torch.autograd.Function):
    """``torch.prelu`` with a backward of a few vectorised passes over one scratch tensor.

    d/dx = 1 where x > 0, else ``weight``: the slope is built as ``m * (1 - w) + w`` from the
    0/1 mask ``m``; for 0 <= w <= 2 (PReLU's usual range; 0.25 at init) this is exactly 1 where
    m = 1, otherwise within one float32 rounding of 1. d/dweight = sum of ``grad * min(x, 0)``
    over every dimension but the channels (all of them for a single weight).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return torch.prelu(x, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        if weight.numel() == 1:
            w, reduce_dims = weight, None
        else:  # one weight per channel (dim 1)
            w = weight.view(1, -1, *([1] * (x.dim() - 2)))
            reduce_dims = [d for d in range(x.dim()) if d != 1]
        buf = torch.empty_like(x)  # the only full-size allocation besides the result
        grad_x = grad_w = None
        if ctx.needs_input_grad[1]:
            torch.mul(torch.clamp(x, max=0, out=buf), grad, out=buf)
            total = buf.sum() if reduce_dims is None else buf.sum(dim=reduce_dims)
            grad_w = total.reshape(weight.shape)
        if ctx.needs_input_grad[0]:
            torch.gt(x, 0, out=buf)  # 1.0 where x > 0, else 0.0
            grad_x = buf.mul_(1 - w).add_(w).mul_(grad)
        return grad_x, grad_w


def prelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """PReLU with ``_PReLU``'s backward where it is faster (CPU, matching dtypes), else native.

    On CUDA the native backward is one fused kernel; under autocast the input's dtype can differ
    from the weight's, which the native op handles.
    """
    if x.device.type == "cpu" and x.dtype == weight.dtype and x.dim() >= 2:
        return _PReLU.apply(x, weight)
    return F.prelu(x, weight)


class DeepRegressor(nn.Sequential):
    """``layers`` 1x1 convs: C_S -> W -> ... -> C_T, PReLU between, none after the last.

    The paper states five 1x1 convs with PReLU; the hidden width is not stated, so it defaults to
    the teacher's channel count. ``fast`` selects the faster PReLU gradient (same function, same
    parameters; see the module docstring); it is an attribute, not part of the state dict.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        layers: int = 5,
        width: int = 0,
        fast: bool = True,
    ) -> None:
        width = width or out_channels
        mods: list[nn.Module] = []
        c = in_channels
        for i in range(layers):
            last = i == layers - 1
            mods.append(nn.Conv2d(c, out_channels if last else width, 1))
            if not last:
                mods.append(nn.PReLU())
            c = width
        super().__init__(*mods)
        self.fast = fast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not getattr(self, "fast", True):
            return super().forward(x)
        for m in self:
            x = prelu(x, m.weight) if type(m) is nn.PReLU else m(x)
        return x
