"""The deep regressor's fast path against the plain nn.Conv2d/nn.PReLU stack.

Real FACD shapes (student 64 -> teacher 256 channels, five 1x1 convs, LR 24 x 24), a small
batch: the loss, the gradients on the student features and on every regressor parameter agree
within float32 tolerance, for contiguous and channels_last inputs; state dicts are the plain
stack's, in both directions.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from facd.archs import preset_spec
from facd.distill.contrastive import ContrastTerm
from facd.distill.options import ContrastOptions
from facd.distill.regressor import DeepRegressor, prelu
from facd.distill.terms import StepContext, TermEnv

N, CS, CT, HW = 3, 64, 256, 24


def _close(got: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    """float32 tolerance: 1e-5 relative, plus 1e-6 of the tensor's largest value."""
    torch.testing.assert_close(
        got, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()), msg=lambda m: f"{what}: {m}"
    )


def _paper_stack(cs: int = CS, ct: int = CT) -> nn.Sequential:
    """The regressor as the paper defines it, built from plain modules (the base layout)."""
    mods: list[nn.Module] = []
    for i in range(5):
        mods.append(nn.Conv2d(cs if i == 0 else ct, ct, 1))
        if i < 4:
            mods.append(nn.PReLU())
    return nn.Sequential(*mods)


def _grad_nodes(out: torch.Tensor) -> set[str]:
    seen, names, todo = set(), set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo.extend(n for n, _ in node.next_functions)
    return names


def _term(fast: bool) -> ContrastTerm:
    torch.manual_seed(0)
    env = TermEnv(preset_spec("edsr-s", 4), preset_spec("edsr-t", 4), [CS] * 3, [CT] * 3)
    term = ContrastTerm(ContrastOptions(weight=1.0), env)
    with torch.no_grad():  # trained-looking slopes, not all at the 0.25 init
        for i, p in enumerate(term.regressors.parameters()):
            if p.numel() == 1:
                p.fill_(0.05 + 0.1 * (i % 4))
    for reg in term.regressors:
        reg.fast = fast
    return term


def test_fast_path_skips_the_native_prelu_backward():
    reg = DeepRegressor(CS, CT, fast=True)
    x = torch.randn(2, CS, 8, 8, requires_grad=True)
    nodes = _grad_nodes(reg(x))
    assert "PreluKernelBackward0" not in nodes
    assert "_PReLUBackward" in nodes
    reg.fast = False
    assert "PreluKernelBackward0" in _grad_nodes(reg(x))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_fast_loss_and_gradients_match_plain(layout: str):
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    gen = torch.Generator().manual_seed(1)
    feats_s = [
        torch.randn(N, CS, HW, HW, generator=gen).contiguous(memory_format=fmt) for _ in "abc"
    ]
    feats_t = [
        torch.randn(N, CT, HW, HW, generator=gen).contiguous(memory_format=fmt) for _ in "abc"
    ]
    results = []
    for fast in (True, False):
        term = _term(fast)
        fs = [f.clone().requires_grad_(True) for f in feats_s]
        ctx = StepContext(
            lr=torch.zeros(N, 3, HW, HW),
            hr=torch.zeros(N, 3, 4 * HW, 4 * HW),
            sr_s=torch.zeros(N, 3, 4 * HW, 4 * HW),
            feats_s=fs,
            feats_t=feats_t,
            alpha=torch.tensor([1.0, 0.0, 1.0]),
        )
        loss = term(ctx)
        loss.backward()
        grads = {f"feature {j}": f.grad for j, f in enumerate(fs)}
        grads.update({n: p.grad for n, p in term.named_parameters()})
        results.append((loss.detach(), grads))
    (loss_fast, g_fast), (loss_plain, g_plain) = results
    _close(loss_fast, loss_plain, "loss")
    assert set(g_fast) == set(g_plain) and len(g_fast) == 3 + 3 * 14
    for name, ref in g_plain.items():
        assert ref is not None and float(ref.abs().max()) > 0, name
        _close(g_fast[name], ref, f"gradient of {name}")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_fast_regressor_random_gradient(layout: str):
    """Gradients through one regressor for an arbitrary upstream gradient, output format kept."""
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    torch.manual_seed(2)
    fast = DeepRegressor(CS, CT, fast=True)
    plain = copy.deepcopy(fast)
    plain.fast = False
    x = torch.randn(2, CS, HW, HW).contiguous(memory_format=fmt)
    g = torch.randn(2, CT, HW, HW)
    outs = []
    for reg in (fast, plain):
        xi = x.clone().requires_grad_(True)
        y = reg(xi)
        assert y.is_contiguous(memory_format=fmt)
        y.backward(g)
        outs.append((y.detach(), xi.grad, [p.grad for p in reg.parameters()]))
    (y1, gx1, gp1), (y2, gx2, gp2) = outs
    _close(y1, y2, "output")
    _close(gx1, gx2, "input gradient")
    for (name, _), a, b in zip(fast.named_parameters(), gp1, gp2, strict=True):
        _close(a, b, f"gradient of {name}")


def test_state_dicts_are_interchangeable_with_the_plain_stack():
    torch.manual_seed(3)
    plain = _paper_stack()
    fast = DeepRegressor(CS, CT)
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert "fast" not in fast.state_dict()
    assert [(n, p.shape) for n, p in fast.named_parameters()] == [
        (n, p.shape) for n, p in plain.named_parameters()
    ]
    fast.load_state_dict(plain.state_dict(), strict=True)  # a state saved before loads
    x = torch.randn(2, CS, 6, 6)
    with torch.no_grad():
        _close(fast(x), plain(x), "output after loading the plain stack's weights")
    back = _paper_stack()
    back.load_state_dict(fast.state_dict(), strict=True)  # and the other way round
    with torch.no_grad():
        _close(back(x), fast(x), "output after loading the fast regressor's weights")


def test_prelu_per_channel_and_fallbacks():
    torch.manual_seed(4)
    x = torch.randn(2, 5, 4, 4)
    w = torch.rand(5) - 0.2
    got, ref = [], []
    for fn, out in ((prelu, got), (torch.nn.functional.prelu, ref)):
        xi, wi = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        y = fn(xi, wi)
        y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
        out.extend([y.detach(), xi.grad, wi.grad])
    for a, b, what in zip(got, ref, ["output", "input gradient", "weight gradient"], strict=True):
        _close(a, b, f"per-channel PReLU {what}")
    # bf16 autocast: input and weight dtypes differ, so the native op runs, as in the plain stack
    reg = DeepRegressor(4, 8, layers=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = reg(torch.randn(1, 4, 3, 3))
    assert y.dtype == torch.bfloat16
