"""The architecture registry: one declaration per architecture, read by every part of facd."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from facd.archs import (
    PRESETS,
    ArchSpec,
    TapPoint,
    Tiling,
    build_model,
    get_arch,
    preset_spec,
    registry,
)
from facd.archs.formats import shape_of
from facd.archs.io import ARCH_METADATA_KEY, load_model, save_model
from facd.distill.taps import FeatureTaps, default_taps, tap_channels
from facd.errors import CheckpointError, ConfigError
from facd.typedconfig import from_dict

from .helpers import isolate_registries


def test_registry_lists_the_builtin_architectures() -> None:
    assert registry.names()[:3] == ["edsr", "rcan", "swinir"]
    assert {"edsr-s", "rcan-s", "swinir-m", "swinir-s", "swinir-tiny-s"} <= set(PRESETS)
    assert PRESETS["swinir-s"]["arch"] == "swinir"
    with pytest.raises(ConfigError, match="unknown architecture 'vdsr'; expected one of") as err:
        get_arch("vdsr")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", list(PRESETS))
def test_declared_taps_and_sizes_match_the_built_network(name: str) -> None:
    """Tap channels are declared (no dry run needed) and equal what a dry run measures; the
    memory guard's layout size equals the built state dict."""
    spec = preset_spec(name, 4)
    decl = get_arch(spec.arch)
    with torch.device("meta"):
        net = build_model(spec)
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith(decl.optional_keys or "\0")}
    assert decl.layout_size(spec) == (len(sd), sum(v.numel() for v in sd.values()))
    taps = decl.taps(spec)
    assert len(taps) == 3 and len({t.path for t in taps}) == 3
    if "tiny" in name:  # a real dry run on the small ones
        real = build_model(spec)
        paths = [t.path for t in taps]
        with FeatureTaps(real, paths) as ft, torch.no_grad():
            real(torch.rand(1, 3, 9, 7))
            assert [int(f.shape[1]) for f in ft.features] == [t.channels for t in taps]
        assert tap_channels(real, paths) == [t.channels for t in taps]


def test_tap_channels_without_a_dry_run_for_default_taps(monkeypatch) -> None:
    spec = preset_spec("swinir-tiny-t", 2)
    net = build_model(spec)
    monkeypatch.setattr(net, "forward", lambda x: pytest.fail("dry run"))
    assert tap_channels(net, default_taps(spec)) == [24, 24, 24]


def test_tiling_is_declared() -> None:
    edsr = get_arch("edsr").tiling(preset_spec("edsr-s", 4))
    rcan = get_arch("rcan").tiling(preset_spec("rcan-s", 4))
    swin = get_arch("swinir").tiling(preset_spec("swinir-s", 4))
    assert edsr.exact and edsr.margin == 36 and edsr.tail_margin == 2
    assert not rcan.exact and "channel attention" in rcan.reason
    assert not swin.exact and swin.tolerance > 0 and swin.tail_margin is None
    assert "approximate" in swin.describe()


@pytest.mark.parametrize("name", list(PRESETS))
def test_spec_json_round_trip(name: str) -> None:
    spec = preset_spec(name, 3)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert spec.with_scale(2) == preset_spec(name, 2) or name == "swinir-m"


def test_old_metadata_layout_still_reads(tmp_path: Path) -> None:
    """Files written before the registry hold the union of every field: still readable."""
    old_edsr = {
        "arch": "edsr", "scale": 2, "n_feats": 16, "n_blocks": 4, "n_groups": 0,
        "res_scale": 1.0, "reduction": 16, "n_colors": 3, "rgb_range": 255.0,
    }  # fmt: skip
    assert ArchSpec.from_dict(old_edsr) == preset_spec("edsr-tiny-s", 2)
    old_rcan = dict(old_edsr, arch="rcan", n_groups=3, n_blocks=1, reduction=8)
    assert ArchSpec.from_dict(old_rcan) == preset_spec("rcan-tiny-s", 2)
    torch.manual_seed(0)
    net = build_model(preset_spec("rcan-tiny-s", 2))
    path = tmp_path / "old.safetensors"
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(path), metadata={ARCH_METADATA_KEY: json.dumps(old_rcan), "format": "facd"})
    _, found = load_model(path)
    assert found == preset_spec("rcan-tiny-s", 2)


def test_compatible_attributes_and_constructor() -> None:
    spec = ArchSpec("edsr", 4, n_feats=8, n_blocks=2)
    assert (spec.n_feats, spec.n_blocks, spec.res_scale, spec.rgb_range) == (8, 2, 1.0, 255.0)
    assert spec.params == get_arch("edsr").params_type(n_feats=8, n_blocks=2)
    swin = preset_spec("swinir-s", 4)
    assert swin.embed_dim == 60 and swin.rgb_range == 1.0
    with pytest.raises(AttributeError, match="n_feats"):
        _ = swin.n_feats
    with pytest.raises(ConfigError, match="unknown edsr option 'edsr.depths'"):
        ArchSpec("edsr", 4, depths=[1])


