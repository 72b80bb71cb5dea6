"""VGG19 ``features`` with torchvision's parameter names, for CSD's contrastive loss.

The layer list is torchvision's configuration "E" (16 convs 3x3, ReLU, 5 max-pools), so the keys
are ``features.0.weight`` ... ``features.34.bias`` and the standard ImageNet file
``vgg19-dcbb9e9d.pth`` loads strictly (its ``classifier.*`` keys are ignored: CSD never uses
them). After loading, the network is cut after relu5_1 (index 29) and frozen. It returns the
activations after relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1 (indices 1, 6, 11, 20, 29),
the slices of CSD's ``Vgg19``. No input normalisation is applied here (CSD feeds [0, 255] RGB).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from facd.errors import CheckpointError, ConfigError

# torchvision cfg "E": channel counts, "M" = max-pool.
VGG19_CFG: list[int | str] = [
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
]  # fmt: skip
SLICE_ENDS = (1, 6, 11, 20, 29)  # indices of relu1_1 .. relu5_1 in ``features``
CSD_HINT = (
    "CSD needs ImageNet VGG19 weights: download vgg19-dcbb9e9d.pth "
    "(torchvision's VGG19 ImageNet weights) and pass --set loss.csd.vgg_weights=PATH"
)


def make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """Frozen VGG19 ``features[:30]``; ``forward`` returns the five relu*_1 activations."""

    def __init__(self) -> None:
        super().__init__()
        self.features = make_features()

    def load_features(self, sd: dict[str, torch.Tensor], source: str) -> None:
        """Strictly load torchvision ``features.*`` keys (``classifier.*`` keys are ignored)."""
        other = sorted(k for k in sd if not k.startswith(("features.", "classifier.")))
        feats = {k: v for k, v in sd.items() if k.startswith("features.")}
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(feats)), sorted(set(feats) - set(own))
        if other or missing or unexpected:
            raise CheckpointError(
                f"{source}: not torchvision VGG19 weights (missing {missing[:3]}, "
                f"unexpected {(unexpected + other)[:3]})"
            )
        for k, v in feats.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise CheckpointError(
                    f"{source}: {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}"
                )
        self.load_state_dict(feats, strict=True)

    def freeze(self) -> VGG19Features:
        """Cut after relu5_1, switch to eval mode and stop parameter gradients."""
        self.features = nn.Sequential(*list(self.features)[: SLICE_ENDS[-1] + 1])
        self.eval().requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in SLICE_ENDS:
                out.append(x)
        return out


def load_vgg19(path: str | None) -> VGG19Features:
    """The frozen ImageNet VGG19 of CSD, from torchvision's ``vgg19-*.pth`` (no pickle code runs)."""
    if not path:
        raise ConfigError(CSD_HINT)
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{CSD_HINT} (file not found: {p})")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused, truncated file, not a torch file
        first = (str(err).strip().splitlines() or ["unreadable"])[0][:160]
        raise CheckpointError(f"{p}: cannot read VGG19 weights ({first})") from None
    if not isinstance(sd, dict):
        raise CheckpointError(f"{p}: expected a state dict of tensors")
    net = VGG19Features()
    net.load_features(sd, str(p))
    return net.freeze()
