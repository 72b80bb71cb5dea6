"""The training configuration: typed, strict, with the paper's defaults.

Keys that scripts rely on (kept stable): ``train.iterations`` (the total), ``seed``,
``data.train_dirs``.

Composition: a config file may name one or more other files under ``base:`` (a name or a list,
relative to the file itself); they are read in order, each merged over the previous one
(mappings key by key, anything else replaced), then the file's own keys on top, then the
``--set`` overrides. ``teacher: null`` drops a section a base defined. A cycle of bases is refused.

Paths: every key declared with ``field(..., path=True)`` (``data.train_dirs``, ``data.exclude``,
``val.data_root``, ``val.split``, ``student.weights``, ``teacher.weights`` and the loss options' files) is a
path. In a config file, a relative path is read against **the folder of the file that wrote
it** (a base's paths against the base's folder), so a config works from any directory; the
loaded config writes it relative to the current directory, or absolute where that is shorter
(absolute paths stay as written). A
path given with ``--set`` or in a dict passed as ``base=`` is relative to the current directory,
like any command-line path. ``facd-asset:NAME`` names a file shipped inside the package
(:mod:`facd.assets`) in any path key.

Every numeric key has an allowed range (``field(..., ge=, gt=, le=)``), checked when the config
is loaded, before anything is written; the ranges are in the JSON schema and docs/config.md.
Upper bounds are far above any real run and exist to catch typos (an extra zero, a seed past
what numpy's and torch's generators take) before they turn into a crash hours in.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from facd.archs.registry import supported_scales
from facd.assets import is_asset, resolve_asset
from facd.distill.methods import DEFAULT_METHOD, get_method, resolve_loss
from facd.distill.options import LossOptions
from facd.errors import ConfigError
from facd.train.netconfig import NetConfig
from facd.typedconfig import (
    apply_overrides,
    field,
    from_dict,
    json_schema,
    load_yaml,
    map_paths,
    merge,
    short_repr,
    short_str,
    to_dict,
)

SEED_MAX = 2**32 - 1
"""Largest seed: numpy's legacy ``np.random.seed`` takes [0, 2**32 - 1], torch more."""

BATCH_MAX = 65536
ITERATIONS_MAX = 10**9


@dataclass
class DataConfig:
    train_dirs: list[str] = field(
        ["../shared/data/T91/HR", "../shared/data/BSD200/HR"],
        "folders of HR training images",
        path=True,
    )
    patch_size: int = field(48, "LR patch size (HR patch = patch_size * scale)", ge=4, le=1024)
    augment: bool = field(True, "random flips and 90-degree rotations")
    num_workers: int = field(0, "data-loading processes", ge=0, le=256)
    small_images: Literal["error", "skip"] = field(
        "error",
        "images smaller than the HR patch: stop with an error naming the file, or skip them",
    )
    exclude: str | None = field(
        None,
        "file listing training images to leave out (e.g. configs/splits/val291.txt)",
        path=True,
    )
    unsupported_images: Literal["error", "skip"] | None = field(
        None,
        "images that cannot be read as 8-bit RGB (16-bit PNG, damaged files): stop with an "
        "error naming the file (unset or error), or skip them",
    )

    def validate(self, where: str) -> None:
        if not self.train_dirs:
            raise ConfigError(f"'{where}.train_dirs' must list at least one folder")


@dataclass
class ValConfig:
    data_root: str = field("../shared/data", "folder holding the benchmark sets", path=True)
    sets: list[str] = field(["Set5"], "benchmark sets to validate on (Y-PSNR)")
    every: int = field(1000, "validate every N iterations (0: only at the end)", ge=0)
    max_images: int = field(0, "use only the first N images of each set (0: all)", ge=0)
    split: str | None = field(
        None,
        "list file of held-out training images to validate on instead of the benchmark sets "
        "(e.g. configs/splits/val291.txt; images read from data.train_dirs, LR by MATLAB "
        "bicubic); when set, 'sets' and 'data_root' are not used; data.exclude must leave out "
        "every image it names",
        path=True,
    )

    @property
    def enabled(self) -> bool:
        """Whether training validates at all (a split, or at least one benchmark set)."""
        return bool(self.split or self.sets)


