"""A reproduction protocol: one teacher, one student architecture, shared training settings,
and rows (method x seeds), read from a strict YAML file (``configs/repro/*.yaml``).

Every row trains the same student with the same data, schedule and validation; only the method
(and so the loss) and the seed differ. A row may be marked ``skip: "n/a: <reason>"``: it is listed
in the report but never run.

The ``report:`` section is the report's own data (:mod:`facd.reproduce.reportspec`): the
reference row of the main table, the ablation tables, the paper's claims with the rows they
compare, and the observations. Every row or method it names is checked when the protocol is
loaded. A row that uses a method with a teacher stage (PISR) trains that stage first
(``teacher_stage:``).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facd.errors import ConfigError
from facd.reproduce.reportspec import QualitativeSection, ReportSection
from facd.typedconfig import field, from_dict, load_yaml, merge

#: The committed validation split (never trained on by a protocol that selects on it).
VAL_SPLIT = "configs/splits/val291.txt"

#: lambda values (the paper's units, lambda = 4 in Eq. 5) tried for every contrastive form
#: (FCD's L1 ratio, FCD(InfoNCE) dot and cosine). Fair-comparison rule: each form runs at the
#: value with the best mean Y-PSNR on the validation split (``VAL_SPLIT``), one seed per value;
#: when the best value is at an end of the grid, the grid is extended one value that way (a
#: factor 10 for this grid; ``SWEEP_RULE``, at most ``sweep.max_extensions`` times).
#: The benchmark sets are never used for this choice.
CONTRAST_LAMBDA_GRID: tuple[float, ...] = (0.04, 0.4, 4.0, 40.0)

#: Training keys whose default changed after teacher stages were first identified by their
#: stage config as written (:meth:`Protocol.stage_identity`), with the value that was their
#: default then.
STAGE_IDENTITY_OLD_DEFAULTS: dict[tuple[str, str], Any] = {("train", "channels_last"): False}


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

    from facd.distill.methods import inert_options, section_switched_off

    out = drop_none(copy.deepcopy(resolved))
    loss = out.get("loss") or {}
    for section in [s for s in loss if s != "pixel" and section_switched_off(s, loss)]:
        del loss[section]
    for section, values in loss.items():
        for key in inert_options(section, values):
            values.pop(key, None)
    return out


def alpha_only(a: str, b: str) -> bool:
    """Whether methods ``a`` and ``b`` differ in the adaptive indicator alone: their resolved
    loss options are equal once every ``adaptive`` switch is dropped, and differ with them."""
    from facd.distill.methods import METHODS

    if a not in METHODS or b not in METHODS:
        return False

    def options(method: str, keep: bool) -> dict:
        resolved = METHODS[method].resolved_dict()
        return {
            s: {k: v for k, v in o.items() if keep or k != "adaptive"} for s, o in resolved.items()
        }

    return options(a, False) == options(b, False) and options(a, True) != options(b, True)


def run_id(row_name: str, seed: int) -> str:
    """The id of one run of a protocol row: its result file and run folder are named by it."""
    return f"{row_name}-s{seed}"


def format_weight(weight: float) -> str:
    """A weight as it appears in run ids and tables (6 significant digits)."""
    return f"{weight:.6g}"


def sweep_run_id(row_name: str, weight: float, seed: int) -> str:
    """The id of one run of a row's weight sweep (``<row>-w<weight>-s<seed>``)."""
    return f"{row_name}-w{format_weight(weight)}-s{seed}"


# ------------------------------------------------------------------------------ weight sweeps

SWEEP_RULE = (
    "each weight of the row's grid is trained with one seed, the protocol's sweep seed, which "
    "no evaluation run uses, and measured by its mean Y-PSNR on the validation split; the best "
    "one is chosen (ties: the smaller "
    "weight). When the best is the smallest or the largest weight tried, the grid is extended "
    "by one value beyond that end, in the grid's own spacing (times its ratio when the "
    "declared values are positive and evenly spaced in log, else plus its step), and the "
    "choice is made again, at most 'sweep.max_extensions' times. The benchmark sets are never "
    "used for this choice"
)


