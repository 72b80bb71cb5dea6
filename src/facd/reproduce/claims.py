"""The paper's claims, judged: each claim of the protocol measured on its results, with its
verdict, the regime conditions it depends on, and the label every verdict carries.

Claims (:class:`ClaimResult`) are judged on the mean of the evaluation sets per seed, paired
over seeds, by the 95 % Student-t interval (:mod:`facd.reproduce.stats`: ``PAPER_RULE`` beside
the paper's own difference from :mod:`facd.reproduce.paper`, ``SIGN_RULE`` where the claim has
no paper number); one seed gives no verdict, and there is no "negligible" floor. The paper's
difference comes from the table, architecture and scale the claim's ``paper_ref`` names; where
those differ from this protocol's student (its ``arch``, or its preset's) and scale, the claim
says so (a mismatch label).

Verdicts obey their conditions: a claim with ``needs_regime`` (one that depends on the adaptive
indicator alpha) is judged only where every regime condition the protocol requires holds
(:meth:`ClaimJudge.conditions`: teacher - student gap <= ``gap_max_db`` on ``gap_on``, Set5 or
the validation split, alpha = 0
fraction >= ``alpha0_min``); elsewhere, or while a condition is unmeasured, its verdict is
:data:`CONDITIONS_NOT_MET`, shown with the measured numbers and counted apart. Every verdict
carries a label (:meth:`ClaimJudge.claim_label`): the declared equal-budget study ("equal budget
B = N iterations, not saturated", with the measured gain of doubling B), else what the
saturation check found; and for a ``needs_regime`` claim whether its conditions are met.

A new kind of claim is a field of :class:`facd.reproduce.reportspec.ReportClaim` and its
judgement here (:meth:`ClaimJudge.results`); the report's tables and prose take it from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from facd.reproduce.mdcells import pct
from facd.reproduce.paper import PaperDiff, arch_name, paper_diff
from facd.reproduce.protocol import SPLIT, Protocol
from facd.reproduce.reportspec import ReportClaim
from facd.reproduce.results import Results
from facd.reproduce.stats import ONE_SEED, REVERSED, VERDICTS, Diff, mean

#: The verdict of a claim whose rows (one or both) have no results.
NOT_MEASURED = "not measured"


#: The verdict of a claim that needs the regime (``needs_regime``) where the protocol's regime
#: conditions fail or were not measured: its difference is shown, but it is not judged.
CONDITIONS_NOT_MET = "conditions not met: no verdict"


def student_arch(proto: Protocol) -> str:
    """The protocol's student architecture: its ``arch``, or its preset's ('?' if neither)."""
    arch = proto.student.get("arch")
    if arch:
        return str(arch)
    from facd.archs import PRESETS

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
        need = f"needs {pct(self.need)} %"
        if self.value is None:
            return f"alpha = 0 fraction not measured, {need}"
        return f"alpha = 0 on {pct(self.value)} %, {need}"


def gap_place(where: str) -> str:
    """How a report names where the gap is measured: a set's name, or the validation split."""
    return "the validation split" if where == SPLIT else where


