"""What each run of a protocol is: its config, its fingerprint, and whether its result stands.

A row's run is trained at the weight its sweep chose (``sweep-<row>.json``), else at its fixed
``weight``, else at the method's own weight. Its fingerprint (:meth:`RunConfigs.row_fingerprint`)
hashes what its result depends on; a published result whose fingerprint, weights' SHA-256 and
own consistency hold is not made again (:meth:`RunConfigs.is_cached`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from facd.errors import FacdError
from facd.fileio import sha256_file
from facd.reproduce.checks import read_result, run_problems
from facd.reproduce.protocol import (
    Protocol,
    Row,
    canonical_config,
    scaled_schedule,
    teacher_stage,
    weight_key,
)
from facd.reproduce.records import RESULT_VERSION, fingerprint, read_json


class RunConfigs:
    """The configs and fingerprints of protocol ``proto``'s runs; ``out`` holds the run folders
    (a teacher stage's weights among them), ``log`` names damaged results."""

    def __init__(self, proto: Protocol, out: Path, log: Callable[[str], None]) -> None:
        self.p = proto
        self.out = out
        self.results = Path(proto.results_dir)
        self.log = log

    def teacher_weights_for(self, row: Row) -> str:
        stage = teacher_stage(row.method)
        if stage is not None:
            return str(self.out / stage / "last.safetensors")
        return self.p.teacher.weights

    def row_config(self, row: Row, seed: int, weight: float | None = None) -> dict:
        """The config of a run of ``row``: at ``weight`` if given (a sweep run), else at the
        weight its sweep chose (:meth:`chosen_weight`), else at its fixed ``weight``, else at
        the method's own weight."""
        if weight is None and row.weight_source:
            weight = self.chosen_weight(row)
        elif weight is None:
            weight = row.weight
        return self.p.row_config(row, seed, self.teacher_weights_for(row), weight)

    def chosen_weight(self, row: Row) -> float:
        """The weight the sweep of ``row`` (or of its ``weight_from`` row) chose, read from its
        ``sweep-<row>.json``; refused while that sweep has not chosen for its current grid."""
        source = self.p.row(row.weight_source)
        doc = read_json(self.results / f"sweep-{source.name}.json")
        if (
            doc.get("kind") != "weight-sweep"
            or doc.get("declared") != sorted(source.weight_grid)
            or doc.get("weight_key") != weight_key(source)
            or doc.get("chosen") is None
        ):
            raise FacdError(
                f"row {row.name!r} runs at the weight chosen by the sweep of row "
                f"{source.name!r}, which has not chosen for its current grid yet "
                f"({self.results / f'sweep-{source.name}.json'}); run the protocol without "
                "--only, or with --only " + source.name
            )
        return float(doc["chosen"])

    def row_fingerprint(self, row: Row, seed: int, weight: float | None = None) -> str:
        """Hash of what the row's result depends on: its **resolved** config (the method's loss
        options filled in, so redefining a method invalidates its cached results), reduced by
        :func:`~facd.reproduce.protocol.canonical_config` (no None values, no options of
        switched-off terms), the teacher's bytes and the evaluation sets. Results stamped by an
        older definition are re-stamped by ``python -m facd.reproduce.refingerprint``.

        Paths (data folders, benchmark root, any weights file) are hashed relative to the
        protocol's root folder (``Protocol.root_dir``; the current directory when it has none),
        in POSIX form, so that a fingerprint names no machine's layout and does not change when
        a config moves a path between relative and absolute, or to a file of its own."""
        from facd.train.config import load_config, portable_paths

        resolved = load_config(None, [], base=self.row_config(row, seed, weight)).to_dict()
        resolved = portable_paths(resolved, getattr(self.p, "root_dir", None))
        if resolved.get("teacher"):  # the teacher is identified by its bytes, not its path
            resolved["teacher"]["weights"] = self.teacher_identity(row)
        return fingerprint(
            {
                "resolved": canonical_config(resolved),
                "eval": self.p.eval.sets,
                "v": RESULT_VERSION,
            }
        )

    def twin(self, row: Row, seed: int) -> Row | None:
        """The first row declared before ``row`` whose run at ``seed`` is the same run as
        ``row``'s (equal fingerprints), or None. A curve's point can coincide with a row at a
        swept weight, e.g. FACD at lambda 0.4 and B/2 with FACD at B/2 where the sweep chose
        0.4: the two share one training. Rows whose sweep has not chosen yet are passed over."""
        candidates = self.p.possible_twins(row, seed)
        if not candidates:
            return None
        mine = self.row_fingerprint(row, seed)
        for other in candidates:
            try:
                if self.row_fingerprint(other, seed) == mine:
                    return other
            except FacdError:  # its sweep has not chosen yet
                continue
        return None

    def teacher_identity(self, row: Row) -> str:
        """What the fingerprint names the teacher of ``row`` by: a teacher stage by its stage
        config as written, the protocol's teacher by the SHA-256 of its weights."""
        stage = teacher_stage(row.method)
        if stage is not None:
            return f"{stage}:{fingerprint(self.p.stage_identity(stage))}"
        path = Path(self.p.teacher.weights)
        return sha256_file(path) if path.is_file() else "absent"

    def sweep_fingerprint(self, row: Row, weight: float) -> str:
        """What a sweep run's score depends on: the run's fingerprint at ``weight`` (its
        resolved config, teacher bytes) and the validation split's list."""
        split = self.p.val_split
        assert split is not None  # checked when the protocol was loaded
        path = Path(split)
        key: dict[str, object] = {
            "run": self.row_fingerprint(row, self.p.sweep_seed, weight),
            "split": sha256_file(path) if path.is_file() else split,
            "kind": "sweep",
        }
        if self.p.sweep.schedule != 1.0:  # the default leaves published fingerprints as they are
            key["schedule"] = self.p.sweep.schedule
        return fingerprint(key)

    def sweep_config(self, row: Row, weight: float) -> dict:
        """The config of a sweep run: the row's at ``weight`` on the sweep seed, its schedule
        scaled by ``sweep.schedule``."""
        cfg = self.row_config(row, self.p.sweep_seed, weight)
        factor = self.p.sweep.schedule
        return cfg if factor == 1.0 else scaled_schedule(cfg, factor)

    def is_cached(self, row: Row, seed: int) -> bool:
        """Whether the published result of a run stands: its fingerprint, its weights' hash
        and its own consistency (:mod:`facd.reproduce.checks`). A damaged or edited result is
        named in the log and made again."""
        rid = row.run_id(seed)
        path = self.results / f"{rid}.json"
        doc, damage = read_result(path)
        weights = self.results / f"{rid}.safetensors"
        problems = [damage] if damage else run_problems(doc or {}, self.p.name, weights)
        if problems:
            self.log(f"{path} is damaged ({'; '.join(problems)}): made again")
            return False
        return (
            doc is not None
            and doc.get("fingerprint") == self.row_fingerprint(row, seed)
            and weights.is_file()
            and doc.get("weights_sha256") == sha256_file(weights)
        )
