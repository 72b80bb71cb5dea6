"""The methods FACD is compared against: TS, FAKD, LFD, LSFD, CSD, PISR (and ``facd methods``).

Loss values are checked on tiny hand-computed cases; wiring through the real trainer with
two-step runs of every configs/tiny preset of these methods.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from facd.archs import build_model
from facd.archs.io import save_model
from facd.archs.spec import preset_spec
from facd.distill import csd as csd_mod
from facd.distill.csd import CSDTerm, contrastive_ratio, negative_distance
from facd.distill.fakd import FAKDTerm, affinity_memory_bytes, check_memory
from facd.distill.lfd import LFDTerm
from facd.distill.methods import resolve_loss
from facd.distill.options import CSDOptions, FAKDOptions, LFDOptions, VIDOptions
from facd.distill.pisr import (
    ENCODER_FILE,
    HREncoder,
    VIDTerm,
    gaussian_nll,
    laplace_nll,
    save_encoder,
)
from facd.distill.terms import StepContext, TermEnv
from facd.distill.vgg import VGG19Features, load_vgg19
from facd.errors import CheckpointError, ConfigError
from facd.train.config import load_config
from facd.train.loop import run_training
from facd.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny"
S4 = preset_spec("edsr-tiny-s", 4)
T4 = preset_spec("edsr-tiny-t", 4)


def env(cs: list[int], ct: list[int]) -> TermEnv:
    return TermEnv(student=S4, teacher=T4, student_channels=cs, teacher_channels=ct)


def ctx_for(fs, ft, sr_s=None, sr_t=None, hr=None, lr=None) -> StepContext:
    z = torch.zeros(1, 3, 4, 4)
    return StepContext(
        lr=z if lr is None else lr,
        hr=z if hr is None else hr,
        sr_s=z if sr_s is None else sr_s,
        sr_t=sr_t,
        feats_s=fs,
        feats_t=ft,
    )


def feat(rows: list[list[float]]) -> torch.Tensor:
    """(1, C, 1, N) feature from C rows of N values (one row per channel)."""
    return torch.tensor(rows, dtype=torch.float32)[None, :, None, :]


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """An untrained edsr-tiny-t x4, saved as a facd checkpoint (what matters here is wiring)."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    torch.manual_seed(0)
    save_model(path, build_model(T4), T4)
    return path


def tiny_overrides(data_root: Path, *extra: str) -> list[str]:
    return [
        f"data.train_dirs=[{data_root / 'T91' / 'HR'}]",
        "data.patch_size=8",
        "train.batch_size=4",
        "train.iterations=2",
        "train.log_every=1",
        "train.save_every=10",
        "val.sets=[]",
        *extra,
    ]


def random_vgg(_path: str | None) -> VGG19Features:
    """Test-only stand-in for ImageNet weights: shapes and gradients, never CSD results."""
    torch.manual_seed(0)
    return VGG19Features().freeze()


# -- FAKD -----------------------------------------------------------------------------------


def test_fakd_hand_computed_affinity_l1():
    # Student positions (1,0), (0,1): A_S = [[1,0],[0,1]]. Teacher (2,0,0), (3,3,0) with three
    # channels: cosines 1 and 1/sqrt(2), so A_T = [[1,r],[r,1]], r = 1/sqrt(2).
    # mean|A_S - A_T| = 2r / 4 = 1 / (2 sqrt 2); two identical taps give twice that.
    fs = feat([[1, 0], [0, 1]])
    ft = feat([[2, 3], [0, 3], [0, 0]])
    term = FAKDTerm(FAKDOptions(weight=1.0), env([2, 2], [3, 3]))
    value = term(ctx_for([fs, fs], [ft, ft]))
    assert value.item() == pytest.approx(2 / (2 * math.sqrt(2)), rel=1e-6)


