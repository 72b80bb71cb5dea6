"""Gradient shares of the loss terms (facd.reproduce.gradshare, tools/gradient_share.py) and the
InfoNCE dot product's ``infonce_reduction`` option."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import facd
from facd.distill.contrastive import ContrastTerm
from facd.distill.methods import resolve_loss
from facd.distill.terms import StepContext, TermEnv
from facd.errors import CheckpointError, ConfigError
from facd.reproduce.gradshare import gradient_shares, measure, run_gradient_shares
from facd.train.config import load_config
from facd.train.loop import run_training

from .helpers import make_checkpoint, make_image_folder

REPO = Path(__file__).resolve().parents[1]


class TwoScalars(nn.Module):
    """S = (a + b) * up(lr): two parameters, so the norm runs over several tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.25))
        self.b = nn.Parameter(torch.tensor(0.25))
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.a + self.b) * self.up(x)


class Twice(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * nn.functional.interpolate(x, scale_factor=2)


def test_shares_match_a_hand_computed_case() -> None:
    """lr = 1, GT = 0, T = 2, S = a + b = 0.5 everywhere; weights 1 (L1_GT) and 3 (L1_T).

    L1_GT = |S - 0| = a + b, so d(1 L1_GT)/da = d/db = 1 and g_gt = sqrt(2);
    L1_T = |S - 2| = 2 - a - b, so d(3 L1_T)/da = d/db = -3 and g_t = 3 sqrt(2).
    Gradient shares 1/4 and 3/4, ratios to L1_GT 1 and 3; weighted losses 0.5 and 4.5, loss
    shares 0.1 and 0.9; the total gradient is (1 - 3) per parameter, norm 2 sqrt(2).
    """
    student = TwoScalars()
    d = facd.Distiller(student, Twice(), "ts", pixel={"gt_weight": 1.0, "teacher_weight": 3.0})
    lr, hr = torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 4, 4)
    d.train()
    shares = gradient_shares(d, lr, hr).by_name()
    gt, t = shares["l1_gt"], shares["l1_t"]
    assert gt.grad_norm == pytest.approx(math.sqrt(2))
    assert t.grad_norm == pytest.approx(3 * math.sqrt(2))
    assert (gt.grad_share, t.grad_share) == pytest.approx((0.25, 0.75))
    assert (gt.grad_ratio_to_gt, t.grad_ratio_to_gt) == pytest.approx((1.0, 3.0))
    assert (gt.weighted, t.weighted) == pytest.approx((0.5, 4.5))
    assert (gt.loss_share, t.loss_share) == pytest.approx((0.1, 0.9))
    assert gradient_shares(d, lr, hr).total_grad_norm == pytest.approx(2 * math.sqrt(2))
    # nothing is left behind: no .grad, the training mode and the step counter as they were
    assert student.a.grad is None and d.training and d.iteration == 0


def test_no_l1_gt_term_gives_no_ratio() -> None:
    d = facd.Distiller(TwoScalars(), Twice(), "ts", pixel={"gt_weight": 0.0})
    (only,) = gradient_shares(d, torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 4, 4)).terms
    assert only.name == "l1_t" and only.grad_share == 1.0 and only.grad_ratio_to_gt is None


@pytest.fixture(scope="module")
def fcd_run(tmp_path_factory) -> tuple[Path, Path]:
    """A 2-step tiny FCD run (its regressors are trained loss modules) and its config file."""
    root = tmp_path_factory.mktemp("gradshare")
    data = make_image_folder(root / "hr")
    teacher = make_checkpoint(root / "teacher.safetensors", "edsr-tiny-t", 4)
    over = [
        "method=fcd", f"data.train_dirs=[{data}]", "data.patch_size=8", "train.batch_size=4",
        "train.iterations=2", "train.save_every=2", "val.sets=[]", f"teacher.weights={teacher}",
        "train.lr=0.01",
    ]  # fmt: skip
    run_training(load_config(REPO / "configs/tiny/facd.yaml", over), root / "run", progress=False)
    return root / "run", root


def test_a_run_is_measured_with_its_trained_student_and_regressors(fcd_run) -> None:
    run, _ = fcd_run
    got = run_gradient_shares(run, batch=4, patch=8, seed=3)
    assert got["iteration"] == 2 and got["method"] == "fcd"
    assert [t["name"] for t in got["terms"]] == ["l1_gt", "l1_t", "contrast"]
    assert sum(t["grad_share"] for t in got["terms"]) == pytest.approx(1.0)
    assert sum(t["loss_share"] for t in got["terms"]) == pytest.approx(1.0)
    # the same config at initialisation (same seed: same initial student and regressors)
    # measures something else: the trained weights were loaded
    rcfg = load_config(None, [], base=yaml.safe_load((run / "config.yaml").read_text()))
    init = measure(rcfg, None, batch=4, patch=8, seed=3)
    assert init["iteration"] == 0
    assert init["terms"][2]["grad_norm"] != pytest.approx(got["terms"][2]["grad_norm"], rel=1e-3)
    # and the measurement is repeatable (a fixed batch)
    again = run_gradient_shares(run, batch=4, patch=8, seed=3)
    assert again["terms"] == got["terms"]


