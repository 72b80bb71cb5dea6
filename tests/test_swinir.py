"""SwinIR: official layout, parameter counts, detection, odd sizes, taps and gradients."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from facd.archs.swinir import (
    SWINIR_PRESETS,
    SwinIR,
    WindowAttention,
    detect,
    load_official,
    param_count,
    relative_position_index,
    shifted_window_mask,
    swinir_preset,
    window_partition,
    window_reverse,
)
from facd.errors import CheckpointError

# One layer of the official classical-SR file, as named in its release (plus the stems).
OFFICIAL_KEYS = {
    "conv_first.weight",
    "conv_first.bias",
    "patch_embed.norm.weight",
    "patch_embed.norm.bias",
    "layers.0.residual_group.blocks.0.norm1.weight",
    "layers.0.residual_group.blocks.0.norm1.bias",
    "layers.0.residual_group.blocks.0.attn.relative_position_bias_table",
    "layers.0.residual_group.blocks.0.attn.relative_position_index",
    "layers.0.residual_group.blocks.0.attn.qkv.weight",
    "layers.0.residual_group.blocks.0.attn.qkv.bias",
    "layers.0.residual_group.blocks.0.attn.proj.weight",
    "layers.0.residual_group.blocks.0.attn.proj.bias",
    "layers.0.residual_group.blocks.0.norm2.weight",
    "layers.0.residual_group.blocks.0.norm2.bias",
    "layers.0.residual_group.blocks.0.mlp.fc1.weight",
    "layers.0.residual_group.blocks.0.mlp.fc1.bias",
    "layers.0.residual_group.blocks.0.mlp.fc2.weight",
    "layers.0.residual_group.blocks.0.mlp.fc2.bias",
    "layers.0.residual_group.blocks.1.attn_mask",
    "layers.0.conv.weight",
    "layers.0.conv.bias",
    "norm.weight",
    "norm.bias",
    "conv_after_body.weight",
    "conv_after_body.bias",
    "conv_before_upsample.0.weight",
    "conv_before_upsample.0.bias",
    "upsample.0.weight",
    "upsample.0.bias",
    "upsample.2.weight",
    "upsample.2.bias",
    "conv_last.weight",
    "conv_last.bias",
}


def test_official_key_names() -> None:
    keys = set(SwinIR(swinir_preset("swinir-tiny-t", 4)).state_dict())
    assert keys >= OFFICIAL_KEYS
    assert "layers.0.residual_group.blocks.0.attn_mask" not in keys  # unshifted: no mask
    direct = set(SwinIR(swinir_preset("swinir-tiny-s", 4)).state_dict())
    assert {"upsample.0.weight", "upsample.0.bias"} <= direct
    assert not any(k.startswith(("conv_before_upsample", "conv_last")) for k in direct)


@pytest.mark.parametrize(("scale", "paper_k"), [(2, 878), (3, 886), (4, 897)])
def test_swinir_s_parameters_match_the_paper(scale: int, paper_k: int) -> None:
    """The SwinIR paper's counts leave out the relative-position bias tables."""
    spec = swinir_preset("swinir-s", scale)
    assert round(param_count(spec, with_bias_tables=False) / 1000) == paper_k
    net = SwinIR(spec)
    assert sum(p.numel() for p in net.parameters()) == param_count(spec)


def test_full_counts_with_bias_tables() -> None:
    assert param_count(swinir_preset("swinir-s", 4)) == 929_628
    spec_m = swinir_preset("swinir-m", 4)
    assert param_count(spec_m) == 11_900_199
    with torch.device("meta"):
        assert sum(p.numel() for p in SwinIR(spec_m).parameters()) == 11_900_199


def test_relative_position_index_by_hand() -> None:
    # m = 2: cells (0,0) (0,1) (1,0) (1,1); index = (dy + 1) * 3 + (dx + 1)
    expected = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(relative_position_index(2), expected)


def test_shifted_mask_by_hand() -> None:
    mask = shifted_window_mask(4, 4, 2, 1)  # 4 windows of 2x2
    assert mask.shape == (4, 4, 4)
    assert torch.all(mask[0] == 0)  # top-left window: one region
    # bottom-right window after the roll holds four regions: only the diagonal attends
    assert torch.equal(mask[3] == 0, torch.eye(4, dtype=torch.bool))
    assert set(mask.unique().tolist()) == {-100.0, 0.0}


