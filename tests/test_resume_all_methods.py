"""Bit-exact resume for every method of the registry, and no draws from the global RNG.

Each method of ``facd.distill.methods.METHODS`` (a new method is covered automatically) trains
N steps uninterrupted, and N/2 steps + save + resume in a fresh ``Trainer`` + N/2 steps; the
final weights of the student and of every loss module, and the optimizer state, must be equal
bit for bit. Both runs happen in the same test, so exact equality is meaningful. Every method
runs twice: on the eager path and on the fast path (``FAST_PATH``: channels_last networks and
batches), each pinned explicitly so that a change of the defaults changes neither case.

Set-up that is not a real training set-up, for tests only:

- CSD needs torchvision's ImageNet VGG19 weights, which tests do not have: ``load_vgg19`` is
  replaced by a randomly initialised VGG19 (shapes, gradients and randomness, never CSD results),
  as in ``tests/test_methods_baselines.py``. K = the batch size (4).
- PISR's student needs a stage-1 teacher: an untrained ``edsr-tiny-t`` saved with method
  ``pisr-teacher`` and an untrained encoder beside it.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from facd.archs import build_model, preset_spec
from facd.archs.io import save_model
from facd.distill import csd as csd_mod
from facd.distill.methods import METHODS, get_method
from facd.distill.pisr import ENCODER_FILE, HREncoder, save_encoder
from facd.distill.vgg import VGG19Features
from facd.train.config import load_config
from facd.train.loop import run_training
from facd.train.state import latest_state_path, load_state
from facd.train.trainer import StepRandom, Trainer

from .helpers import make_checkpoint, make_image_folder

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO / "configs" / "tiny" / "facd.yaml"  # every method runs from it via method=
BATCH = 4
STEPS = 4  # N: the interrupted run stops after N/2
EAGER_PATH = ["train.channels_last=false", "train.compile=false"]
FAST_PATH = ["train.channels_last=true", "train.compile=false"]  # see bench_train_step.py


def random_vgg(_path: str | None) -> VGG19Features:
    """Test-only stand-in for ImageNet VGG19 weights (CSD refuses to run without them)."""
    return VGG19Features().freeze()  # initialised from the trainer's seeded set-up


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    return build_assets(tmp_path_factory.mktemp("resume-assets"))


def build_assets(root: Path) -> dict[str, Path]:
    """Synthetic images, a random tiny teacher and a random PISR stage 1 under ``root``
    (also used by tools/method_hashes.py)."""
    spec = preset_spec("edsr-tiny-t", 4)
    stage1 = root / "pisr-teacher"
    stage1.mkdir()
    torch.manual_seed(1)
    save_model(stage1 / "last.safetensors", build_model(spec), spec, {"method": "pisr-teacher"})
    save_encoder(stage1 / ENCODER_FILE, HREncoder(4))
    return {
        "data": make_image_folder(root / "hr"),
        "teacher": make_checkpoint(root / "teacher.safetensors", "edsr-tiny-t", 4),
        "pisr_teacher": stage1 / "last.safetensors",
    }


@pytest.fixture(autouse=True)
def _random_vgg(monkeypatch) -> None:
    monkeypatch.setattr(csd_mod, "load_vgg19", random_vgg)


def overrides(
    method: str, assets: dict[str, Path], iterations: int = STEPS, fast: bool = False
) -> list[str]:
    """The tiny FACD config switched to ``method``, on synthetic images, on the eager path
    (``fast``: the fast path); the path is pinned, whatever the defaults."""
    loss = get_method(method).loss_options()
    pisr_student = bool(loss.vid.weight) and loss.vid.mode == "distill"
    teacher = assets["pisr_teacher"] if pisr_student else assets["teacher"]
    over = [
        f"method={method}",
        f"data.train_dirs=[{assets['data']}]",
        "data.patch_size=4",  # HR 16 x 16: VGG19 down to relu5_1 at 1 x 1
        f"train.batch_size={BATCH}",
        f"train.iterations={iterations}",
        "train.log_every=1",
        f"train.save_every={max(iterations // 2, 1)}",
        "val.sets=[]",
        f"teacher.weights={teacher}",
        *(FAST_PATH if fast else EAGER_PATH),
    ]
    if loss.csd.weight:
        over.append(f"loss.csd.negatives={BATCH}")
    return over


def final_state(run_dir: Path) -> dict:
    path = latest_state_path(run_dir)
    assert path is not None, f"no training state in {run_dir}"
    return load_state(path)


def assert_tensors_equal(a: object, b: object, where: str) -> None:
    """Nested dicts/lists of tensors and plain values, equal bit for bit."""
    if isinstance(a, torch.Tensor):
        if not (isinstance(b, torch.Tensor) and torch.equal(a, b)):
            diff = (a.double() - b.double()).abs().max().item() if a.shape == b.shape else None
            pytest.fail(f"{where} differs (max |difference| {diff})", pytrace=False)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for k in a:
            assert_tensors_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_tensors_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("path", ["eager", "fast"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_is_bit_exact_for_every_method(method, path, assets, tmp_path):
    rcfg = load_config(BASE_CONFIG, overrides(method, assets, fast=path == "fast"))
    assert rcfg.config.train.channels_last == (path == "fast")
    run_training(rcfg, tmp_path / "once", progress=False)
    run_training(rcfg, tmp_path / "twice", progress=False, stop_after=STEPS // 2)
    assert final_state(tmp_path / "twice")["iteration"] == STEPS // 2
    run_training(rcfg, tmp_path / "twice", resume=True, progress=False)  # a fresh Trainer
    a, b = final_state(tmp_path / "once"), final_state(tmp_path / "twice")
    assert a["iteration"] == b["iteration"] == STEPS
    assert a["model"].keys() == b["model"].keys()  # student.* and terms.* (all loss modules)
    assert_tensors_equal(a["model"], b["model"], "model")
    assert_tensors_equal(a["optimizer"], b["optimizer"], "optimizer")


def global_rng() -> tuple[torch.Tensor, np.ndarray, tuple]:
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_training_never_draws_from_the_global_rng(method, assets, tmp_path):
    """After set-up, a run (loader start included) leaves torch/numpy/python global RNGs alone.

    The global state is what a resume restores from rank 0's checkpoint; a draw from it during
    training would make a resumed run (and every DDP rank but 0) differ from an uninterrupted one.
    """
    rcfg = load_config(BASE_CONFIG, overrides(method, assets, iterations=1))
    Trainer(rcfg, tmp_path / "setup-only", log=lambda *_: None)  # seeds and builds: set-up draws
    after_setup = global_rng()
    run_training(rcfg, tmp_path / "run", progress=False)  # the same set-up, then one step
    after_run = global_rng()
    assert torch.equal(after_setup[0], after_run[0]), "torch's global generator was drawn from"
    assert np.array_equal(after_setup[1], after_run[1]), "numpy's global generator was drawn from"
    assert after_setup[2] == after_run[2], "python's random module was drawn from"


def test_step_generators_depend_only_on_seed_iteration_rank_and_stream():
    def draw(r: StepRandom, stream: str = "csd", iteration: int | None = None) -> list[int]:
        return torch.randperm(24, generator=r.generator(stream, iteration)).tolist()

    r = StepRandom(seed=0, rank=0, iteration=5)
    before = torch.get_rng_state()
    assert draw(r) == draw(StepRandom(seed=0, rank=0, iteration=5)) == draw(r, iteration=5)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is not touched
    others = [
        draw(StepRandom(1, 0, 5)),
        draw(StepRandom(0, 1, 5)),
        draw(StepRandom(0, 0, 6)),
        draw(r, "data_loader"),
    ]
    assert all(o != draw(r) for o in others)
