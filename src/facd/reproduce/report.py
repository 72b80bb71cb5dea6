"""Generate the results report (Markdown) and its figures from a protocol's published JSON.

Nothing here trains or evaluates: every number comes from ``<results_dir>/*.json``. The
qualitative figure is drawn by :func:`facd.compare.build_comparison` from the published weights.

What the report says beyond the numbers is data of the protocol (its ``report:`` section): the
ablation tables with their rows, reference row and check-mark columns, the paper's claims with
the rows they compare, and the observations with their numbers as placeholders. Display names
come from the method declarations (:attr:`facd.distill.methods.MethodDef.label`) unless a row
gives its own ``label``. So a new protocol brings its own claims without a change here.

Claims (:class:`ClaimResult`) are judged on the mean of the evaluation sets per seed, paired
over seeds, by the 95 % Student-t interval (:mod:`facd.reproduce.stats`: ``PAPER_RULE`` beside
the paper's own difference from :mod:`facd.reproduce.paper`, ``SIGN_RULE`` where the claim has
no paper number); one seed gives no verdict, and there is no "negligible" floor. The paper's
difference comes from the table, architecture and scale the claim's ``paper_ref`` names; where
those differ from this protocol's student (its ``arch``, or its preset's) and scale, the report
says so (a mismatch label). Every cell verdict against 0 (main table, ablations, Table 13
analogue) uses the same interval: above 0 "better", below 0 "worse", else "includes 0".

Verdicts obey their conditions: a claim with ``needs_regime`` (one that depends on the adaptive
indicator alpha) is judged only where every regime condition the protocol requires holds
(:meth:`Report.conditions`: teacher - student gap on Set5 <= ``gap_max_db``, alpha = 0 fraction
>= ``alpha0_min``); elsewhere, or while a condition is unmeasured, its verdict is
:data:`CONDITIONS_NOT_MET`, shown with the measured numbers and counted apart. Every verdict of
the summary table carries a label (:meth:`Report.claim_label`): the declared equal-budget study
("equal budget B = N iterations, not saturated", with the measured gain of doubling B, also on
every verdict), else what the saturation check found; and for a ``needs_regime`` claim whether
its conditions are met. The summary states the caveats before the verdicts
(:meth:`Report.caveats`), and :func:`what_we_found` writes the README's lines from the same
claim results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facd.errors import ConfigError
from facd.fileio import atomic_write_text
from facd.reproduce.paper import PaperDiff, arch_name, paper_diff
from facd.reproduce.protocol import (
    SATURATION_RULE,
    SWEEP_RULE,
    Protocol,
    format_weight,
    run_id,
    sweep_run_id,
    teacher_stage,
    weight_key,
)
from facd.reproduce.reportspec import PLACEHOLDER, ReportClaim
from facd.reproduce.results import Results
from facd.reproduce.stats import (
    CANNOT_RESOLVE,
    HOLDS,
    LARGER,
    NO_PAPER,
    NOT_REPRODUCED,
    ONE_SEED,
    PAPER_RULE,
    REPRODUCED,
    REVERSED,
    SIGN_RULE,
    SMALLER,
    VERDICTS,
    Diff,
    fmt_pm,
    mean,
)

#: The verdict of a claim whose rows (one or both) have no results.
NOT_MEASURED = "not measured"

#: The verdict of a claim that needs the regime (``needs_regime``) where the protocol's regime
#: conditions fail or were not measured: its difference is shown, but it is not judged.
CONDITIONS_NOT_MET = "conditions not met: no verdict"

#: Training images that are benchmark images in disguise, found by ``tools/near_duplicates.py``
#: (``configs/splits/train-exclude-291.txt`` leaves them out of new protocols and teachers).
NEAR_DUPLICATES = {"BSD200/HR/302003.png": "Set5's woman.png, rescaled"}

#: What each claim verdict means, after the verdict in the reading.
_MEANING = {
    REPRODUCED: "the interval excludes 0 and contains the paper's difference",
    CANNOT_RESOLVE: "the interval contains both 0 and the paper's difference",
    NOT_REPRODUCED: "the interval contains 0 but not the paper's difference",
    SMALLER: "the interval excludes 0 on the paper's side but lies below the paper's size",
    LARGER: "the interval excludes 0 on the paper's side but lies above the paper's size",
    REVERSED: "the interval excludes 0 on the side opposite to the claim",
    HOLDS: "the interval lies above 0; no paper number to compare with",
    NO_PAPER: "the interval includes 0; no paper number to compare with",
    ONE_SEED: "no interval from a single seed",
    CONDITIONS_NOT_MET: "the claim depends on the adaptive indicator, which acts only where the "
    "regime conditions hold",
}

#: The rule of the verdicts against 0 (main table, ablations, Table 13 analogue).
ZERO_RULE = (
    "the 95 % Student-t interval of the mean paired difference over n >= 2 seeds: above 0: "
    "**better**; below 0: **worse**; otherwise *includes 0*. One seed: *no verdict* (no "
    "spread to judge it by). There is no 'negligible' floor: the paper's own effects go "
    "down to 0.009-0.016 dB (Eq. 6 vs Eq. 7)"
)

#: How many evaluation sets, in words ("mean of the four sets").
_COUNT = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}


def _sets_mean(n: int) -> str:
    return f"mean of the {_COUNT.get(n, str(n))} set{'s' if n != 1 else ''}"


def _md(text: str) -> str:
    """``text`` with Markdown's emphasis marks escaped (for labels inside bold text)."""
    return text.replace("*", "\\*")


def _adaptive(method: str) -> bool:
    """Whether the method's declaration switches the adaptive indicator (Eq. 1) on, in a term
    that is on (the teacher image term or the contrast)."""
    from facd.distill.methods import get_method

    opts = get_method(method).loss_options()
    pixel = opts.pixel.adaptive and opts.pixel.teacher_weight > 0
    return bool(pixel or (opts.contrast.adaptive and opts.contrast.weight > 0))


def _diff_cell(d: Diff | None, digits: int = 2) -> str:
    if d is None:
        return "–"
    text = fmt_pm(d.mean, d.std, digits, signed=True)
    return f"{text} (n={d.n})" if d.n > 1 else f"{text} (1 seed)"


def _ci_cell(d: Diff, digits: int = 3) -> str:
    """``+0.076 [+0.061, +0.091] (n=3)``: the mean and its 95 % t-interval."""
    ci = d.ci95()
    if ci is None:
        return f"{d.mean:+.{digits}f} (1 seed)"
    return f"{d.mean:+.{digits}f} [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}] (n={d.n})"


def _ci_text(d: Diff) -> str:
    """``-0.021 dB (95 % interval -0.028 to -0.015, n=3)``."""
    ci = d.ci95()
    if ci is None:
        return f"{d.mean:+.3f} dB (1 seed)"
    return f"{d.mean:+.3f} dB (95 % interval {ci[0]:+.3f} to {ci[1]:+.3f}, n={d.n})"


def _verdict_short(d: Diff | None) -> str:
    """The verdict against 0 in a table cell that already shows n (:data:`ZERO_RULE`)."""
    if d is None:
        return "–"
    words = {"above 0": "**better**", "below 0": "**worse**", ONE_SEED: "no verdict"}
    return words.get(d.vs_zero(), d.vs_zero())


def student_arch(proto: Protocol) -> str:
    """The protocol's student architecture: its ``arch``, or its preset's ('?' if neither)."""
    arch = proto.student.get("arch")
    if arch:
        return str(arch)
    from facd.archs.spec import PRESETS

    preset = str(proto.student.get("preset") or "")
    return str(PRESETS[preset]["arch"]) if preset in PRESETS else "?"


@dataclass
class ClaimResult:
    """One claim of the protocol, measured: our difference (mean of the sets per seed, paired
    over seeds), the paper's, and the verdict (:data:`NOT_MEASURED` while rows are missing)."""

    claim: ReportClaim
    diff: Diff | None
    paper: PaperDiff | None
    verdict: str
    missing: str = ""  # why it is not measured
    mismatch: str = ""  # where the paper's setting differs from the protocol's
    gate: str = ""  # the regime conditions that fail, when the verdict is CONDITIONS_NOT_MET

    @property
    def rows(self) -> tuple[str, str]:
        return self.claim.rows[0], self.claim.rows[1]