def _geometric(grid: list[float]) -> bool:
    """Whether the values are all positive and evenly spaced in log (2 values always are)."""
    values = sorted(grid)
    if len(values) < 2 or values[0] <= 0:
        return False
    ratios = [b / a for a, b in zip(values, values[1:], strict=False)]
    return max(ratios) / min(ratios) < 1 + 1e-6


def next_weight(declared: list[float], tried: list[float], best: float) -> float | None:
    """The weight one step beyond the end of ``tried`` where ``best`` sits, or None when
    ``best`` is inside the grid (or the step would leave the weights >= 0).

    The step is the one between the two outermost values at that end: their ratio when the
    declared grid is geometric (:func:`_geometric`), their difference otherwise."""
    values = sorted(set(tried))
    if len(values) < 2 or best not in (values[0], values[-1]):
        return None
    if best == values[-1]:
        inner, edge = values[-2], values[-1]
    else:
        inner, edge = values[1], values[0]
    nxt = edge * (edge / inner) if _geometric(declared) else edge + (edge - inner)
    nxt = float(f"{nxt:.10g}")  # 0.4 / 10 is 0.04, not 0.04000000000000001
    return nxt if nxt >= 0 else None


def choose_weight(scores: dict[float, float]) -> float:
    """The weight with the best validation-split Y-PSNR (ties: the smaller weight)."""
    if not scores:
        raise ValueError("no weight has a score yet")
    return min(scores, key=lambda w: (-scores[w], w))


def weight_key(row: Row) -> str:
    """The loss option a row's weight sweep sets (``loss.<section>.<option>``): the row's
    ``weight_key``, else the weight of the one non-pixel section its method declares."""
    if row.weight_key:
        return row.weight_key
    from facd.distill.methods import get_method

    method = get_method(row.method)
    sections = [s for s, opts in method.paper_weights.items() if "weight" in opts and s != "pixel"]
    if len(sections) != 1:
        raise ConfigError(
            f"row {row.name!r}: method {row.method!r} declares {len(sections)} non-pixel weighted "
            f"terms ({', '.join(sections) or 'none'}); set the row's 'weight_key' (e.g. "
            "loss.contrast.weight) to say which one its weight sweep sets"
        )
    return f"loss.{sections[0]}.weight"


def weight_override(row: Row, weight: float) -> dict:
    """The ``loss`` override that runs ``row`` at ``weight`` (the method's paper units,
    converted as the method's own weight is: non-pixel weights divided by its pixel range)."""
    from facd.distill.methods import get_method

    key = weight_key(row)
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "loss":
        raise ConfigError(
            f"row {row.name!r}: 'weight_key' must be loss.<section>.<option>, got {key!r}"
        )
    _, section, option = parts
    method = get_method(row.method)
    paper = copy.deepcopy(method.paper_weights)
    paper.setdefault(section, {})[option] = weight
    resolved = dataclasses.replace(method, paper_weights=paper).resolved_dict()
    return {section: {option: resolved[section][option]}}


@dataclass
class TeacherSection:
    config: str = field("", "facd train config that (re)trains the teacher when weights are absent")
    weights: str = field("", "the teacher's weights file (used as it is when present)")
    label: str = field("teacher", "name of the teacher in tables and figures")

    def validate(self, where: str) -> None:
        if not self.weights:
            raise ConfigError(f"'{where}.weights' is required")


def teacher_stage(method: str) -> str | None:
    """The teacher stage ``method`` declares (a method trained first, whose network the method
    distils from instead of the protocol's teacher; PISR's E(Y) teacher), or None."""
    from facd.distill.methods import get_method

    return get_method(method).teacher_stage


@dataclass
class TeacherStageSection:
    iterations: int = field(
        0,
        "iterations of a teacher stage that a row's method declares (e.g. PISR's), trained with "
        "the shared settings on the teacher's architecture (0: rows that need one are refused)",
        ge=0,
    )
    note: str = field("", "what the stage trains, in the report's words")


@dataclass
class EvalSection:
    sets: list[str] = field(["Set5", "Set14", "B100", "Urban100"], "final benchmark sets")
    data_root: str = field("../shared/data", "folder holding the benchmark sets")


SATURATION_RULE = (
    "a network counts as trained when running its schedule twice as long gains less than "
    "0.02 dB on the validation split"
)


