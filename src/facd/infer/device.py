"""Device and precision choice for inference.

* ``auto`` picks CUDA, then Apple MPS, then the CPU.
* Half precision runs only where the hardware computes it natively: always on CUDA (fp16, and
  bf16 where the GPU supports it), on the CPU only if oneDNN reports native fp16/bf16 support
  (AVX512-FP16/AMX). On other CPUs torch emulates half convolutions about 30x slower than
  fp32, so asking for it is an error rather than a silent slowdown.
* ``channels_last`` (NHWC) memory format is used on the CPU and on CUDA, where it is faster for
  the 3x3 convolutions of EDSR/RCAN at tile sizes (see docs/performance.md).
"""

from __future__ import annotations

import torch

from facd.errors import FacdError
from facd.messages import option

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "half_supported",
    "resolve_device",
    "resolve_precision",
    "use_channels_last",
]

#: Accepted ``--device`` values (``cuda:N`` is accepted too).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: ``--precision`` name -> torch dtype.
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` -> a usable ``torch.device``."""
    if isinstance(name, torch.device):
        name = str(name)
    name = str(name).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FacdError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FacdError(
                f"device 'cuda' asked for, but torch sees no CUDA GPU; use {option('device', 'cpu')}"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FacdError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible"
            )
    elif device.type == "mps":
        if not _mps_available():
            raise FacdError("device 'mps' asked for, but it is not available on this machine")
    elif device.type != "cpu":
        raise FacdError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def half_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``dtype`` (fp16/bf16) runs natively, i.e. fast, on ``device``."""
    if dtype == torch.float32:
        return True
    if device.type == "cuda":
        return dtype == torch.float16 or torch.cuda.is_bf16_supported()
    if device.type == "mps":
        return dtype == torch.float16
    mkldnn = torch.ops.mkldnn
    try:
        if dtype == torch.bfloat16:
            return bool(mkldnn._is_mkldnn_bf16_supported())
        return bool(mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``fp32``/``fp16``/``bf16`` -> dtype; a one-line error where the device cannot run it."""
    key = str(precision).strip().lower()
    if key not in PRECISIONS:
        raise FacdError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[key]
    if not half_supported(device, dtype):
        raise FacdError(
            f"precision {key} is not supported natively on {device.type} (torch would emulate it, "
            f"about 30x slower than fp32); use {option('precision', 'fp32')} on this device"
        )
    return dtype


def use_channels_last(device: torch.device) -> bool:
    """NHWC is the faster layout for these networks on the CPU (oneDNN) and on CUDA."""
    return device.type in ("cpu", "cuda")
