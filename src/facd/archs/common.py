"""Layers and declaration parts shared by EDSR and RCAN (the official EDSR-PyTorch names).

:class:`SRFamily` holds what the two declarations have in common: the ``sub_mean -> head ->
body -> tail -> add_mean`` skeleton, the skeleton's part of the official and BasicSR key
layouts and of their detection, the frozen MeanShift constants a file may omit, and the tiling
margin of their 3x3 convolutions. Each family's body (its key names, the marks that tell it
apart, the hyperparameters counted from it) is in its own module, ``edsr.py`` or ``rcan.py``.

Detection reads only tensor names and shapes:

- a file is the skeleton's when it has ``head.0.weight`` (official) or ``conv_first.weight``
  (BasicSR) and no other architecture (SwinIR, which has ``conv_first`` too) claims it;
- it is the family whose body marks it (RCAN: the channel-attention keys), else the plain one
  (EDSR's ResBlocks);
- ``n_feats`` and ``n_colors`` from ``head.0.weight``; the scale from the upsampler convs
  (``4*n_feats`` outputs per x2 stage, ``9*n_feats`` for x3); the body's hyperparameters from
  the family's own keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from facd.archs.formats import shape_of
from facd.archs.registry import Architecture, ArchSpec, Shapes, Tiling, architectures
from facd.errors import CheckpointError, ConfigError, FacdError
from facd.typedconfig import short_repr

#: BasicSR -> official names of the skeleton's keys (``conv_after_body`` is the body-end conv,
#: numbered after the body's blocks)
_BASICSR_SKELETON: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^conv_first\."), "head.0."),
    (re.compile(r"^upsample\."), "tail.0."),
    (re.compile(r"^conv_last\."), "tail.1."),
)
_BODY_INDEX = r"^body\.(\d+)\."
#: official -> BasicSR names of the same keys (the inverse)
_OFFICIAL_SKELETON = (
    ("head.0.", "conv_first."),
    ("tail.0.", "upsample."),
    ("tail.1.", "conv_last."),
)


def default_conv(
    in_channels: int, out_channels: int, kernel_size: int, bias: bool = True
) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class MeanShift(nn.Conv2d):
    """Subtracts (sign=-1) or adds (sign=+1) the dataset mean, as a frozen 1x1 conv.

    Official checkpoints store its weight and bias, so it is kept as a conv with the same names.
    """

    def __init__(
        self,
        rgb_range: float,
        rgb_mean: tuple[float, float, float],
        rgb_std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        sign: int = -1,
    ) -> None:
        super().__init__(3, 3, kernel_size=1)
        std = torch.tensor(rgb_std)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1) / std.view(3, 1, 1, 1)
        assert self.bias is not None  # Conv2d built with bias=True
        self.bias.data = sign * rgb_range * torch.tensor(rgb_mean) / std
        for p in self.parameters():
            p.requires_grad = False


class Upsampler(nn.Sequential):
    """Conv + PixelShuffle stages: log2(scale) x2-stages, or one x3 stage."""

    def __init__(self, scale: int, n_feats: int) -> None:
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [default_conv(n_feats, 4 * n_feats, 3), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [default_conv(n_feats, 9 * n_feats, 3), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"unsupported scale {scale}")
        super().__init__(*layers)


class SRNetwork(nn.Module):
    """Base of EDSR and RCAN: ``sub_mean -> head -> body (+ global skip) -> tail -> add_mean``.

    The public ``forward`` takes and returns RGB in [0, 1]; internally the network runs in
    [0, rgb_range] like the official code, so official weights load unchanged.
    ``body`` ends with the body-end conv. The global skip is added out of place and then passed
    through ``body_out`` (an identity with no parameters), so a hook on ``body_out`` sees the
    post-skip feature that FAKD's in-place ``res += x`` taps, and a hook on the body-end conv
    sees the pre-skip one.
    """

    head: nn.Sequential
    body: nn.Sequential
    tail: nn.Sequential

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        from facd.archs.spec import DIV2K_MEAN

        self.spec = spec
        self.scale = spec.scale
        self.rgb_range = spec.rgb_range
        self.sub_mean = MeanShift(spec.rgb_range, DIV2K_MEAN, sign=-1)
        self.add_mean = MeanShift(spec.rgb_range, DIV2K_MEAN, sign=1)
        self.body_out = nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """LR [0,1] -> body output after the global skip (the input of the upsampler)."""
        x = self.sub_mean(x * self.rgb_range)
        x = self.head(x)
        return self.body_out(self.body(x) + x)

    def forward_tail(self, res: torch.Tensor) -> torch.Tensor:
        return self.add_mean(self.tail(res)) / self.rgb_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tail(self.forward_features(x))


# ----------------------------------------------------------------------------- declarations


def check_sr_params(
    n_feats: int, n_blocks: int, n_colors: int, rgb_range: float, extra: str = ""
) -> None:
    """Value checks shared by EDSR and RCAN hyperparameters (one-line ConfigErrors)."""
    from facd.archs.spec import finite

    if n_feats < 1 or n_blocks < 1:
        raise ConfigError(
            f"n_feats and n_blocks must be >= 1, got {short_repr(n_feats)}, {short_repr(n_blocks)}"
        )
    if n_colors != 3:
        raise ConfigError(f"n_colors must be 3 (RGB networks only), got {short_repr(n_colors)}")
    if not (finite(rgb_range) and rgb_range > 0):
        raise ConfigError(f"rgb_range must be a finite number > 0, got {short_repr(rgb_range)}")


def conv(cin: int, cout: int, k: int) -> int:
    """Parameters of a conv with bias."""
    return cin * cout * k * k + cout


def upsampler_stages(scale: int) -> list[int]:
    """Pixel-shuffle factors: log2(scale) x2 stages, or one x3 stage."""
    return [2] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [scale]


def conv_margin(n_lr: int, stages: list[int]) -> int:
    """Walk back from an output pixel of each sub-pixel phase: a 3x3 conv widens the dependency
    interval by one pixel at its resolution, a pixel shuffle by ``f`` maps output pixel ``q``
    to input pixel ``floor(q / f)``; then ``n_lr`` convs at LR resolution."""
    scale = math.prod(stages)
    need = 0
    for phase in range(scale):  # output pixel q = phase belongs to LR pixel 0
        lo = hi = phase
        for f in reversed(stages):
            lo, hi = lo - 1, hi + 1  # the conv after this pixel shuffle
            lo, hi = lo // f, hi // f
        need = max(need, -(lo - n_lr), hi + n_lr)
    return need


class SRFamily(Architecture):
    """The parts of the EDSR and RCAN declarations that are the same."""

    optional_keys = ("sub_mean.", "add_mean.")
    export_layouts = {
        "official": "a plain state dict with every key of the original module (the MeanShift "
        "sub_mean/add_mean convs included): EDSR-PyTorch's and RCAN's code (--pre_train), and "
        "spandrel for RCAN",
        "basicsr": '{"params": ...} with BasicSR\'s names and no MeanShift (BasicSR keeps the '
        "mean as a constant): BasicSR's EDSR and RCAN",
    }

    def body_convs(self, spec: ArchSpec) -> int:
        """3x3 convs in the body at LR resolution (including the body-end conv)."""
        raise NotImplementedError

    def body_size(self, spec: ArchSpec) -> tuple[int, int]:
        """(convs, parameters) of the body without the body-end conv."""
        raise NotImplementedError

    def layout_size(self, spec: ArchSpec) -> tuple[int, int]:
        """Every conv has a weight and a bias; the MeanShift convs are left out."""
        f, c = spec.n_feats, spec.n_colors
        stages = len(upsampler_stages(spec.scale))
        up = 4 * f if spec.scale & (spec.scale - 1) == 0 else 9 * f
        body_convs, body_params = self.body_size(spec)
        convs = 3 + stages + body_convs  # head, body-end conv, tail conv, upsampler convs
        params = conv(c, f, 3) + conv(f, f, 3) + conv(f, c, 3) + stages * conv(f, up, 3)
        return 2 * convs, params + body_params

    # -- the body: what each family declares

    #: a skeleton file that no family's body marks is read as this family's (EDSR: plain blocks)
    plain: ClassVar[bool] = False

    def body_marked(self, shapes: Shapes) -> bool:
        """Whether the keys (official or BasicSR names) carry this family's own blocks."""
        return False

    def basicsr_body_key(self, key: str, sd: Mapping[str, Any]) -> str:
        """The official name of a BasicSR key of the body (other keys come back unchanged)."""
        return key

    def official_body_key(self, key: str, spec: ArchSpec) -> str:
        """The BasicSR name of an official key of the body (the inverse)."""
        return key

    def detect_body(self, sd: Shapes, n_feats: int, source: str) -> dict[str, Any] | None:
        """The body's hyperparameters from an official-layout state dict (None: no blocks)."""
        raise NotImplementedError

    # -- checkpoints

    def claims(self, shapes: Shapes) -> bool:
        return _skeleton_family(shapes) is self

    def to_official(self, sd: Mapping[str, Any]) -> dict[str, Any]:
        """BasicSR names to official ones. ``conv_after_body`` becomes the last body index, so
        the body's indices are counted first."""
        if not is_basicsr_layout(sd):
            return dict(sd)
        n_top = count_indices(sd, _BODY_INDEX)
        out = {}
        for key, value in sd.items():
            new = self.basicsr_body_key(key, sd)
            if key.startswith("conv_after_body."):
                new = f"body.{n_top}." + key[len("conv_after_body.") :]
            for pattern, repl in _BASICSR_SKELETON:
                new = pattern.sub(repl, new)
            out[new] = value
        return out

    def export_layout(self, layout: str, spec: ArchSpec, sd: Mapping[str, torch.Tensor]) -> Any:
        """``official``: ``sd`` itself (facd's EDSR/RCAN use the official names); ``basicsr``:
        ``{"params": ...}`` with BasicSR's names, the inverse of :meth:`to_official`, and
        without the MeanShift keys (BasicSR keeps the mean as a constant)."""
        if layout == "official":
            return dict(sd)
        if layout != "basicsr":
            return super().export_layout(layout, spec, sd)
        body_end = f"body.{count_indices(sd, _BODY_INDEX) - 1}."  # the body-end conv
        out = {}
        for key, value in sd.items():
            if key.startswith(("sub_mean.", "add_mean.")):
                continue
            new = self.official_body_key(key, spec)
            if key.startswith(body_end):
                new = "conv_after_body." + key[len(body_end) :]
            for official, basicsr in _OFFICIAL_SKELETON:
                if key.startswith(official):
                    new = basicsr + key[len(official) :]
            out[new] = value
        return {"params": out}

    def detect(self, shapes: Shapes, source: str) -> ArchSpec:
        """The skeleton's hyperparameters here, the body's from :meth:`detect_body`. Absurd
        shapes and hyperparameters that no spec allows are a :class:`CheckpointError`."""
        sd = self.to_official(shapes)
        if "head.0.weight" not in sd:
            raise CheckpointError(
                f"{source}: not an {self.title} checkpoint (no 'head.0.weight' or "
                "'conv_first.weight')"
            )
        n_feats, n_colors = conv_shape(sd, "head.0.weight", source)[:2]
        scale = _detect_scale(sd, n_feats, source)
        try:
            body = self.detect_body(sd, n_feats, source)
            if body is None:
                raise CheckpointError(
                    f"{source}: found a head conv but no EDSR ResBlocks or RCAN groups"
                )
            return ArchSpec(self.name, scale, n_feats=n_feats, n_colors=n_colors, **body)
        except CheckpointError:
            raise
        except FacdError as err:  # e.g. a scale or colour count that no network supports
            raise CheckpointError(
                f"{source}: unsupported architecture in the tensors: {err}"
            ) from None

    def conv_layers(self, spec: ArchSpec) -> tuple[int, list[int]]:
        """(3x3 convs at LR resolution, pixel-shuffle factors): head + body + the first
        upsampler conv; after each pixel shuffle there is exactly one 3x3 conv."""
        return 1 + self.body_convs(spec) + 1, upsampler_stages(spec.scale)

    def default_tile(self, spec: ArchSpec) -> int:
        """512 LR px for 64 channels, scaled by ``sqrt(64 / n_feats)`` (same body memory)."""
        return max(64, int(512 * math.sqrt(64 / spec.n_feats)) // 8 * 8)

    def sr_tiling(self, spec: ArchSpec, exact: bool, reason: str = "") -> Tiling:
        n_lr, stages = self.conv_layers(spec)
        return Tiling(
            exact=exact,
            margin=conv_margin(n_lr, stages),
            reason=reason,
            tail_margin=conv_margin(1, stages),
        )


def is_basicsr_layout(sd: Mapping[str, object]) -> bool:
    return "conv_first.weight" in sd


def _skeleton_family(shapes: Shapes) -> SRFamily | None:
    """The family of a skeleton file (see the module docstring), or None."""
    declarations = list(architectures())
    if any(a.claims(shapes) for a in declarations if not isinstance(a, SRFamily)):
        return None
    if not is_basicsr_layout(shapes) and "head.0.weight" not in shapes:
        return None
    families = [a for a in declarations if isinstance(a, SRFamily)]
    marked = [f for f in families if f.body_marked(shapes)] or [f for f in families if f.plain]
    return marked[0] if marked else None


def count_indices(sd: Mapping[str, object], pattern: str) -> int:
    """One more than the largest index the pattern's group captures (indices over 9 digits are
    ignored: such keys are reported as unexpected by the strict load)."""
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in sd if (m := regex.match(k)) and len(m.group(1)) <= 9}
    return max(found) + 1 if found else 0


