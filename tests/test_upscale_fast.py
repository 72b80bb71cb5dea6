"""The default upscale path's speed-ups compute the same bits: one finiteness check per output
(one pass, ``all_finite``), the uint8 quantisation in place, and ``facd upscale``'s allocator
setting (``facd.infer.allocator``); see docs/performance.md, "Inference default path"."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import facd
from facd.infer.tiling import NonFiniteOutputError, all_finite

SCALE = 4


@pytest.fixture(scope="module")
def up() -> facd.Upscaler:
    torch.manual_seed(0)
    with pytest.warns(facd.UntrainedWeightsWarning):  # random weights are the point here
        return facd.load("edsr-tiny-s", scale=SCALE, device="cpu", tile=24, tail_tile=8)


def _lr(h: int = 37, w: int = 45) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_default_path_equals_the_whole_network_quantised_as_before(up) -> None:
    """Body tiles and tail sub-tiles (several of each here) against one whole-image forward in
    the same memory format, quantised by the previous out-of-place formula: equal bits."""
    lr = _lr()
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div_(255.0)
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = up.model(x)[0]
    assert all_finite(y)
    want = y.float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    got = up(lr)
    assert got.shape == (37 * SCALE, 45 * SCALE, 3)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_bad_value_in_one_tail_sub_tile_is_still_caught(up, bad) -> None:
    """The tail's sub-tiles are no longer checked one by one: the check of the assembled
    output must still see one value that only one sub-tile produces (at its centre, inside
    the core that is kept)."""
    calls = []

    def poison_third_call(module, inputs, out):
        calls.append(out.shape)
        if len(calls) == 3:
            out[0, 1, out.shape[2] // 2, out.shape[3] // 2] = bad
        return out

    hook = up.model.tail[-1].register_forward_hook(poison_third_call)
    try:
        with pytest.raises(NonFiniteOutputError):
            up(_lr())
    finally:
        hook.remove()
    assert len(calls) >= 3  # the tail ran on sub-tiles


def test_all_finite_agrees_with_isfinite() -> None:
    gen = torch.Generator().manual_seed(0)
    for layout in (torch.contiguous_format, torch.channels_last):
        t = torch.randn(2, 8, 33, 47, generator=gen).contiguous(memory_format=layout)
        assert all_finite(t) is True
        for bad in (float("nan"), float("inf"), float("-inf")):
            for i in torch.randint(0, t.numel(), (5,), generator=gen).tolist():
                u = t.clone()
                u[torch.unravel_index(torch.tensor(i), u.shape)] = bad
                assert not all_finite(u)
                assert not bool(torch.isfinite(u).all())


def test_the_cli_allocator_setting_changes_no_bit(tmp_path) -> None:
    """In a fresh process (the setting is process-wide): the same output before and after
    ``reuse_freed_memory``, which applies on Linux with glibc."""
    code = textwrap.dedent(
        """
        import sys, warnings
        import numpy as np, torch
        import facd
        from facd.infer.allocator import reuse_freed_memory
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        up = facd.load("edsr-tiny-s", scale=4, device="cpu", tail_tile=8)
        lr = np.random.default_rng(2).integers(0, 256, (40, 52, 3), dtype=np.uint8)
        before = up(lr)
        applied = reuse_freed_memory()
        assert np.array_equal(up(lr), before)
        print("applied" if applied else "not applied")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    if sys.platform.startswith("linux"):
        assert res.stdout.strip() in ("applied", "not applied")  # musl has no mallopt