def test_fakd_pooled_variant_max_pools_first():
    # 2x4 maps, max-pool 2 -> positions (1,0) and (0,1) for S, (1,0) and (1,1) for T.
    fs = torch.zeros(1, 2, 2, 4)
    fs[0, 0, 0, 0] = 1
    fs[0, 1, 0, 3] = 1
    ft = torch.zeros(1, 2, 2, 4)
    ft[0, 0, 0, 0] = 1
    ft[0, 0, 0, 2] = 1
    ft[0, 1, 1, 2] = 1
    term = FAKDTerm(FAKDOptions(weight=1.0, pool=2), env([2], [2]))
    assert term(ctx_for([fs], [ft])).item() == pytest.approx(1 / (2 * math.sqrt(2)), rel=1e-6)


def test_fakd_memory_estimate_by_hand():
    # LR 48x48 -> N = 2304; one matrix = 4 B * 16 * 2304^2 = 339,738,624 B; 2*3 + 2 matrices.
    assert affinity_memory_bytes(16, 48, 48, 3) == 339_738_624 * 8
    assert affinity_memory_bytes(16, 96, 96, 3, pool=2) == 339_738_624 * 8
    check_memory(FAKDOptions(), 16, 48, 3)  # the paper setting fits 8 GB


def test_fakd_memory_guard_refuses_large_patch():
    with pytest.raises(ConfigError, match=r"96x96.*loss\.fakd\.pool"):
        check_memory(FAKDOptions(weight=1.0), 16, 96, 3)
    check_memory(FAKDOptions(weight=1.0, pool=2), 16, 96, 3)


@pytest.mark.slow
@pytest.mark.data
def test_fakd_memory_guard_runs_before_training(tiny_teacher, data_root):
    rcfg = load_config(
        TINY / "fakd.yaml",
        tiny_overrides(
            data_root,
            f"teacher.weights={tiny_teacher}",
            "data.patch_size=96",
            "train.batch_size=16",
        ),
    )
    with pytest.raises(ConfigError, match=r"96x96.*GB.*memory_budget_gb=8.*loss\.fakd\.pool"):
        Trainer(rcfg, Path("unused"), log=lambda *_: None)


# -- LFD / LSFD -----------------------------------------------------------------------------


def identity_lfd(**kw) -> LFDTerm:
    term = LFDTerm(LFDOptions(weight=1.0, regressor_layers=1, **kw), env([1], [1]))
    conv = term.regressors[0][0]
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    return term


def test_lfd_hand_computed():
    # R = identity: mean(|1 - 0|, |2 - 4|) = 1.5; squared: mean(1, 4) = 2.5.
    fs, ft = feat([[1, 2]]), feat([[0, 4]])
    assert identity_lfd()(ctx_for([fs], [ft])).item() == pytest.approx(1.5)
    assert identity_lfd(distance="l2")(ctx_for([fs], [ft])).item() == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("norm", "expected"),
    [
        # D at LR = [0, 1]; softmax tau=1: M = 2 * [1, e] / (1 + e); loss = (M0*1 + M1*2) / 2.
        ("softmax", (1 + 2 * math.e) / (1 + math.e)),
        ("max", (0 * 1 + 1 * 2) / 2),  # M = D / max D = [0, 1]
        ("mean", (0 * 1 + 2 * 2) / 2),  # M = D / mean D = [0, 2]
    ],
)
def test_lsfd_attention_one_channel(norm, expected):
    # x2: HR (1,1,2,4), |T - S| = [[0,0,1,1],[0,0,1,1]] -> 2x2 average pool -> [0, 1].
    sr_s = torch.zeros(1, 1, 2, 4, requires_grad=True)
    sr_t = torch.tensor([[[[0.0, 0, 1, 1], [0, 0, 1, 1]]]])
    fs, ft = feat([[1, 2]]), feat([[0, 4]])
    term = identity_lfd(attention="teacher_student", attention_norm=norm, tau=1.0)
    value = term(ctx_for([fs], [ft], sr_s=sr_s, sr_t=sr_t))
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()
    assert sr_s.grad is None  # the attention is detached