@dataclass
class SaturationSection:
    """The saturation check: each network named here is trained again with its schedule
    ``factor`` times as long (iterations and lr milestones scaled, everything else equal), and
    both are measured on the validation split (``shared.val.split``); the network counts as
    trained when the longer schedule gains less than ``threshold_db``."""

    teacher: bool = field(False, "check the teacher (its training config, doubled)")
    rows: list[str] = field([], "rows to check (their first seed), e.g. [scratch]")
    factor: int = field(2, "how much longer the check's schedule is", ge=2, le=16)
    threshold_db: float = field(0.02, "largest gain (dB) of a trained network", gt=0, le=10)

    @property
    def enabled(self) -> bool:
        return self.teacher or bool(self.rows)


#: ``report.regime.gap_on`` for the validation split, and the split's name where a set name
#: stands (:meth:`facd.reproduce.results.Results.values`).
SPLIT = "split"


#: The default seed of the weight-sweep runs (``Protocol.sweep_seed``): a seed no shipped
#: protocol's rows use, so that a sweep run is never also an evaluation run. Were the winning
#: sweep run one of the row's evaluation runs, that run would be selected for its luck on the
#: split (a winner's curse), biasing the row's pairs with rows that inherit the weight.
SWEEP_SEED = 1000


@dataclass
class SweepSection:
    """How rows with a ``weight_grid`` choose their weight (:data:`SWEEP_RULE`)."""

    max_extensions: int = field(
        2, "grid extensions at most per row when the best weight sits at an end", ge=0, le=10
    )
    schedule: float = field(
        1.0,
        "sweep runs train for this fraction of the rows' schedule (iterations and epoch length "
        "scaled alike, both whole numbers), e.g. 0.5 for B/2",
        gt=0,
        le=1,
    )


def scaled_schedule(config: dict, factor: float) -> dict:
    """A copy of a ``facd train`` config (as a dict) whose schedule is ``factor`` times as long
    (defaults filled in from the config's schema); validation interval and everything else
    unchanged.

    A whole factor (a saturation check's 2, a ladder's 4) multiplies ``train.iterations`` and
    every lr milestone (in epochs). A fraction (a sweep at B/2, a budget curve's B/4) multiplies
    ``train.iterations`` and the epoch length ``train.iters_per_epoch`` instead, so that the
    milestones fall at the same fractions of the run: 6000 iterations of 100 with milestones
    [32, 44, 52] at 0.25 give 1500 iterations of 25, the lr halved at iterations 800, 1100 and
    1300. Both must stay whole numbers; otherwise a :class:`ConfigError` names the value."""
    from facd.train.config import load_config

    train = load_config(None, [], base=copy.deepcopy(config)).config.train

    def whole(value: int, what: str) -> int:
        scaled = value * factor
        if abs(scaled - round(scaled)) > 1e-9 or round(scaled) < 1:
            raise ConfigError(
                f"a schedule scaled by {factor:g} needs whole numbers, but {what} {value} gives "
                f"{scaled:g}; choose a factor or a schedule that divides evenly"
            )
        return int(round(scaled))

    out = copy.deepcopy(config)
    section = out.setdefault("train", {})
    section["iterations"] = whole(train.iterations, "train.iterations")
    if float(factor).is_integer():
        section["lr_milestones"] = [int(m * factor) for m in train.lr_milestones]
    else:
        section["iters_per_epoch"] = whole(train.iters_per_epoch, "train.iters_per_epoch")
        section["lr_milestones"] = list(train.lr_milestones)
    return out


STUDY_KINDS = ("", "equal_budget")


