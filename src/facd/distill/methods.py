"""The one place that lists which loss terms each method adds, at which weights.

Every method trains the same student from the same teacher, with the same taps, data, seed
handling and schedule; only the ``loss`` options below differ. Weights are given as in each
method's paper or code (``paper_weights``) together with the pixel range that code used; the
resolved options are in [0, 1] units. Pixel losses are 255x larger on [0, 255] images, so a
non-pixel weight tuned there is divided by 255 here: the balance between terms is unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from facd.distill.options import LossOptions
from facd.errors import ConfigError
from facd.typedconfig import from_dict, merge, to_dict

PIXEL_WEIGHT_KEYS = {("pixel", "gt_weight"), ("pixel", "teacher_weight")}


@dataclass(frozen=True)
class MethodDef:
    name: str
    summary: str
    paper_weights: dict = field(default_factory=dict)  # {section: {option: value}}
    paper_range: int = 255  # pixel range the paper's weights were tuned for
    needs_teacher: bool = True
    source: str = ""
    label: str = ""  # short display name in tables (reports, docs)
    teacher_stage: str | None = None  # the method whose run must come first (its output is read)

    @property
    def terms(self) -> tuple[tuple[str, float], ...]:
        """(term name, weight on [0, 1] images) of every active term, in the order they are summed."""
        return tuple(active_terms(self.loss_options()))

    def loss_options(self) -> LossOptions:
        return from_dict(LossOptions, self.resolved_dict(), f"method {self.name}")

    def resolved_dict(self) -> dict:
        """The method's options in [0, 1] units (non-pixel weights divided by paper_range)."""
        out = copy.deepcopy(self.paper_weights)
        for section, opts in out.items():
            if "weight" in opts and (section, "weight") not in PIXEL_WEIGHT_KEYS:
                opts["weight"] = opts["weight"] / self.paper_range
        base = to_dict(LossOptions())
        # Sections a method does not name are switched off, whatever their defaults.
        for section in base:
            if section not in out:
                out[section] = {"gt_weight": 0.0} if section == "pixel" else {"weight": 0.0}
        return merge(base, out)


_HALF = {"gt_weight": 0.5, "teacher_weight": 0.5}
_FCD = {"weight": 4.0, "adaptive": False}

METHODS: dict[str, MethodDef] = {}


def _add(m: MethodDef) -> None:
    METHODS[m.name] = m