def test_lsfd_student_gt_attention_source():
    hr = torch.tensor([[[[0.0, 0, 1, 1], [0, 0, 1, 1]]]])
    sr_s = torch.zeros(1, 1, 2, 4)
    fs, ft = feat([[1, 2]]), feat([[0, 4]])
    term = identity_lfd(attention="student_gt", attention_norm="max")
    assert term(ctx_for([fs], [ft], sr_s=sr_s, hr=hr)).item() == pytest.approx(1.0)


# -- CSD ------------------------------------------------------------------------------------


def test_vgg19_has_torchvision_parameter_names():
    convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    keys = [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")]
    sd = VGG19Features().state_dict()
    assert list(sd) == keys
    assert sd["features.0.weight"].shape == (64, 3, 3, 3)
    assert sd["features.34.weight"].shape == (512, 512, 3, 3)


def test_vgg19_loads_torchvision_file_strictly(tmp_path):
    torch.manual_seed(1)
    src = VGG19Features().state_dict()
    full = dict(
        src, **{"classifier.0.weight": torch.zeros(2, 2), "classifier.0.bias": torch.zeros(2)}
    )
    path = tmp_path / "vgg19.pth"
    torch.save(full, path)
    vgg = load_vgg19(str(path))
    assert len(vgg.features) == 30  # cut after relu5_1
    assert all(not p.requires_grad for p in vgg.parameters())
    assert torch.equal(vgg.features[28].weight, src["features.28.weight"])
    outs = vgg(torch.rand(1, 3, 32, 32) * 255)
    assert [tuple(o.shape[1:]) for o in outs] == [
        (64, 32, 32),
        (128, 16, 16),
        (256, 8, 8),
        (512, 4, 4),
        (512, 2, 2),
    ]
    del full["features.34.bias"]
    torch.save(full, path)
    with pytest.raises(CheckpointError, match="features.34.bias"):
        load_vgg19(str(path))


def test_csd_without_vgg_weights_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"vgg19-dcbb9e9d\.pth.*loss\.csd\.vgg_weights=PATH"):
        load_vgg19(None)
    with pytest.raises(ConfigError, match="file not found"):
        load_vgg19(str(tmp_path / "missing.pth"))


@pytest.mark.slow
@pytest.mark.data
def test_csd_missing_weights_refused_at_setup(tiny_teacher, data_root):
    rcfg = load_config(
        TINY / "csd.yaml", tiny_overrides(data_root, f"teacher.weights={tiny_teacher}")
    )
    with pytest.raises(ConfigError, match="CSD needs ImageNet VGG19 weights"):
        Trainer(rcfg, Path("unused"), log=lambda *_: None)


def test_csd_ratio_hand_computed():
    # d_pos = mean(|1-2|, |3-2|) = 1; d_neg = mean(1, 3) + mean(3, 1) = 4 -> 1/4, weight 0.5.
    s, t = feat([[1, 3]]), feat([[2, 2]])
    negs = torch.cat([feat([[0, 0]]), feat([[4, 4]])])
    value = contrastive_ratio([s], [t], [negs], [0.5], eps=0.0)
    assert value.item() == pytest.approx(0.125)


def test_csd_negative_distance_value_and_gradient_by_hand():
    # fs = [1, 3], negatives [0, 0] and [2, 2]: value = 2 + 1 = 3;
    # gradient = (sign(1) + sign(-1), sign(3) + sign(1)) / 2 = (0, 1).
    fs = torch.tensor([[1.0, 3.0]], requires_grad=True)
    negs = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    value = negative_distance(fs, negs)
    value.backward()
    assert value.item() == pytest.approx(3.0)
    assert fs.grad.tolist() == [[0.0, 1.0]]