@dataclass
class StudySection:
    """What kind of evidence the protocol is. ``kind: equal_budget``: every row trains for the
    same budget B (``shared.train.iterations``) and the networks are not saturated (doubling B
    still gains ``doubling_gain_db``, measured as ``doubling_source`` says). At equal budget a
    method that only speeds training up wins without being better once trained out, so every
    verdict of such a protocol carries the label "equal budget B, not saturated" with that gain.
    Without a kind, the label comes from the saturation check (``saturation:``)."""

    kind: str = field("", "'' (no study declared) or equal_budget")
    doubling_gain_db: float = field(
        0.0, "equal_budget: the measured gain (dB) of doubling B on the validation split"
    )
    doubling_source: str = field(
        "", "equal_budget: where that gain was measured (a run or a doc section)"
    )
    lr_note: str = field(
        "",
        "why the rows' learning rate is not the best of the lr pilot (pilot-lr.json), when it "
        "is not; the report quotes it beside the pilot's table",
    )
    other_pilots: list[str] = field(
        [],
        "budget pilots against teachers the study does not use (tools/budget_pilot.py budget "
        "--teacher), each a pilot-budget.json kept as a record; the report shows them beside "
        "the study's own",
    )

    def validate(self, where: str) -> None:
        if self.kind not in STUDY_KINDS:
            raise ConfigError(
                f"'{where}.kind' must be one of {', '.join(repr(k) for k in STUDY_KINDS)}, got "
                f"{self.kind!r}"
            )
        if self.kind == "equal_budget" and not self.doubling_source:
            raise ConfigError(
                f"'{where}': an equal_budget study states its measured doubling gain: set "
                "'doubling_gain_db' and 'doubling_source' (where it was measured)"
            )