@dataclass(frozen=True)
class Condition:
    """One regime condition of the protocol (``report.regime``), measured: ``holds`` is None
    while it is not measured."""

    kind: str  # "gap" or "alpha0"
    value: float | None
    need: float
    holds: bool | None
    where: str = ""  # what was measured, e.g. "Set5" or "512 48-pixel patches after training"

    def text(self) -> str:
        """``alpha = 0 on 0.4 %, needs 2 %`` or ``gap 1.03 dB on Set5, needs ≤ 0.5 dB``."""
        if self.kind == "gap":
            need = f"needs ≤ {self.need:g} dB"
            if self.value is None:
                return f"student-teacher gap not measured, {need}"
            return f"gap {self.value:.2f} dB on {self.where}, {need}"
        need = f"needs {_pct(self.need)} %"
        if self.value is None:
            return f"alpha = 0 fraction not measured, {need}"
        return f"alpha = 0 on {_pct(self.value)} %, {need}"


def _pct(fraction: float) -> str:
    """A fraction in per cent, two significant digits below 10 % (0.4, 0.04, 4.3), else whole."""
    v = 100 * fraction
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}"


class Report:
    """Builds the Markdown text; ``command`` is how to regenerate it."""

    def __init__(self, res: Results, command: str, protocol_path: str) -> None:
        self.r = res
        self.p = res.proto
        self.command = command
        self.protocol_path = protocol_path
        self.lines: list[str] = []
        self._claims: list[ClaimResult] | None = None
        self._included: list[tuple[str, Report]] | None = None

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def label(self, name: str) -> str:
        return self.p.label(name)

    @property
    def ref(self) -> str:
        """The row the main table's differences are taken against."""
        return self.p.reference

    # ------------------------------------------------------------ sections

    def header(self) -> None:
        self.add(
            f"<!-- Generated by `{self.command}` from the JSON in {self.p.results_dir}/. "
            "Do not edit by hand. -->",
            "",
            f"# Reproduction results: {self.p.name}",
            "",
            f"Regenerate this page from the stored results: `{self.command}`  ",
            f"Re-run the protocol (cached rows are skipped): "
            f"`facd reproduce {self.protocol_path} --jobs 2`",
            "",
        )
        if self.p.description:
            self.add(self.p.description.strip(), "")

    # ------------------------------------------------------------ claims

    def _paper_of(self, c: ReportClaim) -> PaperDiff | None:
        """The paper's difference for claim ``c`` (None without a ``paper_ref``), over the sets
        this protocol evaluates where the paper's rows give them."""
        ref = c.paper_ref
        if ref is None:
            return None
        return paper_diff(
            str(ref.table), ref.arch, ref.scale, ref.rows[0], ref.rows[1], self.r.sets
        )

    def mismatch(self, pd: PaperDiff) -> str:
        """'' when the paper's architecture and scale are this protocol's student's, else a
        label saying how they differ."""
        arch = student_arch(self.p)
        if pd.arch == arch and pd.scale == self.p.scale:
            return ""
        return (
            f"Table {pd.table} is {arch_name(pd.arch)} x{pd.scale}, this protocol "
            f"{arch_name(arch)} x{self.p.scale}"
        )

    def claim_results(self) -> list[ClaimResult]:
        """Every claim of the protocol (optional ones only once both rows have results)."""
        if self._claims is not None:
            return self._claims
        out = []
        for c in self.p.report.claims:
            a, b = c.rows
            measured = self.r.has(a) and self.r.has(b)
            if c.optional and not measured:
                continue
            pd = self._paper_of(c)
            mis = self.mismatch(pd) if pd is not None else ""
            if not measured:
                out.append(ClaimResult(c, None, pd, NOT_MEASURED, "missing", mis))
                continue
            d = self.r.diff(a, b, None, c.metric)
            if d is None:
                out.append(ClaimResult(c, None, pd, NOT_MEASURED, "no common seeds", mis))
                continue
            verdict = d.vs_paper(pd.value) if pd is not None else d.vs_sign()
            gate = self.regime_gate() if c.needs_regime else ""
            if gate:
                verdict = CONDITIONS_NOT_MET
            out.append(ClaimResult(c, d, pd, verdict, "", mis, gate))
        self._claims = out
        return out

    def conditions(self) -> list[Condition]:
        """The regime conditions the protocol requires (``report.regime``), measured: the
        teacher - ``gap_row`` gap on Set5 (``gap_max_db``), and the alpha = 0 fraction of
        ``alpha0_row`` (``alpha0_min``): measured after training on ``alpha_patch``-pixel
        patches where the protocol measures it, else the mean over the last quarter of training
        (training patches). A condition whose requirement is 0 is not required."""
        reg = self.p.report.regime
        out = []
        if reg.gap_row and reg.gap_max_db > 0:
            gap = self._gap("Set5")
            holds = None if gap is None else gap <= reg.gap_max_db
            out.append(Condition("gap", gap, reg.gap_max_db, holds, "Set5"))
        if reg.alpha0_row and reg.alpha0_min > 0:
            value, where = self._alpha0_measure()
            holds = None if value is None else value >= reg.alpha0_min
            out.append(Condition("alpha0", value, reg.alpha0_min, holds, where))
        return out

    def regime_gate(self) -> str:
        """'' where every regime condition holds, else the failing or unmeasured ones."""
        return "; ".join(c.text() for c in self.conditions() if not c.holds)

    def _gap(self, where: str | None) -> float | None:
        """The teacher's Y-PSNR minus ``gap_row``'s mean on a set (None: the mean of the sets)."""
        reg, t = self.p.report.regime, self.r.teacher
        if where is not None and where not in self.r.sets:
            return None
        st = self.r.stat(reg.gap_row, where) if self.r.has(reg.gap_row) else None
        if st is None or not t:
            return None
        sets = [where] if where else self.r.sets
        return mean([t["sets"][x]["psnr_y"] for x in sets]) - st[0]

    def _alpha0_measure(self) -> tuple[float | None, str]:
        """The alpha = 0 fraction the regime condition is judged on, and what it is."""
        reg = self.p.report.regime
        if reg.alpha_patch:
            fr = [d["alpha0_frac"] for d in self.r.alpha_patch.values()]
            where = f"{reg.alpha_patch}-pixel patches after training"
        else:
            runs = self.r.row_runs(self.p.row(reg.alpha0_row)) if self.r.has(reg.alpha0_row) else {}
            fr = [d["alpha0"]["last_quarter_mean"] for d in runs.values() if d.get("alpha0")]
            where = "training patches, last quarter of training"
        return (mean(fr) if fr else None), where

    def study_label(self) -> str:
        """What kind of evidence every verdict here is: the declared equal-budget study, else
        what the saturation check found."""
        study = self.p.study
        iters = (self.p.shared.get("train") or {}).get("iterations")
        if study.kind == "equal_budget":
            return (
                f"equal budget B = {iters} iterations, not saturated (doubling B gains "
                f"{study.doubling_gain_db:+.2f} dB)"
            )
        sat = self.p.saturation
        if not sat.enabled:
            return "saturation not checked"
        docs = list(self.r.saturation.values())
        failed = [d["gain_db"] for d in docs if not d["saturated"]]
        if failed:
            return (
                f"not saturated (doubling gains {max(failed):+.2f} dB, needs < "
                f"{sat.threshold_db:g})"
            )
        expected = int(sat.teacher) + len(sat.rows)
        return "saturated" if len(docs) == expected else "saturation not checked yet"

    def claim_label(self, res: ClaimResult) -> str:
        """The claim's label: the study's, and for a claim that needs the regime whether its
        conditions are met."""
        label = self.study_label()
        if res.claim.needs_regime:
            label += "; conditions not met" if res.gate else "; conditions met"
        return label

    def verdict_text(self, res: ClaimResult) -> str:
        """The verdict in words: a claim whose regime conditions fail names them; an
        equal-budget study's verdicts carry its label."""
        if res.verdict == CONDITIONS_NOT_MET:
            text = f"conditions not met ({res.gate}): no verdict"
        else:
            text = f"**{res.verdict}**" if res.verdict == REVERSED else res.verdict
        if self.p.study.kind == "equal_budget" and res.verdict != NOT_MEASURED:
            iters = (self.p.shared.get("train") or {}).get("iterations")
            text += f"; equal budget B = {iters}, not saturated"
        return text

    def _compared(self, res: ClaimResult) -> str:
        a, b = res.rows
        text = f"{_md(self.label(a))} − {_md(self.label(b))}"
        return text + (
            " (Y-PSNR against the teacher's output)" if res.claim.metric != "psnr_y" else ""
        )

    def _paper_cell(self, res: ClaimResult) -> str:
        pd, c = res.paper, res.claim
        if pd is None:
            return c.paper or "no paper number"
        text = f"{pd.text()} dB ({pd.where()}, {_md(pd.rows[0])} − {_md(pd.rows[1])}"
        if list(pd.sets) != self.r.sets:
            text += f"; mean of {', '.join(pd.sets)}"
        text += ")"
        if res.mismatch:
            text += f"; **mismatch:** {res.mismatch}"
        if c.paper:
            text += f"; {c.paper}"
        return text

    def _ours_cell(self, res: ClaimResult) -> str:
        if res.diff is not None:
            return _ci_cell(res.diff)
        if res.missing == "missing":
            missing = [self.label(x) for x in res.rows if not self.r.has(x)]
            return f"not run yet ({', '.join(_md(m) for m in missing)})"
        return res.missing

    def state(self) -> str:
        """'not run yet', 'partial: k of n runs' or 'all n runs' (finished runs of the rows)."""
        done, total = len(self.r.runs), len(self.p.run_ids())
        if not done:
            return f"not run yet: none of its {total} runs has finished"
        if done < total:
            return f"partial: {done} of {total} runs finished"
        return f"all {total} runs finished"

    def verdict_counts(self) -> str:
        """``1 reversed; 2 reproduced; ...`` over the protocol's claims (reversed first)."""
        results = self.claim_results()
        order = [*VERDICTS, CONDITIONS_NOT_MET, NOT_MEASURED]
        counts = {v: sum(r.verdict == v for r in results) for v in order}
        words = {
            ONE_SEED: "with one seed (no verdict)",
            CONDITIONS_NOT_MET: "with the regime conditions not met (no verdict)",
        }
        parts = [f"{n} {words.get(v, v)}" for v, n in counts.items() if n]
        return "; ".join(parts) if parts else "no claims"

    def _reversed_lines(self, prefix: str = "") -> list[str]:
        out = []
        for res in self.claim_results():
            if res.verdict != REVERSED or res.diff is None:
                continue
            paper = (
                f"the paper: {res.paper.text()} dB ({res.paper.where()}"
                + (", a mismatch" if res.mismatch else "")
                + ")"
                if res.paper is not None
                else "the paper gives no number"
            )
            out.append(
                f"- **Reversed{prefix}:** {res.claim.text}: {self._compared(res)} = "
                f"{_ci_text(res.diff)} on the {_sets_mean(len(self.r.sets))}; {paper}."
            )
        return out

    def summary(self) -> None:
        """The caveats a reader needs first, then one table of every claim with its verdict and
        label (this protocol's, then each included protocol's that has runs), then the reversed
        claims and the count of each verdict."""
        self.add("## Summary", "")
        results = self.claim_results()
        if not results and not self.included():
            self.add("This protocol declares no claims.", "")
            return
        self.add(
            f"Each claim is judged on the {_sets_mean(len(self.r.sets))} (the primary measure), "
            "paired over seeds, by its 95 % t-interval against 0 and against the paper's own "
            "difference; the rule and every number are in the claims table below. State of "
            f"the runs: {self.state()}.",
            "",
        )
        report = Path(self.p.report.path)
        caveats = self.caveats(report)
        for path, sub in self.included():
            if sub.r.runs:
                caveats += [f"- `{path}`: {line[2:]}" for line in sub.caveats(report)]
        if caveats:
            self.add("Read these first:", "", *caveats, "")
        self.lead_table(report)
        rev = self._reversed_lines()
        lines = rev or ["- No claim is reversed here."]
        lines.append(f"- Verdicts of the {len(results)} claims: {self.verdict_counts()}.")
        for path, sub in self.included():
            lines += sub._reversed_lines(f" (`{path}`)")
            lines.append(
                f"- `{path}` ({sub.state()}): {len(sub.claim_results())} claims: "
                f"{sub.verdict_counts()}."
            )
        self.add(*lines, "")

    def lead_table(self, report: Path) -> None:
        """One line per claim of this protocol and of each included protocol with runs: our
        difference, the paper's, the verdict and its label."""
        from facd.reproduce.figures import relative_link

        reports: list[tuple[str, Report]] = [(self.p.name, self)]
        for _path, sub in self.included():
            if sub.r.runs:
                link = relative_link(Path(sub.p.report.path), report)
                reports.append((f"[{sub.p.name}]({link})", sub))
        if not any(rep.claim_results() for _, rep in reports):
            return
        self.add(
            "| protocol | claim | ours (dB), 95 % interval | paper (dB) | verdict | label |",
            "|---|---|---|---|---|---|",
        )
        for name, rep in reports:
            for res in rep.claim_results():
                ours = _ci_cell(res.diff) if res.diff is not None else "–"
                paper = res.paper.text() if res.paper is not None else "–"
                paper += " (mismatch)" if res.mismatch else ""
                self.add(
                    f"| {name} | {_md(res.claim.text)} | {ours} | {paper} | "
                    f"{rep.verdict_text(res)} | {rep.claim_label(res)} |"
                )
        self.add("")

    def caveats(self, report: Path) -> list[str]:
        """What a reader needs before the verdicts, as bullets: baselines that are
        reconstructions, rows at untuned weights, training images that are benchmark images,
        the equal-budget label, and regime conditions that fail."""
        from facd.distill.methods import get_method
        from facd.reproduce.figures import relative_link

        rows = [r for r in self.p.rows if not r.skip and self.r.has(r.name)]
        out = []
        if self.r.damaged:
            named = "; ".join(f"`{f}` ({why})" for f, why in sorted(self.r.damaged.items()))
            out.append(
                f"- **Damaged results left out:** {named}. The protocol's next run makes them "
                "again."
            )
        recon = [r for r in rows if get_method(r.method).source.startswith("reconstruction")]
        if recon:
            link = relative_link(Path("docs/methods-baselines.md"), report)
            out.append(
                f"- **Reconstructions:** {_names(self, recon)} "
                f"{'are' if len(recon) > 1 else 'is'} reconstructed from the papers, not checked "
                f"against their authors' code ([methods-baselines.md]({link})): a verdict "
                "against them is a verdict against the reconstruction."
            )
        untuned = [
            r
            for r in rows
            if not r.weight_source
            and r.weight is None  # a curve's fixed weight is its point, not a tuning
            and any(n not in ("l1_gt", "l1_t") for n, _ in get_method(r.method).terms)
        ]
        if untuned:
            out.append(
                f"- **Untuned weights:** {_names(self, untuned)} run at the method's default "
                "distillation weight, not tuned on a validation split; a method at a poor "
                "weight can lose for that reason alone."
            )
        out += self._contamination(report)
        study = self.p.study
        if study.kind == "equal_budget":
            iters = (self.p.shared.get("train") or {}).get("iterations")
            out.append(
                f"- **Equal budget, not saturated:** every row trains {iters} iterations; "
                f"doubling that gains {study.doubling_gain_db:+.2f} dB ({study.doubling_source}), "
                "so a method that only speeds training up wins here without being better once "
                "trained out."
            )
        gate = self.regime_gate()
        gated = [r for r in self.claim_results() if r.claim.needs_regime]
        if gate and gated:
            out.append(
                f"- **Regime conditions not met** ({gate}): {_alpha_claims(len(gated))} "
                f"{'gets' if len(gated) == 1 else 'get'} no verdict."
            )
        return out

    def _contamination(self, report: Path) -> list[str]:
        """A caveat for each training image of the rows or the teacher that is a benchmark image
        in disguise (:data:`NEAR_DUPLICATES`)."""
        from facd.reproduce.figures import relative_link

        doc = relative_link(Path("docs/data.md"), report)
        out = []
        teacher = self.p.teacher_train_config().get("data") or {}
        for image, what in NEAR_DUPLICATES.items():
            who = [
                name
                for name, data in (
                    ("the runs", self.p.shared.get("data") or {}),
                    ("the teacher", teacher),
                )
                if trains_on(data, image)
            ]
            if who:
                out.append(
                    f"- **A benchmark image in training:** {' and '.join(who)} train on "
                    f"`{image}`, which is {what} (found by `tools/near_duplicates.py`): numbers "
                    "on that set include an image seen in training. New protocols and teachers "
                    "leave it out (`configs/splits/train-exclude-291.txt`; "
                    f"[data.md]({doc}))."
                )
        return out

    def claims_table(self, brief: bool = False) -> None:
        """Each claim: the paper's difference (table, arch, scale, mismatch), ours with its 95 %
        interval, the verdict against 0 and against the paper. ``brief``: the rule is stated
        once, in the including report's own claims table."""
        results = self.claim_results()
        if not results:
            return
        arch = f"{arch_name(student_arch(self.p))} x{self.p.scale}"
        about = (
            f"Ours: on the {_sets_mean(len(self.r.sets))}; **mismatch** where the paper's table "
            f"is not this protocol's student ({arch}). Columns and verdict rule as in the claims "
            "table above."
            if brief
            else f"Ours: the difference on the {_sets_mean(len(self.r.sets))} (the pre-declared "
            "primary measure), per seed, paired over seeds: mean and 95 % Student-t interval "
            "[low, high], n seeds. Paper: the same difference computed from the paper's own "
            "table, from the rows its authors re-ran (marked *), as the mean over the sets "
            "both rows give, with the table, architecture and scale it comes from; "
            f"**mismatch** where they differ from this protocol's student ({arch}). Verdict: "
            f"{PAPER_RULE}; {SIGN_RULE}."
        )
        self.add(
            "## The paper's claims: our difference beside the paper's",
            "",
            about,
            "",
            "| Claim | compared | paper's difference | ours (dB) | vs 0 | verdict |",
            "|---|---|---|---|---|---|",
        )
        for res in results:
            judged = res.diff is not None and res.diff.n > 1 and not res.gate
            zero = res.diff.vs_zero() if judged and res.diff is not None else "–"
            self.add(
                f"| {_md(res.claim.text)} | {self._compared(res)} | {self._paper_cell(res)} | "
                f"{self._ours_cell(res)} | {zero} | {self.verdict_text(res)} |"
            )
        self.add("")

    def included(self) -> list[tuple[str, Report]]:
        """The protocols this report includes (``report.include``), each as a Report of its
        own results."""
        if self._included is None:
            from facd.reproduce.protocol import load_protocol

            self._included = []
            for path in self.p.report.include:
                other = load_protocol(path)
                self._included.append((path, Report(Results.load(other), self.command, path)))
        return self._included

    def _sizes(self) -> dict:
        """Parameter counts from the protocol itself (before a run has recorded them)."""
        from facd.reproduce.records import count_params

        t = count_params(self.p.teacher_net(), self.p.scale)
        s = count_params(self.p.student, self.p.scale)
        return {"teacher_params": t, "student_params": s, "ratio": t / s}

    def setup(self) -> None:
        pj = self.r.protocol_json or {}
        sizes = pj.get("sizes") or self._sizes()
        shared = self.p.shared
        data, train, val = shared.get("data", {}), shared.get("train", {}), shared.get("val", {})
        t = self.r.teacher or {}
        self.add("## Set-up", "")
        self.add(
            f"- **Teacher:** `{self.p.teacher.weights}` ({_fmt_int(sizes.get('teacher_params'))} "
            f"parameters), trained by `facd train {self.p.teacher.config}`"
            + (f"; SHA-256 `{t['weights_sha256'][:16]}…`" if t.get("weights_sha256") else "")
            + ".",
            f"- **Student:** `{_inline(self.p.student)}` at x{self.p.scale} "
            f"({_fmt_int(sizes.get('student_params'))} parameters; the teacher has "
            f"{sizes.get('ratio', float('nan')):.1f}x as many).",
            f"- **Shared training settings (every row):** data {', '.join(data.get('train_dirs', []))}; "
            f"LR patch {data.get('patch_size')}, batch {train.get('batch_size')}, "
            f"{train.get('iterations')} iterations, Adam lr {train.get('lr')}, "
            f"x{train.get('lr_gamma', 0.5)} at epochs {train.get('lr_milestones')} of "
            f"{train.get('iters_per_epoch')} iterations.",
            "- **Validation during training (curves only):** "
            + (
                f"the validation split `{val['split']}`"
                if val.get("split")
                else ", ".join(val.get("sets", []))
            )
            + f", every {val.get('every')} iterations.",
            f"- **Final evaluation:** `facd.evaluate.evaluate` on `last.safetensors` (the file "
            f"published as `{self.p.results_dir}/<row>-s<seed>.safetensors`), "
            f"{', '.join(self.p.eval.sets)} at x{self.p.scale}: Y-PSNR/SSIM, shave {self.p.scale}, "
            "MATLAB-bicubic LR. `facd eval --model <file> --scale "
            f"{self.p.scale}` gives the same numbers.",
            f"- **Seeds:** {self._seed_summary()}. Mean ± sample std over seeds; differences are "
            "paired by seed (same data order and initialisation seed).",
        )
        for stage, doc in self.r.stages.items():
            c = doc.get("config", {})
            users = [f"`{r.name}`" for r in self.p.rows if teacher_stage(r.method) == stage]
            what = self.p.teacher_stage.note or "a teacher stage"
            self.add(
                f"- **{_md(self.label(stage))}:** {what} (`{stage}`, "
                f"{c.get('train', {}).get('iterations')} iterations, shared settings); the "
                f"{', '.join(users)} row{'s' if len(users) > 1 else ''} "
                f"distil{'' if len(users) > 1 else 's'} from it, not from the teacher above."
            )
        machine = pj.get("machine")
        if machine:
            self.add(
                f"- **Machine:** {machine.get('cpus')} CPU cores, torch {machine.get('torch')}, "
                f"Python {machine.get('python')}; one thread per process."
            )
        self.add("")
        missing = self.r.missing()
        skipped = [r for r in self.p.rows if r.skip]
        if missing:
            self.add(
                f"**Missing runs** (not finished when this page was generated): {', '.join(missing)}.",
                "",
            )
        if skipped:
            self.add(
                "**Rows not run:** "
                + "; ".join(f"{self.label(r.name)}: {r.skip}" for r in skipped)
                + ".",
                "",
            )

    def _seed_summary(self) -> str:
        parts = []
        for r in self.p.rows:
            if not r.skip:
                parts.append(f"{r.name} {len(r.seeds)}")
        return ", ".join(parts)

    def main_table(self) -> None:
        sets = self.r.sets
        title = self.p.report.main_title or f"Main comparison (x{self.p.scale})"
        ref_text = self.p.report.reference_text or self.label(self.ref)
        self.add(
            f"## {title}",
            "",
            "Each cell: Y-PSNR (dB) / SSIM, mean ± std over seeds. Δ: the paired difference "
            f"against {ref_text} (same seeds), mean ± std of the per-seed differences.",
            "",
        )
        head = "| Method | seeds |" + "".join(f" {s} PSNR / SSIM | Δ {s} |" for s in sets)
        self.add(head, "|---|---|" + "---|---|" * len(sets))
        for name, doc in (("Bicubic", self.r.bicubic), (self.p.teacher.label, self.r.teacher)):
            if doc:
                cells = "".join(
                    f" {doc['sets'][s]['psnr_y']:.2f} / {doc['sets'][s]['ssim_y']:.4f} | |"
                    for s in sets
                    if s in doc.get("sets", {})
                )
                self.add(f"| {name} | – |{cells}")
        for row in self.p.rows:
            if row.group != "main":
                continue
            if row.skip:
                self.add(
                    f"| {self.label(row.name)} | – |"
                    + f" {row.skip} | |"
                    + " | |" * (len(sets) - 1)
                )
                continue
            runs = self.r.row_runs(row)
            if not runs:
                self.add(f"| {self.label(row.name)} | 0 |" + " missing | |" * len(sets))
                continue
            cells = ""
            for s in sets:
                ps, ss = self.r.stat(row.name, s, "psnr_y"), self.r.stat(row.name, s, "ssim_y")
                cell = (
                    f"{fmt_pm(ps[0], ps[1], 2)} / {fmt_pm(ss[0], ss[1], 4)}" if ps and ss else "–"
                )
                d = None if row.name == self.ref else self.r.diff(row.name, self.ref, s)
                cells += f" {cell} | {_diff_cell(d) if d else ''} |"
            self.add(f"| {self.label(row.name)} | {len(runs)} |{cells}")
        self.add("")
        notes = [f"- {self.label(r.name)}: {r.note}" for r in self.p.rows if r.note]
        if notes:
            self.add("Notes:", "", *notes, "")
        self.verdict_table()

    def verdict_table(self) -> None:
        sets = self.r.sets
        names = [
            r.name for r in self.p.rows if r.group == "main" and not r.skip and r.name != self.ref
        ]
        names = [n for n in names if self.r.has(n)]
        if not names or not self.r.has(self.ref):
            return
        self.add(
            f"Is the PSNR difference against {self.ref} distinguishable from 0? Each cell: the "
            "mean paired difference (dB) with its 95 % t-interval [low, high] over n seeds. "
            f"Rule: {ZERO_RULE}.",
            "",
            f"| Method − {self.ref} | " + " | ".join(sets) + " | mean of the sets |",
            "|---|" + "---|" * (len(sets) + 1),
        )
        for n in names:
            cells = [
                f"{_ci_cell(d, 2) if d else '–'}: {_verdict_short(d)}"
                for d in (self.r.diff(n, self.ref, s) for s in [*sets, None])
            ]
            self.add(f"| {self.label(n)} | " + " | ".join(cells) + " |")
        self.add("")

    def paper_reference(self) -> None:
        if self.p.report.paper:
            self.add("## The paper's own numbers (reference)", "", self.p.report.paper.strip(), "")

    def ablations(self) -> None:
        self.add(
            "## Ablations",
            "",
            "Δ: mean ± std of the paired per-seed differences on the mean of the sets; verdict "
            "by the 95 % t-interval rule stated under the main table.",
            "",
        )
        sets = self.r.sets
        any_table = False
        for table in self.p.report.tables:
            ref = table.reference
            present = [n for n in table.rows if self.r.has(n)]
            if len(present) < 2 or not self.r.has(ref):
                continue
            any_table = True
            self.add(f"### {table.title}", "", table.about.strip(), "")
            extra = "".join(f" {c} |" for c in table.columns)
            self.add(
                f"| Method |{extra} seeds | "
                + " | ".join(sets)
                + f" | Δ vs {self.label(ref)}, mean of the sets |",
                "|---|" + "---|" * len(table.columns) + "---|" + "---|" * (len(sets) + 1),
            )
            for n in present:
                checked = table.marks.get(n, [])
                marks = "".join(f" {'x' if c in checked else ''} |" for c in table.columns)
                cells = []
                for s in sets:
                    st = self.r.stat(n, s)
                    cells.append(fmt_pm(st[0], st[1]) if st else "–")
                d = None if n == ref else self.r.diff(n, ref, None)
                dcell = f"{_diff_cell(d)}: {_verdict_short(d)}" if d else ""
                seeds = len(self.r.values(n, None))
                self.add(
                    f"| {self.label(n)} |{marks} {seeds} | " + " | ".join(cells) + f" | {dcell} |"
                )
            self.add("")
        if not any_table:
            self.add("No ablation rows have results yet.", "")

    def teacher_table(self) -> None:
        sets = self.r.sets
        rows = [r for r in self.p.rows if not r.skip and self.r.row_runs(r)]
        if not rows:
            self.add(
                "## Student vs teacher (analogue of the paper's Table 13)",
                "",
                "Not run yet: no student run has finished.",
                "",
            )
            return
        own = [_md(self.label(r.name)) for r in rows if teacher_stage(r.method)]
        also = (
            f" {' and '.join(own)} distil{'' if len(own) > 1 else 's'} from "
            f"{'their' if len(own) > 1 else 'its'} own teacher, but "
            f"{'are' if len(own) > 1 else 'is'} measured against the same teacher as the rest."
            if own
            else ""
        )
        self.add(
            "## Student vs teacher (analogue of the paper's Table 13)",
            "",
            "Y-PSNR (dB, shave = scale) of each student's output against the teacher's output "
            f"(quantised to uint8) on the same images: higher = closer to the teacher.{also} "
            "Δ: mean ± std of the paired per-seed differences; verdict by the 95 % t-interval "
            "rule stated under the main table.",
            "",
            "| Method | seeds | " + " | ".join(sets) + f" | Δ vs {self.ref}, mean of the sets |",
            "|---|---|" + "---|" * (len(sets) + 1),
        )
        b = self.r.bicubic
        if b and b.get("teacher_psnr"):
            cells = [
                f"{b['teacher_psnr'][s]['psnr_y']:.2f}" for s in sets if s in b["teacher_psnr"]
            ]
            self.add("| Bicubic | – | " + " | ".join(cells) + " | |")
        for r in rows:
            cells = []
            for s in sets:
                st = self.r.stat(r.name, s, "teacher_psnr")
                cells.append(fmt_pm(st[0], st[1]) if st else "–")
            d = None if r.name == self.ref else self.r.diff(r.name, self.ref, None, "teacher_psnr")
            dcell = f"{_diff_cell(d)}: {_verdict_short(d)}" if d else ""
            seeds = len(self.r.row_runs(r))
            self.add(f"| {self.label(r.name)} | {seeds} | " + " | ".join(cells) + f" | {dcell} |")
        self.add("")

    def regime_table(self) -> None:
        """The regime conditions (``report.regime``): each measured value beside the paper's and
        the requirement, with a verdict."""
        reg = self.p.report.regime
        if not (reg.gap_row or reg.alpha0_row):
            return
        self.add(
            "## Regime: are the paper's mechanisms active?",
            "",
            "The adaptive scheme only acts where the teacher is sometimes worse than the student: "
            "a small student-teacher gap and a visible alpha = 0 fraction. A claim that depends "
            "on the adaptive indicator (`needs_regime`) gets a verdict only where every required "
            "condition holds; elsewhere it reads *conditions not met: no verdict*.",
            "",
            "| condition | measured | paper | required | verdict |",
            "|---|---|---|---|---|",
        )
        if reg.gap_row:
            for where in ("Set5", None):
                if where and where not in self.r.sets:
                    continue
                st = self.r.stat(reg.gap_row, where)
                gap = self._gap(where)
                name = where or _sets_mean(len(self.r.sets))
                what = f"teacher − {self.label(reg.gap_row)} gap, {name}"
                paper = reg.gap_paper_text if where else self._paper_gap()
                if st is None or gap is None:
                    self.add(f"| {_md(what)} | not measured yet | {paper} | | |")
                    continue
                need = f"≤ {reg.gap_max_db:g} dB" if reg.gap_max_db and where else ""
                verdict = (
                    ("holds" if gap <= reg.gap_max_db else "**does not hold**") if need else ""
                )
                self.add(
                    f"| {_md(what)} | {gap:.2f} dB (n={st[2]}) | {paper} | {need} | {verdict} |"
                )
        if reg.alpha0_row:
            label = _md(self.label(reg.alpha0_row))
            runs = self.r.row_runs(self.p.row(reg.alpha0_row)) if self.r.has(reg.alpha0_row) else {}
            lq = [d["alpha0"]["last_quarter_mean"] for d in runs.values() if d.get("alpha0")]
            need = f"≥ {100 * reg.alpha0_min:g} %" if reg.alpha0_min else ""
            need_lq = "" if reg.alpha_patch else need  # the gate's measure: after training
            if lq:
                v = mean(lq)
                verdict = (
                    ("holds" if v >= reg.alpha0_min else "**does not hold**") if need_lq else ""
                )
                cell = f"{100 * v:.2f} % (n={len(lq)})"
            else:
                verdict, cell = "", "not measured yet"
            self.add(
                f"| alpha = 0 fraction of {label}, last quarter of training (training patches) | "
                f"{cell} | {reg.alpha0_paper_text} | {need_lq} | {verdict} |"
            )
            if reg.alpha_patch:
                fr = [d["alpha0_frac"] for d in self.r.alpha_patch.values()]
                cell = (
                    f"{100 * mean(fr):.2f} % (n={len(fr)}, {self.r.alpha_patch_samples()} patches)"
                    if fr
                    else "not measured yet"
                )
                verdict = (
                    ("holds" if mean(fr) >= reg.alpha0_min else "**does not hold**")
                    if need and fr
                    else ""
                )
                self.add(
                    f"| alpha = 0 fraction of {label} after training, {reg.alpha_patch}-pixel LR "
                    f"patches of the training images | {cell} | {reg.alpha0_paper_text} | {need} "
                    f"| {verdict} |"
                )
        self.add("")
        gated = [r for r in self.claim_results() if r.claim.needs_regime]
        if gated:
            gate = self.regime_gate()
            self.add(
                (
                    f"The conditions do not all hold ({gate}): {_alpha_claims(len(gated))} "
                    f"{'gets' if len(gated) == 1 else 'get'} no verdict."
                    if gate
                    else f"The conditions hold: {_alpha_claims(len(gated))} "
                    f"{'is' if len(gated) == 1 else 'are'} judged."
                ),
                "",
            )

    def _paper_gap(self) -> str:
        """The paper's teacher - student gap on the mean of the sets this protocol evaluates
        (Table 2, at the student's architecture, else EDSR, and scale), mismatch labelled."""
        from facd.reproduce.paper import PaperRefError

        arch = student_arch(self.p)
        try:
            pd = paper_diff(
                "2",
                arch if arch in ("edsr", "rcan") else "edsr",
                self.p.scale,
                "Teacher",
                "Student",
                self.r.sets,
            )
        except PaperRefError:
            return ""
        mis = self.mismatch(pd)
        return f"{pd.value:.2f} dB ({pd.where()}, mean of {', '.join(pd.sets)})" + (
            f"; **mismatch:** {mis}" if mis else ""
        )

    def saturation_table(self) -> None:
        """The saturation check (``saturation:`` in the protocol): each network's validation
        split Y-PSNR with its schedule and with the schedule ``factor`` times as long."""
        sat = self.p.saturation
        if not sat.enabled:
            return
        self.add(
            "## Saturation: are the networks trained?",
            "",
            f"Rule: {SATURATION_RULE} (here: a schedule {sat.factor}x as long, iterations and "
            f"learning-rate milestones scaled, gains less than {sat.threshold_db:g} dB). Measured "
            "on the validation split only, never on the benchmark sets.",
            "",
            "| Network | iterations | split Y-PSNR | with the longer schedule | gain (dB) | "
            f"rule: gain < {sat.threshold_db:g} dB |",
            "|---|---|---|---|---|---|",
        )
        names = (["teacher"] if sat.teacher else []) + [
            run_id(n, self.p.row(n).seeds[0]) for n in sat.rows
        ]
        for name in names:
            doc = self.r.saturation.get(name)
            label = (
                self.p.teacher.label
                if name == "teacher"
                else f"{self.label(name.rsplit('-s', 1)[0])} ({name})"
            )
            if doc is None:
                self.add(f"| {_md(label)} | – | not run yet | | | |")
                continue
            a, b = doc["psnr_y"]
            n, m = doc["iterations"]
            verdict = "**trained**" if doc["saturated"] else "**not trained**: extend its schedule"
            self.add(
                f"| {_md(label)} | {n} → {m} | {a:.3f} | {b:.3f} | {doc['gain_db']:+.3f} | "
                f"{verdict} |"
            )
        self.add("")

    def sweep_tables(self) -> None:
        """The weight sweeps (rows with ``weight_grid``): per row, every weight tried with its
        validation-split Y-PSNR and the chosen one, and the rows that inherit the choice."""
        swept = [r for r in self.p.rows if r.weight_grid and not r.skip]
        if not swept:
            return
        cap = self.p.sweep.max_extensions
        self.add(
            "## Weight sweeps on the validation split",
            "",
            f"Rule: {SWEEP_RULE} (here: at most {cap} extension{'s' if cap != 1 else ''} per "
            "row). Each row, and every row that inherits its weight, then runs all its seeds at "
            "the chosen weight; no sweep run is an evaluation run. "
            "Weights are in each method's paper units.",
            "",
        )
        for row in swept:
            doc = self.r.sweeps.get(row.name)
            heirs = [r.name for r in self.p.rows if r.weight_from == row.name and not r.skip]
            self.add(
                f"### {_md(self.label(row.name))} (`{weight_key(row)}`, seed {self.p.sweep_seed})",
                "",
                "| weight | validation-split Y-PSNR (dB) | chosen |",
                "|---|---|---|",
            )
            if doc is not None:
                for run in doc["runs"]:
                    ext = " (extension)" if run.get("extension") else ""
                    mark = "**chosen**" if run["weight"] == doc["chosen"] else ""
                    self.add(
                        f"| {format_weight(run['weight'])}{ext} | {run['psnr_y']:.3f} | {mark} |"
                    )
            else:
                for w in sorted(row.weight_grid):
                    run = self.r.sweep_runs.get(sweep_run_id(row.name, w, self.p.sweep_seed))
                    cell = f"{run['psnr_y']:.3f}" if run else "not run yet"
                    self.add(f"| {format_weight(w)} | {cell} | |")
            self.add("")
            notes = []
            if doc is None:
                notes.append("No weight chosen yet (partial).")
            else:
                n = len(doc.get("extensions") or [])
                notes.append(
                    f"Chosen: {format_weight(doc['chosen'])}, on the validation split "
                    f"`{doc.get('split')}` ({doc.get('images')} images); grid extended {n} "
                    f"time{'s' if n != 1 else ''}."
                )
                if doc.get("edge_unresolved"):
                    notes.append(
                        "The best weight is still at an end of the grid after "
                        f"{n} extension{'s' if n != 1 else ''} (the cap): a better weight may lie "
                        "beyond it."
                    )
                elif doc.get("at_edge"):
                    notes.append(
                        "The best weight is at an end of the grid, which cannot be extended "
                        "that way (weights are >= 0)."
                    )
            if heirs:
                notes.append(
                    "Runs at this weight too (they only flip a switch): "
                    + ", ".join(_md(self.label(h)) for h in heirs)
                    + "."
                )
            self.add(" ".join(notes), "")

    def alpha_table(self) -> None:
        rows = []
        for r in self.p.rows:
            runs = self.r.row_runs(r)
            fr = [d["alpha0"] for d in runs.values() if d.get("alpha0")]
            if fr:
                rows.append((r, fr))
        if not rows:
            return
        self.add(
            "## Fraction of training patches with alpha = 0",
            "",
            "alpha_i = 0 when the student is already closer to the ground truth than the teacher "
            "on patch i (Eq. 1). It is logged for every method that runs the teacher, but changes "
            "the loss only for the adaptive rows (FACD and its variants). Per-epoch fractions from "
            "`metrics.jsonl`; mean over seeds.",
            "",
            "| Method | seeds | mean over training | last quarter of training | range of epochs |",
            "|---|---|---|---|---|",
        )
        for r, fr in rows:
            m = mean([f["mean"] for f in fr])
            lq = mean([f["last_quarter_mean"] for f in fr])
            lo, hi = min(f["min"] for f in fr), max(f["max"] for f in fr)
            adaptive = " (adaptive)" if _adaptive(r.method) else ""
            self.add(
                f"| {self.label(r.name)}{adaptive} | {len(fr)} | {100 * m:.1f} % | {100 * lq:.1f} % | "
                f"{100 * lo:.1f}–{100 * hi:.1f} % |"
            )
        self.add("")

    def terms_table(self) -> None:
        rows = []
        for r in self.p.rows:
            shares = [s for d in self.r.row_runs(r).values() if (s := distill_share(d)) is not None]
            if shares:
                rows.append((r, shares))
        if not rows:
            return
        self.add(
            "## How much of the loss is distillation",
            "",
            "Weighted loss terms averaged over the last quarter of training (from `metrics.jsonl`), "
            "seed 0: the share of the total that is not a pixel L1 term (to the ground truth or "
            "to the teacher's output). A method whose share is tiny barely differs from training "
            "from scratch by construction.",
            "",
            "The gradient share beside it is the share of the student's gradient that the same "
            "terms give (the norm of each weighted term's gradient over the sum of the norms), "
            "measured after training from the run's last state on one fixed batch "
            "(`gradshare-<run>.json`; `tools/gradient_share.py` measures any run folder): a "
            "term with a visible loss share may still barely move the student.",
            "",
            "| Method | weighted terms at the end of training | distillation share of the loss "
            "| of the gradient |",
            "|---|---|---|---|",
        )
        for r, shares in rows:
            doc = self.r.row_runs(r)[min(self.r.row_runs(r))]
            terms = ", ".join(f"{k} {v:.2g}" for k, v in weighted_terms(doc).items())
            share = mean(shares)
            text = "≈ 0 %" if abs(share) < 0.0005 else f"{100 * share:.1f} %"
            grad = gradient_distill_share(self.p.results_dir, doc.get("run_id", ""))
            grad_text = "not measured" if grad is None else f"{100 * grad:.1f} %"
            self.add(f"| {self.label(r.name)} | {terms} | {text} | {grad_text} |")
        self.add("")

    def reading(self) -> None:
        self.add("## Reading: what reproduced at this scale and what did not", "")
        self.add(
            f"Generated from the numbers above. Each claim's verdict is on the "
            f"{_sets_mean(len(self.r.sets))}, by the 95 % t-interval rule stated with the claims "
            "table; a line per set, where the protocol asks for one, only says where that set's "
            "interval lies against 0.",
            "",
        )
        out = []
        for res in self.claim_results():
            c = res.claim
            a, b = res.rows
            if res.paper is not None:
                mis = "; a mismatch" if res.mismatch else ""
                text = f"{c.text} (paper: {res.paper.text()} dB, {res.paper.where()}{mis})"
            else:
                text = f"{c.text} (paper: {c.paper})" if c.paper else c.text
            if res.diff is None:
                why = (
                    f"not measured ({self.label(a)} or {self.label(b)} missing)"
                    if res.missing == "missing"
                    else res.missing
                )
                out.append(f"- {text}: {why}.")
                continue
            head = f"- {text}: {self.label(a)} − {self.label(b)} on"
            for set_name in self.r.sets if c.per_set else []:
                d = self.r.diff(a, b, set_name, c.metric)
                if d is None:
                    continue
                ci = d.ci95()
                where = f", 95 % interval [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
                out.append(
                    f"{head} {set_name}: {fmt_pm(d.mean, d.std, 3, True)} dB "
                    f"({_seeds(d.n)}){where}: {_zero_words(d)}."
                )
            d = res.diff
            ci = d.ci95()
            where = f", 95 % interval [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
            verdict = res.verdict
            words = self.verdict_text(res)  # the verdict in bold, as in the claims table
            if verdict not in (ONE_SEED, CONDITIONS_NOT_MET, REVERSED):
                words = f"**{verdict}**{words[len(verdict) :]}"
            out.append(
                f"{head} {_sets_mean(len(self.r.sets))}: {fmt_pm(d.mean, d.std, 3, True)} dB "
                f"({_seeds(d.n)}){where}: {words} ({_MEANING[verdict]})."
            )
        alpha = self.p.report.alpha0
        fr = self._alpha0_fractions(alpha.row) if alpha.row else []
        if fr:
            frac = mean(fr)
            if frac > alpha.paper:
                verdict = "above the paper's figure: the student beats its teacher on more patches"
            elif frac >= alpha.paper / 10:
                verdict = "the same order of magnitude"
            else:
                verdict = (
                    "far below: this student stays well behind its teacher, so the indicator "
                    "rarely switches the teacher off"
                )
            out.append(
                f"- alpha = 0 fraction of {self.label(alpha.row)}: {100 * frac:.2f} % of training "
                f"patches on average ({alpha.paper_text}): {verdict}."
            )
        self.add(*out, "")
        obs = self.observations()
        if obs:
            self.add("Observations (also generated from the numbers):", "", *obs, "")
        sizes = (self.r.protocol_json or {}).get("sizes", {})
        ratio = f"{sizes['ratio']:.0f}x compression, " if sizes.get("ratio") else ""
        iters = (self.p.shared.get("train") or {}).get("iterations")
        self.add(
            'A claim this protocol "cannot resolve" is not refuted: its seeds cannot tell an '
            "effect of the paper's size from none, and more seeds would narrow the interval. A "
            '"one seed: no verdict" row needs more seeds before it says anything. Every verdict '
            f"here is about this set-up ({ratio}{iters} iterations per run, small networks), "
            "not about the paper's full-scale numbers.",
            "",
        )

    def _alpha0_fractions(self, name: str) -> list[float]:
        """The mean alpha = 0 fraction of each run of row ``name`` that logged one."""
        if not self.r.has(name):
            return []
        runs = self.r.row_runs(self.p.row(name))
        return [d["alpha0"]["mean"] for d in runs.values() if d.get("alpha0")]

    def observations(self) -> list[str]:
        from facd.distill.methods import pixel_terms

        out = []
        r = self.r

        def d(a: str, b: str) -> Diff | None:
            return r.diff(a, b, None) if r.has(a) and r.has(b) else None

        best = max(
            (x for x in self.p.rows if x.group == "main" and r.has(x.name) and x.name != self.ref),
            key=lambda x: mean(list(r.values(x.name, None).values())),
            default=None,
        )
        if best is not None and (bd := d(best.name, self.ref)) is not None:
            out.append(
                f"- The best student on the {_sets_mean(len(r.sets))} is {self.label(best.name)} "
                f"({fmt_pm(bd.mean, bd.std, 3, True)} dB over {self.ref})."
            )
        for obs in self.p.report.observations:
            text = self._fill(obs.text, d, obs.alpha0_below)
            if text is not None:
                out.append(f"- {' '.join(text.split())}")
        for row in self.p.rows:
            runs = r.row_runs(row)
            if row.skip or not runs or row.name == self.ref:
                continue
            doc = runs[min(runs)]
            extra = [k for k in weighted_terms(doc) if k not in pixel_terms()]
            share = distill_share(doc)
            gain = d(row.name, self.ref)
            if not extra or share is None or gain is None:
                continue
            if abs(share) < 0.01:
                out.append(
                    f"- {self.label(row.name)}: its distillation term is {100 * abs(share):.2f} % of "
                    "the loss at the end of training, so it trains almost like scratch "
                    f"({fmt_pm(gain.mean, gain.std, 3, True)} dB)."
                )
            elif share > 0.3 and gain.vs_zero() in ("includes 0", ONE_SEED):
                why = "one seed: no verdict" if gain.n < 2 else "its 95 % interval includes 0"
                out.append(
                    f"- {self.label(row.name)}: its distillation term is {100 * share:.0f} % of the "
                    f"loss at the end of training, yet its gain over scratch is "
                    f"{fmt_pm(gain.mean, gain.std, 3, True)} dB ({why})."
                )
        return out

    def _fill(
        self, text: str, d: Callable[[str, str], Diff | None], alpha0_below: float
    ) -> str | None:
        """``text`` with its placeholders filled in; None when a number is missing or the
        alpha = 0 condition does not hold."""

        missing = False

        def value(m: re.Match[str]) -> str:
            nonlocal missing
            kind, a, b = m.group(1), m.group(2), m.group(3)
            if kind == "label":
                return self.label(a)
            if kind == "alpha0":
                fr = self._alpha0_fractions(a)
                if not fr or (alpha0_below and mean(fr) >= alpha0_below):
                    missing = True
                    return ""
                return f"{100 * mean(fr):.2f}"
            diff = d(a, b)
            if diff is None:
                missing = True
                return ""
            if kind == "verdict":
                return {"above 0": "better", "below 0": "worse"}.get(diff.vs_zero(), diff.vs_zero())
            return fmt_pm(diff.mean, diff.std, 3, True)

        filled = PLACEHOLDER.sub(value, text)
        return None if missing else filled

    def timings(self) -> None:
        runs = list(self.r.runs.values())
        if not runs:
            return
        train = [d["timing"].get("train_s") or 0.0 for d in runs]
        ev = [d["timing"].get("eval_s") or 0.0 for d in runs]
        self.add(
            "## Timings",
            "",
            f"- {len(runs)} student runs: training {sum(train) / 60:.1f} process-minutes in total "
            f"({min(train):.0f}–{max(train):.0f} s per run), final evaluation "
            f"{sum(ev) / 60:.1f} process-minutes ({mean(ev):.0f} s per run on "
            f"{', '.join(self.r.sets)}), one thread per process. Wall-clock times: runs that "
            "shared the machine with other jobs took longer.",
        )
        by_method: dict[str, list[float]] = {}
        for d in runs:
            ips = d["timing"].get("median_it_per_s")
            if ips:
                by_method.setdefault(d["row"], []).append(1000.0 / ips)
        if by_method:
            self.add(
                "- Median time per training iteration: "
                + ", ".join(f"{self.label(k)} {mean(v):.0f} ms" for k, v in by_method.items())
                + "."
            )
        pj = self.r.protocol_json or {}
        for inv in pj.get("invocations", []):
            what = f"rows {', '.join(inv['only'])}" if inv.get("only") else "all rows"
            self.add(
                f"- Invocation {inv['date']} ({what}, {inv['jobs']} jobs): "
                f"{inv['wall_s'] / 60:.1f} min wall time"
                + (f", {len(inv['failed'])} task(s) failed" if inv.get("failed") else "")
                + "."
            )
        self.add("")

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