def conv_shape(sd: Shapes, key: str, source: str) -> tuple[int, int, int, int]:
    """The shape of conv weight ``key``: it must be 4-D with every dimension at least 1."""
    shape = shape_of(sd[key])
    if len(shape) != 4 or min(shape) < 1:
        raise CheckpointError(
            f"{source}: tensor {key!r} has shape {shape}; a conv weight needs 4 dimensions >= 1 "
            "(the file is damaged or not an EDSR/RCAN checkpoint)"
        )
    return shape  # type: ignore[return-value]


def _detect_scale(sd: Shapes, n_feats: int, source: str) -> int:
    stages = sorted(
        (int(m.group(1)), k) for k in sd if (m := re.match(r"^tail\.0\.(\d{1,9})\.weight$", k))
    )
    if not stages:
        raise CheckpointError(f"{source}: no upsampler weights ('tail.0.*' or 'upsample.*')")
    scale = 1
    for _, key in stages:
        outputs = conv_shape(sd, key, source)[0]
        if outputs == 4 * n_feats:
            scale *= 2
        elif outputs == 9 * n_feats:
            scale *= 3
        else:
            raise CheckpointError(
                f"{source}: upsampler conv {key!r} has {outputs} outputs for {n_feats} features; "
                "expected 4x (x2 stage) or 9x (x3 stage)"
            )
        if scale > 64:
            break  # already unsupported; ArchSpec reports it
    return scale
