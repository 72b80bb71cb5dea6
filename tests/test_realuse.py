"""What a new user meets past the quickstart: every hint of an error can be followed as written,
and the API does what it looks like it does (plugin weights, save_model, taps, TrainPatches,
the Distiller's repr, ``facd methods --plugin``)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import facd
from facd.archs import ArchSpec, build_model, preset_spec
from facd.archs.io import load_model, save_model
from facd.cli import main
from facd.distill.methods import get_method
from facd.errors import CheckpointError, DataError

from .helpers import isolate_registries, make_image_folder

REPO = Path(__file__).resolve().parents[1]
TEACHER = "facd-asset:teacher-edsr-tiny-t-x4.safetensors"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """A private LR cache, not a distributed rank; methods and terms that a plugin registers
    are undone afterwards (other tests list every method)."""
    monkeypatch.setenv("FACD_CACHE", str(tmp_path / "lr-cache"))
    monkeypatch.delenv("RANK", raising=False)
    isolate_registries(monkeypatch)
    sys.modules.pop("my_method", None)
    yield
    sys.modules.pop("my_method", None)


# ------------------------------------------------------------------ hints that can be followed


def test_fitnet_command_hint_without_benchmark_data(tmp_path, monkeypatch, capsys) -> None:
    """docs/extending.md's command on a clone without ../shared: the error names the flag that
    works (it used to suggest --data-root, which facd train does not have); following it runs."""
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    hr = make_image_folder(tmp_path / "hr", count=2)
    args = [
        "train",
        str(REPO / "configs/tiny/facd.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--plugin",
        "my_method",
        "--set",
        "method=fitnet",
        "--set",
        f"data.train_dirs=[{hr}]",
        "--set",
        "train.iterations=2",
        "--set",
        f"val.data_root={tmp_path / 'no-shared'}",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--data-root" not in err.split("facd eval:")[0]
    assert "--set val.sets=[]" in err
    assert main([*args, "--set", "val.sets=[]"]) == 0
    assert (tmp_path / "run" / "last.safetensors").is_file()


def test_preset_scale_hint_can_be_followed() -> None:
    with pytest.raises(CheckpointError, match=r"needs a scale, e\.g\. scale=4"):
        load_model("edsr-tiny-t")
    assert load_model("edsr-tiny-t", scale=4)[1].scale == 4
    with pytest.warns(facd.UntrainedWeightsWarning):
        up = facd.load("edsr-tiny-t", scale=4, device="cpu")
    assert up.scale == 4


def test_distiller_takes_a_teacher_preset_at_the_students_scale() -> None:
    """It said 'needs a scale, e.g. scale=4', and Distiller(..., scale=4) was refused."""
    student = build_model(preset_spec("edsr-tiny-s", 3))
    with pytest.warns(facd.UntrainedWeightsWarning):
        distiller = facd.Distiller(student, "edsr-tiny-t", "ts")
    assert distiller.teacher.spec == preset_spec("edsr-tiny-t", 3)


def test_unsupported_image_hint_can_be_followed(tmp_path) -> None:
    folder = make_image_folder(tmp_path / "hr", count=2)
    wide = np.full((40, 40, 3), 40000, dtype=np.uint16)
    Image.fromarray(wide[..., 0]).convert("I;16").save(folder / "deep.png")
    with pytest.raises(DataError, match=r"deep\.png.*data\.unsupported_images=skip"):
        facd.TrainPatches([folder], 2, 8, 2, 1)
    patches = facd.TrainPatches([folder], 2, 8, 2, 1, unsupported_images="skip")
    assert [p.name for p in patches.unsupported_paths] == ["deep.png"]
    assert len(patches.paths) == 2 and patches[0][0].shape == (2, 3, 8, 8)


def test_unsupported_images_config_key(tmp_path, capsys) -> None:
    folder = make_image_folder(tmp_path / "hr", count=2)
    Image.fromarray(np.full((40, 40), 40000, dtype=np.uint16)).save(folder / "deep.png")
    args = [
        "train",
        str(REPO / "configs/tiny/scratch.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--set",
        f"data.train_dirs=[{folder}]",
        "--set",
        "train.iterations=1",
        "--set",
        "val.sets=[]",
    ]
    assert main(args) == 2
    assert "data.unsupported_images=skip" in capsys.readouterr().err
    assert main([*args, "--set", "data.unsupported_images=skip"]) == 0
    assert (
        "skipped 1 image(s) that cannot be read as 8-bit RGB (deep.png)" in capsys.readouterr().err
    )


def test_train_patches_given_a_file_says_so(tmp_path) -> None:
    image = make_image_folder(tmp_path / "hr", count=1) / "img00.png"
    with pytest.raises(DataError, match=r"img00\.png: is a file; .*folders.*its folder"):
        facd.TrainPatches([image], 2, 8, 2, 1)
    assert len(facd.TrainPatches([image.parent], 2, 8, 2, 1).paths) == 1


# ------------------------------------------------------------------------------ API surprises


def test_plugin_weights_are_as_written() -> None:
    """A declaration without paper_range: {"weight": 1.0} is 1.0, not 1/255."""
    method = facd.MethodDef(
        "as-written", "L1 to GT and TS", {"pixel": {"gt_weight": 1.0}, "fakd": {"weight": 1.0}}
    )
    assert method.paper_range == 1
    assert dict(method.terms)["fakd"] == 1.0
    assert dict(get_method("fakd").terms)["fakd"] == pytest.approx(10 / 255)


def test_builtin_methods_declare_their_range() -> None:
    """Every built-in method tuned on [0, 255] says so (the default is 1)."""
    import dataclasses

    from facd.distill.methods import METHODS

    default = next(f.default for f in dataclasses.fields(facd.MethodDef) if f.name == "paper_range")
    assert default == 1
    ranges = {m.name: m.paper_range for m in METHODS.values()}  # the built-in ones (isolated)
    assert {n for n, r in ranges.items() if r == 1} == {"pisr", "pisr-teacher"}


def test_methods_lists_a_plugin(monkeypatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    assert main(["methods", "--plugin", "my_method", "fitnet"]) == 0
    assert "fitnet 0.001" in capsys.readouterr().out
    assert main(["methods", "--plugin", "no_such_module"]) == 2
    assert "cannot import it" in capsys.readouterr().err


def test_save_model_takes_the_models_spec(tmp_path) -> None:
    net = build_model(preset_spec("edsr-tiny-s", 2))
    save_model(tmp_path / "m.safetensors", net)
    assert load_model(tmp_path / "m.safetensors")[1] == net.spec
    with pytest.raises(CheckpointError, match=r"no \.spec; pass its ArchSpec"):
        save_model(tmp_path / "x.safetensors", torch.nn.Conv2d(3, 3, 1))


@pytest.mark.parametrize("blocks", [1, 2])
def test_shallow_edsr_warns_about_repeated_taps(blocks: int) -> None:
    student = build_model(ArchSpec("edsr", 4, n_feats=8, n_blocks=blocks))
    teacher = build_model(preset_spec("edsr-tiny-t", 4))
    with pytest.warns(UserWarning, match=r"student's default taps repeat a module"):
        facd.Distiller(student, teacher, "fakd")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        facd.Distiller(build_model(ArchSpec("edsr", 4, n_feats=8, n_blocks=3)), teacher, "fakd")


def test_distiller_repr_is_short_with_taps_and_weights() -> None:
    torch.manual_seed(0)
    student = build_model(preset_spec("edsr-tiny-s", 4))
    text = repr(facd.Distiller(student, TEACHER, "facd"))
    assert text.count("\n") <= 7 and "Conv2d" not in text
    assert "method='facd'" in text
    assert (
        "taps=student ['body.0', 'body.1', 'body_out'], teacher ['body.1', 'body.3', 'body_out']"
        in text
    )
    assert "weights=l1_gt 0.5, l1_t 0.5, contrast 0.01569" in text