def weighted_terms(doc: dict) -> dict[str, float]:
    """``weight * value`` of each logged term, weights from the run's resolved loss options."""
    from facd.distill.methods import term_weight

    loss = (doc.get("config") or {}).get("loss") or {}
    out = {}
    for name, value in (doc.get("final_terms") or {}).items():
        w = None if name == "loss" else term_weight(name, loss)
        if w is not None:
            out[name] = w * value
    return out


def gradient_distill_share(results_dir: str, run: str) -> float | None:
    """The share of the student's gradient from terms that are not a pixel L1 term, from
    ``gradshare-<run>.json`` (None when not measured)."""
    path = Path(results_dir) / f"gradshare-{run}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    terms = doc.get("terms") if isinstance(doc, dict) else None
    if not isinstance(terms, list) or not terms:
        return None
    return sum(float(t["grad_share"]) for t in terms if t.get("name") not in ("l1_gt", "l1_t"))


def distill_share(doc: dict) -> float | None:
    """Share of the weighted total that is not a pixel L1 term (None if not logged)."""
    from facd.distill.methods import pixel_terms

    terms = weighted_terms(doc)
    total = sum(terms.values())
    if not terms or total <= 0:
        return None
    return sum(v for k, v in terms.items() if k not in pixel_terms()) / total


