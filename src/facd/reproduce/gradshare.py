"""How much each loss term can move the student: gradient shares beside loss shares.

A term that is 5 % of the loss may be 0.2 % of the student's gradient, or 99 %. This module
measures both on a fixed batch, after training, from saved weights, through the public API
(:class:`facd.Distiller`): it costs nothing per training step and changes no run or fingerprint.

Definitions, for the active terms k of a method with weights w_k and unweighted values L_k
(``DistillOutput.terms``), θ_S the student's parameters (the teacher and the trained loss
modules, e.g. regressors, are held fixed), and ``||.||`` the L2 norm over all of θ_S:

    g_k            = || ∂(w_k L_k) / ∂θ_S ||
    grad_share_k   = g_k / Σ_j g_j
    grad_ratio_k   = g_k / g_{l1_gt}                 (None when the method has no l1_gt term)
    loss_share_k   = w_k L_k / Σ_j w_j L_j
    total_grad     = || ∂(Σ_j w_j L_j) / ∂θ_S ||     (≤ Σ_j g_j; equal when the gradients align)

Open choices:

- One batch, drawn by :class:`facd.TrainPatches` from the run's training data (its folders,
  exclusions and small-image rule) at iteration 0 of the sampler seeded with ``seed``: the same
  patches for every method and checkpoint measured with the same seed, batch size and patch.
- The distiller runs in eval mode (no network here has batch norm or active dropout, so the
  forward is the training forward; eval mode only keeps the per-step counter from advancing).
- The loss modules' own gradients are not measured: they are not the student's, and a term acts
  on the student only through θ_S.
- A run is read from its folder: ``config.yaml`` (relative paths are read against the current
  directory, i.e. the directory the run was trained from) and the newest training state
  ``checkpoints/state-*.pt``, which holds the student and the loss modules (the distiller's
  ``state_dict()``: ``student.*``, ``terms.*``). A method without loss modules also reads from
  ``last.safetensors`` alone. The teacher is the file the config names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from facd.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from facd import Distiller
    from facd.train.config import Config, ResolvedConfig

GT_TERM = "l1_gt"


@dataclass(frozen=True)
class TermShare:
    """One term's weighted loss and student gradient, and their shares (module docstring)."""

    name: str
    weight: float
    value: float  # L_k, unweighted
    weighted: float  # w_k L_k
    loss_share: float
    grad_norm: float  # g_k
    grad_share: float
    grad_ratio_to_gt: float | None


@dataclass(frozen=True)
class GradientShares:
    """The shares of every active term on one batch, and the norm of the total gradient."""

    terms: list[TermShare]
    total_grad_norm: float

    def by_name(self) -> dict[str, TermShare]:
        return {t.name: t for t in self.terms}


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else math.nan


def gradient_shares(distiller: Distiller, lr: torch.Tensor, hr: torch.Tensor) -> GradientShares:
    """Each active term's gradient and loss share on the student for the batch ``(lr, hr)``.

    ``distiller`` is a :class:`facd.Distiller`; its parameters are left untouched (no
    ``.grad`` is written) and its training mode is restored.
    """
    was_training = distiller.training
    distiller.eval()
    try:
        out = distiller(lr, hr)
    finally:
        distiller.train(was_training)
    params = [p for p in distiller.student.parameters() if p.requires_grad]
    weighted = out.weighted()
    names = list(weighted)
    flat: dict[str, torch.Tensor] = {}
    for i, name in enumerate(names):
        value = weighted[name]
        if not value.requires_grad:  # a term that does not reach the student
            flat[name] = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
            continue
        grads = torch.autograd.grad(
            value, params, retain_graph=i < len(names) - 1, allow_unused=True
        )
        flat[name] = torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).detach().flatten().double()
                for g, p in zip(grads, params, strict=True)
            ]
        )
    norms = {n: float(v.norm()) for n, v in flat.items()}
    total_grad = float(torch.stack(list(flat.values())).sum(0).norm()) if flat else 0.0
    loss_sum = sum(float(v.detach()) for v in weighted.values())
    grad_sum = sum(norms.values())
    gt = norms.get(GT_TERM)
    terms = [
        TermShare(
            name=n,
            weight=float(out.weights[n]),
            value=float(out.terms[n].detach()),
            weighted=float(weighted[n].detach()),
            loss_share=_share(float(weighted[n].detach()), loss_sum),
            grad_norm=norms[n],
            grad_share=_share(norms[n], grad_sum),
            grad_ratio_to_gt=_share(norms[n], gt) if gt is not None else None,
        )
        for n in names
    ]
    return GradientShares(terms, total_grad)


