"""ONNX export: onnxruntime matches torch on several sizes, dynamic axes, metadata, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facd.archs import build_model, preset_spec
from facd.archs.io import save_model
from facd.cli import main
from facd.errors import FacdError
from facd.infer.export import export_onnx, verify_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _net(name: str, scale: int):
    torch.manual_seed(0)
    return build_model(preset_spec(name, scale)).eval()


@pytest.mark.parametrize(
    ("name", "scale"), [("edsr-tiny-s", 4), ("rcan-tiny-s", 2), ("edsr-tiny-s", 3)]
)
def test_onnxruntime_matches_torch(tmp_path, name: str, scale: int) -> None:
    net = _net(name, scale)
    path = export_onnx(net, net.spec, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for n, h, w in [(1, 17, 23), (2, 40, 8), (1, 64, 64)]:
        x = rng.random((n, 3, h, w), dtype=np.float32)
        (out,) = session.run(None, {"lr": x})
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        assert out.shape == (n, 3, h * scale, w * scale)
        assert np.abs(out - ref).max() <= 1e-4
    result = verify_onnx(path, net)
    assert result.ok and len(result.diffs) >= 3 and result.max_abs_diff <= 1e-4


def test_graph_is_dynamic_and_carries_spec(tmp_path) -> None:
    net = _net("edsr-tiny-s", 2)
    proto = onnx.load(str(export_onnx(net, net.spec, tmp_path / "m.onnx", opset=13)))
    assert proto.opset_import[0].version == 13
    (inp,) = proto.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "lr" and dims[1].dim_value == 3
    assert all(d.dim_param for d in (dims[0], dims[2], dims[3]))  # symbolic N, H, W
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["facd.arch"]) == json.loads(net.spec.to_json())
    assert meta["scale"] == "2"


def test_verify_detects_a_different_model(tmp_path) -> None:
    net = _net("edsr-tiny-s", 2)
    path = export_onnx(net, net.spec, tmp_path / "m.onnx")
    other = _net("edsr-tiny-s", 2)
    with torch.no_grad():
        other.tail[-1].bias.add_(1.0)  # 1/255 in the [0, 1] output
    assert not verify_onnx(path, other).ok


def test_bad_opset(tmp_path) -> None:
    net = _net("edsr-tiny-s", 2)
    with pytest.raises(FacdError, match="opset"):
        export_onnx(net, net.spec, tmp_path / "m.onnx", opset=5)


def test_cli(tmp_path, capsys) -> None:
    net = _net("rcan-tiny-s", 4)
    ckpt = tmp_path / "rcan.safetensors"
    save_model(ckpt, net, net.spec)
    out = tmp_path / "rcan.onnx"
    assert main(["export", str(ckpt), "--onnx", str(out)]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime vs torch max |diff|" in text and "ok" in text
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 12, 9), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"lr": x})[0] - ref).max() <= 1e-4
    assert main(["export", "edsr-tiny-s", "--scale", "2", "--onnx", str(out), "--no-verify"]) == 0
    assert "max |diff|" not in capsys.readouterr().out
    assert main(["export", "edsr-tiny-s", "--onnx", str(out)]) == 2  # preset without scale
