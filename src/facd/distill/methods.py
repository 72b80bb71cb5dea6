"""The method declarations: the one place that names methods.

A method (:class:`MethodDef`) declares its options per ``loss`` section (``paper_weights``), from
which its terms and their weights follow (:attr:`MethodDef.terms`), its display ``label``, and
the ``teacher_stage`` it needs (a method trained first, whose output it reads). A term
(:class:`facd.distill.terms.TermSpec`) declares its section and what it needs, as a function of
the options. The trainer, the :class:`facd.Distiller`, ``facd methods``, the docs' method table
and the reproduction report read these declarations; nothing else names a method.

Every method trains the same student from the same teacher, with the same taps, data, seed
handling and schedule; only the ``loss`` options below differ. Weights are given as in each
method's paper or code (``paper_weights``) together with the pixel range that code used; the
resolved options are in [0, 1] units. Pixel losses are 255x larger on [0, 255] images, so a
non-pixel weight tuned there is divided by 255 here: the balance between terms is unchanged.

New methods and terms are added from outside with :func:`register_method` and
:func:`facd.distill.terms.register_term` (public as ``facd.register_method`` and
``facd.register_term``; see docs/extending.md).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facd.distill import terms as _terms
from facd.distill.options import LossOptions
from facd.distill.terms import Needs
from facd.errors import ConfigError
from facd.registry import Registry
from facd.typedconfig import from_dict, merge, to_dict

PIXEL_WEIGHT_KEYS = {("pixel", "gt_weight"), ("pixel", "teacher_weight")}
DEFAULT_METHOD = "scratch"
"""The method of a config that names none."""


def loss_options_class() -> type[LossOptions]:
    """:class:`LossOptions`, extended by the sections of terms declared from outside (if any)."""
    extra = sorted({(t.section, t.options) for t in _terms.TERMS.values() if t.options is not None})
    known = {f.name for f in dataclasses.fields(LossOptions)}
    extra = [(s, o) for s, o in extra if s not in known]
    if not extra:
        return LossOptions
    key = tuple(extra)
    cls = _EXTENDED.get(key)
    if cls is None:
        fields = [(s, o, dataclasses.field(default_factory=o)) for s, o in extra]
        cls = dataclasses.make_dataclass("LossOptions", fields, bases=(LossOptions,))
        cls.__module__ = LossOptions.__module__
        _EXTENDED[key] = cls
    return cls


_EXTENDED: dict[tuple, type[LossOptions]] = {}


@dataclass(frozen=True)
class MethodDef:
    """A method: its options per ``loss`` section, as its paper or code gives them."""

    name: str
    summary: str
    paper_weights: dict = field(default_factory=dict)  # {section: {option: value}}
    #: pixel range the weights were tuned for: non-pixel weights are divided by it (1: the
    #: weights are used as written, on [0, 1] images; 255: the papers' [0, 255] convention)
    paper_range: int = 1
    source: str = ""
    label: str = ""  # short display name in tables (reports, docs)
    teacher_stage: str | None = None  # the method whose run must come first (its output is read)
    # names under which this method's results were published before its name was given to a
    # redefined method (reproduction results are renamed, not re-run: facd.reproduce.refingerprint)
    formerly: tuple[str, ...] = ()

    @property
    def terms(self) -> tuple[tuple[str, float], ...]:
        """(term name, weight on [0, 1] images) of every active term, in the order they are summed."""
        return tuple(active_terms(self.loss_options()))

    @property
    def needs(self) -> Needs:
        """What the method's terms need together."""
        return needs_of(self.loss_options())

    @property
    def needs_teacher(self) -> bool:
        return self.needs.teacher

    def loss_options(self) -> LossOptions:
        return from_dict(loss_options_class(), self.resolved_dict(), f"method {self.name}")

    def resolved_dict(self) -> dict:
        """The method's options in [0, 1] units (non-pixel weights divided by paper_range)."""
        out = copy.deepcopy(self.paper_weights)
        for section, opts in out.items():
            if "weight" in opts and (section, "weight") not in PIXEL_WEIGHT_KEYS:
                opts["weight"] = opts["weight"] / self.paper_range
        base = to_dict(loss_options_class()())
        # Sections a method does not name are switched off, whatever their defaults.
        for section in base:
            if section not in out:
                out[section] = {"gt_weight": 0.0} if section == "pixel" else {"weight": 0.0}
        return merge(base, out)


_HALF = {"gt_weight": 0.5, "teacher_weight": 0.5}
_FCD = {"weight": 4.0, "adaptive": False}

#: The method declarations, built-in ones first (declared below).
METHODS: Registry[MethodDef] = Registry("method")


def _add(m: MethodDef) -> None:
    METHODS.register(m.name, m)