class ClaimJudge:
    """The claims of ``res``' protocol judged on its results (computed once)."""

    def __init__(self, res: Results) -> None:
        self.r = res
        self.p = res.proto
        self._claims: list[ClaimResult] | None = None

    def paper_of(self, c: ReportClaim) -> PaperDiff | None:
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

    def results(self) -> list[ClaimResult]:
        """Every claim of the protocol (optional ones only once both rows have results)."""
        if self._claims is not None:
            return self._claims
        out = []
        for c in self.p.report.claims:
            a, b = c.rows
            measured = self.r.has(a) and self.r.has(b)
            if c.optional and not measured:
                continue
            pd = self.paper_of(c)
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
        teacher - ``gap_row`` gap on ``gap_on`` (``gap_max_db``), and the alpha = 0 fraction of
        ``alpha0_row`` (``alpha0_min``): measured after training on ``alpha_patch``-pixel
        patches where the protocol measures it, else the mean over the last quarter of training
        (training patches). A condition whose requirement is 0 is not required."""
        reg = self.p.report.regime
        out = []
        if reg.gap_row and reg.gap_max_db > 0:
            gap = self.gap(reg.gap_on)
            holds = None if gap is None else gap <= reg.gap_max_db
            out.append(Condition("gap", gap, reg.gap_max_db, holds, gap_place(reg.gap_on)))
        if reg.alpha0_row and reg.alpha0_min > 0:
            value, where = self.alpha0_measure()
            holds = None if value is None else value >= reg.alpha0_min
            out.append(Condition("alpha0", value, reg.alpha0_min, holds, where))
        return out

    def regime_gate(self) -> str:
        """'' where every regime condition holds, else the failing or unmeasured ones."""
        return "; ".join(c.text() for c in self.conditions() if not c.holds)

    def gap(self, where: str | None) -> float | None:
        """The teacher's Y-PSNR minus ``gap_row``'s mean on a set (None: the mean of the sets;
        ``SPLIT``: the validation split, with the teacher's split score of this teacher)."""
        reg = self.p.report.regime
        teacher = self.teacher_psnr(where)
        st = self.r.stat(reg.gap_row, where) if self.r.has(reg.gap_row) else None
        return None if st is None or teacher is None else teacher - st[0]

    def teacher_psnr(self, where: str | None) -> float | None:
        """The teacher's Y-PSNR on a set (None: the mean of the sets; ``SPLIT``: its published
        split score, when it is of this teacher's weights)."""
        t = self.r.teacher
        if not t:
            return None
        if where == SPLIT:
            ts = self.r.teacher_split or {}
            current = ts.get("weights_sha256") == t.get("weights_sha256")
            return float(ts["psnr_y"]) if current and ts.get("psnr_y") is not None else None
        if where is not None and where not in self.r.sets:
            return None
        return mean([t["sets"][x]["psnr_y"] for x in ([where] if where else self.r.sets)])

    def alpha0_measure(self) -> tuple[float | None, str]:
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
        iters = self.p.budget
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
        conditions are met, not met (one fails) or not measured yet (none fails, one is not
        measured), read from the conditions themselves, so that a claim whose rows have no
        results yet is labelled as the regime stands."""
        label = self.study_label()
        if res.claim.needs_regime:
            label += f"; conditions {self.regime_state()}"
        return label

    def regime_state(self) -> str:
        """'not met' (a condition fails), 'not measured yet' (none fails, one is not measured)
        or 'met'."""
        holds = [c.holds for c in self.conditions()]
        if False in holds:
            return "not met"
        return "not measured yet" if None in holds else "met"

    def verdict_text(self, res: ClaimResult, beside_label: bool = False) -> str:
        """The verdict in words: a claim whose regime conditions fail names them; an
        equal-budget study's verdicts carry its label, unless the label stands beside them
        (``beside_label``: a table with a label column)."""
        if res.verdict == CONDITIONS_NOT_MET:
            text = f"conditions not met ({res.gate}): no verdict"
        else:
            text = f"**{res.verdict}**" if res.verdict == REVERSED else res.verdict
        if self.p.study.kind == "equal_budget" and res.verdict != NOT_MEASURED and not beside_label:
            iters = self.p.budget
            text += f"; equal budget B = {iters}, not saturated"
        return text

    def verdict_counts(self) -> str:
        """``1 reversed; 2 reproduced; ...`` over the protocol's claims (reversed first)."""
        results = self.results()
        order = [*VERDICTS, CONDITIONS_NOT_MET, NOT_MEASURED]
        counts = {v: sum(r.verdict == v for r in results) for v in order}
        words = {
            ONE_SEED: "with one seed (no verdict)",
            CONDITIONS_NOT_MET: "with the regime conditions not met (no verdict)",
        }
        parts = [f"{n} {words.get(v, v)}" for v, n in counts.items() if n]
        return "; ".join(parts) if parts else "no claims"

    def state(self) -> str:
        """'not run yet', 'partial: k of n runs' or 'all n runs' (finished runs of the rows)."""
        done, total = len(self.r.runs), len(self.p.run_ids())
        if not done:
            return f"not run yet: none of its {total} runs has finished"
        if done < total:
            return f"partial: {done} of {total} runs finished"
        return f"all {total} runs finished"