# ------------------------------------------------------------------- a user's architecture


@dataclass(frozen=True)
class ToyParams:
    width: int = 8


class Toy(nn.Module):
    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.head = nn.Conv2d(3, spec.width, 3, padding=1)
        self.tail = nn.Conv2d(spec.width, 3 * spec.scale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(spec.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.tail(torch.relu(self.head(x))))


class ToyArch(registry.Architecture):
    name = "toy"
    title = "Toy"
    params_type = ToyParams
    presets = {"toy-s": dict(width=4)}
    scales = (2, 3, 5)
    signature_keys = ("head.weight",)

    def build(self, spec: ArchSpec) -> nn.Module:
        return Toy(spec)

    def layout_size(self, spec: ArchSpec) -> tuple[int, int]:
        w, s = spec.width, spec.scale
        return 4, 3 * w * 9 + w + w * 3 * s * s * 9 + 3 * s * s

    def claims(self, shapes) -> bool:  # type: ignore[no-untyped-def]
        return "head.weight" in shapes and "shuffle" not in shapes

    def detect(self, shapes, source: str) -> ArchSpec:  # type: ignore[no-untyped-def]
        width = shape_of(shapes["head.weight"])[0]
        scale = math.isqrt(shape_of(shapes["tail.weight"])[0] // 3)
        return ArchSpec("toy", scale, ToyParams(width))

    def taps(self, spec: ArchSpec) -> list[TapPoint]:
        return [TapPoint("head", spec.width)] * 3

    def tiling(self, spec: ArchSpec) -> Tiling:
        return Tiling(exact=True, margin=2)


def test_an_architecture_is_one_declaration(tmp_path: Path, monkeypatch) -> None:
    """A user's module registers its declaration; presets, files, taps and configs follow."""
    isolate_registries(monkeypatch)
    registry.register(ToyArch())
    spec = preset_spec("toy-s", 2)
    torch.manual_seed(0)
    net = build_model(spec)
    save_model(tmp_path / "toy.safetensors", net, spec)
    loaded, found = load_model(tmp_path / "toy.safetensors")
    assert found == spec
    x = torch.rand(1, 3, 5, 6)
    assert torch.equal(loaded(x), net(x))
    assert default_taps(spec) == ["head"] * 3
    from facd.train.netconfig import NetConfig

    cfg = from_dict(NetConfig, {"arch": "toy", "options": {"width": 6}}, "student")
    assert cfg.spec(3) == ArchSpec("toy", 3, ToyParams(6))
    # names, scales and messages come from the declarations
    from facd.archs.formats import detect_spec
    from facd.reproduce.paper import arch_name

    assert registry.families() == "EDSR, RCAN, SwinIR or Toy"
    assert registry.supported_scales() == (2, 3, 4, 5, 8) and arch_name("toy") == "Toy"
    with pytest.raises(CheckpointError, match=r"SwinIR or Toy checkpoint \(no .*'layers.0.\*' or "):
        detect_spec({"other.weight": (1,)}, "x.pt")


# ----------------------------------------------------------------------------- NetConfig


def _net(data: dict):  # type: ignore[no-untyped-def]
    from facd.train.netconfig import NetConfig

    return from_dict(NetConfig, data, "student")


def test_netconfig_options_are_checked_by_the_architecture() -> None:
    spec = _net({"preset": "swinir-tiny-s", "options": {"depths": [2, 2], "num_heads": [2, 2]}})
    assert spec.spec(2).depths == (2, 2)
    assert _net({"arch": "edsr", "options": {"n_blocks": 3, "n_feats": 12}}).spec(4) == ArchSpec(
        "edsr", 4, n_blocks=3, n_feats=12
    )
    # the EDSR/RCAN shorthand of older configs
    assert _net({"arch": "edsr", "n_blocks": 3, "n_feats": 12}).spec(4).n_feats == 12
    cases = {
        "unknown swinir option 'student.n_feats'": {"preset": "swinir-s", "n_feats": 8},
        "'student.options.embed_dim' must be an integer": {
            "preset": "swinir-s",
            "options": {"embed_dim": "wide"},
        },
        "is not divisible by num_heads": {"preset": "swinir-s", "options": {"embed_dim": 61}},
        "preset 'swinir-s' is 'swinir'": {"preset": "swinir-s", "arch": "edsr"},
        "known architectures: edsr, rcan, swinir": {"arch": "vdsr"},
    }
    for message, data in cases.items():
        with pytest.raises(ConfigError, match=message) as err:
            _net(data)
        assert "\n" not in str(err.value)


def test_swinir_metadata_is_checked_against_the_tensors(tmp_path: Path) -> None:
    spec = preset_spec("swinir-tiny-s", 2)
    net = build_model(spec)
    path = tmp_path / "s.safetensors"
    claims = dict(spec.to_dict(), embed_dim=24, num_heads=[3, 3, 3])
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(path), metadata={ARCH_METADATA_KEY: json.dumps(claims)})
    with pytest.raises(CheckpointError, match="says embed_dim = 24, but the tensors have 12"):
        load_model(path)
