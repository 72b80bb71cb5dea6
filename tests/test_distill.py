"""FACD's loss terms against hand-computed cases, gradient flow, the indicator, and taps."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from facd.archs import build_model, preset_spec
from facd.distill.contrastive import (
    ContrastTerm,
    info_nce,
    l1_ratio,
    l1_ratio_naive,
    normalize_features,
    spatial_affinity,
)
from facd.distill.methods import METHODS, active_terms, resolve_loss
from facd.distill.options import ContrastOptions
from facd.distill.pixel import L1ToGT, L1ToTeacher, adaptive_indicator
from facd.distill.regressor import DeepRegressor
from facd.distill.taps import FeatureTaps, default_taps
from facd.distill.terms import StepContext, TermEnv
from facd.errors import ConfigError


def test_l1_ratio_hand_computed():
    # anchors a1=(0,0), a2=(2,0); teacher t1=(1,0), t2=(3,3); |.|_1 is the mean over 2 elements.
    a = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [3.0, 3.0]])
    # d(a1,t1)=0.5, d(a1,t2)=3, d(a1,a2)=1 -> 0.5/(3+1); d(a2,t2)=2, d(a2,t1)=0.5, d(a2,a1)=1 -> 2/1.5
    got = l1_ratio(a, t, student_negatives=True, eps=0.0)
    assert torch.allclose(got, torch.tensor([0.125, 2 / 1.5]))
    got = l1_ratio(a, t, student_negatives=False, eps=0.0)
    assert torch.allclose(got, torch.tensor([0.5 / 3, 4.0]))


def test_l1_ratio_matches_naive_values_and_gradients():
    gen = torch.Generator().manual_seed(0)
    a1 = torch.randn(5, 37, generator=gen, requires_grad=True)
    t = torch.randn(5, 37, generator=gen)
    a2 = a1.detach().clone().requires_grad_(True)
    for detach in (False, True):
        r1 = l1_ratio(a1, t, True, detach)
        r2 = l1_ratio_naive(a2, t, True, detach)
        assert torch.allclose(r1, r2, rtol=1e-5, atol=1e-7)
        (r1 * torch.arange(5)).sum().backward()
        (r2 * torch.arange(5)).sum().backward()
        assert torch.allclose(a1.grad, a2.grad, rtol=1e-4, atol=1e-7)
        a1.grad = a2.grad = None


def test_info_nce_hand_computed():
    # Orthonormal anchors equal to their positives: logits are 1/tau on the diagonal, 0 elsewhere.
    a = torch.eye(2)
    tau = 0.5
    got = info_nce(a, a.clone(), tau, student_negatives=True)
    # row i: [1/tau, 0 (teacher neg), -inf (self), 0 (student neg)]
    expected = -torch.log(torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + 2))
    assert torch.allclose(got, expected.expand(2))


def test_normalisation_modes():
    f = torch.tensor([[[[3.0]], [[4.0]]]])  # (1, 2, 1, 1): one position, two channels
    assert torch.allclose(normalize_features(f, "channel").flatten(), torch.tensor([0.6, 0.8]))
    g = torch.tensor([[[[3.0, 4.0]]]])  # (1, 1, 1, 2)
    assert torch.allclose(normalize_features(g, "sample").flatten(), torch.tensor([0.6, 0.8]))
    assert torch.allclose(normalize_features(g, "spatial").flatten(), torch.tensor([0.6, 0.8]))


def test_spatial_affinity_is_cosine_between_positions():
    f = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # positions (1,0) and (0,2): orthogonal
    a = spatial_affinity(f)
    assert torch.allclose(a, torch.eye(2).unsqueeze(0))


def _identity_regressor(c: int) -> DeepRegressor:
    dr = DeepRegressor(c, c, layers=1)
    with torch.no_grad():
        dr[0].weight.copy_(torch.eye(c).view(c, c, 1, 1))
        dr[0].bias.zero_()
    return dr


def _check_eq6_eq7(term: ContrastTerm) -> None:
    """Eq. 4 with an identity regressor, 1x1 features, one tap of weight 0.5, alpha = (1, 0).

    Sample 2 has alpha = 0 and a non-zero positive distance, so Eq. 6 (alpha in the numerator)
    and Eq. 7 (no alpha) give different values: a term that ignores alpha fails here.
    """
    term.regressors[0] = _identity_regressor(2)
    fs = torch.tensor([[3.0, 4.0], [0.0, 2.0]]).view(2, 2, 1, 1)  # -> (0.6, 0.8), (0, 1)
    ft = torch.tensor([[1.0, 0.0], [3.0, 4.0]]).view(2, 2, 1, 1)  # -> (1, 0), (0.6, 0.8)
    ctx = StepContext(
        lr=torch.zeros(2, 3, 1, 1),
        hr=torch.zeros(2, 3, 2, 2),
        sr_s=torch.zeros(2, 3, 2, 2),
        feats_s=[fs],
        feats_t=[ft],
        alpha=torch.tensor([1.0, 0.0]),
    )
    # sample 1: pos mean(|.6-1|,|.8-0|) = 0.6; teacher neg d(a1, t2) = 0; student neg
    # mean(.6, .2) = 0.4 -> 1.5. Sample 2: pos mean(.6, .2) = 0.4; teacher neg mean(1, 1) = 1;
    # student neg 0.4 -> 0.4 / 1.4.
    r1, r2 = 0.6 / 0.4, 0.4 / 1.4
    term.opts.adaptive, term.opts.batch_reduction = True, "sum"
    assert torch.allclose(term(ctx), torch.tensor(0.5 * r1)), "Eq. 6: alpha = 0 masks sample 2"
    term.opts.adaptive = False
    assert torch.allclose(term(ctx), torch.tensor(0.5 * (r1 + r2))), "Eq. 7: sample 2 counts"
    term.opts.batch_reduction = "mean"
    assert torch.allclose(term(ctx), torch.tensor(0.5 * (r1 + r2) / 2))


def _small_contrast_term() -> ContrastTerm:
    opts = ContrastOptions(weight=4.0, tap_weights=[0.5], regressor_layers=1, eps=0.0)
    env = TermEnv(preset_spec("edsr-tiny-s", 2), preset_spec("edsr-tiny-s", 2), [2], [2])
    return ContrastTerm(opts, env)


def test_contrast_term_feature_domain_hand_computed():
    _check_eq6_eq7(_small_contrast_term())


def test_eq6_eq7_check_sees_alpha(monkeypatch):
    """The hand-computed check fails for a term that ignores alpha (the mutation it guards)."""
    real = ContrastTerm.forward

    def alpha_blind(self, ctx):
        return real(self, dataclasses.replace(ctx, alpha=torch.ones_like(ctx.alpha)))

    monkeypatch.setattr(ContrastTerm, "forward", alpha_blind)
    with pytest.raises(AssertionError, match="Eq. 6"):
        _check_eq6_eq7(_small_contrast_term())


def test_contrast_term_needs_two_samples():
    opts = ContrastOptions(weight=1.0, domain="image")
    env = TermEnv(preset_spec("edsr-tiny-s", 2), None, [], [])
    term = ContrastTerm(opts, env)
    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(ConfigError, match="at least 2"):
        term(StepContext(lr=x, hr=x, sr_s=x, sr_t=x))


def test_eq2_image_loss_hand_computed():
    gt = torch.zeros(2, 1, 1, 2)
    s = torch.tensor([[1.0, 1.0], [2.0, 2.0]]).view(2, 1, 1, 2)
    t = torch.tensor([[3.0, 3.0], [1.0, 1.0]]).view(2, 1, 1, 2)
    alpha = adaptive_indicator(s, t, gt)
    assert alpha.tolist() == [0.0, 1.0]  # sample 1: student (1) beats teacher (3)
    ctx = StepContext(lr=gt, hr=gt, sr_s=s, sr_t=t, alpha=alpha)
    # Eq. 2: 1/(2N) [ (2-0)*1 + 0*2 + (2-1)*2 + 1*1 ] = (2 + 3) / 4
    total = 0.5 * L1ToGT(True)(ctx) + 0.5 * L1ToTeacher(True)(ctx)
    assert torch.allclose(total, torch.tensor(5 / 4))
    # with alpha = 1 everywhere it is 0.5 L1_GT + 0.5 L1_T
    plain = 0.5 * L1ToGT(False)(ctx) + 0.5 * L1ToTeacher(False)(ctx)
    assert torch.allclose(plain, torch.tensor(0.5 * 1.5 + 0.5 * 1.5))


def test_indicator_flips_with_teacher_quality():
    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(8, 3, 8, 8, generator=gen)
    student = gt + 0.1 * torch.randn(8, 3, 8, 8, generator=gen)
    assert adaptive_indicator(student, gt, gt).eq(1).all()  # a perfect teacher is never skipped
    noise = torch.rand(8, 3, 8, 8, generator=gen) * 4
    assert adaptive_indicator(student, noise, gt).eq(0).all()  # a useless teacher always is


def test_methods_table_is_consistent():
    for m in METHODS.values():
        terms = dict(active_terms(m.loss_options()))
        assert terms, m.name
        if not m.needs_teacher:  # no term may read a teacher (pisr-teacher trains its encoder)
            assert not set(terms) & {"l1_t", "contrast", "fakd", "lfd", "csd"}, m.name
    facd = resolve_loss("facd", None)
    assert facd.pixel.adaptive and facd.contrast.adaptive
    assert facd.contrast.tap_weights == [0.5, 0.3, 0.2]
    assert facd.contrast.weight == pytest.approx(4 / 255)
    fcd = resolve_loss("fcd", None)
    assert not fcd.pixel.adaptive and not fcd.contrast.adaptive
    assert resolve_loss("facd", {"contrast": {"weight": 4.0}}).contrast.weight == 4.0
    with pytest.raises(ConfigError, match="loss.contrast.wieght"):
        resolve_loss("facd", {"contrast": {"wieght": 1}})


@pytest.mark.parametrize("name", ["edsr-tiny-t", "rcan-tiny-t", "edsr-s", "rcan-s"])
def test_taps_capture_post_skip_feature(name):
    spec = preset_spec(name, 2)
    model = build_model(spec).eval()
    x = torch.rand(1, 3, 6, 6)
    paths = default_taps(spec)
    assert len(paths) == 3 and paths[-1] == "body_out"
    with FeatureTaps(model, paths) as taps, torch.no_grad():
        y = model(x)
        feats = [f.clone() for f in taps.features]
    with torch.no_grad():
        assert torch.equal(
            feats[-1], model.forward_features(x)
        )  # post-skip, as FAKD's in-place tap
        assert torch.equal(model.forward_tail(feats[-1]), y)


def test_fakd_tap_positions():
    assert default_taps(preset_spec("edsr-s", 4)) == ["body.4", "body.9", "body_out"]
    assert default_taps(preset_spec("edsr-t", 4)) == ["body.9", "body.20", "body_out"]
    assert default_taps(preset_spec("rcan-t", 4)) == ["body.2", "body.6", "body_out"]


def test_bad_tap_path_is_reported():
    model = build_model(preset_spec("edsr-tiny-s", 2))
    with pytest.raises(ConfigError, match="body.99"):
        FeatureTaps(model, ["body.99"])
