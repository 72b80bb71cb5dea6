"""What :class:`facd.Distiller` checks before it uses its networks and batches.

Without these checks a wrong argument surfaces later as a raw torch error (a dtype or shape
mismatch deep in a convolution), or not at all (a student passed as its own teacher is silently
frozen; 0..255 inputs give a loss of about 125). Each check raises one :class:`DistillerError`
with one line that names the argument and the fix.

At construction (:func:`check_networks`):

- the teacher may be the :class:`facd.infer.api.Upscaler` that ``facd.load`` returns: its
  network (``upscaler.model``) is used (:func:`unwrap_teacher`). That network is the
  upscaler's own object, so the Distiller's ``.to()`` moves the upscaler's network too;
- the teacher is not the student and shares no parameter with it (freezing the teacher would
  freeze the student);
- the teacher's floating-point dtype is the student's (a bf16 or fp64 teacher beside a float32
  student fails at its first convolution; mixed precision is ``torch.autocast``'s job);
- when both networks carry an architecture spec, their scales agree;
- the teacher's weights are finite (:func:`check_teacher_finite`): a teacher saved from a
  diverged run makes every term that reads it NaN, which would be reported as a loss-term
  problem; the message names the teacher's file when it is known.

At every call (:func:`check_batch`), shapes only (no device synchronisation): ``lr`` and ``hr``
are 4-D float tensors (N, C, H, W) with the same batch size, and ``hr`` is ``lr`` times the
student's scale when the student's spec is known. At the first call also the values (one
reduction each): NaN or infinite inputs are refused (they would be blamed on the weights), and
inputs above 1.5 are taken for 0..255 images (facd's networks take [0, 1]; 1.5
leaves room for the overshoot of a bicubic resize). At the first call the outputs are checked
too (:func:`check_outputs`): the student's and the teacher's outputs have the size of ``hr``,
which catches a scale mismatch between networks without a spec.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from facd.errors import DistillerError

RANGE_LIMIT = 1.5  # largest value taken for a [0, 1] image (bicubic overshoot allowed)


def unwrap_teacher(teacher: Any) -> Any:
    """The network of a :class:`facd.infer.api.Upscaler` (what ``facd.load`` returns)."""
    from facd.infer.api import Upscaler

    return teacher.model if isinstance(teacher, Upscaler) else teacher


def check_networks(student: Any, teacher: nn.Module | None) -> None:
    """Refuse networks the Distiller cannot use (see the module docstring)."""
    from facd.archs import spec_of_module
    from facd.infer.api import Upscaler

    if isinstance(student, Upscaler):
        raise DistillerError(
            "the student is an Upscaler (what facd.load returns, frozen for inference); pass "
            "a trainable network, e.g. facd.archs.build_model(spec)"
        )
    if not isinstance(student, nn.Module):
        raise DistillerError(f"the student must be a torch.nn.Module, got {type(student).__name__}")
    if teacher is None:
        return
    if not isinstance(teacher, nn.Module):
        raise DistillerError(
            f"the teacher must be a torch.nn.Module, a checkpoint path or an Upscaler, got "
            f"{type(teacher).__name__}"
        )
    if teacher is student:
        raise DistillerError(
            "the student was passed as its own teacher, which would freeze it; pass a trained "
            "teacher network or checkpoint (or copy.deepcopy(student) for self-distillation)"
        )
    shared = {id(p) for p in student.parameters()} & {id(p) for p in teacher.parameters()}
    if shared:
        raise DistillerError(
            f"the teacher shares {len(shared)} parameter tensor(s) with the student, which "
            "freezing the teacher would freeze; pass a separate copy (copy.deepcopy)"
        )
    s_dtype, t_dtype = _float_dtype(student), _float_dtype(teacher)
    if s_dtype is not None and t_dtype is not None and s_dtype != t_dtype:
        raise DistillerError(
            f"the teacher's parameters are {_name(t_dtype)} but the student's are "
            f"{_name(s_dtype)}; convert the teacher (teacher.float() for float32) and use "
            "torch.autocast for mixed precision"
        )
    s_spec, t_spec = spec_of_module(student), spec_of_module(teacher)
    if s_spec is not None and t_spec is not None and s_spec.scale != t_spec.scale:
        raise DistillerError(
            f"the student is x{s_spec.scale} but the teacher is x{t_spec.scale}; distil "
            "between networks of one scale"
        )


def check_batch(lr: Any, hr: Any, scale: int | None, first: bool) -> None:
    """Refuse a batch the networks cannot take (shapes always, values at the first call)."""
    for name, t in (("lr", lr), ("hr", hr)):
        if not isinstance(t, torch.Tensor):
            raise DistillerError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise DistillerError(
                f"{name} has shape {tuple(t.shape)}; pass a batch (N, C, H, W), e.g. "
                f"{name}.unsqueeze(0) for one image"
            )
        if not t.is_floating_point():
            raise DistillerError(
                f"{name} is {_name(t.dtype)}; pass float images in [0, 1] "
                f"({name}.float() / 255 for 8-bit images)"
            )
    if lr.shape[0] != hr.shape[0]:
        raise DistillerError(
            f"lr holds {lr.shape[0]} images but hr holds {hr.shape[0]}; pass matching batches"
        )
    if scale is not None and tuple(hr.shape[2:]) != (lr.shape[2] * scale, lr.shape[3] * scale):
        raise DistillerError(
            f"hr is {hr.shape[3]}x{hr.shape[2]} but lr is {lr.shape[3]}x{lr.shape[2]} and the "
            f"student is x{scale}; hr must be {lr.shape[3] * scale}x{lr.shape[2] * scale}"
        )
    if first:
        for name, t in (("lr", lr), ("hr", hr)):
            bad = int((~torch.isfinite(t.detach())).sum())
            if bad:
                raise DistillerError(
                    f"{name} holds {bad} NaN or infinite value(s); the input is broken, not the "
                    "networks: check the data that made this batch"
                )
            top = float(t.detach().amax()) if t.numel() else 0.0
            if top > RANGE_LIMIT:
                raise DistillerError(
                    f"{name} holds values up to {top:.4g}; facd's networks take images in "
                    f"[0, 1]: divide 0..255 images by 255"
                )


def check_teacher_finite(teacher: nn.Module, source: str | None) -> None:
    """Refuse a teacher whose weights or buffers hold NaN or infinity; ``source`` is its file."""
    bad = [
        name
        for name, t in teacher.state_dict().items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        where = f"teacher weights {source}" if source else "the teacher's weights"
        raise DistillerError(
            f"{where} hold NaN or infinite values in {len(bad)} tensor(s) (first: {bad[0]!r}); "
            "the teacher is broken (e.g. saved from a diverged training run): use an intact "
            "teacher checkpoint"
        )


def check_outputs(hr: torch.Tensor, sr_s: torch.Tensor, sr_t: torch.Tensor | None) -> None:
    """At the first call: the networks' outputs have the size of ``hr``."""
    for who, sr in (("student", sr_s), ("teacher", sr_t)):
        if sr is not None and tuple(sr.shape[-2:]) != tuple(hr.shape[-2:]):
            raise DistillerError(
                f"the {who}'s output is {sr.shape[-1]}x{sr.shape[-2]} but hr is "
                f"{hr.shape[-1]}x{hr.shape[-2]}; check the {who}'s scale and the hr size"
            )


def _float_dtype(model: nn.Module) -> torch.dtype | None:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
