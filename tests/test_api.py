"""The public distillation API: a hand-written loop with ``facd.Distiller`` takes the same steps
as ``facd train`` (same seed, same batches), bit for bit on one machine, for FACD and for PISR
(both stages); a user's own module works once its taps are named (docs/api.md runs as written: tests/test_docs_run.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import facd
from facd.archs import build_model, preset_spec
from facd.archs.io import save_model
from facd.cli import main
from facd.errors import ConfigError
from facd.train.state import latest_state_path, load_state

from .helpers import make_checkpoint, make_image_folder

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCH, PATCH, LR_RATE = 2, 4, 8, 1e-3


def write_config(path: Path, method: str, data: Path, student: str, teacher: Path | None) -> Path:
    cfg: dict = {
        "method": method,
        "scale": 4,
        "seed": 0,
        "student": {"preset": student},
        "data": {"train_dirs": [str(data)], "patch_size": PATCH},
        "val": {"sets": [], "every": 0},
        "train": {
            "iterations": STEPS,
            "batch_size": BATCH,
            "lr": LR_RATE,
            "lr_milestones": [1000],
            "log_every": 1,
            "save_every": STEPS,
            "channels_last": False,  # the hand loop's layout (the bits depend on it)
        },
    }
    if teacher is not None:
        cfg["teacher"] = {"preset": "edsr-tiny-t", "weights": str(teacher)}
    path.write_text(yaml.safe_dump(cfg))
    return path


def facd_train(tmp_path: Path, name: str, *args: object) -> Path:
    out = tmp_path / f"run-{name}"
    assert main(["train", str(write_config(tmp_path / f"{name}.yaml", *args)), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    return out


def hand_loop(distiller: facd.Distiller, data: Path) -> None:
    """A plain PyTorch loop over facd's batches: the optimizer and the loop are the user's."""
    optimizer = torch.optim.Adam(distiller.parameters(), lr=LR_RATE)
    batches = facd.TrainPatches([data], 4, PATCH, BATCH, STEPS, seed=0)
    distiller.train()
    for it in range(STEPS):
        lr, hr = batches[it]
        out = distiller(lr, hr)
        optimizer.zero_grad()
        out.total.backward()
        optimizer.step()


def assert_same_weights(module: torch.nn.Module, file: Path) -> None:
    saved = load_file(str(file))
    own = module.state_dict()
    assert saved.keys() == own.keys()
    for k, v in own.items():
        assert torch.equal(v.detach().cpu(), saved[k]), f"{file.name}: {k} differs"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("api") / "hr", count=3, size=(48, 48))


def test_facd_hand_loop_equals_facd_train(data, tmp_path):
    teacher = make_checkpoint(tmp_path / "teacher.safetensors", "edsr-tiny-t", 4, seed=3)
    run = facd_train(tmp_path, "facd", "facd", data, "edsr-tiny-s", teacher)
    torch.manual_seed(0)
    student = build_model(preset_spec("edsr-tiny-s", 4))
    distiller = facd.Distiller(student, teacher, "facd")
    assert set(distiller.terms) == {"l1_gt", "l1_t", "contrast"}
    hand_loop(distiller, data)
    assert_same_weights(student, run / "last.safetensors")
    state = load_state(latest_state_path(run))["model"]
    for k, v in distiller.state_dict().items():  # the regressors too
        assert torch.equal(v, state[k]), k


def test_pisr_two_stages_hand_loop_equals_facd_train(data, tmp_path):
    stage1_run = facd_train(tmp_path, "stage1", "pisr-teacher", data, "edsr-tiny-t", None)
    weights = stage1_run / "last.safetensors"
    student_run = facd_train(tmp_path, "pisr", "pisr", data, "edsr-tiny-s", weights)

    torch.manual_seed(0)
    net = build_model(preset_spec("edsr-tiny-t", 4))  # the future teacher
    stage1 = facd.Distiller(net, None, "pisr-teacher")
    hand_loop(stage1, data)
    assert_same_weights(net, weights)
    assert_same_weights(stage1.stage_products()["encoder"], stage1_run / "pisr_encoder.safetensors")

    # As facd train: stage 2 reads the teacher from a file (its build draws from the generator
    # before the file's weights replace the random ones) and takes the stage's encoder.
    saved = tmp_path / "net.safetensors"
    save_model(saved, net, net.spec, {"method": "pisr-teacher"})
    torch.manual_seed(0)
    student = build_model(preset_spec("edsr-tiny-s", 4))
    distiller = facd.Distiller(student, saved, "pisr", teacher_stage=stage1)
    hand_loop(distiller, data)
    assert_same_weights(student, student_run / "last.safetensors")
    # a teacher module (no file) works too; only the VID heads start from other random values
    assert facd.Distiller(student, net, "pisr", teacher_stage=stage1).teacher is net


def test_wrong_teacher_stage_and_missing_teacher_are_config_errors():
    net = build_model(preset_spec("edsr-tiny-t", 4))
    student = build_model(preset_spec("edsr-tiny-s", 4))
    other = facd.Distiller(build_model(preset_spec("edsr-tiny-s", 4)), None, "scratch")
    with pytest.raises(ConfigError, match="declares teacher stage 'pisr-teacher'"):
        facd.Distiller(student, net, "pisr", teacher_stage=other)
    with pytest.raises(ConfigError, match="needs a teacher network"):
        facd.Distiller(student, None, "facd")
    with pytest.raises(ConfigError, match="needs the encoder of its teacher stage"):
        facd.Distiller(student, net, "pisr")


class OwnNet(torch.nn.Module):
    """A network the architecture registry does not know."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.mid = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU())
        self.up = torch.nn.Sequential(
            torch.nn.Conv2d(8, 48, 3, padding=1), torch.nn.PixelShuffle(4)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.mid(self.head(x)))


def test_own_student_with_named_taps(tmp_path):
    teacher = make_checkpoint(tmp_path / "t.safetensors", "edsr-tiny-t", 4)
    student = OwnNet()
    with pytest.raises(ConfigError, match="name its feature taps"):
        facd.Distiller(student, teacher, "facd")
    distiller = facd.Distiller(
        student, teacher, "facd", student_taps=["head", "mid", "mid.1"], contrast={"weight": 0.1}
    )
    assert distiller.weights["contrast"] == 0.1
    out = distiller(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 32, 32))
    assert set(out.terms) == {"l1_gt", "l1_t", "contrast"} and out.alpha is not None
    out.total.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert not any(k.startswith("teacher") for k in distiller.state_dict())
    assert distiller.iteration == 1  # the per-step random streams advance with training steps