_add(
    MethodDef(
        "scratch",
        "plain L1 to GT (the student row; also how teachers are trained)",
        {"pixel": {"gt_weight": 1.0}},
        paper_range=255,
        label="Student (scratch)",
    )
)
_add(
    MethodDef(
        "ts",
        "teacher supervision: 0.5 L1_GT + 0.5 L1_T",
        {"pixel": dict(_HALF)},
        source="FAKD code/loss.py, alpha = 0.5",
        paper_range=255,
        label="TS",
    )
)
_add(
    MethodDef(
        "fakd",
        "FAKD: TS + spatial-affinity L1 at three taps, beta = 10 ([0,255])",
        {"pixel": dict(_HALF), "fakd": {"weight": 10.0}},
        source="FAKD code/scripts/*_SA_*.sh: 10*SA",
        paper_range=255,
        label="FAKD",
    )
)
_add(
    MethodDef(
        "lfd",
        "LFD: L1_GT + local 1x1 regressors, L1 feature loss at three taps",
        {"pixel": {"gt_weight": 1.0}, "lfd": {"weight": 1.0, "attention": "none"}},
        source="reconstruction, unverified (docs/methods-baselines.md); lambda_FD = 1 assumed",
        paper_range=255,
        label="LFD",
    )
)
_add(
    MethodDef(
        "lsfd",
        "LSFD: LFD with |T - S| soft attention (h*w*softmax(D/tau)) on the feature loss",
        {"pixel": {"gt_weight": 1.0}, "lfd": {"weight": 1.0, "attention": "teacher_student"}},
        source="reconstruction, unverified (docs/methods-baselines.md); lambda_FD = 1 assumed",
        paper_range=255,
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
        paper_range=255,
        label="LSFD + L1_T",
    )
)
_add(
    MethodDef(
        "csd",
        "CSD: L1_GT + 200 x VGG19 contrastive ratio, teacher -> student, K = 10 ([0,255])",
        {"pixel": {"gt_weight": 1.0}, "csd": {"weight": 200.0, "negatives": 10}},
        source="CSD README: contra_lambda 200, neg_num 10",
        paper_range=255,
        label="CSD",
    )
)
_add(
    MethodDef(
        "pisr-teacher",
        "PISR stage 1: train the teacher on E(Y) with L1_GT + 1e-4 imitation |E(Y) - x|",
        {"pixel": {"gt_weight": 1.0}, "vid": {"weight": 1e-4, "mode": "teacher"}},
        paper_range=1,
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
        paper_range=255,
        label="FCD",
    )
)
_add(
    MethodDef(
        "facd",
        "FACD: adaptive image loss (Eq. 2) + adaptive feature contrast (Eq. 4, 6)",
        {"pixel": {**_HALF, "adaptive": True}, "contrast": {"weight": 4.0, "adaptive": True}},
        paper_range=255,
        label="FACD",
    )
)
_add(
    MethodDef(
        "facd-eq7",
        "FACD with the indicator dropped from the feature term (Eq. 7)",
        {"pixel": {**_HALF, "adaptive": True}, "contrast": {"weight": 4.0, "adaptive": False}},
        paper_range=255,
        label="FACD, Eq. 7",
    )
)
_add(
    MethodDef(
        "icd",
        "ICD: the contrastive ratio on output images",
        {"pixel": dict(_HALF), "contrast": {**_FCD, "domain": "image"}},
        paper_range=255,
        label="ICD",
    )
)
_add(
    MethodDef(
        "fcd-sa",
        "FCD(SA): the contrastive ratio on spatial-affinity matrices",
        {"pixel": dict(_HALF), "contrast": {**_FCD, "domain": "affinity"}},
        paper_range=255,
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
        paper_range=255,
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
        paper_range=255,
        label="FCD (InfoNCE, cosine, T = 0.07)",
        formerly=("fcd-infonce",),
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
            paper_range=255,
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
            paper_range=255,
            label=LABEL_A[_name],
        )
    )
_add(
    MethodDef(
        "gt-fcd",
        "Table 8: L1_GT + FCD (no teacher output loss)",
        {"pixel": {"gt_weight": 1.0}, "contrast": dict(_FCD)},
        paper_range=255,
        label="L1_GT + FCD",
    )
)
_add(
    MethodDef(
        "t-fcd",
        "Table 8: L1_T + FCD (no GT loss)",
        {"pixel": {"gt_weight": 0.0, "teacher_weight": 1.0}, "contrast": dict(_FCD)},
        paper_range=255,
        label="L1_T + FCD",
    )
)