def test_window_partition_round_trip() -> None:
    x = torch.randn(2, 8, 12, 5)
    w = window_partition(x, 4)
    assert w.shape == (12, 4, 4, 5)
    assert torch.equal(w[1], x[0, :4, 4:8])  # row-major window order
    assert torch.equal(window_reverse(w, 4, 8, 12), x)


def test_window_attention_against_naive() -> None:
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, m=2, heads=2)
    x = torch.randn(3, 4, 8)
    q, k, v = attn.qkv(x).view(3, 4, 3, 2, 4).permute(2, 0, 3, 1, 4)
    bias = attn.relative_position_bias_table[relative_position_index(2)].permute(2, 0, 1)
    logits = q @ k.transpose(-2, -1) / math.sqrt(4) + bias
    ref = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(3, 4, 8))
    torch.testing.assert_close(attn(x, None), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (13, 19), (16, 16), (17, 9)])
def test_any_input_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = SwinIR(swinir_preset("swinir-tiny-s", 3)).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *size))
    assert y.shape == (2, 3, 3 * size[0], 3 * size[1]) and torch.isfinite(y).all()


def test_mask_at_training_size_equals_the_stored_buffer() -> None:
    net = SwinIR(swinir_preset("swinir-tiny-t", 2))
    layer = net.layers[0].residual_group.blocks[1]
    fresh = shifted_window_mask(16, 16, 4, 2)
    assert torch.equal(layer.attn_mask, fresh)
    # a non-square input computes its own mask
    assert layer._mask(16, 20, torch.device("cpu")).shape == (20, 16, 16)


def _official_file(path: Path, preset: str, scale: int, key: str = "params") -> Path:
    torch.manual_seed(1)
    net = SwinIR(swinir_preset(preset, scale))
    torch.save({key: net.state_dict()}, path)
    return path


