"""A reproduction protocol: one teacher, one student architecture, shared training settings,
and rows (method x seeds), read from a strict YAML file (``configs/repro/*.yaml``).

Every row trains the same student with the same data, schedule and validation; only the method
(and so the loss) and the seed differ. A row may be marked ``skip: "n/a: <reason>"``: it is listed
in the report but never run.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facd.errors import ConfigError
from facd.typedconfig import field, from_dict, load_yaml, merge

#: Run name of the PISR stage-1 teacher inside the protocol's run folder.
PISR_TEACHER = "pisr-teacher"

#: The committed validation split (never trained on by a protocol that selects on it).
VAL_SPLIT = "configs/splits/val291.txt"

#: lambda values (the paper's units, lambda = 4 in Eq. 5) tried for every contrastive form
#: (FCD's L1 ratio, FCD(InfoNCE) dot and cosine). Fair-comparison rule: each form runs at the
#: value with the best mean Y-PSNR on the validation split (``VAL_SPLIT``), one seed per value;
#: when the best value is at an end of the grid, the grid is extended by a factor 10 that way.
#: The benchmark sets are never used for this choice.
CONTRAST_LAMBDA_GRID: tuple[float, ...] = (0.04, 0.4, 4.0, 40.0)


def canonical_config(resolved: dict) -> dict:
    """A resolved ``facd train`` config reduced to what the run depends on (for fingerprints).

    None values are dropped (so that a new optional key leaves old fingerprints alone), and so
    are the loss sections of switched-off terms (weight 0; the pixel section always stays) and
    the InfoNCE options of a contrast term that uses the L1 ratio.
    """

    def drop_none(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: drop_none(v) for k, v in x.items() if v is not None}
        return x

    out = drop_none(copy.deepcopy(resolved))
    loss = out.get("loss") or {}
    for section in [s for s, o in loss.items() if s != "pixel" and not o.get("weight")]:
        del loss[section]
    contrast = loss.get("contrast")
    if contrast and contrast.get("similarity") != "infonce":
        for key in ("infonce_form", "temperature"):
            contrast.pop(key, None)
    return out


@dataclass
class TeacherSection:
    config: str = field("", "facd train config that (re)trains the teacher when weights are absent")
    weights: str = field("", "the teacher's weights file (used as it is when present)")
    label: str = field("teacher", "name of the teacher in tables and figures")

    def validate(self, where: str) -> None:
        if not self.weights:
            raise ConfigError(f"'{where}.weights' is required")


@dataclass
class PisrTeacherSection:
    iterations: int = field(0, "stage-1 iterations (0: no PISR teacher, the pisr row is skipped)")


@dataclass
class EvalSection:
    sets: list[str] = field(["Set5", "Set14", "B100", "Urban100"], "final benchmark sets")
    data_root: str = field("../shared/data", "folder holding the benchmark sets")


@dataclass
class Row:
    method: str = field("", "distillation method (see `facd methods`)")
    seeds: list[int] = field([0], "one run per seed")
    name: str = field("", "row name (default: the method)")
    group: str = field("main", "table the row belongs to: main or an ablation group")
    skip: str = field("", "non-empty: never run; the text is shown in the report")
    note: str = field("", "short note shown in the report")
    weight_grid: list[float] = field(
        [],
        "distillation weights (the method's paper units) to sweep on the validation split; the "
        "row runs at the best one (empty: the method's own weight)",
    )

    def validate(self, where: str) -> None:
        if not self.method:
            raise ConfigError(f"'{where}.method' is required")
        bad = [w for w in self.weight_grid if not w >= 0]
        if bad:
            raise ConfigError(f"'{where}.weight_grid' values must be >= 0, got {bad}")
        if not self.skip and not self.seeds:
            raise ConfigError(f"'{where}.seeds' must list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"'{where}.seeds' has duplicates: {self.seeds}")
        if not self.name:
            self.name = self.method

    def run_ids(self) -> list[str]:
        return [] if self.skip else [f"{self.name}-s{s}" for s in self.seeds]


@dataclass
class QualitativeImage:
    set: str = field("", "benchmark set")
    name: str = field("", "image name without extension")
    crop: list[int] = field([], "x, y, w, h in HR pixels")

    def validate(self, where: str) -> None:
        if len(self.crop) != 4:
            raise ConfigError(f"'{where}.crop' must be [x, y, w, h], got {self.crop}")


@dataclass
class QualitativeSection:
    images: list[QualitativeImage] = field([], "images and crops (empty: no figure)")
    panels: list[str] = field([], "row names whose first seed is shown, or 'teacher'")
    panel_width: int = field(160, "pixels per panel")


@dataclass
class Protocol:
    name: str = field("", "protocol name")
    scale: int = field(4, "upscaling factor")
    description: str = field("", "one paragraph shown at the top of the report")
    teacher: TeacherSection = dataclasses.field(default_factory=TeacherSection)
    pisr_teacher: PisrTeacherSection = dataclasses.field(default_factory=PisrTeacherSection)
    student: dict[str, Any] = field({}, "the student net section of every row's config")
    min_param_ratio: float = field(8.0, "teacher/student parameter ratio required")
    shared: dict[str, Any] = field({}, "config sections shared by every row: data, val, train")
    eval: EvalSection = dataclasses.field(default_factory=EvalSection)
    rows: list[Row] = field([], "methods and seeds")
    results_dir: str = field("results/repro", "where the JSON and the reported weights go")
    report: str = field("docs/results.md", "the generated report")
    figures_dir: str = field("docs/img", "where curves.png and qualitative.png go")
    qualitative: QualitativeSection = dataclasses.field(default_factory=QualitativeSection)

    def validate(self, where: str) -> None:
        if not self.name:
            raise ConfigError("the protocol needs a 'name'")
        if not self.rows:
            raise ConfigError("the protocol lists no 'rows'")
        names = [r.name for r in self.rows]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"row names must differ; repeated: {dup}")
        bad = sorted(set(self.shared) - {"data", "val", "train", "loss"})
        if bad:
            raise ConfigError(f"'shared' may hold data, val, train and loss; got {bad}")

    # ------------------------------------------------------------------ derived

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise ConfigError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    def run_ids(self) -> list[str]:
        return [rid for r in self.rows for rid in r.run_ids()]

    def uses_pisr(self) -> bool:
        return any(r.method == "pisr" and not r.skip for r in self.rows)

    def row_config(self, row: Row, seed: int, teacher_weights: str) -> dict:
        """The ``facd train`` config (as a dict) of one row and seed."""
        from facd.distill.methods import get_method

        cfg = merge(copy.deepcopy(self.shared), {})
        cfg.update(method=row.method, scale=self.scale, seed=seed)
        cfg["student"] = copy.deepcopy(self.student)
        if get_method(row.method).needs_teacher:
            cfg["teacher"] = {**self.teacher_net(), "weights": teacher_weights}
        return cfg

    def pisr_teacher_config(self) -> dict:
        """Stage 1 of PISR: the teacher's architecture trained on E(Y), shared settings."""
        cfg = merge(copy.deepcopy(self.shared), {})
        cfg.update(method=PISR_TEACHER, scale=self.scale, seed=0)
        cfg["student"] = self.teacher_net()
        cfg["val"] = {**cfg.get("val", {}), "sets": [], "every": 0}
        cfg.setdefault("train", {})["iterations"] = self.pisr_teacher.iterations
        return cfg

    def teacher_net(self) -> dict:
        """The teacher's net section (without weights), from its training config."""
        cfg = self.teacher_train_config()
        net = dict(cfg.get("student") or {})
        net.pop("weights", None)
        if not net:
            raise ConfigError(
                f"{self.teacher.config}: no 'student' section to take the teacher from"
            )
        return net

    def teacher_train_config(self) -> dict:
        if not self.teacher.config:
            raise ConfigError("the protocol's 'teacher.config' is required")
        path = Path(self.teacher.config)
        if not path.is_file():
            raise ConfigError(f"teacher config not found: {path}")
        return load_yaml(_read_text(path), str(path)) or {}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"protocol file not found: {path}")
    data = load_yaml(_read_text(path), str(path)) or {}
    proto = from_dict(Protocol, data)
    # Validate every row's config now, so that a typo fails before hours of training.
    from facd.train.config import load_config

    for row in proto.rows:
        if row.skip:
            continue
        if row.method == "pisr" and proto.pisr_teacher.iterations <= 0:
            raise ConfigError("row 'pisr' needs 'pisr_teacher.iterations' > 0")
        load_config(None, [], base=proto.row_config(row, row.seeds[0], proto.teacher.weights))
    return proto


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({type(err).__name__})") from None