def _alpha_claims(n: int) -> str:
    """``the claim that depends`` / ``the 2 claims that depend`` on the adaptive indicator."""
    what = "the claim that depends" if n == 1 else f"the {n} claims that depend"
    return f"{what} on the adaptive indicator"


def _names(rep: Report, rows: list) -> str:
    """``A, B and C``: the rows' labels."""
    labels = [_md(rep.label(r.name)) for r in rows]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def trains_on(data: dict, image: str) -> bool:
    """Whether a ``data`` section (``train_dirs``, ``exclude``) trains on ``image``, a path
    relative to the data root such as ``BSD200/HR/302003.png``: a training folder ends in the
    image's folder and the exclusion list (a file of such paths) does not name it."""
    folder = image.rsplit("/", 1)[0]
    dirs = [Path(d).as_posix().rstrip("/") for d in data.get("train_dirs") or []]
    if not any(d == folder or d.endswith("/" + folder) for d in dirs):
        return False
    exclude = data.get("exclude")
    if not exclude:
        return True
    try:
        lines = Path(exclude).read_text(encoding="utf-8").splitlines()
    except OSError:
        return True
    return image not in {ln.split("#", 1)[0].strip() for ln in lines}


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _zero_words(d: Diff) -> str:
    """Where the 95 % interval lies against 0, in words."""
    return {
        "above 0": "above 0",
        "below 0": "below 0",
        "includes 0": "includes 0",
    }.get(d.vs_zero(), "one seed, no interval")


