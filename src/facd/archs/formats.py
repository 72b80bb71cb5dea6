"""Checkpoint layouts: official EDSR-PyTorch/RCAN names, BasicSR names, and detection.

:func:`detect_spec` asks every registered architecture (:mod:`facd.archs.registry`); the rest
of this module is the EDSR/RCAN part, used by their declarations.

Detection reads only tensor names and shapes (in the spirit of spandrel's ``KeyCondition``):
- RCAN is recognised by its channel-attention keys ``body.{g}.body.{b}.body.3.conv_du.0.weight``;
- EDSR by ``body.{i}.body.0.weight`` without them;
- ``n_feats`` from ``head.0.weight``; blocks and groups by counting indices;
- the scale from the upsampler convs (``4*n_feats`` outputs per x2 stage, ``9*n_feats`` for x3).
``res_scale`` leaves no trace in the weights: facd checkpoints store it in their metadata, and for
other files it is 0.1 for 256-channel EDSR (the official EDSR) and 1 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from facd.archs.spec import ArchSpec
from facd.errors import CheckpointError, FacdError

StateDict = dict[str, torch.Tensor]
Shape = tuple[int, ...]

_CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> StateDict:
    """Return the flat tensor dict inside BasicSR/Lightning-style containers.

    BasicSR files with both ``params_ema`` and ``params`` give ``params_ema`` (the EMA weights
    BasicSR reports results with). A ``module.`` prefix from DataParallel/DDP is removed.
    """
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_tensor_dict(obj):
            inner = next((obj[k] for k in _CONTAINER_KEYS if k in obj), None)
            if inner is None:
                keys = sorted(str(k)[:40] for k in obj)[:8]
                raise CheckpointError(f"{source}: no state dict found; top-level keys are {keys}")
            obj = inner
    if not isinstance(obj, Mapping) or not _is_tensor_dict(obj):
        raise CheckpointError(f"{source}: does not hold a dict of tensors")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(
                f"{source}: tensor names must be strings, found {type(key).__name__} key"
            )
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    return out


def _is_tensor_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


_BASICSR_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^conv_first\."), "head.0."),
    (re.compile(r"^upsample\."), "tail.0."),
    (re.compile(r"^conv_last\."), "tail.1."),
    # EDSR ResidualBlockNoBN
    (re.compile(r"^body\.(\d+)\.conv1\."), r"body.\1.body.0."),
    (re.compile(r"^body\.(\d+)\.conv2\."), r"body.\1.body.2."),
    # RCAN residual groups
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.1\."),
        r"body.\1.body.\2.body.3.conv_du.0.",
    ),
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.3\."),
        r"body.\1.body.\2.body.3.conv_du.2.",
    ),
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.(\d+)\."),
        r"body.\1.body.\2.body.\3.",
    ),
]


def is_basicsr_layout(sd: Mapping[str, object]) -> bool:
    return "conv_first.weight" in sd


def basicsr_to_official(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename BasicSR EDSR/RCAN keys to the official layout.

    ``conv_after_body`` becomes the last body index and each group's ``conv`` the last index in
    the group, so the counts are read first.
    """
    n_top = _count_indices(sd, r"^body\.(\d+)\.")
    out: StateDict = {}
    for key, value in sd.items():
        new = key
        if key.startswith("conv_after_body."):
            new = f"body.{n_top}." + key[len("conv_after_body.") :]
        elif m := re.match(r"^body\.(\d+)\.conv\.(weight|bias)$", key):
            g = m.group(1)
            nb = _count_indices(sd, rf"^body\.{g}\.residual_group\.(\d+)\.")
            new = f"body.{g}.body.{nb}.{m.group(2)}"
        else:
            for pattern, repl in _BASICSR_RULES:
                if pattern.search(key):
                    new = pattern.sub(repl, key)
                    break
        out[new] = value
    return out


def official_to_basicsr(sd: Mapping[str, torch.Tensor], spec: ArchSpec) -> StateDict:
    """The inverse of :func:`basicsr_to_official` (MeanShift keys are dropped: BasicSR keeps the
    mean as a constant)."""
    out: StateDict = {}
    n_top = spec.n_blocks if spec.arch == "edsr" else spec.n_groups
    for key, value in sd.items():
        if key.startswith(("sub_mean.", "add_mean.")):
            continue
        new = key
        if key.startswith("head.0."):
            new = "conv_first." + key[len("head.0.") :]
        elif key.startswith("tail.0."):
            new = "upsample." + key[len("tail.0.") :]
        elif key.startswith("tail.1."):
            new = "conv_last." + key[len("tail.1.") :]
        elif key.startswith(f"body.{n_top}."):
            new = "conv_after_body." + key[len(f"body.{n_top}.") :]
        elif spec.arch == "edsr":
            new = re.sub(r"^body\.(\d+)\.body\.0\.", r"body.\1.conv1.", key)
            new = re.sub(r"^body\.(\d+)\.body\.2\.", r"body.\1.conv2.", new)
        else:
            m = re.match(r"^body\.(\d+)\.body\.(\d+)\.(.*)$", key)
            if m:
                g, b, rest = m.groups()
                if int(b) == spec.n_blocks:
                    new = f"body.{g}.conv.{rest}"
                else:
                    rest = rest.replace("body.3.conv_du.0.", "rcab.3.attention.1.")
                    rest = rest.replace("body.3.conv_du.2.", "rcab.3.attention.3.")
                    rest = re.sub(r"^body\.(\d)\.", r"rcab.\1.", rest)
                    new = f"body.{g}.residual_group.{b}.{rest}"
        out[new] = value
    return out