def test_loss_modules_without_a_state_are_refused(fcd_run, tmp_path) -> None:
    run, _ = fcd_run
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.yaml", "last.safetensors"):
        (bare / name).write_bytes((run / name).read_bytes())
    with pytest.raises(CheckpointError, match="no training state"):
        run_gradient_shares(bare, batch=4, patch=8)


def test_tool_writes_json_and_fails_cleanly(fcd_run, tmp_path) -> None:
    run, _ = fcd_run
    out = tmp_path / "shares.json"
    tool = [sys.executable, str(REPO / "tools/gradient_share.py")]
    done = subprocess.run(
        [*tool, str(run), "--batch", "4", "--patch", "8", "--json", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| fcd (it. 2) | contrast |" in done.stdout
    assert [t["name"] for t in json.loads(out.read_text())["terms"]][-1] == "contrast"
    bad = subprocess.run([*tool, str(tmp_path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "config.yaml" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------- infonce_reduction


def contrast_value(reduction: str | None, side: int) -> float:
    """FCD(InfoNCE)'s term on features that are the same at every position, side x side."""
    opts = resolve_loss("fcd-infonce", {"contrast": {"infonce_reduction": reduction}}).contrast
    torch.manual_seed(0)
    term = ContrastTerm(opts, TermEnv(None, None, [4, 4, 4], [4, 4, 4]))
    torch.manual_seed(1)
    per_sample_s = torch.randn(3, 4, 1, 1)
    per_sample_t = torch.randn(3, 4, 1, 1)
    fs = [per_sample_s.expand(3, 4, side, side)] * 3
    ft = [per_sample_t.expand(3, 4, side, side)] * 3
    ctx = StepContext(lr=torch.zeros(3, 3, side, side), hr=torch.zeros(3, 3, 1, 1),
                      sr_s=torch.zeros(3, 3, 1, 1), feats_s=fs, feats_t=ft)  # fmt: skip
    with torch.no_grad():
        return float(term(ctx))


def test_position_mean_does_not_grow_with_the_patch_area() -> None:
    # the paper's sum: 4x the positions, 4x the logits, another loss
    assert contrast_value(None, 4) != pytest.approx(contrast_value(None, 2), rel=1e-3)
    assert contrast_value("sum", 4) == contrast_value(None, 4)
    # the mean over positions of spatially constant features is the 1 x 1 value
    mean1 = contrast_value("position_mean", 1)
    assert contrast_value("position_mean", 2) == pytest.approx(mean1, rel=1e-5)
    assert contrast_value("position_mean", 4) == pytest.approx(mean1, rel=1e-5)
    assert mean1 == pytest.approx(contrast_value(None, 1), rel=1e-6)


def test_position_mean_needs_the_dot_product() -> None:
    with pytest.raises(ConfigError, match="infonce_reduction"):
        resolve_loss("fcd-infonce-cos", {"contrast": {"infonce_reduction": "position_mean"}})
    with pytest.raises(ConfigError, match="infonce_reduction"):
        resolve_loss("fcd", {"contrast": {"infonce_reduction": "position_mean"}})


def test_the_option_is_unset_by_default_and_leaves_fingerprints_alone() -> None:
    from facd.reproduce.protocol import canonical_config

    assert resolve_loss("fcd-infonce", None).contrast.infonce_reduction is None
    resolved = load_config(REPO / "configs/tiny/facd.yaml", ["method=fcd-infonce"]).to_dict()
    assert "infonce_reduction" not in canonical_config(resolved)["loss"]["contrast"]


@pytest.mark.slow
def test_the_protocol_measures_seed_0_and_the_report_shows_it(tmp_path: Path) -> None:
    """``facd reproduce`` measures the gradient shares of each row's first seed after training
    (``gradshare-<run>.json``) and the report puts the distillation share of the gradient
    beside its share of the loss."""
    import json

    from facd.cli import main

    from .helpers import split_protocol, write_protocol

    rows = [{"method": "fcd", "seeds": [0, 1]}]
    doc = split_protocol(tmp_path, "ci-gradshare", rows, val_every=3)
    proto = write_protocol(tmp_path, doc)
    assert main(["reproduce", str(proto), "--out", str(tmp_path / "runs"), "--no-figures"]) == 0
    results = tmp_path / "results"
    shares = json.loads((results / "gradshare-fcd-s0.json").read_text())
    assert not (results / "gradshare-fcd-s1.json").exists()  # seed 0 only
    names = {t["name"] for t in shares["terms"]}
    assert {"l1_gt", "contrast"} <= names
    assert sum(t["grad_share"] for t in shares["terms"]) == pytest.approx(1.0)
    contrast = sum(t["grad_share"] for t in shares["terms"] if t["name"] not in ("l1_gt", "l1_t"))
    report = (tmp_path / "docs" / "results.md").read_text()
    assert f"| {100 * contrast:.1f} % |" in report
