"""Export: ONNX (EDSR/RCAN, checked against torch with onnxruntime) and the weight files of
other code (:func:`export_weights`, every architecture, checked by reading them back).

The graph takes ``lr``: float32 (N, 3, H, W) RGB in [0, 1] and returns ``sr``: float32
(N, 3, H*s, W*s), not clamped; N, H and W are dynamic. The network's ``ArchSpec`` is stored in
the model's metadata (``facd.arch``), with ``scale`` and the value range.

Exporter: torch's TorchScript-based exporter (``dynamo=False``), which needs only the ``onnx``
package and works offline; the newer ``torch.export`` path needs ``onnxscript`` and is used
only if the old one is gone. Default opset 17: the newest opset that both exporters, current
onnxruntime (desktop and mobile) and TensorRT handle, and all these networks need
(Conv, Relu, DepthToSpace in CRD mode for pixel shuffle, GlobalAveragePool, Sigmoid) exists
unchanged since opset 13.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facd.archs.spec import ArchSpec
from facd.errors import FacdError

__all__ = [
    "DEFAULT_OPSET",
    "TOLERANCE",
    "VERIFY_SIZES",
    "LAYOUTS",
    "VerifyResult",
    "export_onnx",
    "export_weights",
    "verify_onnx",
]

#: Key layouts of :func:`export_weights` (each architecture's declaration writes them).
LAYOUTS = ("official", "basicsr")
#: Suffixes of the files :func:`export_weights` writes (``torch.save``; facd reads any other
#: suffix than ``.safetensors`` as one).
WEIGHT_SUFFIXES = (".pt", ".pth")

DEFAULT_OPSET = 17
#: Largest max-abs difference (outputs in [0, 1]) accepted between onnxruntime and torch.
TOLERANCE = 1e-4
#: (H, W) LR sizes of the check: square, wide and odd, to exercise the dynamic axes.
VERIFY_SIZES: tuple[tuple[int, int], ...] = ((32, 32), (24, 56), (37, 19))


@dataclass(frozen=True)
class VerifyResult:
    """Max abs difference between onnxruntime and torch for each LR (H, W) tried."""

    diffs: tuple[tuple[tuple[int, int], float], ...]
    tolerance: float = TOLERANCE

    @property
    def max_abs_diff(self) -> float:
        return max(d for _, d in self.diffs)

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def __str__(self) -> str:
        sizes = ", ".join(f"{h}x{w}: {d:.2e}" for (h, w), d in self.diffs)
        verdict = "ok" if self.ok else "FAILED"
        return f"onnxruntime vs torch max |diff| {sizes} (tolerance {self.tolerance:g}) {verdict}"


def _export_bytes(model: nn.Module, opset: int, scale: int) -> bytes:
    x = torch.rand(1, 3, 16, 16)
    buf = io.BytesIO()
    kwargs: dict[str, Any] = dict(
        input_names=["lr"],
        output_names=["sr"],
        opset_version=opset,
        dynamic_axes={
            "lr": {0: "batch", 2: "height", 3: "width"},
            "sr": {0: "batch", 2: "out_height", 3: "out_width"},
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        try:
            torch.onnx.export(model, (x,), buf, dynamo=False, **kwargs)  # type: ignore[arg-type]
        except TypeError:  # a torch without the dynamo switch
            torch.onnx.export(model, (x,), buf, **kwargs)  # type: ignore[arg-type]
        except (RuntimeError, ValueError, AttributeError) as err:
            raise FacdError(
                f"ONNX export failed at opset {opset}: {str(err).splitlines()[0]}"
            ) from None
    return buf.getvalue()


def export_onnx(
    model: nn.Module, spec: ArchSpec, path: str | Path, *, opset: int = DEFAULT_OPSET
) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically); returns the path."""
    try:
        import onnx
    except ImportError:
        raise FacdError("ONNX export needs the onnx package: pip install 'facd[export]'") from None
    from facd.fileio import atomic_write_bytes

    refusal = spec.declaration.onnx_refusal(spec)
    if refusal:
        raise FacdError(refusal)
    if not 11 <= opset <= 20:
        raise FacdError(f"opset {opset} is not supported; use 11..20 (default {DEFAULT_OPSET})")
    if Path(path).is_dir():  # checked before the export's work, not at the final rename
        raise FacdError(f"{path} is a folder; give a file name for the ONNX model")
    net = copy.deepcopy(model).float().cpu().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    proto = onnx.load_from_string(_export_bytes(net, opset, spec.scale))
    meta = {
        "facd.arch": spec.to_json(),
        "scale": str(spec.scale),
        "input": "lr: float32 (N, 3, H, W) RGB in [0, 1]",
        "output": f"sr: float32 (N, 3, {spec.scale}H, {spec.scale}W) RGB, clamp to [0, 1]",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "facd"
    onnx.checker.check_model(proto)
    path = Path(path)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def verify_onnx(
    path: str | Path,
    model: nn.Module,
    sizes: tuple[tuple[int, int], ...] = VERIFY_SIZES,
    *,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> VerifyResult:
    """Run the ONNX file with onnxruntime (CPU) and ``model`` with torch on random inputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise FacdError(
            "checking the export needs onnxruntime: pip install 'facd[export]' (or --no-verify)"
        ) from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    net = copy.deepcopy(model).float().cpu().eval()
    gen = torch.Generator().manual_seed(seed)
    diffs = []
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=gen)
        with torch.inference_mode():
            ref = net(x).numpy()
        (out,) = session.run(["sr"], {"lr": x.numpy()})
        if out.shape != ref.shape:
            raise FacdError(f"{path}: onnxruntime output {out.shape} != torch output {ref.shape}")
        diffs.append(((h, w), float(np.abs(out - ref).max())))
    return VerifyResult(tuple(diffs), tolerance)


def check_weights_path(path: str | Path, layout: str) -> Path:
    """The layout is known and ``path`` is a ``.pt``/``.pth`` file name (one-line errors)."""
    path = Path(path)
    if layout not in LAYOUTS:
        raise FacdError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise FacdError(f"{path}: --layout {layout} writes a torch.save file; name it .pt or .pth")
    if path.is_dir():
        raise FacdError(f"{path} is a folder; give a file name for the weights")
    return path


def export_weights(model: nn.Module, spec: ArchSpec, path: str | Path, layout: str) -> Path:
    """Write ``model`` as a ``.pt``/``.pth`` file in ``layout`` (atomically); returns the path.

    The object comes from the architecture's declaration (``export_layout``: the key names and
    container the original code, BasicSR and spandrel load) and holds plain tensors only, so
    ``torch.load(weights_only=True)`` reads it. The file is then read back as facd reads any
    file (layout detection, hyperparameters from the shapes) and run on a random 16x16 input:
    the output must equal ``model``'s exactly. Hyperparameters that leave no trace in the
    tensors (EDSR's ``res_scale`` and ``rgb_range``) make it differ; the file is then removed
    and the error names them.
    """
    from facd.archs.io import load_model
    from facd.fileio import atomic_write_bytes, remove_file

    path = check_weights_path(path, layout)
    net = copy.deepcopy(model).float().cpu().eval()
    sd = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save(spec.declaration.export_layout(layout, spec, sd), buf)
    atomic_write_bytes(path, buf.getvalue())
    loaded, found = load_model(path)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        same = torch.equal(net(x), loaded.eval()(x))
    if not same:
        remove_file(path)
        fields = [
            f"{name} {getattr(spec.params, name)!r} (read back as {getattr(found.params, name)!r})"
            for name in spec.declaration.option_names()
            if getattr(spec.params, name) != getattr(found.params, name)
        ]
        raise FacdError(
            f"{path}: the {layout} layout cannot record this network's "
            f"{', '.join(fields) or 'hyperparameters'}: read back, it gives other outputs; "
            "export it as a facd .safetensors checkpoint instead (file removed)"
        )
    return path
