"""The training configuration: typed, strict, with the paper's defaults.

Relative paths are resolved against the current working directory. Keys that scripts rely on
(kept stable): ``train.iterations`` (the total), ``seed``, ``data.train_dirs``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from facd.archs.spec import PRESETS, ArchSpec, preset_spec
from facd.distill.methods import get_method, resolve_loss
from facd.distill.options import LossOptions
from facd.errors import ConfigError
from facd.typedconfig import apply_overrides, field, from_dict, json_schema, to_dict


@dataclass
class NetConfig:
    """A network: a preset with optional overrides, and optional weights."""

    preset: str | None = field(None, f"one of: {', '.join(PRESETS)}")
    arch: Literal["edsr", "rcan"] | None = field(None, "architecture (when no preset)")
    n_feats: int | None = field(None, "channels")
    n_blocks: int | None = field(None, "ResBlocks (EDSR) or RCABs per group (RCAN)")
    n_groups: int | None = field(None, "residual groups (RCAN)")
    res_scale: float | None = field(None, "residual scaling (EDSR)")
    reduction: int | None = field(None, "channel-attention reduction (RCAN)")
    weights: str | None = field(None, "checkpoint to load (teacher: required for distillation)")
    taps: list[str] | None = field(None, "module paths of the feature taps; default: FAKD's three")

    def validate(self, where: str) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(
                f"'{where}.preset' is {self.preset!r}; known presets: {', '.join(PRESETS)}"
            )
        if self.preset is None and self.arch is None:
            raise ConfigError(f"'{where}' needs a 'preset' or an 'arch'")

    def spec(self, scale: int) -> ArchSpec:
        base = (
            dataclasses.asdict(preset_spec(self.preset, scale))
            if self.preset
            else {"arch": self.arch, "scale": scale}
        )
        for name in ("arch", "n_feats", "n_blocks", "n_groups", "res_scale", "reduction"):
            value = getattr(self, name)
            if value is not None:
                base[name] = value
        if base["arch"] == "edsr":
            base["n_groups"] = 0
        return ArchSpec(**base)


@dataclass
class DataConfig:
    train_dirs: list[str] = field(
        ["../shared/data/T91/HR", "../shared/data/BSD200/HR"], "folders of HR training images"
    )
    patch_size: int = field(48, "LR patch size (HR patch = patch_size * scale)")
    augment: bool = field(True, "random flips and 90-degree rotations")
    num_workers: int = field(0, "data-loading processes")
    small_images: Literal["error", "skip"] = field(
        "error",
        "images smaller than the HR patch: stop with an error naming the file, or skip them",
    )
    exclude: str | None = field(
        None, "file listing training images to leave out (e.g. configs/splits/val291.txt)"
    )

    def validate(self, where: str) -> None:
        if not self.train_dirs:
            raise ConfigError(f"'{where}.train_dirs' must list at least one folder")
        if self.patch_size < 4:
            raise ConfigError(f"'{where}.patch_size' must be >= 4, got {self.patch_size}")
        if self.num_workers < 0:
            raise ConfigError(f"'{where}.num_workers' must be >= 0")


@dataclass
class ValConfig:
    data_root: str = field("../shared/data", "folder holding the benchmark sets")
    sets: list[str] = field(["Set5"], "benchmark sets to validate on (Y-PSNR)")
    every: int = field(1000, "validate every N iterations (0: only at the end)")
    max_images: int = field(0, "use only the first N images of each set (0: all)")


@dataclass
class TrainSection:
    iterations: int = field(600_000, "total iterations (600 epochs of 1000)")
    batch_size: int = field(16, "global batch size")
    lr: float = field(2e-4, "initial learning rate (Adam, default betas)")
    iters_per_epoch: int = field(1000, "iterations per epoch (EDSR-PyTorch's test_every)")
    lr_milestones: list[int] = field(
        [150, 300, 450], "epochs at which the lr is multiplied by lr_gamma"
    )
    lr_gamma: float = field(0.5, "lr decay factor")
    log_every: int = field(100, "iterations between log lines")
    save_every: int = field(1000, "iterations between checkpoints")
    keep_checkpoints: int = field(2, "training states kept on disk")
    precision: Literal["fp32", "bf16", "fp16"] = field("fp32", "autocast precision")
    channels_last: bool = field(False, "channels_last memory format")
    compile: bool = field(False, "torch.compile the student")
    device: str = field("auto", "auto, cpu, cuda or cuda:N")
    grad_clip: float = field(0.0, "max gradient norm (0: off)")
    nan_policy: Literal["stop", "skip"] = field(
        "stop", "on a non-finite loss: stop, or skip the batch"
    )
    max_skips: int = field(10, "with nan_policy=skip: stop after this many skipped batches")

    def validate(self, where: str) -> None:
        for name in ("iterations", "batch_size", "iters_per_epoch", "log_every", "save_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"'{where}.{name}' must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"'{where}.lr' must be > 0, got {self.lr}")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"'{where}.keep_checkpoints' must be >= 1")

    @property
    def milestone_iterations(self) -> list[int]:
        return [m * self.iters_per_epoch for m in self.lr_milestones]


@dataclass
class Config:
    method: str = field("scratch", "distillation method (see `facd methods`)")
    scale: int = field(4, "upscaling factor")
    seed: int = field(0, "seed of the weights' initialisation and the data sampler")
    student: NetConfig = dataclasses.field(default_factory=lambda: NetConfig(preset="edsr-s"))
    teacher: NetConfig | None = field(None, "the frozen teacher (needed by distillation methods)")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    val: ValConfig = dataclasses.field(default_factory=ValConfig)
    train: TrainSection = dataclasses.field(default_factory=TrainSection)
    loss: dict[str, Any] = field({}, "overrides of the method's loss options (see LossOptions)")

    def validate(self, where: str) -> None:
        method = get_method(self.method)
        if method.needs_teacher and self.teacher is None:
            raise ConfigError(f"method {self.method!r} needs a 'teacher' section")


@dataclass
class ResolvedConfig:
    """A validated config plus the method's fully resolved loss options."""

    config: Config
    loss: LossOptions

    def to_dict(self) -> dict:
        data = to_dict(self.config)
        data["loss"] = to_dict(self.loss)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, base: dict | None = None
) -> ResolvedConfig:
    """Read a YAML config, apply ``key=value`` overrides, validate, and resolve the loss."""
    data: dict = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: invalid YAML") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data.update(loaded)
    data = apply_overrides(data, overrides or [])
    cfg = from_dict(Config, data)
    loss = resolve_loss(cfg.method, cfg.loss)
    return ResolvedConfig(cfg, loss)


def config_schema() -> dict:
    schema = json_schema(Config)
    schema["properties"]["loss"] = json_schema(LossOptions)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "facd training config"
    return schema