def fixed_batch(
    cfg: Config, batch: int, patch: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The measurement batch: item 0 of :class:`facd.TrainPatches` over the training data of
    ``cfg`` (a :class:`facd.train.config.Config`), ``batch`` LR patches of side ``patch``."""
    from facd import TrainPatches

    d = cfg.data
    patches = TrainPatches(
        list(d.train_dirs),
        cfg.scale,
        patch,
        batch,
        iterations=1,
        seed=seed,
        augment=d.augment,
        small_images=d.small_images,
        progress=False,
        exclude=d.exclude,
    )
    lr, hr = patches[0]
    return lr, hr


def load_run_config(run_dir: Path) -> ResolvedConfig:
    """The resolved config of a run folder (its ``config.yaml``)."""
    from facd.train.config import load_config

    path = Path(run_dir) / "config.yaml"
    try:
        saved = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise ConfigError(f"{path}: cannot read the run's config ({reason})") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: not a run config (expected a mapping)")
    return load_config(None, [], base=saved)


def load_trained(distiller: Distiller, run_dir: Path) -> int:
    """Load the run's newest training state (student and loss modules) into ``distiller``
    strictly; returns its iteration. A method without loss modules falls back to
    ``last.safetensors`` when the folder keeps no state."""
    from facd.archs.io import read_checkpoint
    from facd.train.state import latest_state_path, load_state

    path = latest_state_path(Path(run_dir))
    if path is not None:
        state = load_state(path)
        _load_strict(distiller, state["model"], path)
        return int(state["iteration"])
    last = Path(run_dir) / "last.safetensors"
    if any(True for _ in distiller.terms.parameters()):
        raise CheckpointError(
            f"{run_dir}: no training state (checkpoints/state-*.pt) holds the trained loss "
            "modules of this method; the student's weights alone cannot be measured"
        )
    tensors, meta = read_checkpoint(last)
    _load_strict(distiller.student, tensors, last)
    return int(meta.get("iteration", -1))


def _load_strict(module: torch.nn.Module, tensors: dict[str, Any], path: Path) -> None:
    try:
        module.load_state_dict(tensors)
    except RuntimeError as err:
        first = (str(err).strip().splitlines() or ["mismatch"])[0][:200]
        raise CheckpointError(f"{path}: does not fit the run's config ({first})") from None


def measure(
    rcfg: ResolvedConfig,
    run_dir: Path | None = None,
    batch: int | None = None,
    patch: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Gradient and loss shares of a run (trained weights from ``run_dir``) or, without one, of
    the config's initialisation. ``batch`` and ``patch`` default to the config's. Returns a
    JSON-ready dict: the method, the iteration measured (0 at initialisation), the batch, the
    terms (:class:`TermShare` fields) and the total gradient norm."""
    cfg = rcfg.config
    batch = batch or cfg.train.batch_size
    patch = patch or cfg.data.patch_size
    if batch < 2 or patch < 1:
        raise ConfigError(f"--batch must be >= 2 and --patch >= 1, got {batch} and {patch}")
    from facd.train.assemble import build_distiller

    distiller = build_distiller(rcfg, "cpu", run_dir=run_dir, log=lambda _message: None)
    iteration = load_trained(distiller, run_dir) if run_dir is not None else 0
    lr, hr = fixed_batch(cfg, batch, patch, seed)
    shares = gradient_shares(distiller, lr, hr)
    return {
        "method": cfg.method,
        "run_dir": str(run_dir) if run_dir is not None else None,
        "iteration": iteration,
        "batch": {"size": batch, "patch": patch, "seed": seed},
        "terms": [asdict(t) for t in shares.terms],
        "total_grad_norm": shares.total_grad_norm,
    }


def run_gradient_shares(
    run_dir: str | Path, batch: int | None = None, patch: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """:func:`measure` on a finished (or interrupted) run folder."""
    run_dir = Path(run_dir)
    return measure(load_run_config(run_dir), run_dir, batch, patch, seed)


def markdown_table(results: Sequence[dict[str, Any]], labels: Sequence[str]) -> str:
    """One row per (result, term): loss share, gradient share and ratio to L1_GT's gradient."""
    lines = [
        "| run | term | weight | loss share | gradient share | gradient / L1_GT's |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, res in zip(labels, results, strict=True):
        for t in res["terms"]:
            ratio = t["grad_ratio_to_gt"]
            lines.append(
                f"| {label} | {t['name']} | {t['weight']:.4g} | {100 * t['loss_share']:.3g} % "
                f"| {100 * t['grad_share']:.3g} % | {'-' if ratio is None else f'{ratio:.3g}'} |"
            )
    return "\n".join(lines)
