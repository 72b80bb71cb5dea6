"""``facd export --layout official|basicsr``: the files other SR code loads, read back exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from facd.archs import ArchSpec, build_model, preset_spec
from facd.archs.io import load_model
from facd.cli import main
from facd.errors import ConfigError, FacdError
from facd.infer.export import export_weights

# The key names of EDSR-PyTorch's EDSR (1 ResBlock, x2) and of BasicSR's, written out by hand
# from the two projects' module definitions (not computed by facd).
EDSR_OFFICIAL_KEYS = {
    f"{m}.{p}"
    for m in (
        "sub_mean",
        "add_mean",
        "head.0",
        "body.0.body.0",
        "body.0.body.2",
        "body.1",
        "tail.0.0",
        "tail.1",
    )
    for p in ("weight", "bias")
}
EDSR_BASICSR_KEYS = {
    f"{m}.{p}"
    for m in (
        "conv_first",
        "body.0.conv1",
        "body.0.conv2",
        "conv_after_body",
        "upsample.0",
        "conv_last",
    )
    for p in ("weight", "bias")
}


def _random_net(name: str, scale: int, **changes) -> tuple[torch.nn.Module, ArchSpec]:
    if name == "swinir-tiny-t64":
        name, changes = "swinir-tiny-t", {**changes, "num_feat": 64}
    spec = preset_spec(name, scale)
    if changes:
        spec = ArchSpec(spec.arch, spec.scale, replace(spec.params, **changes))
    net = build_model(spec).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, p in net.named_parameters():
            if not key.startswith(("sub_mean", "add_mean")):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return net, spec


@pytest.mark.parametrize("layout", ["official", "basicsr"])
@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("edsr-tiny-s", 4),
        ("edsr-tiny-t", 3),
        ("rcan-tiny-s", 2),
        ("swinir-tiny-s", 4),  # lightweight: pixelshuffledirect
        ("swinir-tiny-t64", 3),  # classical: pixelshuffle with the official 64 channels
    ],
)
def test_exported_file_is_detected_and_gives_the_same_outputs(tmp_path, name, scale, layout):
    net, spec = _random_net(name, scale)
    path = export_weights(net, spec, tmp_path / "model.pth", layout)
    obj = torch.load(path, weights_only=True)  # plain tensors only
    own = net.state_dict()
    if spec.arch == "swinir" or layout == "basicsr":
        assert list(obj) == ["params"]
        sd = obj["params"]
    else:
        sd = obj
    if layout == "official" or spec.arch == "swinir":
        assert set(sd) == set(own)  # every key, buffers included
        assert all(torch.equal(sd[k], own[k]) for k in own)
    else:
        assert "conv_first.weight" in sd and not any(k.startswith("sub_mean") for k in sd)
    loaded, found = load_model(path)
    assert found.arch == spec.arch and found.scale == scale
    x = torch.rand(2, 3, 13, 11, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(loaded.eval()(x), net(x))


def test_edsr_key_names_are_those_of_the_original_code(tmp_path) -> None:
    net, spec = _random_net("edsr-tiny-s", 2, n_blocks=1)
    official = torch.load(export_weights(net, spec, tmp_path / "a.pt", "official"))
    basicsr = torch.load(export_weights(net, spec, tmp_path / "b.pth", "basicsr"))
    assert set(official) == EDSR_OFFICIAL_KEYS
    assert set(basicsr["params"]) == EDSR_BASICSR_KEYS
    assert torch.equal(official["sub_mean.bias"], -255 * torch.tensor([0.4488, 0.4371, 0.4040]))


def test_swinir_file_has_the_index_and_mask_buffers(tmp_path) -> None:
    net, spec = _random_net("swinir-tiny-s", 2)
    sd = torch.load(export_weights(net, spec, tmp_path / "s.pth", "official"))["params"]
    prefix = "layers.0.residual_group.blocks"
    assert f"{prefix}.0.attn.relative_position_index" in sd
    assert f"{prefix}.1.attn_mask" in sd  # shifted layers carry their mask
    assert f"{prefix}.0.attn_mask" not in sd  # as in the official files


def test_a_hyperparameter_the_layout_cannot_record_is_refused(tmp_path) -> None:
    """res_scale leaves no trace in the weights: read back as 1, the outputs differ."""
    net, spec = _random_net("edsr-tiny-s", 4, res_scale=0.5)
    path = tmp_path / "m.pt"
    with pytest.raises(FacdError, match=r"res_scale 0\.5 \(read back as 1\.0\)"):
        export_weights(net, spec, path, "official")
    assert not path.exists()


@pytest.mark.parametrize("layout", ["official", "basicsr"])
def test_swinir_reconstruction_width_other_code_cannot_build_is_refused(tmp_path, layout) -> None:
    net, spec = _random_net("swinir-tiny-t", 2)  # num_feat 16; the original code fixes 64
    with pytest.raises(ConfigError, match=r"num_feat 16: .*64 channels"):
        export_weights(net, spec, tmp_path / "s.pth", layout)
    assert not (tmp_path / "s.pth").exists()


def test_cli_writes_each_layout(tmp_path, capsys) -> None:
    out = tmp_path / "teacher.pth"
    ref = "facd-asset:teacher-edsr-tiny-t-x4.safetensors"
    assert main(["export", ref, "--layout", "basicsr", "-o", str(out)]) == 0
    assert "basicsr layout" in capsys.readouterr().out
    assert "params" in torch.load(out, weights_only=True)
    assert main(["export", ref, "--layout", "official", "-o", str(tmp_path / "t.pt")]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layout", "official"], "needs -o OUT.pth"),
        (["--layout", "official", "-o", "m.safetensors"], "name it .pt or .pth"),
        (["--onnx", "m.onnx", "-o", "m.pth"], "-o goes with --layout"),
    ],
)
def test_cli_option_errors(tmp_path, monkeypatch, capsys, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", "edsr-tiny-s", "-s", "2", *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
