"""A new user's friction: untrained-preset warnings, API vs CLI wording, ``facd methods`` width,
the PISR stage-1 hint, ``dir(facd)``, the LR-cache progress line and training images smaller
than the patch (every path: cache on/off, distributed slices, off-by-one sizes, x3 rounding)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import facd
from facd.cli import main
from facd.errors import CheckpointError, ConfigError, DataError, FacdError

from .helpers import make_checkpoint, make_image_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """A private, empty LR cache for every test; not a distributed rank."""
    monkeypatch.setenv("FACD_CACHE", str(tmp_path / "lr-cache"))
    monkeypatch.delenv("RANK", raising=False)


def _png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- 1. untrained


def test_api_preset_warns_that_weights_are_random(tmp_path):
    with pytest.warns(facd.UntrainedWeightsWarning, match="weights are random") as caught:
        up = facd.load("edsr-tiny-s", scale=2, device="cpu", tile=0)
    assert len(caught) == 1
    assert Path(caught[0].filename).resolve() == Path(__file__).resolve()  # the caller's line
    assert up(np.zeros((4, 4, 3), np.uint8)).shape == (8, 8, 3)
    ckpt = make_checkpoint(tmp_path / "m.safetensors", "edsr-tiny-s", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint does not warn
        facd.load(str(ckpt), device="cpu")
        facd.load(ckpt, device="cpu")


def test_cli_upscale_and_eval_preset_warn_on_stderr(tmp_path, capsys):
    img = _png(tmp_path / "in" / "a.png", 6, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CLI prints a line; no Python warning is raised
        code = main(["upscale", "edsr-tiny-s", str(img), "-o", str(tmp_path / "o"), "-s", "2", "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert err.startswith("facd upscale: warning: 'edsr-tiny-s' is a preset without a checkpoint")
    assert "weights are random" in err and err.count("\n") == 1
    ckpt = make_checkpoint(tmp_path / "m.safetensors", "edsr-tiny-s", 2)
    assert main(["upscale", str(ckpt), str(img), "-o", str(tmp_path / "o2"), "-q"]) == 0
    assert "warning" not in capsys.readouterr().err

    make_image_folder(tmp_path / "root" / "Set5" / "HR", count=1, size=(16, 16))
    args = ["eval", "--data-root", str(tmp_path / "root"), "--sets", "Set5", "--device", "cpu", "-q"]  # fmt: skip
    assert main([*args, "--model", "edsr-tiny-s", "--scale", "2"]) == 0
    assert "facd eval: warning: 'edsr-tiny-s' is a preset without a checkpoint" in (
        capsys.readouterr().err
    )
    assert main([*args, "--model", str(ckpt)]) == 0
    assert "warning" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- 2. wording


def _no_half(monkeypatch):
    import facd.infer.device as device

    monkeypatch.setattr(device, "half_supported", lambda *_: False)


def _no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_api_errors_name_keywords_not_flags(monkeypatch):
    _no_half(monkeypatch)
    _no_cuda(monkeypatch)
    cases = [
        (dict(), CheckpointError, "scale=4"),
        (dict(scale=2, device="cpu", precision="bf16"), FacdError, "precision='fp32'"),
        (dict(scale=2, device="cuda"), FacdError, "device='cpu'"),
    ]
    for kwargs, cls, keyword in cases:
        with pytest.raises(cls) as info:
            facd.load("edsr-tiny-s", **kwargs)
        assert keyword in str(info.value) and "--" not in str(info.value), str(info.value)


def test_cli_errors_keep_flags(tmp_path, capsys, monkeypatch):
    _no_half(monkeypatch)
    _no_cuda(monkeypatch)
    img = _png(tmp_path / "a.png", 6, 5)
    base = ["upscale", "edsr-tiny-s", str(img), "-o", str(tmp_path / "o"), "-q"]
    cases = [
        ([], "--scale 4"),
        (["-s", "2", "--device", "cpu", "--precision", "bf16"], "--precision fp32"),
        (["-s", "2", "--device", "cuda"], "--device cpu"),
    ]
    for extra, flag in cases:
        assert main(base + extra) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("facd upscale: error:") and flag in last, last
        assert "=" not in last.split("error:", 1)[1], last  # no API keyword spelling
    assert main(["eval", "--model", "edsr-tiny-s", "--device", "cpu", "-q"]) == 2
    assert "--scale 4" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 3. methods


def test_methods_fits_100_columns_and_wide_shows_the_rest(capsys):
    from facd.commands.methods import format_term, method_rows

    rows = method_rows()
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    flat = " ".join(" ".join(line.split()) for line in lines)
    for r in rows:  # every method and every term is still there (terms may wrap)
        assert any(line.split()[:1] == [r["method"]] for line in lines)
        for t in r["terms"]:
            assert format_term(t).replace(",", ", ") in flat.replace(",", ", ").replace("  ", " ")
    assert "--wide" in lines[-1]
    assert main(["methods", "--wide"]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert wide[0].split()[-1] == "source" and len(wide) == len(rows) + 1
    for r, line in zip(rows, wide[1:], strict=True):
        assert line.startswith(r["method"] + " ") and line.endswith(r["source"])


def test_methods_wide_and_json_exclusive():
    with pytest.raises(SystemExit) as info:
        main(["methods", "--wide", "--json"])
    assert info.value.code == 2


# ----------------------------------------------------------------------------- 4. PISR


def _pisr_student_config(data, teacher):
    """The tiny PISR student config on ``data``, with ``teacher`` as its stage-1 weights."""
    from facd.train.config import load_config

    return load_config(
        REPO / "configs" / "tiny" / "pisr.yaml",
        [
            f"data.train_dirs=[{data}]",
            "data.patch_size=8",
            "train.batch_size=2",
            "train.iterations=2",
            "val.sets=[]",
            f"teacher.weights={teacher}",
        ],
    )


def test_pisr_missing_teacher_stage_says_run_pisr_teacher_first(tmp_path):
    from facd.train.trainer import Trainer

    data = make_image_folder(tmp_path / "hr", count=2, size=(40, 40))
    stage1 = tmp_path / "stage1"
    teacher = make_checkpoint(stage1 / "last.safetensors", "edsr-tiny-t", 4)
    rcfg = _pisr_student_config(data, teacher)
    with pytest.raises(ConfigError) as info:
        Trainer(rcfg, tmp_path / "run", log=lambda *_: None)
    msg = str(info.value)
    assert "\n" not in msg
    assert "pisr_encoder.safetensors not found" in msg
    assert "run the pisr-teacher config first" in msg
    assert f"facd train configs/tiny/pisr-teacher.yaml --out {stage1}" in msg


# ----------------------------------------------------------------------------- 5. dir(facd)


def test_dir_facd_shows_only_the_public_api_and_import_stays_light():
    code = (
        "import sys, facd; d = dir(facd); light = 'torch' not in sys.modules; "
        "import facd.archs, facd.data.patches; "
        "print(d == sorted(facd.__all__), light, dir(facd) == d, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    assert out == ["True", "True", "True", "True"]
    assert set(dir(facd)) == {
        "ModelDescription",
        "UntrainedWeightsWarning",
        "Upscaler",
        "__version__",
        "load",
        # distillation in any loop (docs/api.md) and new methods (docs/extending.md)
        "Distiller",
        "DistillOutput",
        "TrainPatches",
        "MethodDef",
        "register_method",
        "LossTerm",
        "Needs",
        "SetupContext",
        "StepContext",
        "TermEnv",
        "register_term",
    }
    from facd.infer.api import Upscaler

    assert facd.Upscaler is Upscaler
    with pytest.raises(AttributeError):
        facd.no_such_name  # noqa: B018


# ----------------------------------------------------------------------------- 6. LR cache


def test_first_run_builds_the_lr_cache_with_its_own_progress_bar(tmp_path, capsys, monkeypatch):
    from facd.data.patches import TrainPatches

    data = make_image_folder(tmp_path / "hr", count=3, size=(40, 48))
    TrainPatches([data], 2, 8, 2, 4, use_cache=False)
    assert capsys.readouterr().err == ""  # no cache: nothing to announce
    monkeypatch.setenv("RANK", "1")
    TrainPatches([data], 2, 8, 2, 4)  # another rank builds silently
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("RANK")
    monkeypatch.setenv("FACD_CACHE", str(tmp_path / "fresh-cache"))
    first = TrainPatches([data], 2, 8, 2, 4)
    err = capsys.readouterr().err
    assert err.startswith(
        f"data: building the x2 LR cache for 3 of 3 training image(s) in "
        f"{tmp_path / 'fresh-cache' / 'lr'}"
    )
    assert "LR cache: 100%" in err and "3/3" in err
    again = TrainPatches([data], 2, 8, 2, 4)
    assert capsys.readouterr().err == ""  # everything cached: silent
    for a, b in zip(first.pairs, again.pairs, strict=True):
        assert np.array_equal(a[1], b[1])
    make_image_folder(tmp_path / "more", count=1, size=(40, 48), seed=5)
    TrainPatches([data, tmp_path / "more"], 2, 8, 2, 4, progress=False)  # --no-progress
    err = capsys.readouterr().err
    assert "for 1 of 4 training image(s)" in err and "img/s" not in err  # the line, no bar


# ----------------------------------------------------------------------------- 7. small images


def _mixed_folder(root: Path) -> dict[str, Path]:
    """x3, LR patch 8 (HR 24): sizes around the limit, as width x height."""
    sizes = {
        "a_big": (40, 40),
        "b_tiny": (2, 2),  # smaller than the scale factor itself
        "c_one_short": (24, 23),  # one pixel too small
        "d_exact": (24, 24),  # exactly the HR patch
        "e_odd": (26, 25),  # x3 crop to 24x24: LR 8x8, just enough
        "f_odd_short": (35, 26),  # large in one axis, LR 11x8 -> fine
        "g_wide_short": (50, 23),  # wide enough, LR height 7
    }
    return {name: _png(root / f"{name}.png", w, h, i) for i, (name, (w, h)) in enumerate(sizes.items())}  # fmt: skip


@pytest.mark.parametrize("use_cache", [True, False])
def test_small_training_image_named_or_skipped(tmp_path, use_cache):
    from facd.data.patches import TrainPatches

    files = _mixed_folder(tmp_path / "hr")
    with pytest.raises(DataError) as info:
        TrainPatches([tmp_path / "hr"], 3, 8, 4, 20, use_cache=use_cache)
    assert str(info.value) == (
        f"{files['b_tiny']}: image is 2x2, smaller than the HR patch 24x24 (data.patch_size 8 "
        "x scale 3); remove it, lower data.patch_size or set data.small_images=skip"
    )
    (files["b_tiny"]).unlink()
    with pytest.raises(DataError, match=r"c_one_short.png: image is 24x23, smaller"):
        TrainPatches([tmp_path / "hr"], 3, 8, 4, 20, use_cache=use_cache)
    _png(files["b_tiny"], 2, 2)
    full = TrainPatches([tmp_path / "hr"], 3, 8, 4, 20, use_cache=use_cache, small_images="skip")
    assert [p.stem for p in full.paths] == ["a_big", "d_exact", "e_odd", "f_odd_short"]
    assert [p.stem for p in full.skipped_paths] == ["b_tiny", "c_one_short", "g_wide_short"]
    assert full.skipped == 3
    for hr, lr in full.pairs:
        assert lr.shape[0] >= 8 and lr.shape[1] >= 8 and hr.shape[:2] == (lr.shape[0] * 3, lr.shape[1] * 3)  # fmt: skip
    for t in range(len(full)):  # every image can be drawn; no patch falls off an image
        lr, hr = full[t]
        assert lr.shape == (4, 3, 8, 8) and hr.shape == (4, 3, 24, 24)
    # distributed: two ranks' slices skip the same images and together give the full batch
    halves = [
        TrainPatches(
            [tmp_path / "hr"],
            3,
            8,
            4,
            20,
            use_cache=use_cache,
            small_images="skip",
            sample_slice=slice(k * 2, k * 2 + 2),
        )  # fmt: skip
        for k in range(2)
    ]
    assert all(h.paths == full.paths for h in halves)
    for t in (0, 7, 19):
        lr = torch.cat([halves[0][t][0], halves[1][t][0]])
        assert torch.equal(lr, full[t][0])


def test_all_images_too_small_with_skip(tmp_path):
    from facd.data.patches import TrainPatches

    _png(tmp_path / "hr" / "a.png", 2, 2)
    _png(tmp_path / "hr" / "b.png", 23, 30)
    with pytest.raises(DataError, match="no training image is at least 24x24 pixels"):
        TrainPatches([tmp_path / "hr"], 3, 8, 4, 20, small_images="skip")


CONFIG = """\
method: scratch
scale: 3
seed: 0
student: {preset: edsr-tiny-s}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [], every: 0}
train: {iterations: 2, batch_size: 2, log_every: 1, save_every: 2, device: cpu}
"""


def test_cli_train_small_image_error_and_skip(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_image_folder(tmp_path / "data", count=2, size=(40, 48))
    _png(tmp_path / "data" / "tiny.png", 2, 2)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    assert main(["train", "cfg.yaml", "--out", "run", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "facd train: error: data/tiny.png: image is 2x2, smaller than the HR patch 24x24 "
        "(data.patch_size 8 x scale 3); remove it, lower data.patch_size or set "
        "data.small_images=skip"
    )
    code = main(
        ["train", "cfg.yaml", "--out", "run2", "--no-progress", "--set", "data.small_images=skip"]
    )
    assert code == 0
    assert "data: skipped 1 image(s) smaller than the HR patch (tiny.png; 2 used)" in (
        capsys.readouterr().err
    )


def test_pisr_without_any_teacher_stage_says_run_pisr_teacher_first(tmp_path):
    """No stage-1 folder at all: the first error already names the pisr-teacher config."""
    from facd.train.trainer import Trainer

    data = make_image_folder(tmp_path / "hr", count=2, size=(40, 40))
    missing = tmp_path / "stage1" / "last.safetensors"
    rcfg = _pisr_student_config(data, missing)
    with pytest.raises(ConfigError) as info:
        Trainer(rcfg, tmp_path / "run", log=lambda *_: None)
    msg = str(info.value)
    assert "\n" not in msg and f"{missing} not found" in msg
    assert "run the pisr-teacher config first" in msg
