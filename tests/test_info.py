"""Parameter and MAC counts (``facd.complexity``, ``facd info``) against hand-computed values."""

from __future__ import annotations

import json

import pytest
import torch

from facd.archs import build_model, preset_spec
from facd.archs.io import save_model
from facd.archs.spec import ArchSpec
from facd.cli import main
from facd.complexity import count_macs, count_params, model_complexity


def conv_macs(h: int, w: int, cin: int, cout: int, k: int) -> int:
    """MACs of one conv producing an h x w map: H*W*Cin*Cout*k*k (bias not counted)."""
    return h * w * cin * cout * k * k


def hand_macs_edsr(spec: ArchSpec, h: int, w: int) -> int:
    """Sum over the convs of EDSR for an h x w LR input, written out from the paper's layout."""
    f, s = spec.n_feats, spec.scale
    macs = conv_macs(h, w, 3, 3, 1)  # sub_mean (1x1 MeanShift)
    macs += conv_macs(h, w, 3, f, 3)  # head
    macs += (2 * spec.n_blocks + 1) * conv_macs(h, w, f, f, 3)  # ResBlocks + body-end conv
    if s == 3:
        macs += conv_macs(h, w, f, 9 * f, 3)
    else:
        for stage in range({2: 1, 4: 2, 8: 3}[s]):  # x2 stages, each at the growing size
            macs += conv_macs(h * 2**stage, w * 2**stage, f, 4 * f, 3)
    macs += conv_macs(h * s, w * s, f, 3, 3)  # tail conv at output size
    macs += conv_macs(h * s, w * s, 3, 3, 1)  # add_mean
    return macs


def hand_macs_rcan(spec: ArchSpec, h: int, w: int) -> int:
    """RCAN: EDSR-like skeleton; each RCAB adds 2 convs plus the channel-attention 1x1 convs."""
    f, r = spec.n_feats, spec.n_feats // spec.reduction
    per_rcab = 2 * conv_macs(h, w, f, f, 3) + conv_macs(1, 1, f, r, 1) + conv_macs(1, 1, r, f, 1)
    per_group = spec.n_blocks * per_rcab + conv_macs(h, w, f, f, 3)
    edsr_like = ArchSpec(arch="edsr", scale=spec.scale, n_feats=f, n_blocks=1)
    skeleton = hand_macs_edsr(edsr_like, h, w) - 2 * conv_macs(h, w, f, f, 3)  # drop 1 ResBlock
    return skeleton + spec.n_groups * per_group


def hand_params_edsr(spec: ArchSpec) -> int:
    f, s = spec.n_feats, spec.scale
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    n = conv(3, f, 3) + (2 * spec.n_blocks + 1) * conv(f, f, 3) + conv(f, 3, 3)
    n += conv(f, 9 * f, 3) if s == 3 else {2: 1, 4: 2, 8: 3}[s] * conv(f, 4 * f, 3)
    return n


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", ["edsr-tiny-s", "edsr-tiny-t"])
def test_edsr_macs_match_hand_count(name: str, scale: int) -> None:
    spec = preset_spec(name, scale)
    model = build_model(spec)
    h, w = 13, 7
    assert count_macs(model, (w, h)) == hand_macs_edsr(spec, h, w)
    assert count_params(model) == (hand_params_edsr(spec) + 24, hand_params_edsr(spec))


@pytest.mark.parametrize("scale", [2, 4])
def test_rcan_macs_match_hand_count(scale: int) -> None:
    spec = preset_spec("rcan-tiny-t", scale)
    assert count_macs(build_model(spec), (9, 11)) == hand_macs_rcan(spec, 11, 9)


def test_count_leaves_the_model_on_its_device() -> None:
    model = build_model(preset_spec("edsr-tiny-s", 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_macs(model, (16, 16))
    after = model.state_dict()
    assert all(v.device.type == "cpu" and torch.equal(v, before[k]) for k, v in after.items())


def test_edsr_baseline_x2_at_720p_is_the_published_316g() -> None:
    # EDSR-baseline x2 at a 1280x720 output is quoted as ~316 G "FLOPs" (really MACs).
    with torch.device("meta"):
        model = build_model(preset_spec("edsr-s", 2))
    c = model_complexity(model, 2, (1280, 720))
    assert c.input_size == (640, 360) and c.output_size == (1280, 720)
    assert c.macs == hand_macs_edsr(preset_spec("edsr-s", 2), 360, 640)
    assert abs(c.gmacs - 316) < 1.0
    assert c.trainable_params == 1_369_859  # EDSR-baseline x2: 1.37 M


def test_output_size_not_divisible_uses_floor() -> None:
    with torch.device("meta"):
        model = build_model(preset_spec("edsr-tiny-s", 3))
    c = model_complexity(model, 3, (1280, 720))
    assert c.input_size == (426, 240) and c.output_size == (1278, 720)


def test_info_cli_json_matches_hand_count(capsys) -> None:
    assert main(["info", "edsr-tiny-s", "--scale", "4", "--size", "96x64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    spec = preset_spec("edsr-tiny-s", 4)
    assert doc["macs"] == hand_macs_edsr(spec, 16, 24)
    assert doc["trainable_params"] == hand_params_edsr(spec)
    assert doc["input_size"] == [24, 16] and doc["output_size"] == [96, 64]
    assert doc["architecture"] == spec.describe()


def test_info_cli_text_on_checkpoint_detects_scale(tmp_path, capsys) -> None:
    spec = preset_spec("edsr-tiny-t", 3)
    path = tmp_path / "tiny.safetensors"
    save_model(path, build_model(spec), spec)
    assert main(["info", str(path), "--size", "120x90"]) == 0
    out = capsys.readouterr().out
    assert spec.describe() in out
    assert "GMACs (what SR papers call FLOPs)" in out
    gmacs = hand_macs_edsr(spec, 30, 40) / 1e9
    assert f"{gmacs:.2f} GMACs" in out
    assert f"{hand_params_edsr(spec):,}" in out


def test_info_cli_errors(capsys) -> None:
    assert main(["info", "edsr-tiny-s"]) == 2  # preset without scale
    err = capsys.readouterr().err.strip()
    assert err.startswith("facd info: error:") and "scale" in err and "\n" not in err
    assert main(["info", "no-such-model.pt", "--scale", "2"]) == 2
    assert "no-such-model.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["info", "edsr-tiny-s", "--scale", "2", "--size", "1280by720"])
