"""Benchmark evaluation: data sets, ``evaluate``/``validate``, ``facd eval`` and the bicubic table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from facd.archs import build_model, preset_spec
from facd.cli import main
from facd.data.benchmark import BenchmarkSet
from facd.data.imresize import bicubic_downsample, bicubic_upsample
from facd.errors import DataError
from facd.evaluate import evaluate, forward_x8, validate
from facd.metrics import psnr_y, ssim_y

REPO = Path(__file__).resolve().parents[1]

# Bicubic baseline as published (VDSR / LapSRN / EDSR / RCAN tables): (PSNR, SSIM).
PUBLISHED_BICUBIC = {
    "Set5": {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)},
    "Set14": {2: (30.24, 0.8688), 3: (27.55, 0.7742), 4: (26.00, 0.7027)},
    "B100": {2: (29.56, 0.8431), 3: (27.21, 0.7385), 4: (25.96, 0.6675)},
    "Urban100": {2: (26.88, 0.8403), 3: (24.46, 0.7349), 4: (23.14, 0.6577)},
}
PSNR_TOL = 0.02
SSIM_TOL = 0.001


def _assert_published(set_name: str, scale: int, psnr: float, ssim: float) -> None:
    ref_psnr, ref_ssim = PUBLISHED_BICUBIC[set_name][scale]
    where = f"{set_name} x{scale}"
    assert abs(psnr - ref_psnr) <= PSNR_TOL, f"{where}: PSNR {psnr:.3f} vs published {ref_psnr}"
    assert abs(ssim - ref_ssim) <= SSIM_TOL, f"{where}: SSIM {ssim:.4f} vs published {ref_ssim}"


@pytest.fixture()
def tiny_root(tmp_path: Path) -> Path:
    """A synthetic benchmark: 'Tiny' with two RGB images and one single-channel image, no LR."""
    rng = np.random.default_rng(0)
    hr_dir = tmp_path / "data" / "Tiny" / "HR"
    hr_dir.mkdir(parents=True)
    for name, shape in (("a", (50, 37, 3)), ("b", (40, 40, 3)), ("g", (45, 38))):
        base = rng.integers(0, 256, size=(shape[0] // 4 + 1, shape[1] // 4 + 1) + shape[2:])
        img = np.kron(base, np.ones((4, 4) + (1,) * (len(shape) - 2)))[: shape[0], : shape[1]]
        Image.fromarray(img.astype(np.uint8)).save(hr_dir / f"{name}.png")
    return tmp_path / "data"


# ----------------------------------------------------------------------------- data sets


def test_benchmark_set_items(tiny_root: Path) -> None:
    bench = BenchmarkSet(tiny_root, "Tiny", 3)
    assert len(bench) == 3 and bench.names == ["a", "b", "g"]
    a, _, g = list(bench)
    assert a.hr.shape == (48, 36, 3) and a.lr.shape == (16, 12, 3) and not a.hr_is_gray
    assert g.hr.shape == (45, 36) and g.lr.shape == (15, 12, 3) and g.hr_is_gray
    assert np.array_equal(g.lr[..., 0], g.lr[..., 2])
    raw = np.asarray(Image.open(tiny_root / "Tiny" / "HR" / "a.png"))
    assert np.array_equal(a.lr, bicubic_downsample(raw, 3))


def test_rebuilt_lr_equals_stored_lr(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "Set14" / "HR", tmp_path / "Set14" / "HR")
    stored = BenchmarkSet(data_root, "Set14", 4)
    rebuilt = BenchmarkSet(tmp_path, "Set14", 4)
    assert not rebuilt.lr_path("bridge").exists() and stored.lr_path("bridge").exists()
    for x, y in zip(stored, rebuilt, strict=True):
        assert x.name == y.name and x.hr_is_gray == y.hr_is_gray
        assert np.array_equal(x.hr, y.hr) and np.array_equal(x.lr, y.lr)
    assert [it.name for it in stored if it.hr_is_gray] == ["bridge"]


def test_missing_set_names_folder_and_lists_sets(tiny_root: Path) -> None:
    with pytest.raises(DataError) as err:
        BenchmarkSet(tiny_root, "Set5", 2)
    msg = str(err.value)
    assert str(tiny_root / "Set5" / "HR") in msg and "Tiny" in msg


def test_lr_of_wrong_size_is_reported(tiny_root: Path) -> None:
    lr_dir = tiny_root / "Tiny" / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(lr_dir / "ax2.png")
    with pytest.raises(DataError, match="ax2.png"):
        BenchmarkSet(tiny_root, "Tiny", 2)[0]


# ----------------------------------------------------------------------------- evaluate


def _nearest(scale: int):
    return lambda x: F.interpolate(x, scale_factor=scale, mode="nearest")


def test_forward_x8_of_an_equivariant_model_is_the_model() -> None:
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(forward_x8(_nearest(2), x), _nearest(2)(x), atol=1e-6)


def test_forward_x8_averages_the_back_transformed_outputs() -> None:
    # f adds a ramp along the width; its 8 back-transformed versions average to a known map.
    ramp = lambda x: x + torch.arange(x.shape[-1], dtype=x.dtype)  # noqa: E731
    x = torch.zeros(1, 1, 4, 4)
    ar = torch.arange(4.0)
    cols = ar.expand(4, 4)
    expected = (2 * cols + 2 * cols.flip(-1) + 2 * cols.T + 2 * cols.T.flip(-2)) / 8
    assert torch.allclose(forward_x8(ramp, x)[0, 0], expected)


@pytest.mark.parametrize("name", ["edsr-tiny-s", "rcan-tiny-s"])
def test_forward_x8_keeps_shapes_of_an_untrained_preset(name: str) -> None:
    model = build_model(preset_spec(name, 2)).eval()
    x = torch.rand(1, 3, 6, 9)
    with torch.no_grad():
        y = forward_x8(model, x)
    assert y.shape == (1, 3, 12, 18) and torch.isfinite(y).all()


def test_evaluate_bicubic_matches_direct_metrics(tiny_root: Path) -> None:
    res = evaluate("bicubic", ["Tiny"], 2, tiny_root, "cpu", progress=False)
    per = res["sets"]["Tiny"]["per_image"]
    for item in BenchmarkSet(tiny_root, "Tiny", 2):
        sr = bicubic_upsample(item.lr, 2)
        assert per[item.name]["psnr_y"] == pytest.approx(psnr_y(sr, item.hr, 2), abs=1e-9)
        assert per[item.name]["ssim_y"] == pytest.approx(ssim_y(sr, item.hr, 2), abs=1e-9)
    assert res["sets"]["Tiny"]["psnr_y"] == pytest.approx(
        np.mean([v["psnr_y"] for v in per.values()])
    )


def test_evaluate_quantises_model_output(tiny_root: Path) -> None:
    class Offset(torch.nn.Module):
        def forward(self, x):  # nearest x2 plus 0.4 grey levels: rounds away, then clamps
            return F.interpolate(x, scale_factor=2, mode="nearest") + 0.4 / 255

    res = evaluate(Offset(), ["Tiny"], 2, tiny_root, "cpu", progress=False)
    ref = evaluate(_Nearest(), ["Tiny"], 2, tiny_root, "cpu", progress=False)
    assert res["sets"]["Tiny"]["psnr_y"] == ref["sets"]["Tiny"]["psnr_y"]


class _Nearest(torch.nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")


def test_validate_equals_evaluate_and_restores_mode(data_root: Path, tmp_path: Path) -> None:
    # A mixed set: single-channel bridge plus three same-size B100 images (batched together).
    hr_dir = tmp_path / "Mix" / "HR"
    hr_dir.mkdir(parents=True)
    shutil.copy(data_root / "Set14" / "HR" / "bridge.png", hr_dir)
    for name in ("3096", "8023", "12084"):
        shutil.copy(data_root / "B100" / "HR" / f"{name}.png", hr_dir)
    torch.manual_seed(0)
    model = build_model(preset_spec("edsr-tiny-s", 4)).train()
    bench = BenchmarkSet(tmp_path, "Mix", 4)
    assert len({it.lr.shape for it in bench}) == 2
    val = validate(model, bench, "cpu", batch_size=2)
    assert model.training
    ev = evaluate(model, ["Mix"], 4, tmp_path, "cpu", progress=False)["sets"]["Mix"]
    assert model.training
    assert val["psnr_y"] == pytest.approx(ev["psnr_y"], abs=1e-6)
    assert val["ssim_y"] == pytest.approx(ev["ssim_y"], abs=1e-6)


def test_gray_convention_only_changes_single_channel_images(data_root: Path) -> None:
    native = evaluate("bicubic", ["Set14"], 4, data_root, "cpu", progress=False)
    as_y = evaluate("bicubic", ["Set14"], 4, data_root, "cpu", progress=False, gray="y")
    a, b = native["sets"]["Set14"]["per_image"], as_y["sets"]["Set14"]["per_image"]
    for name in a:
        if name == "bridge":  # grey errors scaled by 219/255 on Y: +20 log10(255/219) dB
            assert b[name]["psnr_y"] - a[name]["psnr_y"] == pytest.approx(1.3215, abs=0.01)
        else:
            assert a[name] == b[name]


# ----------------------------------------------------------------------------- CLI


def test_cli_json_format(tiny_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "r.json"
    argv = ["eval", "--model", "bicubic", "--scale", "2", "--data-root", str(tiny_root)]
    assert main([*argv, "--sets", "Tiny", "--json", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["scale"] == 2 and doc["model"] == "bicubic" and doc["gray"] == "native"
    entry = doc["sets"]["Tiny"]
    assert entry["images"] == 3 and set(entry["per_image"]) == {"a", "b", "g"}
    assert isinstance(entry["psnr_y"], float) and 0 < entry["ssim_y"] <= 1
    table = capsys.readouterr().out
    assert "Tiny" in table and f"{entry['psnr_y']:.3f}" in table


def test_cli_several_scales(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["eval", "-m", "bicubic", "-s", "2", "3", "--data-root", str(tiny_root), "-q"]
    assert main([*argv, "--sets", "Tiny", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "bicubic" and [r["scale"] for r in doc["scales"]] == [2, 3]
    assert all(r["sets"]["Tiny"]["images"] == 3 for r in doc["scales"])


def test_cli_data_root_from_environment(tiny_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACD_DATA_ROOT", str(tiny_root))
    out = tmp_path / "r.json"
    assert (
        main(["eval", "-m", "bicubic", "-s", "4", "--sets", "Tiny", "-q", "--json", str(out)]) == 0
    )
    assert json.loads(out.read_text())["sets"]["Tiny"]["images"] == 3


def test_cli_preset_self_ensemble_and_saved_images(tiny_root: Path, tmp_path: Path) -> None:
    out, img_dir = tmp_path / "r.json", tmp_path / "sr"
    argv = ["eval", "-m", "edsr-tiny-s", "-s", "2", "--data-root", str(tiny_root), "--sets", "Tiny"]
    argv += ["--self-ensemble", "--save-images", str(img_dir), "--json", str(out), "-q"]
    assert main([*argv, "--device", "cpu"]) == 0
    doc = json.loads(out.read_text())
    assert doc["self_ensemble"] is True and doc["arch"].startswith("EDSR x2")
    saved = Image.open(img_dir / "Tiny" / "X2" / "a.png")
    assert saved.size == (36, 50) and saved.mode == "RGB"


def test_cli_checkpoint_scale_is_detected(tiny_root: Path, tmp_path: Path) -> None:
    from facd.archs.io import save_model

    spec = preset_spec("edsr-tiny-s", 3)
    ckpt = tmp_path / "m.safetensors"
    save_model(ckpt, build_model(spec), spec)
    out = tmp_path / "r.json"
    argv = ["eval", "-m", str(ckpt), "--data-root", str(tiny_root), "--sets", "Tiny", "-q"]
    assert main([*argv, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["scale"] == 3
    assert main([*argv, "--scale", "2"]) == 2  # checkpoint is x3


def test_cli_missing_set_is_one_line_naming_the_folder(tiny_root: Path, capsys) -> None:
    argv = ["eval", "-m", "bicubic", "-s", "2", "--data-root", str(tiny_root), "-q"]
    assert main([*argv, "--sets", "Tiny", "Urban100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facd eval: error:") and "\n" not in err
    assert str(tiny_root / "Urban100" / "HR") in err and "Tiny" in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["-m", "bicubic", "--sets", "Tiny"], "--scale"),
        (["-m", "edsr-tiny-s", "-s", "2", "3", "--sets", "Tiny"], "several scales"),
        (["-m", "nope.pt", "-s", "2", "--sets", "Tiny"], "nope.pt"),
    ],
)
def test_cli_bad_arguments(tiny_root: Path, capsys, argv: list[str], needle: str) -> None:
    assert main(["eval", *argv, "--data-root", str(tiny_root), "-q"]) == 2
    assert needle in capsys.readouterr().err


# ----------------------------------------------------------------------------- published table


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_published_table(data_root: Path, scale: int) -> None:
    sets = ["Set5", "Set14", "B100"]  # Urban100 takes minutes on CPU: see the committed JSON
    res = evaluate("bicubic", sets, scale, data_root, "cpu", progress=False)
    for name in sets:
        entry = res["sets"][name]
        assert entry["images"] == {"Set5": 5, "Set14": 14, "B100": 100}[name]
        _assert_published(name, scale, entry["psnr_y"], entry["ssim_y"])


def test_committed_bicubic_results_match_published_table() -> None:
    path = REPO / "results" / "bicubic.json"
    if not path.is_file():
        pytest.skip(f"{path.name} not generated yet (see docs/evaluation.md)")
    doc = json.loads(path.read_text())
    assert doc["model"] == "bicubic" and [r["scale"] for r in doc["scales"]] == [2, 3, 4]
    for res in doc["scales"]:
        assert res["gray"] == "native" and set(res["sets"]) == set(PUBLISHED_BICUBIC)
        for name, entry in res["sets"].items():
            assert entry["images"] == {"Set5": 5, "Set14": 14, "B100": 100, "Urban100": 100}[name]
            _assert_published(name, res["scale"], entry["psnr_y"], entry["ssim_y"])


@pytest.mark.parametrize("gray", ["native", "y"])
def test_torch_and_numpy_scoring_agree(data_root: Path, gray: str) -> None:
    # The torch path is what runs on GPU; check it on CPU against the numpy path.
    from facd.evaluate import _score

    items = [it for it in BenchmarkSet(data_root, "Set14", 4) if it.name in ("bridge", "comic")]
    for item in items:
        sr = torch.tensor(bicubic_upsample(item.lr, 4)).permute(2, 0, 1)[None]
        ((p_np, s_np),) = _score(sr, [item], 4, gray, use_torch=False)
        ((p_t, s_t),) = _score(sr, [item], 4, gray, use_torch=True)
        assert p_t == pytest.approx(p_np, abs=1e-9) and s_t == pytest.approx(s_np, abs=1e-9)


def test_one_device_resolver_and_one_self_ensemble() -> None:
    """evaluate uses the inference package's device choice and x8 ensemble (one definition)."""
    import facd.evaluate as ev
    from facd.infer import device, ensemble

    assert ev.resolve_device is device.resolve_device
    assert ev.forward_x8 is ensemble.forward_x8
    x = torch.arange(12.0).view(1, 1, 3, 4)
    for k in range(8):
        assert torch.equal(ensemble.undo_dihedral(ensemble.dihedral(x, k), k), x)
    assert len({tuple(ensemble.dihedral(x, k).flatten().tolist()) for k in range(8)}) == 8
