"""What used to be lost or blamed on the wrong thing is named: LR images without HR in
``facd eval``, frames and colour profiles in ``facd upscale``, a broken teacher or input instead
of a loss term or the weights, a dangling or top-level ``--out``, a symlinked ``checkpoints/``
or ``tb/``, and a resume under another thread count."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import facd
from facd import Distiller
from facd.archs import build_model, preset_spec
from facd.archs.io import save_model
from facd.cli import main
from facd.errors import DataError, DistillerError

from .helpers import make_checkpoint, make_finished_run, make_image_folder

CONFIG = """\
method: {method}
scale: 2
seed: 0
student: {{preset: edsr-tiny-s}}
{teacher}data: {{train_dirs: [data], patch_size: 8}}
val: {{sets: [], every: 0}}
train: {{iterations: 2, batch_size: 2, log_every: 1, save_every: 1, device: cpu}}
"""
SCRATCH = CONFIG.format(method="scratch", teacher="")
TS = CONFIG.format(
    method="ts", teacher="teacher: {preset: edsr-tiny-t, weights: teacher.safetensors}\n"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))


def lines(capsys, kind: str, command: str = "train") -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [ln for ln in err.splitlines() if ln.startswith(f"facd {command}: {kind}:")]


def error_line(capsys, command: str = "train") -> str:
    found = lines(capsys, "error", command)
    assert len(found) == 1, found
    return found[0]


def train(*extra: str, out: str = "run", config: str = "cfg.yaml") -> int:
    return main(["train", config, "--out", out, "--no-progress", *extra])


@pytest.fixture()
def work(tmp_path, monkeypatch) -> Path:
    """``cfg.yaml`` (scratch) and ``data/`` in the working folder ``tmp_path``; no run yet."""
    make_image_folder(tmp_path / "data", count=3, size=(40, 48))
    (tmp_path / "cfg.yaml").write_text(SCRATCH)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------- 1. eval: LR images without an HR image


def test_eval_counts_and_names_lr_images_without_hr(tmp_path, capsys):
    make_image_folder(tmp_path / "bench" / "Tiny" / "HR", count=2, size=(24, 20))
    lr_dir = tmp_path / "bench" / "Tiny" / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    for name in ("ghostx2.png", "lostx2.png"):
        Image.new("RGB", (12, 10)).save(lr_dir / name)
    argv = ["eval", "-m", "bicubic", "-s", "2", "--data-root", str(tmp_path / "bench")]
    assert main([*argv, "--sets", "Tiny", "-q"]) == 0
    (line,) = lines(capsys, "warning", "eval")
    assert f"{lr_dir}: 2 LR image(s) have no HR image in" in line
    assert "(ghostx2.png, lostx2.png)" in line and "Tiny is scored on its 2 HR image(s)" in line


def test_eval_is_quiet_when_every_lr_image_has_its_hr(tmp_path, capsys):
    make_image_folder(tmp_path / "bench" / "Tiny" / "HR", count=2, size=(24, 20))
    lr_dir = tmp_path / "bench" / "Tiny" / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    (lr_dir / "notes.txt").write_text("not an image")
    argv = ["eval", "-m", "bicubic", "-s", "2", "--data-root", str(tmp_path / "bench")]
    assert main([*argv, "--sets", "Tiny", "-q"]) == 0
    assert lines(capsys, "warning", "eval") == []


# ------------------------------------------------ 2. upscale: colour profiles and animations


def icc_header(space: bytes) -> bytes:
    """A minimal ICC profile header (128 bytes and an empty tag table) of colour space
    ``space``; the bytes are copied as they are, which is all the test needs."""
    head = bytearray(132)
    head[0:4] = (132).to_bytes(4, "big")
    head[12:16], head[16:20], head[20:24], head[36:40] = b"mntr", space, b"XYZ ", b"acsp"
    return bytes(head)


@pytest.fixture()
def model(tmp_path) -> Path:
    return make_checkpoint(tmp_path / "m.safetensors", preset="edsr-tiny-s", scale=2)


def upscale(model: Path, src: Path, out: Path) -> int:
    return main(["upscale", str(model), str(src), "-o", str(out), "-q"])


def rgb(seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("fmt", ["png", "webp", "jpg"])
def test_upscale_keeps_an_rgb_colour_profile(model, tmp_path, capsys, fmt):
    profile = icc_header(b"RGB ")
    rgb().save(tmp_path / "in.png", icc_profile=profile)
    out = tmp_path / "out"
    argv = ["upscale", str(model), str(tmp_path / "in.png"), "-o", str(out), "--format", fmt]
    assert main([*argv, "-q"]) == 0
    with Image.open(out / f"in_x2.{fmt}") as img:
        assert img.info.get("icc_profile") == profile
        assert img.size == (20, 24)
    assert lines(capsys, "warning", "upscale") == []


def test_upscale_keeps_a_grey_profile_on_a_grey_output(model, tmp_path, capsys):
    profile = icc_header(b"GRAY")
    rgb().convert("L").save(tmp_path / "g.png", icc_profile=profile)
    assert upscale(model, tmp_path / "g.png", tmp_path / "o") == 0
    with Image.open(tmp_path / "o" / "g_x2.png") as img:
        assert img.mode == "L" and img.info.get("icc_profile") == profile
    assert lines(capsys, "warning", "upscale") == []


def test_upscale_warns_about_a_profile_it_cannot_keep(model, tmp_path, capsys):
    rgb().save(tmp_path / "in.png", icc_profile=icc_header(b"GRAY"))
    assert upscale(model, tmp_path / "in.png", tmp_path / "o") == 0
    (line,) = lines(capsys, "warning", "upscale")
    assert f"{tmp_path / 'in.png'}: its ICC colour profile (GRAY) does not describe" in line
    assert "not copied to in_x2.png" in line
    with Image.open(tmp_path / "o" / "in_x2.png") as img:
        assert "icc_profile" not in img.info


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_upscale_names_an_animation_whose_frames_it_drops(model, tmp_path, capsys, fmt):
    src = tmp_path / f"anim.{fmt.lower()}"
    frames = [rgb(seed) for seed in range(3)]
    frames[0].save(src, format=fmt, save_all=True, append_images=frames[1:], lossless=True)
    assert main(["upscale", str(model), str(src), "-o", str(tmp_path / "o"), "-q"]) == 0
    (line,) = lines(capsys, "warning", "upscale")
    assert line == (
        f"facd upscale: warning: {src}: animated image with 3 frames; only the first frame is "
        f"upscaled (anim_x2.png is a still image)"
    )
    first = facd.load(str(model), device="cpu")(np.asarray(frames[0]))
    with Image.open(tmp_path / "o" / "anim_x2.png") as img:
        assert np.array_equal(np.asarray(img), first)


# ------------------------------------------- 3. a broken teacher or input is named as such


def broken_teacher(path: Path, how: str) -> Path:
    """An edsr-tiny-t x2 teacher whose first convolution holds a NaN (``nan``), or whose
    weights are all finite but 1e30 times too large, so its output overflows (``overflow``)."""
    torch.manual_seed(4)
    spec = preset_spec("edsr-tiny-t", 2)
    net = build_model(spec)
    with torch.no_grad():
        if how == "nan":
            net.head[0].weight[0, 0, 0, 0] = float("nan")
        else:
            for p in net.parameters():
                p.mul_(1e30)
    save_model(path, net, spec)
    return path


@pytest.fixture()
def ts_work(work) -> Path:
    (work / "cfg.yaml").write_text(TS)
    return work


def test_a_nan_teacher_file_is_named_not_a_loss_term(ts_work, capsys):
    broken_teacher(ts_work / "teacher.safetensors", "nan")
    assert train() == 2
    line = error_line(capsys)
    assert line == (
        "facd train: error: teacher weights teacher.safetensors hold NaN or infinite values in "
        "1 tensor(s) (first: 'head.0.weight'); the teacher is broken (e.g. saved from a "
        "diverged training run): use an intact teacher checkpoint"
    )
    assert not (ts_work / "run").exists()


def test_a_teacher_whose_output_overflows_is_named(ts_work, capsys):
    broken_teacher(ts_work / "teacher.safetensors", "overflow")
    assert train() == 3
    line = error_line(capsys)
    assert line.startswith(
        "facd train: error: non-finite loss at iteration 1: the teacher teacher.safetensors "
        "returned NaN or infinite values on this batch (its weights overflow in fp32, or are "
        "broken): check teacher.weights (term 'l1_t' is "
    )


def test_the_distiller_names_a_nan_teacher_module_and_a_nan_input():
    torch.manual_seed(0)
    student = build_model(preset_spec("edsr-tiny-s", 2))
    teacher = build_model(preset_spec("edsr-tiny-t", 2))
    with torch.no_grad():
        teacher.tail[-1].bias[0] = float("inf")
    with pytest.raises(DistillerError, match=r"^the teacher's weights hold NaN or infinite"):
        Distiller(student, teacher, "ts")
    good = build_model(preset_spec("edsr-tiny-t", 2))
    distiller = Distiller(student, good, "ts")
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    lr[1, 0, 3, 3] = float("nan")
    with pytest.raises(DistillerError) as err:
        distiller(lr, hr)
    assert str(err.value) == (
        "lr holds 1 NaN or infinite value(s); the input is broken, not the networks: check the "
        "data that made this batch"
    )


def test_a_nan_in_upscale_input_is_blamed_on_the_input_not_the_weights(model):
    up = facd.load(str(model), device="cpu")
    img = np.random.default_rng(0).random((8, 9, 3)).astype(np.float32)
    img[2, 3, 1] = np.nan
    with pytest.raises(DataError) as err:
        up(img)
    assert str(err.value) == (
        "float image (float32) holds 1 NaN or infinite value(s), which the network cannot "
        "upscale; replace them first (numpy.nan_to_num or torch.nan_to_num)"
    )
    x = torch.rand(3, 8, 9)
    x[0, 0, 0] = float("inf")
    with pytest.raises(DataError, match=r"^float tensor \(torch.float32\) holds 1 NaN"):
        up(x)


# ------------------------------------------------------------- 4., 5. --out itself


def test_a_dangling_out_symlink_is_named(work, capsys):
    (work / "run").symlink_to(work / "gone" / "run", target_is_directory=True)
    assert train() == 2
    assert error_line(capsys) == (
        f"facd train: error: --out run is a dangling symbolic link (to {work / 'gone' / 'run'}, "
        "which does not exist); create the folder it points to, or give another --out"
    )
    assert not (work / "gone").exists()


def test_out_home_is_refused_with_a_sub_folder_to_use(work, monkeypatch, capsys):
    home = work / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for mode in ((), ("--resume",)):
        assert train(*mode, out=str(home)) == 2
        assert error_line(capsys) == (
            f"facd train: error: --out {home} is your home folder; a run writes config.yaml, "
            "checkpoints/, tb/ and its weights directly into --out: give it a fresh "
            f"sub-folder, e.g. --out {home}/runs/my-run"
        )
    assert files_under(home) == []


def test_out_root_is_refused_before_anything_is_written(work, capsys):
    had_lock = Path("/.facd.lock").exists()
    assert train(out="/") == 2
    assert error_line(capsys) == (
        "facd train: error: --out / is the root folder; a run writes config.yaml, "
        "checkpoints/, tb/ and its weights directly into --out: give it a fresh sub-folder, "
        "e.g. --out /runs/my-run"
    )
    assert Path("/.facd.lock").exists() == had_lock


# ------------------------------------------------ 6. resuming under another thread count


def test_resume_with_another_thread_count_warns_in_one_line(tmp_path, monkeypatch, capsys):
    root = make_finished_run(tmp_path, SCRATCH)  # trained with 1 thread (conftest)
    monkeypatch.chdir(root)
    state = torch.load(root / "run/checkpoints/state-00000002.pt", weights_only=True)
    assert state["threads"] == 1
    assert "thread" not in (root / "run/config.yaml").read_text()  # fingerprints unchanged
    capsys.readouterr()
    torch.set_num_threads(2)  # conftest restores the count
    assert train("--resume", "--set", "train.iterations=3") == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "CPU threads" in ln]
    assert warned == [
        "warning: run/checkpoints/state-00000002.pt was saved by a process with 1 CPU threads, "
        "this one has 2; float sums group differently, so the resumed run is not bit-identical "
        "to an uninterrupted one (last digits): set OMP_NUM_THREADS=1 for an exact resume"
    ]
    assert train("--resume", "--set", "train.iterations=4") == 0  # state 3: saved with 2
    assert "CPU threads" not in capsys.readouterr().err


# ------------------------------------ 7. a symlinked checkpoints/ or tb/ in the run folder


@pytest.mark.parametrize("folder", ["checkpoints", "tb"])
def test_a_fresh_run_never_writes_through_a_symlinked_folder(work, capsys, folder):
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (work / "run").mkdir()
    (work / "run" / folder).symlink_to(elsewhere, target_is_directory=True)
    assert train() == 2
    assert error_line(capsys) == (
        f"facd train: error: run/{folder} is a symbolic link (to {elsewhere}); facd does not "
        "write or delete through links out of run; nothing was written; replace the link by a "
        "real folder (move its files in), or choose another --out"
    )
    assert files_under(elsewhere) == [] and files_under(work / "run") == []


@pytest.mark.parametrize("folder", ["checkpoints", "tb"])
def test_resume_never_writes_through_a_symlinked_folder(tmp_path, monkeypatch, capsys, folder):
    root = make_finished_run(tmp_path, SCRATCH)
    monkeypatch.chdir(root)
    elsewhere = root / "elsewhere"
    shutil.move(root / "run" / folder, elsewhere)
    (root / "run" / folder).symlink_to(elsewhere, target_is_directory=True)
    before = {p: os.stat(elsewhere / p).st_mtime_ns for p in files_under(elsewhere)}
    capsys.readouterr()
    assert train("--resume", "--set", "train.iterations=3") == 2
    assert f"facd train: error: run/{folder} is a symbolic link (to {elsewhere})" in (
        error_line(capsys)
    )
    assert {p: os.stat(elsewhere / p).st_mtime_ns for p in files_under(elsewhere)} == before
