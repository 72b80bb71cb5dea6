"""Round trips: build -> save -> detect -> load -> same outputs, in every supported layout."""

from __future__ import annotations

import io
import re

import pytest
import torch

from facd.archs import PRESETS, build_model, get_arch, preset_spec
from facd.archs.formats import detect_spec
from facd.archs.io import load_model, read_checkpoint, save_model
from facd.errors import CheckpointError

TINY = ["edsr-tiny-t", "edsr-tiny-s", "rcan-tiny-t", "rcan-tiny-s"]
PAPER = ["edsr-t", "edsr-s", "edsr-t16", "rcan-t", "rcan-s"]


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, scale: int) -> None:
    x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ya, yb = a.eval()(x), b.eval()(x)
    assert ya.shape == (1, 3, 6 * scale, 5 * scale)
    assert torch.equal(ya, yb)


def _randomise(model: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith(("sub_mean", "add_mean")):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", TINY)
def test_safetensors_round_trip(tmp_path, name, scale):
    spec = preset_spec(name, scale)
    model = build_model(spec)
    _randomise(model)
    path = tmp_path / "m.safetensors"
    save_model(path, model, spec)
    loaded, found = load_model(path)
    assert found == spec
    _same_outputs(model, loaded, scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", PAPER)
def test_paper_presets_detected_from_official_keys(name, scale):
    spec = preset_spec(name, scale)
    with torch.device("meta"):
        sd = build_model(spec).state_dict()
    assert detect_spec(sd) == spec


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", ["edsr-s", "rcan-s"])
def test_paper_preset_pt_round_trip(tmp_path, name, scale):
    spec = preset_spec(name, scale)
    model = build_model(spec)
    path = tmp_path / "official.pt"
    torch.save(model.state_dict(), path)
    loaded, found = load_model(path)
    assert found == spec
    _same_outputs(model, loaded, scale)


def test_official_key_names():
    edsr = build_model(preset_spec("edsr-s", 4)).state_dict()
    for key in [
        "head.0.weight",
        "body.0.body.0.weight",
        "body.15.body.2.bias",
        "body.16.weight",
        "tail.0.0.weight",
        "tail.0.2.weight",
        "tail.1.weight",
        "sub_mean.weight",
        "add_mean.bias",
    ]:
        assert key in edsr, key
    assert edsr["tail.0.0.weight"].shape == (256, 64, 3, 3)
    rcan = build_model(preset_spec("rcan-s", 3)).state_dict()
    for key in [
        "body.0.body.0.body.3.conv_du.0.weight",
        "body.9.body.5.body.3.conv_du.2.bias",
        "body.9.body.6.weight",
        "body.10.weight",
        "tail.0.0.weight",
    ]:
        assert key in rcan, key
    assert rcan["tail.0.0.weight"].shape == (576, 64, 3, 3)
    assert rcan["body.0.body.0.body.3.conv_du.0.weight"].shape == (4, 64, 1, 1)


def test_meanshift_holds_div2k_mean_in_255_range():
    sd = build_model(preset_spec("edsr-s", 2)).state_dict()
    expected = torch.tensor([0.4488, 0.4371, 0.4040]) * 255
    assert torch.allclose(sd["sub_mean.bias"], -expected)
    assert torch.allclose(sd["add_mean.bias"], expected)


def test_interface_is_zero_one_range():
    """A network whose body is zero and whose tail passes features through returns the input
    mean shift undone: sub_mean then add_mean around a zero residual gives exactly the mean."""
    spec = preset_spec("edsr-tiny-s", 2)
    model = build_model(spec)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith(("sub_mean", "add_mean")):
                p.zero_()
        y = model(torch.rand(1, 3, 4, 4))
    expected = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand_as(y)
    assert torch.allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize("name", ["edsr-tiny-t", "rcan-tiny-t"])
@pytest.mark.parametrize("container", ["params", "params_ema", "both"])
def test_basicsr_layout_round_trip(tmp_path, name, container):
    spec = preset_spec(name, 4)
    model = build_model(spec)
    _randomise(model)
    bsr = get_arch(spec.arch).export_layout("basicsr", spec, model.state_dict())["params"]
    assert (
        "conv_first.weight" in bsr and "conv_after_body.weight" in bsr and "conv_last.weight" in bsr
    )
    assert any(k.startswith("upsample.0.") for k in bsr)
    if spec.arch == "rcan":
        assert "body.0.residual_group.0.rcab.3.attention.1.weight" in bsr
        assert "body.0.conv.weight" in bsr
    else:
        assert "body.0.conv1.weight" in bsr
    assert get_arch(spec.arch).to_official(bsr).keys() == {
        k for k in model.state_dict() if not k.startswith(("sub_mean", "add_mean"))
    }
    if container == "both":
        junk = {k: torch.zeros_like(v) for k, v in bsr.items()}
        obj = {"params": junk, "params_ema": bsr}
    else:
        obj = {container: bsr}
    path = tmp_path / "basicsr.pth"
    torch.save(obj, path)
    loaded, found = load_model(path)
    assert found == spec
    _same_outputs(model, loaded, 4)


def test_scale_mismatch_is_reported(tmp_path):
    spec = preset_spec("edsr-tiny-s", 2)
    path = tmp_path / "x2.safetensors"
    save_model(path, build_model(spec), spec)
    with pytest.raises(CheckpointError, match=r"x2.*x4"):
        load_model(path, scale=4)


def test_wrong_shapes_are_reported(tmp_path):
    spec = preset_spec("edsr-tiny-s", 2)
    sd = build_model(spec).state_dict()
    sd["body.0.body.0.weight"] = torch.zeros(8, 8, 5, 5)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=re.escape("body.0.body.0.weight")):
        load_model(path)


def test_pickle_payload_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    buf = io.BytesIO()
    torch.save({"head.0.weight": torch.zeros(1), "x": Payload()}, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(path)
    assert not marker.exists()


def test_unknown_preset_and_missing_file():
    with pytest.raises(CheckpointError, match="neither a file nor a preset"):
        load_model("no-such-model.pt")
    assert set(PAPER) <= set(PRESETS)
