"""``facd.Distiller`` refuses what it cannot use, at construction or at the first call, with one
line each (:class:`facd.errors.DistillerError`), instead of a raw torch error later or a
silently wrong run."""

from __future__ import annotations

import pytest
import torch

import facd
from facd.archs import build_model, preset_spec
from facd.errors import DistillerError, FacdError


def net(preset: str, scale: int = 2, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(preset_spec(preset, scale))


def one_line(err: pytest.ExceptionInfo) -> str:
    assert isinstance(err.value, FacdError)
    text = str(err.value)
    assert "\n" not in text
    return text


def batch(n: int = 2, size: int = 8, scale: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(n, 3, size, size), torch.rand(n, 3, size * scale, size * scale)


# ------------------------------------------------------------------------------- construction


def test_teachers_of_another_scale_are_refused_at_construction():
    with pytest.raises(DistillerError) as err:
        facd.Distiller(net("edsr-tiny-s", 2), net("edsr-tiny-t", 4), "facd")
    assert one_line(err) == (
        "the student is x2 but the teacher is x4; distil between networks of one scale"
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_a_teacher_in_another_precision_is_refused(dtype):
    teacher = net("edsr-tiny-t").to(dtype)
    with pytest.raises(DistillerError) as err:
        facd.Distiller(net("edsr-tiny-s"), teacher, "facd")
    name = str(dtype).removeprefix("torch.")
    assert one_line(err).startswith(
        f"the teacher's parameters are {name} but the student's are float32; convert the teacher"
    )


def test_the_student_as_its_own_teacher_is_refused():
    student = net("edsr-tiny-s")
    trained = [p.requires_grad for p in student.parameters()]
    with pytest.raises(DistillerError) as err:
        facd.Distiller(student, student, "ts")
    assert "the student was passed as its own teacher, which would freeze it" in one_line(err)
    assert [p.requires_grad for p in student.parameters()] == trained  # not frozen on the way


def test_a_teacher_sharing_the_students_parameters_is_refused():
    student = net("edsr-tiny-s")
    trained = [p.requires_grad for p in student.parameters()]
    wrapper = torch.nn.Sequential(student)
    with pytest.raises(DistillerError, match="shares .* parameter tensor"):
        facd.Distiller(student, wrapper, "ts")
    assert [p.requires_grad for p in student.parameters()] == trained


def test_the_upscaler_of_facd_load_is_taken_as_its_network(tmp_path):
    from .helpers import make_checkpoint

    path = make_checkpoint(tmp_path / "t.safetensors", "edsr-tiny-t", scale=2, seed=3)
    upscaler = facd.load(str(path), device="cpu", channels_last=False)
    distiller = facd.Distiller(net("edsr-tiny-s"), upscaler, "facd")
    assert distiller.teacher is upscaler.model
    lr, hr = batch()
    out = distiller(lr, hr)
    assert torch.isfinite(out.total)
    assert set(out.terms) == {"l1_gt", "l1_t", "contrast"}


def test_an_upscaler_as_the_student_is_refused(tmp_path):
    from .helpers import make_checkpoint

    path = make_checkpoint(tmp_path / "s.safetensors", "edsr-tiny-s", scale=2)
    with pytest.raises(DistillerError, match="the student is an Upscaler"):
        facd.Distiller(facd.load(str(path), device="cpu"), None, "scratch")


# -------------------------------------------------------------------------------- the batches


@pytest.fixture(scope="module")
def distiller() -> facd.Distiller:
    return facd.Distiller(net("edsr-tiny-s"), net("edsr-tiny-t", seed=1), "facd")


def fresh(d: facd.Distiller) -> facd.Distiller:
    d._batch_checked = False  # as a newly built distiller
    return d


@pytest.mark.parametrize(
    "lr, hr, message",
    [
        (
            torch.rand(2, 3, 8, 8),
            torch.rand(2, 3, 12, 12),
            "hr is 12x12 but lr is 8x8 and the student is x2; hr must be 16x16",
        ),
        (
            torch.rand(2, 3, 8, 8),
            torch.rand(3, 3, 16, 16),
            "lr holds 2 images but hr holds 3; pass matching batches",
        ),
        (
            torch.rand(3, 8, 8),
            torch.rand(3, 16, 16),
            "lr has shape (3, 8, 8); pass a batch (N, C, H, W), e.g. lr.unsqueeze(0) for one image",
        ),
        (
            torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8),
            torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8),
            "lr is uint8; pass float images in [0, 1] (lr.float() / 255 for 8-bit images)",
        ),
        (
            torch.rand(2, 3, 8, 8) * 255,
            torch.rand(2, 3, 16, 16) * 255,
            "lr holds values up to",
        ),
    ],
    ids=["hr-size", "batch", "3d", "uint8", "0-255"],
)
def test_bad_batches_are_refused_at_the_first_call(distiller, lr, hr, message):
    with pytest.raises(DistillerError) as err:
        fresh(distiller)(lr, hr)
    assert one_line(err).startswith(message)


def test_0_255_images_name_the_fix(distiller):
    lr, hr = batch()
    with pytest.raises(DistillerError) as err:
        fresh(distiller)(lr * 255, hr * 255)
    assert one_line(err).endswith(
        "facd's networks take images in [0, 1]: divide 0..255 images by 255"
    )


def test_a_scale_mismatch_without_specs_is_caught_by_the_output_size():
    """Networks the registry does not know: the first call compares their outputs with hr."""
    student = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    teacher = torch.nn.Sequential(torch.nn.Conv2d(3, 48, 3, padding=1), torch.nn.PixelShuffle(4))
    d = facd.Distiller(student, teacher, "ts")
    with pytest.raises(DistillerError) as err:
        d(*batch())
    assert one_line(err) == (
        "the teacher's output is 32x32 but hr is 16x16; check the teacher's scale and the hr size"
    )


def test_good_batches_pass_and_bicubic_overshoot_is_allowed(distiller):
    lr, hr = batch()
    out = fresh(distiller)(lr * 1.2 - 0.1, hr)  # a bicubic resize overshoots [0, 1] a little
    assert torch.isfinite(out.total)
    assert distiller._batch_checked


def test_no_active_term_is_the_distillers_one_error_for_the_trainer_too(tmp_path) -> None:
    """The trainer asks the Distiller which terms are on before it loads any network."""
    from pathlib import Path

    from facd.distiller import active_loss
    from facd.errors import ConfigError
    from facd.train.config import load_config
    from facd.train.trainer import Trainer

    off = {"pixel": {"gt_weight": 0.0}}
    with pytest.raises(ConfigError, match="no loss term has a non-zero weight") as err:
        facd.Distiller(net("edsr-tiny-s"), None, "scratch", **off)
    repo = Path(__file__).resolve().parents[1]
    # a teacher file that does not exist: the error must come before any loading
    over = ["loss.pixel.gt_weight=0", "loss.pixel.teacher_weight=0", "teacher.weights=absent.pt"]
    rcfg = load_config(repo / "configs/tiny/ts.yaml", over)
    with pytest.raises(ConfigError) as in_trainer:
        Trainer(rcfg, tmp_path / "run", log=lambda *_: None)
    assert str(in_trainer.value) == str(err.value)
    used, needs = active_loss(load_config(repo / "configs/tiny/ts.yaml").loss)
    assert used == {"l1_gt": 0.5, "l1_t": 0.5} and needs.teacher and not needs.teacher_features