@pytest.mark.parametrize("preset", list(SWINIR_PRESETS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_official_round_trip_and_detection(tmp_path: Path, preset: str, scale: int) -> None:
    path = _official_file(tmp_path / "w.pth", preset, scale)
    net, spec = load_official(path, expect=swinir_preset(preset, scale))
    assert spec == swinir_preset(preset, scale)
    torch.manual_seed(1)
    ref = SwinIR(spec).state_dict()
    got = net.state_dict()
    assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in ref)


def test_params_ema_is_preferred(tmp_path: Path) -> None:
    spec = swinir_preset("swinir-tiny-s", 2)
    torch.manual_seed(0)
    a, b = SwinIR(spec).state_dict(), SwinIR(spec).state_dict()
    torch.save({"params": a, "params_ema": b}, tmp_path / "w.pth")
    net, _ = load_official(tmp_path / "w.pth")
    assert torch.equal(net.conv_first.weight, b["conv_first.weight"])


def test_missing_buffers_and_other_variant_are_one_line_errors(tmp_path: Path) -> None:
    spec = swinir_preset("swinir-tiny-t", 4)
    state = SwinIR(spec).state_dict()
    no_mask = {k: v for k, v in state.items() if not k.endswith("attn_mask")}
    with pytest.raises(CheckpointError, match="img_size|attn_mask") as err:
        detect(no_mask, "x.pth")
    assert "\n" not in str(err.value)
    no_index = {
        k: v for k, v in state.items() if not k.endswith("blocks.1.attn.relative_position_index")
    }
    with pytest.raises(CheckpointError, match="buffer .*relative_position_index"):
        detect(no_index, "x.pth")
    path = _official_file(tmp_path / "s.pth", "swinir-tiny-s", 4)
    with pytest.raises(CheckpointError, match="was asked for"):
        load_official(path, expect=spec)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_official(tmp_path / "junk.pth")


def test_taps_are_cropped_maps_with_gradients() -> None:
    torch.manual_seed(0)
    net = SwinIR(swinir_preset("swinir-tiny-s", 2))
    seen: list[torch.Tensor] = []
    hooks = [t.register_forward_hook(lambda _m, _i, out: seen.append(out)) for t in net.taps]
    y = net(torch.rand(2, 3, 10, 13))
    assert [tuple(f.shape) for f in seen] == [(2, 12, 10, 13)] * 3
    sum(f.square().mean() for f in seen).backward()
    assert net.conv_first.weight.grad is not None and net.conv_first.weight.grad.abs().sum() > 0
    for h in hooks:
        h.remove()
    seen.clear()
    net(torch.rand(1, 3, 8, 8))
    assert not seen and y.shape == (2, 3, 20, 26)


# ------------------------------------------------------------- registered: files, CLI, tiling


def test_load_model_reads_official_files(tmp_path: Path) -> None:
    from facd.archs import preset_spec
    from facd.archs.io import load_model, save_model

    for key in ("params", "params_ema"):
        path = _official_file(tmp_path / f"{key}.pth", "swinir-tiny-t", 3, key)
        net, spec = load_model(path)
        assert spec == preset_spec("swinir-tiny-t", 3)
        ref, _ = load_official(path)
        x = torch.rand(1, 3, 9, 11)
        with torch.no_grad():
            assert torch.equal(net.eval()(x), ref.eval()(x))
    save_model(tmp_path / "m.safetensors", net, spec)  # facd's own format round trip
    again, found = load_model(tmp_path / "m.safetensors", scale=3)
    assert found == spec and torch.equal(again.eval()(x), net(x))


def test_damaged_buffers_are_one_line_errors(tmp_path: Path) -> None:
    from facd.archs.io import load_model

    state = SwinIR(swinir_preset("swinir-tiny-s", 2)).state_dict()
    index_key = "layers.0.residual_group.blocks.0.attn.relative_position_index"
    bad = dict(state, **{index_key: state[index_key].flip(0).contiguous()})
    torch.save({"params": bad}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="differs from the one computed") as err:
        load_model(tmp_path / "bad.pth")
    assert "\n" not in str(err.value)
    torch.save(
        {"params": {k: v for k, v in state.items() if "attn_mask" not in k}}, tmp_path / "m.pth"
    )
    with pytest.raises(CheckpointError, match="attn_mask"):
        load_model(tmp_path / "m.pth")


def test_info_prints_both_parameter_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from facd.cli import main

    for scale, paper in ((2, "878"), (3, "886"), (4, "897")):
        assert main(["info", "swinir-s", "--scale", str(scale)]) == 0
        out = capsys.readouterr().out
        assert "relative-position bias tables included" in out
        line = next(ln for ln in out.splitlines() if "SwinIR paper" in ln)
        count = param_count(swinir_preset("swinir-s", scale), with_bias_tables=False)
        assert f"{count:,}" in line and round(count / 1000) == int(paper)
    assert "929,628" in out and "attention products" in out


def test_tiling_is_approximate_within_the_declared_tolerance() -> None:
    """Tiles start on window multiples; at the declared margin they match the whole image."""
    import facd
    from facd.archs import get_arch, preset_spec

    spec = preset_spec("swinir-tiny-t", 2)
    info = get_arch("swinir").tiling(spec)
    assert not info.exact and info.align == spec.window_size
    torch.manual_seed(0)
    net = SwinIR(spec.params).eval()
    x = torch.rand(3, 37, 45)
    whole = facd.load(net, device="cpu", tile=0).upscale_tensor(x)
    tiled = facd.load(net, device="cpu", tile=12, overlap=info.margin).upscale_tensor(x)
    assert float((tiled - whole).abs().max()) <= info.tolerance
    rough = facd.load(net, device="cpu", tile=12, overlap=0).upscale_tensor(x)
    assert float((rough - whole).abs().max()) > info.tolerance  # the margin matters


def test_export_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from facd.cli import main

    assert (
        main(["export", "swinir-tiny-s", "--scale", "2", "--onnx", str(tmp_path / "s.onnx")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("facd export: error: SwinIR cannot be exported to ONNX") and "\n" not in err
    )
    assert not (tmp_path / "s.onnx").exists()


def test_upscale_and_eval_take_a_swinir_file(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from facd.cli import main

    path = _official_file(tmp_path / "w.pth", "swinir-tiny-s", 2)
    img = (np.random.default_rng(0).random((13, 17, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    assert main(["upscale", str(path), str(tmp_path / "a.png"), "-o", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "a_x2.png").size == (34, 26)
    hr_dir = tmp_path / "data" / "Tiny" / "HR"  # a benchmark set of two odd-sized images
    hr_dir.mkdir(parents=True)
    for i, (h, w) in enumerate([(26, 34), (18, 22)]):
        hr = (np.random.default_rng(i).random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(hr).save(hr_dir / f"img{i}.png")
    out = tmp_path / "eval.json"
    argv = ["eval", "--model", str(path), "--scale", "2", "--sets", "Tiny"]
    assert main([*argv, "--data-root", str(tmp_path / "data"), "--json", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())["sets"]["Tiny"]
    assert res["images"] == 2 and 5 < res["psnr_y"] < 60