def _fmt_int(v: int | None) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def _inline(d: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"


# ---------------------------------------------------------------- figures


def write_report(
    proto: Protocol,
    protocol_path: str,
    figures: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Write the protocol's report and figures; returns the report's path."""
    res = Results.load(proto)
    report_path = Path(proto.report.path)
    fig_dir = Path(proto.figures_dir)
    rep = Report(res, f"facd reproduce {protocol_path} --report-only", protocol_path)
    rep.header()
    if proto.report.readme:
        update_readme(Path(proto.report.readme), what_we_found(rep, Path(proto.report.readme)))
        log(f"wrote the 'What we found' section of {proto.report.readme}")
    if not res.runs and not proto.report.include:  # one line, and the checks with results
        total = len(proto.run_ids())
        rep.add(
            f"**Not run yet:** none of its {total} runs has finished; this page fills in as "
            "they do.",
            "",
        )
        if res.saturation:  # a check has run: what it trained on matters already
            rep.add(*rep._contamination(report_path), "")
            rep.saturation_table()
        atomic_write_text(report_path, rep.text())
        log(f"wrote {report_path}")
        return report_path
    rep.summary()
    rep.setup()
    rep.main_table()
    rep.paper_reference()
    rep.claims_table()
    rep.ablations()
    rep.teacher_table()
    rep.regime_table()
    rep.saturation_table()
    rep.sweep_tables()
    rep.alpha_table()
    rep.terms_table()
    included_tables(rep, report_path)
    # Without ``figures`` nothing is redrawn: the figures an earlier report drew are kept.
    from facd.reproduce.figures import figure_section

    q = proto.qualitative
    paper = [rep._paper_of(c) for c in proto.report.claims] if figures else []
    rep.add(
        *figure_section(
            res,
            fig_dir,
            report_path,
            [pd.value if pd else None for pd in paper],
            qualitative=q.enabled,
            pair=(q.pair[0], q.pair[1]) if q.pair else None,
            sets=q.sets or None,
            draw=figures,
        )
    )
    rep.reading()
    rep.timings()
    atomic_write_text(report_path, rep.text())
    log(f"wrote {report_path}")
    return report_path


def included_tables(rep: Report, report_path: Path) -> None:
    """For each protocol the report includes, from that protocol's own results, headings one
    level down, with a link to its own report: its main table (and its verdicts), its claims
    table, its Table 13 analogue and its regime table. A protocol without results says "not run
    yet" in its heading's line and shows nothing more; a partial one says so."""
    from facd.reproduce.figures import relative_link

    for path, sub in rep.included():
        other = sub.p
        link = relative_link(Path(other.report.path), report_path)
        rep.add(
            f"## From the `{path}` protocol",
            "",
            f"Generated from that protocol's results ({sub.state()}); its own report, with its "
            "set-up, readings and the evidence rules it meets or misses: "
            f"[{Path(other.report.path).name}]({link}).",
            "",
        )
        if not sub.r.runs:
            continue  # the heading's line says "not run yet"
        sub.lines = []
        sub.main_table()
        sub.claims_table(brief=bool(rep.claim_results()))
        sub.teacher_table()
        sub.regime_table()
        rep.add(*[("#" + line) if line.startswith("## ") else line for line in sub.lines])


# ---------------------------------------------------------------- README


#: The markers of the README section :func:`update_readme` rewrites.
README_MARKERS = ("<!-- what-we-found -->", "<!-- /what-we-found -->")


def what_we_found(rep: Report, readme: Path) -> list[str]:
    """The README's "What we found" lines, from the same claim results as the report: one line
    on how they were judged, one per protocol with runs (its label, its verdict counts, the
    claims reversed and reproduced, a link to its report), one for the protocols not run."""
    from facd.reproduce.figures import relative_link

    lines = [
        f"Generated from the claims in [{rep.p.report.path}]"
        f"({relative_link(Path(rep.p.report.path), readme)}) by `{rep.command}`: each claim is "
        "a paired difference over seeds, judged by its 95 % t-interval against 0 and against "
        "the paper's own difference.",
        "",
    ]
    idle = []
    for sub in [rep, *(s for _, s in rep.included())]:
        link = relative_link(Path(sub.p.report.path), readme)
        if not sub.r.runs:
            idle.append(f"[{sub.p.name}]({link})")
            continue
        results = sub.claim_results()
        line = (
            f"- **[{sub.p.name}]({link})** ({sub.study_label()}): {len(results)} claims: "
            f"{sub.verdict_counts()}."
        )
        for verdict, word in ((REVERSED, "Reversed"), (REPRODUCED, "Reproduced")):
            texts = [_md(r.claim.text) for r in results if r.verdict == verdict]
            if texts:
                line += f" {word}: {'; '.join(texts)}."
        lines.append(line)
    if idle:
        lines.append(f"- Not run yet: {', '.join(idle)}.")
    return lines


def update_readme(path: Path, lines: list[str]) -> None:
    """Rewrite the part of ``path`` between :data:`README_MARKERS` with ``lines``."""
    start, end = README_MARKERS
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"report.readme: cannot read {path} ({type(err).__name__})") from None
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ConfigError(
            f"report.readme: {path} needs one '{start}' line and, after it, one '{end}' line "
            "around its 'What we found' section"
        )
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    atomic_write_text(path, head + start + "\n" + "\n".join(lines) + "\n" + end + tail)
