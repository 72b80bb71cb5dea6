"""The regime protocols (RCAN pair x4, EDSR pair x2): their design as data, and the alpha = 0
measurement on 48-pixel patches after training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facd.distill.pixel import adaptive_indicator
from facd.reproduce.alphapatch import alpha0_on_patches
from facd.reproduce.protocol import VAL_SPLIT, load_protocol
from facd.reproduce.records import count_params

from .helpers import make_checkpoint, make_image_folder

REPO = Path(__file__).resolve().parents[1]
PROTOCOLS = ["configs/repro/regime-rcan-x4.yaml", "configs/repro/regime-edsr-x2.yaml"]
MAIN = ["scratch", "ts", "fakd", "lsfd", "lsfd-ts", "fcd", "facd"]


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch) -> None:
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("path", PROTOCOLS)
def test_regime_protocol_trains_without_the_split_and_selects_on_it(path: str) -> None:
    p = load_protocol(path)
    assert p.shared["data"]["exclude"] == VAL_SPLIT and p.val_split == VAL_SPLIT
    teacher = p.teacher_train_config()
    assert Path(teacher["data"]["exclude"]).resolve() == (REPO / VAL_SPLIT).resolve()
    assert Path(teacher["val"]["split"]).resolve() == (REPO / VAL_SPLIT).resolve()
    assert p.saturation.teacher and p.saturation.rows == ["scratch"]
    assert p.saturation.factor == 2 and p.saturation.threshold_db == 0.02
    rows = {r.name: r for r in p.rows}
    assert [n for n in MAIN if n in rows] == MAIN
    # every teacher-based method with a distillation weight has a 3-4 value grid around its
    # own weight; the contrastive lambda is swept once, on FCD, and FACD (FCD plus the
    # indicator, a switch) runs at FCD's chosen lambda
    for name in ("fakd", "lsfd", "lsfd-ts", "fcd"):
        assert 3 <= len(rows[name].weight_grid) <= 4
    assert rows["facd"].weight_grid == [] and rows["facd"].weight_from == "fcd"
    reg = p.report.regime
    assert reg.gap_row == "scratch" and reg.alpha0_row == "facd" and reg.alpha_patch == 48


def test_rcan_pair_is_the_papers_shape() -> None:
    p = load_protocol(PROTOCOLS[0])
    t, s = p.teacher_net(), p.student
    assert t["arch"] == s["arch"] == "rcan" and t["n_feats"] == s["n_feats"]
    assert t["n_groups"] == s["n_groups"] and s["n_blocks"] < t["n_blocks"]
    ratio = count_params(t, 4) / count_params(s, 4)
    assert 2.8 < ratio < 3.2  # the paper's 15.59 M / 5.17 M = 3.0
    assert all(len(r.seeds) == 5 for r in p.rows if not r.skip)
    assert p.report.regime.alpha0_min == 0.02 and p.report.regime.gap_max_db == 0.5


def test_edsr_pair_has_a_large_ratio_and_the_ablations() -> None:
    p = load_protocol(PROTOCOLS[1])
    assert p.scale == 2
    ratio = count_params(p.teacher_net(), 2) / count_params(p.student, 2)
    assert ratio > 20
    names = {r.name for r in p.rows if not r.skip}
    p3 = {"icd", "fcd-sa", "fcd-infonce", "fcd-faa", "fcd-fab", "facd-eq7", "gt-fcd", "t-fcd"}
    assert p3 | {"pisr"} <= names
    assert all(len(r.seeds) == 3 for r in p.rows if not r.skip and r.group == "main")
    assert all(len(r.seeds) == 2 for r in p.rows if not r.skip and r.group != "main")  # budget
    # switch-only ablations inherit FCD's weight: no grid of their own
    for name in (p3 - {"fcd-infonce"}) | {"facd"}:
        assert p.row(name).weight_grid == [] and p.row(name).weight_from == "fcd"


def test_alpha0_on_patches(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "hr", count=3, size=(72, 64))
    t = make_checkpoint(tmp_path / "t.safetensors", "edsr-tiny-t", 4, seed=0)
    s = make_checkpoint(tmp_path / "s.safetensors", "edsr-tiny-s", 4, seed=1)
    # a network against itself is never better than itself: alpha = 1 everywhere
    same = alpha0_on_patches(t, t, [str(data)], 4, patch_size=12, samples=8, batch=4)
    assert same["alpha0"] == 0 and same["samples"] == 8 and same["patch_size"] == 12
    # against a manual count of Eq. 1 on the same patches
    from facd.archs.io import load_model
    from facd.data.patches import TrainPatches

    got = alpha0_on_patches(s, t, [str(data)], 4, patch_size=12, samples=8, batch=4, seed=3)
    patches = TrainPatches([data], 4, 12, 4, 2, seed=3, augment=False, progress=False)
    sn, tn = load_model(s, 4)[0].eval(), load_model(t, 4)[0].eval()
    zeros = 0
    with torch.inference_mode():
        for i in range(2):
            lr, hr = patches[i]
            zeros += int((adaptive_indicator(sn(lr), tn(lr), hr) == 0).sum())
    assert got["alpha0"] == zeros and got["alpha0_frac"] == zeros / 8