@dataclass
class TrainSection:
    iterations: int = field(
        600_000, "total iterations (600 epochs of 1000)", ge=1, le=ITERATIONS_MAX
    )
    batch_size: int = field(16, "global batch size", ge=1, le=BATCH_MAX)
    lr: float = field(2e-4, "initial learning rate (Adam, default betas)", gt=0, le=1)
    iters_per_epoch: int = field(
        1000, "iterations per epoch (EDSR-PyTorch's test_every)", ge=1, le=ITERATIONS_MAX
    )
    lr_milestones: list[int] = field(
        [150, 300, 450], "epochs at which the lr is multiplied by lr_gamma", ge=0
    )
    lr_gamma: float = field(0.5, "lr decay factor", gt=0, le=1)
    log_every: int = field(100, "iterations between log lines", ge=1)
    save_every: int = field(1000, "iterations between checkpoints", ge=1)
    keep_checkpoints: int = field(2, "training states kept on disk", ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = field("fp32", "autocast precision")
    channels_last: bool = field(
        True,
        "channels_last memory format of the networks and batches: the fast CPU path (1.1-1.7x "
        "per training step, docs/performance.md); false is the NCHW path the published "
        "protocols pin; the two differ in the last float digits",
    )
    compile: bool = field(
        False, "torch.compile the student (on a CPU slower than channels_last alone)"
    )
    device: str = field("auto", "auto, cpu, cuda or cuda:N")
    grad_clip: float = field(0.0, "max gradient norm (0: off)", ge=0)
    nan_policy: Literal["stop", "skip"] = field(
        "stop", "on a non-finite loss: stop, or skip the batch"
    )
    max_skips: int = field(10, "with nan_policy=skip: stop after this many skipped batches", ge=0)

    @property
    def milestone_iterations(self) -> list[int]:
        return [m * self.iters_per_epoch for m in self.lr_milestones]


@dataclass
class Config:
    method: str = field(DEFAULT_METHOD, "distillation method (see `facd methods`)")
    scale: int = field(4, f"upscaling factor: {', '.join(map(str, supported_scales()))}")
    seed: int = field(
        0, "seed of the weights' initialisation and the data sampler", ge=0, le=SEED_MAX
    )
    student: NetConfig = dataclasses.field(default_factory=lambda: NetConfig(preset="edsr-s"))
    teacher: NetConfig | None = field(None, "the frozen teacher (needed by distillation methods)")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    val: ValConfig = dataclasses.field(default_factory=ValConfig)
    train: TrainSection = dataclasses.field(default_factory=TrainSection)
    loss: dict[str, Any] = field(
        {}, "overrides of the method's loss options (see LossOptions)", schema=LossOptions
    )

    def validate(self, where: str) -> None:
        scales = supported_scales()
        if self.scale not in scales:
            raise ConfigError(
                f"'scale' must be one of {', '.join(map(str, scales))}, got {self.scale}"
            )
        method = get_method(self.method)
        if method.needs_teacher and self.teacher is None:
            raise ConfigError(f"method {self.method!r} needs a 'teacher' section")
        self._check_split_left_out()

    def _check_split_left_out(self) -> None:
        """Validation never sees images that training can see: every entry of ``val.split``
        must be left out by ``data.exclude``, i.e. end with one of its entries (whole path
        components), so that each image the split names is excluded from training. The exclude
        list may name more (images left out for other reasons stay training-only)."""
        if self.val.split is None:
            return
        from facd.data.patches import listed_in, read_name_list

        entries = read_name_list(self.val.split, "val.split")
        left_out = read_name_list(self.data.exclude)
        seen = [e for e in entries if not listed_in(Path(e), left_out)]
        if seen:
            raise ConfigError(
                f"val.split {self.val.split}: training would see {len(seen)} of its "
                f"{len(entries)} images (e.g. {short_str(seen[0])}), since data.exclude does not "
                f"list them; set data.exclude to {self.val.split} or to a list that contains its "
                "entries"
            )


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
    """Read a YAML config (with its ``base:`` files), apply ``key=value`` overrides, validate,
    and resolve the loss.

    ``base`` is a dict of settings under the file's (paths in it, like those of ``overrides``,
    relative to the current directory). Nothing is written: every error (YAML, key, type, range,
    a missing or cyclic base) is raised here, before a run starts.
    """
    data: dict = dict(base or {})
    if path is not None:
        data = merge(data, read_config_file(path))
    data = apply_overrides(data, overrides or [])
    data = map_paths(Config, data, _asset_path)
    cfg = from_dict(Config, data)
    loss = resolve_loss(cfg.method, cfg.loss)
    return ResolvedConfig(cfg, loss)


def read_config_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """The raw mapping of a config file: its ``base:`` files merged in order, then its own keys;
    every relative path read against the folder of the file that wrote it and written relative
    to the current directory (not yet validated: :func:`load_config` does that)."""
    path = Path(path)
    name = short_str(str(path), tail=True)
    if not path.is_file():
        raise ConfigError(f"config file not found: {name}")
    real = path.resolve()
    if real in _chain:
        cycle = " -> ".join(p.name for p in (*_chain[_chain.index(real) :], real))
        raise ConfigError(f"{name}: its 'base' files include each other ({cycle}); remove one")
    loaded = _read_mapping(path, name)
    bases = loaded.pop("base", None)
    if isinstance(bases, str):
        bases = [bases]
    if bases is None:
        bases = []
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(
            f"{name}: 'base' must be a config file name or a list of them (relative to this "
            f"file), got {short_repr(bases)}"
        )
    data: dict = {}
    for item in bases:
        found = path.parent / os.path.expanduser(item)
        if not found.is_file():
            raise ConfigError(
                f"{name}: base config {short_repr(item)} not found (looked for "
                f"{short_str(str(found), tail=True)}); base paths are relative to this file"
            )
        data = merge(data, read_config_file(found, (*_chain, real)))
    folder = Path(os.path.abspath(path.parent))
    return merge(data, map_paths(Config, loaded, lambda value, _key: _from_folder(value, folder)))


def _read_mapping(path: Path, name: str) -> dict:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{name}: cannot read the config ({reason})") from None
    loaded = load_yaml(text, name) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{name}: expected a mapping at the top level")
    return loaded


def _from_folder(value: str, folder: Path) -> str:
    """A path read from a config file in ``folder``, written relative to the current directory
    or absolute, whichever is shorter (absolute paths and asset names as they are; ``~``
    expanded)."""
    if not value or is_asset(value):
        return value
    value = os.path.expanduser(value)
    if os.path.isabs(value):
        return value
    return _shortest(os.path.normpath(os.path.join(folder, value)))


def _shortest(target: str) -> str:
    """The absolute path ``target`` written relative to the current directory, or as it is
    where that is shorter (a folder far from the current one, another drive)."""
    try:
        rel = os.path.relpath(target)
    except ValueError:  # another drive (Windows): no relative form
        return target
    return rel if len(rel) <= len(target) else target


def _asset_path(value: str, key: str) -> str:
    """``facd-asset:NAME`` -> the shipped file; anything else unchanged."""
    return _shortest(os.path.abspath(resolve_asset(value, key))) if is_asset(value) else value


def absolute_paths(data: dict) -> dict:
    """A copy of a raw config dict (paths relative to the current directory) with every
    relative path made absolute, so it can be written to a file anywhere and keep its meaning
    (a config file's relative paths are read against its own folder)."""

    def absolute(value: str, _key: str) -> str:
        if not value or is_asset(value):
            return value
        return os.path.abspath(os.path.expanduser(value))

    return map_paths(Config, data, absolute)


def portable_paths(data: dict, root: str | Path | None = None) -> dict:
    """A copy of a config dict whose paths are relative to ``root`` (default: the current
    directory), POSIX-style: no absolute path, no machine's layout (for fingerprints).

    A relative path is taken as relative to the current directory. Asset names stay as they are.
    """
    anchor = os.path.abspath(root) if root is not None else os.getcwd()

    def portable(value: str, _key: str) -> str:
        if not value or is_asset(value):
            return value
        target = os.path.abspath(os.path.expanduser(value))
        try:
            rel = os.path.relpath(target, anchor)
        except ValueError:
            return Path(target).as_posix()
        return Path(rel).as_posix()

    return map_paths(Config, data, portable)


def config_schema() -> dict:
    schema = json_schema(Config)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "facd training config"
    return schema