def _count_indices(sd: Mapping[str, object], pattern: str) -> int:
    """One more than the largest index the pattern's group captures (indices over 9 digits are
    ignored: such keys are reported as unexpected by the strict load)."""
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in sd if (m := regex.match(k)) and len(m.group(1)) <= 9}
    return max(found) + 1 if found else 0


def shape_of(value: torch.Tensor | Shape) -> Shape:
    """The shape of a tensor, or a shape given as a tuple/list (from a safetensors header)."""
    if isinstance(value, torch.Tensor):
        return tuple(int(d) for d in value.shape)
    return tuple(int(d) for d in value)


def _conv_shape(
    sd: Mapping[str, torch.Tensor | Shape], key: str, source: str
) -> tuple[int, int, int, int]:
    """The shape of conv weight ``key``: it must be 4-D with every dimension at least 1."""
    shape = shape_of(sd[key])
    if len(shape) != 4 or min(shape) < 1:
        raise CheckpointError(
            f"{source}: tensor {key!r} has shape {shape}; a conv weight needs 4 dimensions >= 1 "
            "(the file is damaged or not an EDSR/RCAN checkpoint)"
        )
    return shape  # type: ignore[return-value]


def sr_family_of(sd: Mapping[str, torch.Tensor | Shape]) -> str | None:
    """``"rcan"``, ``"edsr"`` or None: which of the two a state dict (official or BasicSR
    layout) belongs to, from its key names alone. SwinIR files (``conv_first`` too, but
    ``layers.*`` and ``patch_embed.*``) are not claimed."""
    if any(k.startswith(("layers.", "patch_embed.")) for k in sd):
        return None
    if is_basicsr_layout(sd):
        rcan = any(".residual_group." in k for k in sd)
        return "rcan" if rcan else "edsr"
    if "head.0.weight" not in sd:
        return None
    rcan_ca = re.compile(r"^body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.0\.weight$")
    return "rcan" if any(rcan_ca.match(k) for k in sd) else "edsr"


def detect_spec(sd: Mapping[str, torch.Tensor | Shape], source: str = "checkpoint") -> ArchSpec:
    """Detect architecture and hyperparameters from a state dict in any known layout.

    ``sd`` maps names to tensors or to shapes (a safetensors header read without its tensors).
    Each registered architecture says whether the keys are its own (``claims``) and reads its
    hyperparameters from the shapes (``detect``). Absurd shapes and hyperparameters that no
    spec allows are a :class:`CheckpointError` naming ``source``.
    """
    from facd.archs.registry import architectures, families, signature_keys

    for arch in architectures():
        if arch.claims(sd):
            return arch.detect(sd, source)
    raise CheckpointError(f"{source}: not an {families()} checkpoint (no {signature_keys()} keys)")


def detect_sr_family(
    sd: Mapping[str, torch.Tensor | Shape], source: str = "checkpoint"
) -> ArchSpec:
    """Detect EDSR or RCAN hyperparameters from an official- or BasicSR-layout state dict."""
    if is_basicsr_layout(sd):
        sd = basicsr_to_official(sd)  # type: ignore[arg-type]
    if "head.0.weight" not in sd:
        raise CheckpointError(
            f"{source}: not an EDSR or RCAN checkpoint (no 'head.0.weight' or 'conv_first.weight')"
        )
    n_feats, n_colors = _conv_shape(sd, "head.0.weight", source)[:2]
    scale = _detect_scale(sd, n_feats, source)
    rcan_ca = re.compile(r"^body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.0\.weight$")
    ca_keys = sorted(k for k in sd if rcan_ca.match(k))
    try:
        if ca_keys:
            n_groups = _count_indices(sd, r"^body\.(\d+)\.body\.\d+\.body\.")
            n_blocks = _count_indices(sd, r"^body\.0\.body\.(\d+)\.body\.")
            squeeze = _conv_shape(sd, ca_keys[0], source)[0]
            reduction = max(1, n_feats // squeeze)
            if n_feats // reduction != squeeze:
                raise CheckpointError(
                    f"{source}: channel attention {ca_keys[0]!r} squeezes {n_feats} channels "
                    f"to {squeeze}, which no reduction factor gives"
                )
            return ArchSpec(
                arch="rcan",
                scale=scale,
                n_feats=n_feats,
                n_blocks=n_blocks,
                n_groups=n_groups,
                reduction=reduction,
                n_colors=n_colors,
            )
        n_blocks = _count_indices(sd, r"^body\.(\d+)\.body\.0\.weight$")
        if n_blocks == 0:
            raise CheckpointError(
                f"{source}: found a head conv but no EDSR ResBlocks or RCAN groups"
            )
        res_scale = 0.1 if n_feats >= 256 else 1.0
        return ArchSpec(
            arch="edsr",
            scale=scale,
            n_feats=n_feats,
            n_blocks=n_blocks,
            res_scale=res_scale,
            n_colors=n_colors,
        )
    except CheckpointError:
        raise
    except FacdError as err:  # e.g. a scale or colour count that no network supports
        raise CheckpointError(f"{source}: unsupported architecture in the tensors: {err}") from None


def _detect_scale(sd: Mapping[str, torch.Tensor | Shape], n_feats: int, source: str) -> int:
    stages = sorted(
        (int(m.group(1)), k) for k in sd if (m := re.match(r"^tail\.0\.(\d{1,9})\.weight$", k))
    )
    if not stages:
        raise CheckpointError(f"{source}: no upsampler weights ('tail.0.*' or 'upsample.*')")
    scale = 1
    for _, key in stages:
        outputs = _conv_shape(sd, key, source)[0]
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