def test_csd_negative_distance_matches_broadcast():
    torch.manual_seed(0)
    fs = torch.randn(3, 4, 5, 5, requires_grad=True)
    negs = torch.randn(2, 4, 5, 5)
    naive = (fs[None] - negs[:, None]).abs().mean(dim=(1, 2, 3, 4)).sum()
    (g_naive,) = torch.autograd.grad(naive, fs)
    fast = negative_distance(fs, negs)
    (g_fast,) = torch.autograd.grad(fast, fs)
    assert fast.item() == pytest.approx(naive.item(), rel=1e-6)
    assert torch.allclose(g_fast, g_naive)


class FiveTimes(nn.Module):
    """A fake feature extractor: the input itself at all five 'layers'."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x] * 5

    def to(self, *a, **k):  # no parameters to move
        return self

    def parameters(self, recurse: bool = True):
        yield torch.zeros(())


def test_csd_term_bicubic_negatives_hand_computed():
    # Constant images stay constant under bicubic upsampling. S = 0.5, T = 0.25, negatives the
    # LR images 0 and 1 (x255 for VGG): per layer |127.5 - 63.75| / (127.5 + 127.5) = 0.25,
    # times the layer weights 1/32 + 1/16 + 1/8 + 1/4 + 1 = 1.46875.
    term = CSDTerm(CSDOptions(weight=1.0, negatives=2, eps=0.0), FiveTimes())
    lr = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    ctx = StepContext(
        lr=lr,
        hr=torch.zeros(2, 1, 4, 4),
        sr_s=torch.full((2, 1, 4, 4), 0.5),
        sr_t=torch.full((2, 1, 4, 4), 0.25),
    )
    assert term(ctx).item() == pytest.approx(0.25 * 1.46875)
    with pytest.raises(ConfigError, match="negatives=3"):
        CSDTerm(CSDOptions(weight=1.0, negatives=3), FiveTimes())(ctx)


def test_csd_gradients_reach_student_not_vgg():
    vgg = random_vgg(None)
    term = CSDTerm(CSDOptions(weight=1.0, negatives=2), vgg)
    assert list(term.parameters()) == [] and term.state_dict() == {}  # VGG kept outside
    sr_s = torch.rand(2, 3, 32, 32, requires_grad=True)
    ctx = StepContext(lr=torch.rand(2, 3, 8, 8), hr=torch.rand(2, 3, 32, 32), sr_s=sr_s,
                      sr_t=torch.rand(2, 3, 32, 32))  # fmt: skip
    term(ctx).backward()
    assert sr_s.grad is not None and sr_s.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


# -- PISR -----------------------------------------------------------------------------------


def test_vid_laplace_and_gaussian_on_scalars():
    # Laplace: b' = 0.1 * 2 = 0.2: log(0.4) + |1 - 0.5| / 0.2 = -0.916291 + 2.5.
    one = torch.tensor
    assert laplace_nll(one(0.5), one(2.0), one(1.0)).item() == pytest.approx(
        math.log(0.4) + 2.5, rel=1e-6
    )
    # Gaussian: s2 = 0.001 * 1000 = 1: log(1)/2 + 0.25 / 2.
    assert gaussian_nll(one(0.5), one(1000.0), one(1.0)).item() == pytest.approx(0.125, rel=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pisr_encoder_gives_lr_size(scale):
    enc = HREncoder(scale)
    assert enc(torch.rand(1, 3, 8 * scale, 8 * scale)).shape == (1, 3, 8, 8)
    assert [m.stride for m in enc if isinstance(m, nn.Conv2d)][1] == (scale, scale)


def test_vid_term_feature_scale_and_gradients():
    term = VIDTerm(VIDOptions(weight=1.0), env([2, 3], [4, 5]))
    assert term.mean_head[2].out_channels == 5 and term.scale_head[-1].__class__ is nn.Softplus
    fs = torch.rand(2, 3, 4, 4, requires_grad=True)
    ft = torch.rand(2, 5, 4, 4) * 255
    value = term(ctx_for([torch.rand(2, 2, 4, 4), fs], [torch.rand(2, 4, 4, 4), ft]))
    with torch.no_grad():  # VID on features divided by rgb_range (255)
        x = fs / 255
        expected = laplace_nll(term.mean_head(x), term.scale_head(x), ft / 255)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert fs.grad is not None
    assert all(p.grad is not None for p in term.parameters())
    assert all(p.grad is None for p in term.encoder.parameters())


# -- through the trainer ---------------------------------------------------------------------


def make_trainer(name: str, data_root: Path, tmp_path: Path, *extra: str) -> Trainer:
    rcfg = load_config(TINY / f"{name}.yaml", tiny_overrides(data_root, *extra))
    return Trainer(rcfg, tmp_path, log=lambda *_: None)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize(("name", "own_params"), [("ts", False), ("fakd", False), ("lfd", True), ("lsfd", True), ("csd", False)])  # fmt: skip
def test_gradients_reach_student_and_terms_not_teacher(
    name, own_params, tiny_teacher, data_root, tmp_path, monkeypatch
):
    extra = [f"teacher.weights={tiny_teacher}"]
    if name == "csd":
        monkeypatch.setattr(csd_mod, "load_vgg19", random_vgg)
        extra.append("loss.csd.negatives=4")
    trainer = make_trainer(name, data_root, tmp_path, *extra)
    torch.manual_seed(0)
    assert trainer.train_step(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 32, 32)) is not None
    student = trainer.model.student
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    assert all(p.grad is None for p in trainer.teacher.parameters())
    term_params = list(trainer.model.terms.parameters())
    assert bool(term_params) == own_params
    assert all(p.grad is not None for p in term_params)


@pytest.mark.slow
@pytest.mark.data
def test_pisr_teacher_stage_feeds_encoding_to_the_trained_network(data_root, tmp_path):
    trainer = make_trainer("pisr-teacher", data_root, tmp_path)
    assert trainer.teacher is None and trainer.student_tap_paths is None
    stage = trainer.model.terms["vid"]
    torch.manual_seed(0)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    out = trainer.model(lr, hr)  # the distiller swaps the student's input (student_input)
    total, values = out.total, out.terms
    with torch.no_grad():
        code = stage.encoder(hr)
        l1 = (trainer.model.student(code) - hr).abs().mean()
    assert values["vid"].item() == pytest.approx((code - lr).abs().mean().item(), rel=1e-6)
    assert values["l1_gt"].item() == pytest.approx(l1.item(), rel=1e-6)
    total.backward()
    assert all(p.grad is not None for p in stage.encoder.parameters())


@pytest.mark.slow
@pytest.mark.data
def test_tiny_pisr_two_stages(data_root, tmp_path):
    stage1 = tmp_path / "teacher"
    stage1.mkdir()
    rcfg = load_config(TINY / "pisr-teacher.yaml", tiny_overrides(data_root))
    assert run_training(rcfg, stage1, progress=False)["iteration"] == 2
    assert (stage1 / ENCODER_FILE).is_file() and (stage1 / "last.safetensors").is_file()
    weights = f"teacher.weights={stage1 / 'last.safetensors'}"
    # Stage 2 through the trainer: teacher sees E(Y), student gets grads, teacher none.
    trainer = make_trainer("pisr", data_root, tmp_path / "s", weights)
    term = trainer.model.terms["vid"]
    assert not any(k.startswith("encoder") for k in term.state_dict())
    lr, hr = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 32, 32)
    assert term.teacher_input(lr, hr, lr).shape == lr.shape
    trainer.train_step(lr, hr)
    assert all(p.grad is not None for p in term.parameters())
    assert all(p.grad is None for p in trainer.teacher.parameters())
    assert all(p.grad is not None for p in trainer.model.student.parameters() if p.requires_grad)
    out = tmp_path / "student"
    out.mkdir()
    rcfg = load_config(TINY / "pisr.yaml", tiny_overrides(data_root, weights))
    assert run_training(rcfg, out, progress=False)["iteration"] == 2


@pytest.mark.slow
@pytest.mark.data
def test_pisr_student_initialised_only_for_equal_architectures(data_root, tmp_path):
    stage1 = tmp_path / "t"
    stage1.mkdir()
    torch.manual_seed(0)
    save_model(stage1 / "last.safetensors", build_model(T4), T4, {"method": "pisr-teacher"})
    save_encoder(stage1 / ENCODER_FILE, HREncoder(4))
    weights = f"teacher.weights={stage1 / 'last.safetensors'}"
    same = make_trainer("pisr", data_root, tmp_path, weights, "student.preset=edsr-tiny-t")
    for a, b in zip(same.model.student.parameters(), same.teacher.parameters(), strict=True):
        assert torch.equal(a, b)
    other = make_trainer("pisr", data_root, tmp_path, weights)
    assert other.student_spec != other.teacher_spec  # nothing copied, nothing failed


@pytest.mark.slow
@pytest.mark.data
def test_pisr_refuses_lr_teacher_and_missing_encoder(tiny_teacher, data_root, tmp_path):
    scratch = tmp_path / "scratch.safetensors"
    save_model(scratch, build_model(T4), T4, {"method": "scratch"})
    with pytest.raises(ConfigError, match="method 'scratch'.*pisr-teacher"):
        make_trainer("pisr", data_root, tmp_path, f"teacher.weights={scratch}")
    with pytest.raises(ConfigError, match="pisr_encoder.safetensors not found"):
        make_trainer("pisr", data_root, tmp_path, f"teacher.weights={tiny_teacher}")


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("name", ["ts", "fakd", "lfd", "lsfd", "csd"])
def test_tiny_configs_two_steps(name, tiny_teacher, data_root, tmp_path, monkeypatch):
    extra = [f"teacher.weights={tiny_teacher}"]
    if name == "csd":
        monkeypatch.setattr(csd_mod, "load_vgg19", random_vgg)
        extra.append("loss.csd.negatives=4")
    rcfg = load_config(TINY / f"{name}.yaml", tiny_overrides(data_root, *extra))
    summary = run_training(rcfg, tmp_path, progress=False)
    assert summary["iteration"] == 2
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    term = {"ts": "l1_t", "lsfd": "lfd"}.get(name, name)
    assert math.isfinite(record[term]) and record[term] > 0


# -- method table ----------------------------------------------------------------------------


def test_method_weights_converted_from_paper_range():
    fakd = resolve_loss("fakd", None)
    assert (fakd.pixel.gt_weight, fakd.pixel.teacher_weight) == (0.5, 0.5)
    assert fakd.fakd.weight == pytest.approx(10 / 255)
    assert resolve_loss("csd", None).csd.weight == pytest.approx(200 / 255)
    assert resolve_loss("lsfd", None).lfd.attention == "teacher_student"
    assert resolve_loss("lfd", None).lfd.attention == "none"
    assert resolve_loss("pisr", None).vid.weight == pytest.approx(1e-6)  # PISR used [0, 1]
    assert resolve_loss("pisr-teacher", None).vid.mode == "teacher"


def test_methods_command_json_and_markdown(capsys):
    from facd.cli import main

    assert main(["methods", "--json"]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)}
    terms = {t["term"]: t for t in rows["fakd"]["terms"]}
    assert terms["fakd"]["paper_weight"] == 10.0
    assert terms["fakd"]["weight"] == pytest.approx(10 / 255)
    assert terms["l1_t"]["weight"] == 0.5 and rows["fakd"]["paper_range"] == 255
    assert rows["pisr-teacher"]["needs_teacher"] is False
    assert rows["lsfd"]["terms"][1]["options"] == {"attention": "teacher_student"}
    assert main(["methods", "ts", "csd", "--markdown"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| method |") and len(md) == 4
    assert "csd[negatives=10] 200->0.7843" in md[3]
    assert main(["methods", "fakd"]) == 0
    assert "fakd 10->0.03922" in capsys.readouterr().out
    assert main(["methods", "nope"]) == 2