def register_method(method: MethodDef) -> MethodDef:
    """Declare a method (public as ``facd.register_method``). Its sections must exist: built-in
    ones or those of terms declared with ``facd.register_term``. A taken name is a one-line
    :class:`ConfigError` (declaring the equal method again is a no-op)."""
    if not method.label:
        method = dataclasses.replace(method, label=method.name)
    if not method.terms:
        raise ConfigError(f"method {method.name!r} switches on no loss term")
    return METHODS.register(method.name, method)


def get_method(name: str) -> MethodDef:
    """The declaration of ``name``; an unknown name is a one-line :class:`ConfigError`."""
    return METHODS.get(name)


def resolve_loss(method: str, overrides: dict | None) -> LossOptions:
    """The method's options with a config's ``loss:`` overrides on top (strictly checked).

    An override that makes a term need a teacher in a method that trains without one (e.g.
    ``loss.pixel.adaptive=true`` on the plain student) is a ConfigError here, before any run.
    """
    m = get_method(method)
    data = m.resolved_dict()
    if overrides:
        data = merge(data, overrides)
    opts = from_dict(loss_options_class(), data, "loss")
    if overrides and not m.needs_teacher:
        for name, _ in active_terms(opts):
            spec = _terms.TERMS[name]
            if spec.needs(opts).teacher:
                what = f"'loss.{spec.section}' overrides switch on term {name!r}"
                raise ConfigError(
                    f"method {method!r} trains without a teacher, but {what}, which needs the "
                    f"teacher's output or features; remove the 'loss.{spec.section}' override or "
                    "choose a method with a teacher (see facd methods)"
                )
    return opts


def active_terms(opts: LossOptions) -> list[tuple[str, float]]:
    """(term name, weight) for every term with a non-zero weight, in declaration order."""
    out = []
    for spec in _terms.TERMS.values():
        if hasattr(opts, spec.section):
            weight = spec.weight(opts)
            if weight:
                out.append((spec.name, weight))
    return out


def term_weight(name: str, loss: Mapping[str, Any]) -> float | None:
    """The weight of term ``name`` in resolved loss options given as plain data (a results
    file's config): its declaration's section and weight key. A term not declared in this
    process is read as ``loss.NAME.weight``, :func:`facd.register_term`'s default."""
    spec = _terms.TERMS.get(name, None)
    section, key = (spec.section, spec.weight_key) if spec else (name, "weight")
    return (loss.get(section) or {}).get(key)


def section_switched_off(section: str, loss: Mapping[str, Any]) -> bool:
    """Whether every term declared on ``loss`` section ``section`` has weight 0 in ``loss``
    (plain data; a section no term declares in this process is read as one term named after
    it, with a ``weight``)."""
    names = [s.name for s in _terms.TERMS.values() if s.section == section] or [section]
    return not any(term_weight(name, loss) for name in names)


def inert_options(section: str, values: Mapping[str, Any]) -> tuple[str, ...]:
    """Keys of a ``loss`` section (plain data) that have no effect given its other values, as
    its options dataclass declares them (``inert_keys``; e.g. the InfoNCE options of a contrast
    term that uses the L1 ratio)."""
    section_type = type(getattr(loss_options_class()(), section, None))
    declared = getattr(section_type, "inert_keys", None)
    return tuple(declared(values)) if declared is not None else ()


def term_outputs() -> tuple[str, ...]:
    """The files that declared terms write beside each checkpoint (PISR's encoder)."""
    return tuple(dict.fromkeys(name for spec in _terms.TERMS.values() for name in spec.outputs))


def pixel_terms() -> set[str]:
    """The names of the image-domain L1 terms (the ``pixel`` section: L1 to GT and to T)."""
    return {spec.name for spec in _terms.TERMS.values() if spec.section == "pixel"}


def needs_of(opts: LossOptions) -> Needs:
    """What the active terms of ``opts`` need together."""
    needs = Needs()
    for name, _ in active_terms(opts):
        needs = needs | _terms.TERMS[name].needs(opts)
    return needs


def stage_config_hint(stage: str, teacher_preset: str | None, scale: int) -> str:
    """The shipped config of a teacher stage for this run's teacher (``configs/...``), a hint."""
    preset = teacher_preset or ""
    if "tiny" in preset:
        return f"configs/tiny/{stage}.yaml"
    arch = "rcan" if preset.startswith("rcan") else "edsr"
    return f"configs/paper/{arch}-x{scale}-{stage}.yaml"


def missing_stage_message(
    method: str, path: Path, teacher_preset: str | None, scale: int, note: str = ""
) -> str:
    """One line: a method's teacher stage output is missing, and the command that makes it."""
    m = get_method(method)
    stage = m.teacher_stage or method
    return (
        f"{m.label} needs its teacher stage: {path} not found; run the {stage} config first "
        f"(facd train {stage_config_hint(stage, teacher_preset, scale)} --out {path.parent}) and "
        f"set teacher.weights to its last.safetensors{note}"
    )