_add(
    MethodDef(
        "scratch",
        "plain L1 to GT (the student row; also how teachers are trained)",
        {"pixel": {"gt_weight": 1.0}},
        needs_teacher=False,
        label="Student (scratch)",
    )
)
_add(
    MethodDef(
        "ts",
        "teacher supervision: 0.5 L1_GT + 0.5 L1_T",
        {"pixel": dict(_HALF)},
        source="FAKD code/loss.py, alpha = 0.5",
        label="TS",
    )
)
_add(
    MethodDef(
        "fakd",
        "FAKD: TS + spatial-affinity L1 at three taps, beta = 10 ([0,255])",
        {"pixel": dict(_HALF), "fakd": {"weight": 10.0}},
        source="FAKD code/scripts/*_SA_*.sh: 10*SA",
        label="FAKD",
    )
)
_add(
    MethodDef(
        "lfd",
        "LFD: L1_GT + local 1x1 regressors, L1 feature loss at three taps",
        {"pixel": {"gt_weight": 1.0}, "lfd": {"weight": 1.0, "attention": "none"}},
        source="reconstruction, unverified (docs/methods-baselines.md); lambda_FD = 1 assumed",
        label="LFD",
    )
)
_add(
    MethodDef(
        "lsfd",
        "LSFD: LFD with |T - S| soft attention (h*w*softmax(D/tau)) on the feature loss",
        {"pixel": {"gt_weight": 1.0}, "lfd": {"weight": 1.0, "attention": "teacher_student"}},
        source="reconstruction, unverified (docs/methods-baselines.md); lambda_FD = 1 assumed",
        label="LSFD",
    )
)
_add(
    MethodDef(
        "lsfd-ts",
        "LSFD with a teacher image term: 0.5 L1_GT + 0.5 L1_T + the LSFD feature loss",
        {
            "pixel": dict(_HALF),
            "lfd": {"weight": 1.0, "attention": "teacher_student"},
        },
        source="reconstruction, unverified: the FACD paper cites LSFD for feature plus "
        "image-domain distillation; the TS weights 0.5 / 0.5 are FAKD's",
        label="LSFD + L1_T",
    )
)
_add(
    MethodDef(
        "csd",
        "CSD: L1_GT + 200 x VGG19 contrastive ratio, teacher -> student, K = 10 ([0,255])",
        {"pixel": {"gt_weight": 1.0}, "csd": {"weight": 200.0, "negatives": 10}},
        source="CSD README: contra_lambda 200, neg_num 10",
        label="CSD",
    )
)
_add(
    MethodDef(
        "pisr-teacher",
        "PISR stage 1: train the teacher on E(Y) with L1_GT + 1e-4 imitation |E(Y) - x|",
        {"pixel": {"gt_weight": 1.0}, "vid": {"weight": 1e-4, "mode": "teacher"}},
        paper_range=1,
        needs_teacher=False,
        source="PISR configs/fsrcnn/step1.yml (teacher_LR_constraint_loss)",
        label="PISR* teacher (stage 1)",
    )
)
_add(
    MethodDef(
        "pisr",
        "PISR: L1_GT + 1e-6 Laplace VID at tap 3; the teacher sees E(Y)",
        {"pixel": {"gt_weight": 1.0}, "vid": {"weight": 1e-6, "mode": "distill"}},
        paper_range=1,
        source="PISR configs/fsrcnn/step2.yml",
        label="PISR*",
        teacher_stage="pisr-teacher",
    )
)
_add(
    MethodDef(
        "fcd",
        "FCD: feature contrastive distillation, no adaptive indicator (FAT weights: Table 10's "
        "FCD(FAT) row)",
        {"pixel": dict(_HALF), "contrast": dict(_FCD)},
        label="FCD",
    )
)
_add(
    MethodDef(
        "facd",
        "FACD: adaptive image loss (Eq. 2) + adaptive feature contrast (Eq. 4, 6)",
        {"pixel": {**_HALF, "adaptive": True}, "contrast": {"weight": 4.0, "adaptive": True}},
        label="FACD",
    )
)
_add(
    MethodDef(
        "facd-eq7",
        "FACD with the indicator dropped from the feature term (Eq. 7)",
        {"pixel": {**_HALF, "adaptive": True}, "contrast": {"weight": 4.0, "adaptive": False}},
        label="FACD, Eq. 7",
    )
)
_add(
    MethodDef(
        "icd",
        "ICD: the contrastive ratio on output images",
        {"pixel": dict(_HALF), "contrast": {**_FCD, "domain": "image"}},
        label="ICD",
    )
)
_add(
    MethodDef(
        "fcd-sa",
        "FCD(SA): the contrastive ratio on spatial-affinity matrices",
        {"pixel": dict(_HALF), "contrast": {**_FCD, "domain": "affinity"}},
        label="FCD (SA)",
    )
)
_add(
    MethodDef(
        "fcd-infonce",
        "FCD(InfoNCE): dot product of the Eq. 3-normalised features (Table 7), temperature 1",
        {
            "pixel": dict(_HALF),
            "contrast": {**_FCD, "similarity": "infonce", "infonce_form": "dot"},
        },
        label="FCD (InfoNCE, dot product)",
    )
)
_add(
    MethodDef(
        "fcd-infonce-cos",
        "FCD(InfoNCE), cosine similarity with temperature 0.07 (the form used before the paper's "
        "dot product became the default)",
        {
            "pixel": dict(_HALF),
            "contrast": {
                **_FCD,
                "similarity": "infonce",
                "infonce_form": "cosine",
                "temperature": 0.07,
            },
        },
        label="FCD (InfoNCE, cosine, T = 0.07)",
    )
)
LABEL_F = {"faa": "FCD (FAA)", "fab": "FCD (FAB)"}
LABEL_A = {"faa": "FACD, FAA weights", "fab": "FACD, FAB weights", "fat": "FACD, FAT weights"}
TAP_WEIGHTS = {  # Table 10
    "faa": [1 / 3, 1 / 3, 1 / 3],
    "fab": [0.2, 0.3, 0.5],
    "fat": [0.5, 0.3, 0.2],
}
# Table 10 of the paper is run on FCD (no adaptive indicator): FCD(FAA), FCD(FAB) and FCD(FAT),
# where FCD(FAT) is plain ``fcd``.
for _name in ("faa", "fab"):
    _w = TAP_WEIGHTS[_name]
    _add(
        MethodDef(
            f"fcd-{_name}",
            f"FCD({_name.upper()}): FCD with tap weights {[round(w, 3) for w in _w]} "
            "(Table 10; its FAT row is fcd)",
            {"pixel": dict(_HALF), "contrast": {**_FCD, "tap_weights": _w}},
            label=LABEL_F[_name],
        )
    )
# The same weights on FACD (adaptive indicator on): not the paper's Table 10 rows.
for _name, _w in TAP_WEIGHTS.items():
    _add(
        MethodDef(
            f"facd-{_name}",
            f"FACD (adaptive) with tap weights {_name.upper()} {[round(w, 3) for w in _w]}; "
            "the paper's Table 10 uses FCD: see fcd-{faa,fab}",
            {
                "pixel": {**_HALF, "adaptive": True},
                "contrast": {"weight": 4.0, "adaptive": True, "tap_weights": _w},
            },
            label=LABEL_A[_name],
        )
    )
_add(
    MethodDef(
        "gt-fcd",
        "Table 8: L1_GT + FCD (no teacher output loss)",
        {"pixel": {"gt_weight": 1.0}, "contrast": dict(_FCD)},
        label="L1_GT + FCD",
    )
)
_add(
    MethodDef(
        "t-fcd",
        "Table 8: L1_T + FCD (no GT loss)",
        {"pixel": {"gt_weight": 0.0, "teacher_weight": 1.0}, "contrast": dict(_FCD)},
        label="L1_T + FCD",
    )
)


def get_method(name: str) -> MethodDef:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def resolve_loss(method: str, overrides: dict | None) -> LossOptions:
    """The method's options with a config's ``loss:`` overrides on top (strictly checked)."""
    data = get_method(method).resolved_dict()
    if overrides:
        data = merge(data, overrides)
    return from_dict(LossOptions, data, "loss")


def active_terms(opts: LossOptions) -> list[tuple[str, float]]:
    """(term name, weight) for every term with a non-zero weight, in a fixed order."""
    terms: list[tuple[str, float]] = []
    if opts.pixel.gt_weight:
        terms.append(("l1_gt", opts.pixel.gt_weight))
    if opts.pixel.teacher_weight:
        terms.append(("l1_t", opts.pixel.teacher_weight))
    for section in ("contrast", "fakd", "lfd", "csd", "vid"):
        weight = getattr(opts, section).weight
        if weight:
            terms.append((section, weight))
    return terms