@dataclass
class Row:
    method: str = field("", "distillation method (see `facd methods`)")
    seeds: list[int] = field([0], "one run per seed")
    name: str = field("", "row name (default: the method)")
    group: str = field("main", "table the row belongs to: main or an ablation group")
    skip: str = field("", "non-empty: never run; the text is shown in the report")
    note: str = field("", "short note shown in the report")
    label: str = field("", "name in the report's tables (default: the method's label)")
    weight_grid: list[float] = field(
        [],
        "distillation weights (the method's paper units) to sweep on the validation split; the "
        "row runs at the best one (empty: the method's own weight)",
    )
    weight_key: str = field(
        "",
        "the loss option the sweep sets, e.g. loss.contrast.weight (default: the weight of the "
        "method's one non-pixel term)",
    )
    weight_from: str = field(
        "",
        "a row with a weight_grid whose chosen weight this row runs at (ablations that only "
        "flip a switch), e.g. fcd",
    )
    weight: float | None = field(
        None,
        "a fixed distillation weight (the method's paper units), for a curve over the weight "
        "such as lambda; excludes weight_grid and weight_from",
    )
    schedule: float = field(
        1.0,
        "the fraction of the shared schedule this row trains for (iterations and epoch length "
        "scaled alike, both whole numbers), for a curve over the budget, e.g. 0.25 for B/4",
        gt=0,
        le=1,
    )

    def validate(self, where: str) -> None:
        if not self.method:
            raise ConfigError(f"'{where}.method' is required")
        if self.weight is not None and (self.weight_grid or self.weight_from):
            raise ConfigError(
                f"'{where}' has a fixed 'weight' and a "
                f"'{'weight_grid' if self.weight_grid else 'weight_from'}'; keep one of them"
            )
        if self.weight is not None and not self.weight >= 0:
            raise ConfigError(f"'{where}.weight' must be >= 0, got {self.weight}")
        bad = [w for w in self.weight_grid if not w >= 0]
        if bad:
            raise ConfigError(f"'{where}.weight_grid' values must be >= 0, got {bad}")
        if len(self.weight_grid) == 1:
            raise ConfigError(
                f"'{where}.weight_grid' needs at least two values to sweep, got "
                f"{self.weight_grid}; remove it to run the method's own weight"
            )
        if self.weight_grid and self.weight_from:
            raise ConfigError(
                f"'{where}' has both 'weight_grid' and 'weight_from'; keep one of them"
            )
        if len({format_weight(w) for w in self.weight_grid}) != len(self.weight_grid):
            raise ConfigError(f"'{where}.weight_grid' has duplicates: {self.weight_grid}")
        if not self.skip and not self.seeds:
            raise ConfigError(f"'{where}.seeds' must list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"'{where}.seeds' has duplicates: {self.seeds}")
        if not self.name:
            self.name = self.method

    def run_id(self, seed: int) -> str:
        return run_id(self.name, seed)

    def run_ids(self) -> list[str]:
        return [] if self.skip else [self.run_id(s) for s in self.seeds]

    @property
    def weight_source(self) -> str:
        """The row whose weight sweep sets this row's weight ('' when it runs its own)."""
        return self.name if self.weight_grid else self.weight_from

    def may_share_runs(self, other: Row) -> bool:
        """Whether a run of this row may be the very run of ``other`` at the same seed: the
        same method and schedule, and weights that are equal or not known before a sweep
        chooses. The fingerprints decide (:meth:`facd.reproduce.runconfig.RunConfigs.twin`)."""
        if self.method != other.method or self.schedule != other.schedule:
            return False
        return bool(self.weight_source or other.weight_source) or self.weight == other.weight


@dataclass
class Protocol:
    name: str = field("", "protocol name")
    scale: int = field(4, "upscaling factor")
    description: str = field("", "one paragraph shown at the top of the report")
    teacher: TeacherSection = dataclasses.field(default_factory=TeacherSection)
    teacher_stage: TeacherStageSection = dataclasses.field(default_factory=TeacherStageSection)
    student: dict[str, Any] = field({}, "the student net section of every row's config")
    min_param_ratio: float = field(8.0, "teacher/student parameter ratio required")
    shared: dict[str, Any] = field({}, "config sections shared by every row: data, val, train")
    eval: EvalSection = dataclasses.field(default_factory=EvalSection)
    rows: list[Row] = field([], "methods and seeds")
    results_dir: str = field("results/repro", "where the JSON and the reported weights go")
    report: ReportSection = dataclasses.field(default_factory=ReportSection)
    figures_dir: str = field("docs/img", "where the report's figures go")
    qualitative: QualitativeSection = dataclasses.field(default_factory=QualitativeSection)
    saturation: SaturationSection = dataclasses.field(default_factory=SaturationSection)
    sweep: SweepSection = dataclasses.field(default_factory=SweepSection)
    study: StudySection = dataclasses.field(default_factory=StudySection)
    sweep_seed: int = field(
        SWEEP_SEED,
        "the seed of every weight-sweep run; no row that runs may list it, so that no evaluation "
        "run is a sweep run (a weight chosen on a run is not judged on that run)",
        ge=0,
    )

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
        self._check_report_names()
        self._check_regime_claims()
        self._check_saturation()
        self._check_sweeps()
        for name in self.qualitative.pair:
            if name not in names:
                raise ConfigError(
                    f"'qualitative.pair' names {name!r}, not a row; rows: {', '.join(names)}"
                )

    @property
    def train_settings(self) -> dict:
        """The shared ``train`` section every row starts from (``shared.train``; empty if none)."""
        return self.shared.get("train") or {}

    @property
    def budget(self) -> int | None:
        """Every row's schedule, ``shared.train.iterations`` (an equal-budget study's B)."""
        return self.train_settings.get("iterations")

    @property
    def val_split(self) -> str | None:
        """The validation split every row validates on (``shared.val.split``), or None."""
        return (self.shared.get("val") or {}).get("split") or None

    def _check_regime_claims(self) -> None:
        """A claim whose rows differ in the adaptive indicator alone declares ``needs_regime``,
        and a protocol with such claims declares a regime condition to judge them by."""
        regime = self.report.regime
        if regime.gap_max_db > 0 and regime.gap_on == SPLIT and not self.val_split:
            raise ConfigError(
                "'report.regime.gap_on' is 'split', but the protocol has no validation split "
                "('shared.val.split')"
            )
        for i, c in enumerate(self.report.claims):
            if not c.needs_regime and alpha_only(*(self._method_of(n) for n in c.rows)):
                raise ConfigError(
                    f"'report.claims[{i}]' ({c.text}) compares rows that differ only in the "
                    "adaptive indicator alpha: set 'needs_regime: true'"
                )
            if c.needs_regime and not (
                (regime.alpha0_row and regime.alpha0_min > 0)
                or (regime.gap_row and regime.gap_max_db > 0)
            ):
                raise ConfigError(
                    f"'report.claims[{i}].needs_regime': set a condition in 'report.regime' "
                    "(alpha0_row with alpha0_min > 0, or gap_row with gap_max_db > 0) to judge "
                    "it by"
                )

    def _method_of(self, name: str) -> str:
        """The method of a row, or ``name`` itself (a claim may name a method not run)."""
        row = next((r for r in self.rows if r.name == name), None)
        return row.method if row is not None else name

    def _check_saturation(self) -> None:
        sat = self.saturation
        for name in sat.rows:
            if name not in {r.name for r in self.rows if not r.skip}:
                raise ConfigError(
                    f"'saturation.rows' names {name!r}, not a row that runs; rows: "
                    f"{', '.join(r.name for r in self.rows if not r.skip)}"
                )
        if sat.enabled and not self.val_split:
            raise ConfigError(
                "'saturation' measures on the validation split: set 'shared.val.split' (e.g. "
                f"{VAL_SPLIT}) or remove the section"
            )

    def _check_sweeps(self) -> None:
        swept = {r.name for r in self.rows if r.weight_grid and not r.skip}
        for i, r in enumerate(self.rows):
            if r.weight_from and not r.skip and r.weight_from not in swept:
                raise ConfigError(
                    f"'rows[{i}].weight_from' names {r.weight_from!r}, not a row with a "
                    f"'weight_grid' that runs; such rows: {', '.join(sorted(swept)) or 'none'}"
                )
        if swept and not self.val_split:
            raise ConfigError(
                "weight sweeps ('weight_grid') choose on the validation split: set "
                f"'shared.val.split' (e.g. {VAL_SPLIT}) or remove the grids"
            )
        if swept:
            users = [r.name for r in self.rows if not r.skip and self.sweep_seed in r.seeds]
            if users:
                raise ConfigError(
                    f"'sweep_seed' {self.sweep_seed} is also a seed of row(s) "
                    f"{', '.join(users)}; sweep runs must not be evaluation runs: choose a "
                    "'sweep_seed' that no row lists"
                )
        for r in self.rows:
            if r.weight is not None and not r.skip:
                weight_key(r)  # a fixed weight needs the option it sets, as a sweep does
        taken = set(self.run_ids())
        for r in self.rows:
            for w in r.weight_grid:
                rid = sweep_run_id(r.name, w, self.sweep_seed)
                if rid in taken:
                    raise ConfigError(f"sweep run id {rid!r} is also a row's run id; rename")

    def sweep_weights(self, row: Row) -> list[float]:
        """The declared grid of the row whose sweep sets ``row``'s weight (empty: none)."""
        source = row.weight_source
        return list(self.row(source).weight_grid) if source else []

    def _check_report_names(self) -> None:
        """Every name in the report section is a row, or a method (a table may list methods
        this protocol does not run: they show once a protocol runs them)."""
        from facd.distill.methods import METHODS

        rows = {r.name for r in self.rows}
        for where, name in self.report.names():
            if name not in rows and name not in METHODS:
                raise ConfigError(
                    f"'{where}' names {name!r}, neither a row of the protocol nor a method; "
                    f"rows: {', '.join(sorted(rows))}"
                )
        if self.report.reference and self.report.reference not in rows:
            raise ConfigError(f"'report.reference' {self.report.reference!r} is not a row")

    @property
    def reference(self) -> str:
        """The row the main table's differences are taken against."""
        return self.report.reference or self.rows[0].name

    def label(self, name: str) -> str:
        """Display name of a row or method: the row's ``label``, else the method's."""
        from facd.distill.methods import METHODS

        row = next((r for r in self.rows if r.name == name), None)
        if row is not None and row.label:
            return row.label
        method = METHODS.get(row.method if row is not None else name, None)
        return (method.label if method is not None else "") or name

    # ------------------------------------------------------------------ derived

    def possible_twins(self, row: Row, seed: int) -> list[Row]:
        """The rows declared before ``row`` whose run at ``seed`` may be ``row``'s very run
        (:meth:`Row.may_share_runs`; the fingerprints decide)."""
        earlier = self.rows[: self.rows.index(row)]
        return [o for o in earlier if not o.skip and seed in o.seeds and o.may_share_runs(row)]

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise ConfigError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    def run_ids(self) -> list[str]:
        return [rid for r in self.rows for rid in r.run_ids()]

    def stages(self) -> list[str]:
        """The teacher stages the rows that run need, in row order."""
        out: list[str] = []
        for r in self.rows:
            stage = None if r.skip else teacher_stage(r.method)
            if stage is not None and stage not in out:
                out.append(stage)
        return out

    def row_config(
        self, row: Row, seed: int, teacher_weights: str, weight: float | None = None
    ) -> dict:
        """The ``facd train`` config (as a dict) of one row and seed; ``weight`` (the method's
        paper units) sets the row's swept loss option (:func:`weight_override`)."""
        from facd.distill.methods import get_method

        cfg = merge(copy.deepcopy(self.shared), {})
        cfg.update(method=row.method, scale=self.scale, seed=seed)
        cfg["student"] = copy.deepcopy(self.student)
        if get_method(row.method).needs_teacher:
            cfg["teacher"] = {**self.teacher_net(), "weights": teacher_weights}
        if weight is not None:
            cfg["loss"] = merge(cfg.get("loss") or {}, weight_override(row, weight))
        if row.schedule != 1.0:  # a row of a budget curve: B/4, B/2
            cfg = scaled_schedule(cfg, row.schedule)
        return cfg

    def stage_config(self, stage: str) -> dict:
        """A teacher stage (e.g. PISR's: the teacher's architecture trained on E(Y)): the stage's
        method on the teacher's architecture, shared settings, seed 0, no validation."""
        cfg = merge(copy.deepcopy(self.shared), {})
        cfg.update(method=stage, scale=self.scale, seed=0)
        cfg["student"] = self.teacher_net()
        cfg["val"] = {**cfg.get("val", {}), "sets": [], "every": 0}
        if cfg["val"].get("split"):
            cfg["val"]["split"] = None  # a stage is not validated
        cfg.setdefault("train", {})["iterations"] = self.teacher_stage.iterations
        return cfg

    def stage_identity(self, stage: str) -> dict:
        """What identifies a teacher stage's weights before they exist: its stage config as
        written (:meth:`stage_config`), with each key of ``STAGE_IDENTITY_OLD_DEFAULTS`` set to
        the value it resolves to, or left out where that value is the key's old default.

        So a protocol that pins such a key at its old default, or leaves it to an old default,
        keeps the identity it had; one that runs the stage with another value (a pin, or a new
        default) gets a new identity, as its stage trains differently."""
        from facd.train.config import load_config

        cfg = self.stage_config(stage)
        resolved = load_config(None, [], base=cfg).to_dict()
        for (section, key), old in STAGE_IDENTITY_OLD_DEFAULTS.items():
            part = cfg.setdefault(section, {})
            part.pop(key, None)
            if resolved[section][key] != old:
                part[key] = resolved[section][key]
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
        from facd.train.config import read_config_file

        # its bases merged, its paths (relative to its own folder) seen from here
        return read_config_file(path)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"protocol file not found: {path}")
    data = _protocol_doc(path, ())
    proto = from_dict(Protocol, data)
    # Validate every row's config now, so that a typo fails before hours of training.
    from facd.train.config import load_config

    for row in proto.rows:
        if row.skip:
            continue
        stage = teacher_stage(row.method)
        if stage is not None and proto.teacher_stage.iterations <= 0:
            raise ConfigError(
                f"{path}: row {row.name!r} needs 'teacher_stage.iterations' > 0 (method "
                f"{row.method} distils from its own teacher stage, {stage})"
            )
        grid = proto.sweep_weights(row)
        weight = grid[0] if grid else None
        try:
            cfg = proto.row_config(row, row.seeds[0], proto.teacher.weights, weight)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
        load_config(None, [], base=cfg)
    return proto


def _protocol_doc(path: Path, chain: tuple[Path, ...]) -> dict:
    """The mapping of a protocol file with its ``base:`` files (a path or a list, relative to
    the file's folder) merged in first, in order; the file's own keys win, sections merge key by
    key and lists are replaced. The paths *inside* a protocol (data, results, teacher config)
    are relative to the directory ``facd reproduce`` runs in, whichever file names them."""
    where = path.resolve()
    if where in chain:
        cycle = " -> ".join(str(p) for p in (*chain, where))
        raise ConfigError(f"{path}: 'base' files form a cycle: {cycle}")
    if not path.is_file():
        named_by = f" (the 'base' of {chain[-1]})" if chain else ""
        raise ConfigError(f"protocol file not found: {path}{named_by}")
    data = load_yaml(_read_text(path), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a protocol file must be a mapping of keys, got {type(data).__name__}"
        )
    if isinstance(data.get("report"), str):
        data["report"] = {"path": data["report"]}  # the form before the report section
    bases = data.pop("base", None) or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: 'base' must be a file name or a list of them, got {bases!r}")
    out: dict = {}
    for name in bases:
        out = merge(out, _protocol_doc(path.parent / name, (*chain, where)))
    return merge(out, data)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({type(err).__name__})") from None
