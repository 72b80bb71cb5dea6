"""Claims judged beside the paper's own difference: the t-interval verdict rule, structured paper
references (validated when the protocol loads), mismatch labels, the summary, and reports of
protocols that are partly run or not run at all. Results are written by hand: nothing trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from facd.errors import ConfigError
from facd.reproduce.protocol import load_protocol
from facd.reproduce.stats import Diff

from .helpers import write_student_runs
from .test_reproduce import _protocol

REPO = Path(__file__).resolve().parents[1]

ROWS = [
    {"method": "scratch", "seeds": [0, 1, 2]},
    {"method": "ts", "seeds": [0]},
    {"method": "fakd", "seeds": [0, 1, 2]},
    {"method": "fcd", "seeds": [0, 1, 2]},
    {"method": "facd", "seeds": [0, 1, 2]},
]

CLAIMS = [
    {
        "text": "FACD improves the student over scratch",
        "rows": ["facd", "scratch"],
        "per_set": True,
        "paper_ref": {"table": 2, "arch": "edsr", "scale": 4, "rows": ["FACD", "Student"]},
    },
    {
        "text": "FACD beats FAKD",
        "rows": ["facd", "fakd"],
        "paper_ref": {"table": 2, "arch": "edsr", "scale": 4, "rows": ["FACD", "FAKD*"]},
    },
    {
        "text": "The adaptive scheme helps",
        "rows": ["facd", "fcd"],
        "needs_regime": True,
        "paper_ref": {"table": 9, "arch": "edsr", "scale": 4, "rows": ["FACD", "FCD"]},
    },
    {
        "text": "Teacher supervision alone helps",
        "rows": ["ts", "scratch"],
        "paper_ref": {"table": 8, "arch": "rcan", "scale": 4, "rows": ["L1_GT+L1_T", "L1_GT"]},
    },
    {"text": "FACD beats LSFD", "rows": ["facd", "lsfd"], "paper": "no re-run LSFD row"},
]

#: The regime condition of the claim that needs it (FACD - FCD): alpha = 0 on at least 2 % of
#: FACD's training patches in the last quarter of training.
REGIME = {"alpha0_row": "facd", "alpha0_min": 0.02, "alpha_patch": 0}

#: Y-PSNR on the one set per row and seed: FACD - scratch = +0.05/+0.06/+0.07 (paper +0.061:
#: reproduced), FACD - FAKD = -0.05 on every seed (paper +0.026: reversed), FACD - FCD =
#: -0.01/0/+0.01 (paper +0.009: cannot resolve where the regime holds), TS one seed (no
#: verdict).
PSNR = {
    "facd": [30.00, 30.10, 30.20],
    "scratch": [29.95, 30.04, 30.13],
    "fakd": [30.05, 30.15, 30.25],
    "fcd": [30.01, 30.10, 30.19],
    "ts": [30.00],
}


#: Logged alpha = 0 summaries of FACD: 3 % in the last quarter (the condition holds), 0.4 %.
ALPHA0_HOLDS = {"mean": 0.02, "last_quarter_mean": 0.03, "min": 0.0, "max": 0.04}
ALPHA0_FAILS = {"mean": 0.002, "last_quarter_mean": 0.004, "min": 0.0, "max": 0.006}


def _protocol_with(tmp: Path, report: dict, rows: list[dict] = ROWS, name: str = "p") -> Path:
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    path = _protocol(folder, rows)
    doc = yaml.safe_load(path.read_text())
    doc["name"] = name
    doc["report"] = {"regime": REGIME, **report, "path": doc["report"]}
    path.write_text(yaml.safe_dump(doc))
    return path


def _report(path: Path) -> str:
    from facd.reproduce.report import write_report

    proto = load_protocol(path)
    return write_report(proto, str(path), figures=False, log=lambda m: None).read_text()


# ------------------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    ("values", "paper", "verdict"),
    [
        ((0.05, 0.06, 0.07), 0.061, "reproduced"),  # [0.035, 0.085] holds 0.061, not 0
        ((-0.01, 0.0, 0.01), 0.009, "cannot resolve"),  # holds both 0 and 0.009
        ((-0.01, 0.0, 0.01), 0.088, "not reproduced"),  # holds 0, not 0.088
        ((-0.05, -0.05, -0.05), 0.026, "reversed"),  # excludes 0 on the other side
        ((0.01, 0.011, 0.012), 0.088, "same sign, size differs (smaller)"),
        ((0.2, 0.21, 0.22), 0.088, "same sign, size differs (larger)"),
        ((0.05,), 0.061, "one seed: no verdict"),  # no verdict rests on one seed
        ((0.002, 0.003, 0.004), 0.009, "same sign, size differs (smaller)"),  # no 0.01 floor
    ],
)
def test_verdict_against_the_paper(values: tuple, paper: float, verdict: str) -> None:
    d = Diff(tuple(values), tuple(range(len(values))))
    assert d.vs_paper(paper) == verdict


def test_verdict_against_zero_and_sign_only() -> None:
    assert Diff((0.002, 0.003, 0.004), (0, 1, 2)).vs_zero() == "above 0"  # no floor
    assert Diff((-0.01, 0.0, 0.01), (0, 1, 2)).vs_zero() == "includes 0"
    assert Diff((-0.05, -0.04, -0.045), (0, 1, 2)).vs_sign() == "reversed"
    assert Diff((0.05, 0.06, 0.07), (0, 1, 2)).vs_sign() == "holds (sign only)"
    assert Diff((0.05,), (0,)).vs_zero() == "one seed: no verdict"


# ------------------------------------------------------------------------- paper references


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        (
            {"table": 3, "arch": "edsr", "scale": 4, "rows": ["FACD", "FAKD*"]},
            r"'report.claims\[0\].paper_ref.table': no Table 3",
        ),
        (
            {"table": 2, "arch": "edsr", "scale": 4, "rows": ["FACD", "FAKD"]},
            r"'report.claims\[0\].paper_ref.rows': 'FAKD' is not a row of Table 2 at EDSR x4",
        ),
        (
            {"table": 2, "arch": "edsr", "scale": 4, "rows": ["FACD", "LSFD"]},
            r"paper_ref.rows': 'LSFD' in Table 2 is copied from another paper",
        ),
        (
            {"table": 8, "arch": "edsr", "scale": 2, "rows": ["L1_GT", "L1_GT+L1_T"]},
            r"paper_ref.arch': Table 8 gives no edsr x2; it gives RCAN x4",
        ),
        (
            {"table": 2, "arch": "edsr", "scale": 4, "rows": ["FACD"]},
            r"paper_ref.rows': needs \[a, b\]",
        ),
        (
            {"table": 2, "arch": "edsr", "scale": 4, "rows": ["FACD", "Student"], "sets": []},
            r"unknown config key 'report.claims\[0\].paper_ref.sets'",
        ),
    ],
)
def test_unknown_paper_references_are_refused_at_load(
    tmp_path: Path, ref: dict, match: str
) -> None:
    claims = [{"text": "x", "rows": ["facd", "scratch"], "paper_ref": ref}]
    path = _protocol_with(tmp_path, {"claims": claims})
    with pytest.raises(ConfigError, match=match) as info:
        load_protocol(path)
    assert "\n" not in str(info.value)


def test_a_table13_reference_needs_the_teacher_metric(tmp_path: Path) -> None:
    ref = {"table": 13, "arch": "rcan", "scale": 4, "rows": ["FACD", "FAKD*"]}
    claims = [{"text": "x", "rows": ["facd", "fakd"], "paper_ref": ref}]
    with pytest.raises(ConfigError, match="Table 13 gives teacher_psnr.*metric: teacher_psnr"):
        load_protocol(_protocol_with(tmp_path, {"claims": claims}))


# ---------------------------------------------------------------------------------- reports


def test_claims_table_summary_and_verdicts(tmp_path: Path) -> None:
    path = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS})
    write_student_runs(tmp_path / "p" / "results", PSNR, {"facd": ALPHA0_HOLDS})
    text = _report(path)
    # the summary is near the top, reversed claims first, then the counts
    summary = text[text.index("## Summary") : text.index("## Set-up")]
    after_table = summary[summary.rindex("\n| ") :]
    lines = [ln for ln in after_table.splitlines() if ln.startswith("- ")]
    assert lines[0].startswith("- **Reversed:** FACD beats FAKD: FACD − FAKD = -0.050 dB")
    assert "the paper: +0.026 dB (Table 2, EDSR x4)" in lines[0]
    assert lines[1] == (
        "- Verdicts of the 5 claims: 1 reversed; 1 reproduced; 1 cannot resolve; "
        "1 with one seed (no verdict); 1 not measured."
    )
    # the claims table: the paper's difference with its table, arch and scale, ours with its
    # interval, the verdicts; Table 8 is RCAN x4, so it is labelled a mismatch here (EDSR x4)
    table = text[text.index("## The paper's claims") : text.index("## Ablations")]
    row = next(ln for ln in table.splitlines() if ln.startswith("| FACD beats FAKD |"))
    assert (
        "+0.026 dB (Table 2, EDSR x4, FACD − FAKD\\*; mean of Set5, Set14, B100, Urban100)" in row
    )
    assert "-0.050 [-0.050, -0.050] (n=3) | below 0 | **reversed** |" in row
    row = next(ln for ln in table.splitlines() if ln.startswith("| FACD improves"))
    # 0.0615 rounds half away from zero; the protocol's one set is not the paper's: all four
    assert (
        "+0.062 dB (Table 2, EDSR x4, FACD − Student; mean of Set5, Set14, B100, Urban100)" in row
    )
    assert "| reproduced |" in row
    assert "mismatch" not in row
    row = next(ln for ln in table.splitlines() if ln.startswith("| The adaptive scheme"))
    assert "mean of B100, Urban100" in row and "| includes 0 | cannot resolve |" in row
    row = next(ln for ln in table.splitlines() if ln.startswith("| Teacher supervision"))
    assert "**mismatch:** Table 8 is RCAN x4, this protocol EDSR x4" in row
    assert "+0.050 (1 seed) | – | one seed: no verdict |" in row
    row = next(ln for ln in table.splitlines() if ln.startswith("| FACD beats LSFD"))
    assert "no re-run LSFD row" in row and "not run yet (LSFD)" in row and "not measured" in row
    # the reading: per-set supporting lines, the verdict on the mean of the sets
    assert "- FACD improves the student over scratch (paper: +0.062 dB, Table 2, EDSR x4): " in text
    assert "on Tiny: +0.060 ± 0.010 dB (3 seeds), 95 % interval [+0.035, +0.085]: above 0." in text
    assert "on mean of the one set: -0.050 ± 0.000 dB (3 seeds)" in text
    # no 0.01 dB floor anywhere: FACD - FCD is judged by its interval, not called negligible
    assert text.lower().count("negligible") == text.count("no 'negligible' floor") == 1
    assert "inside the seed noise" not in text
    # the main table's verdicts use the same interval, one seed gives none
    verdicts = text[text.index("distinguishable from 0") : text.index("## The paper's claims")]
    assert "| FACD | +0.06 [+0.04, +0.08] (n=3): **better** |" in verdicts
    assert "| TS | +0.05 (1 seed): no verdict |" in verdicts


def test_a_protocol_without_results_says_so_in_one_line(tmp_path: Path) -> None:
    """A page of a protocol not yet run is its header, its description and one line: no
    tables of "not measured" cells."""
    path = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS})
    text = _report(path)
    body = text.split("--jobs 2`\n\n", 1)[1]
    assert body == (
        "**Not run yet:** none of its 13 runs has finished; this page fills in as they do.\n"
    )
    assert "|" not in text and "not measured" not in text


def _gated_report(tmp_path: Path, alpha0: dict | None, study: dict | None = None) -> str:
    path = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS})
    if study is not None:
        doc = yaml.safe_load(path.read_text())
        doc["study"] = study
        path.write_text(yaml.safe_dump(doc))
    write_student_runs(tmp_path / "p" / "results", PSNR, {"facd": alpha0} if alpha0 else None)
    return _report(path)


def test_a_claim_that_needs_the_regime_gets_no_verdict_where_it_fails(tmp_path: Path) -> None:
    """FACD - FCD depends on the adaptive indicator: at alpha = 0 on 0.4 % of patches (the
    protocol needs 2 %) it reads "conditions not met", everywhere, and is not counted."""
    text = _gated_report(tmp_path, ALPHA0_FAILS)
    gated = "conditions not met (alpha = 0 on 0.4 %, needs 2 %): no verdict"
    claims = text[text.index("## The paper's claims") : text.index("## Ablations")]
    row = next(ln for ln in claims.splitlines() if ln.startswith("| The adaptive scheme"))
    assert row.endswith(f"| -0.000 [-0.025, +0.025] (n=3) | – | {gated} |")
    summary = text[text.index("## Summary") : text.index("## Set-up")]
    lead = next(ln for ln in summary.splitlines() if ln.startswith("| p | The adaptive scheme"))
    assert f"| {gated} | saturation not checked; conditions not met |" in lead
    assert (
        "- Verdicts of the 5 claims: 1 reversed; 1 reproduced; 1 with one seed (no verdict); "
        "1 with the regime conditions not met (no verdict); 1 not measured." in summary
    )
    assert "cannot resolve" not in summary
    assert "- **Regime conditions not met** (alpha = 0 on 0.4 %, needs 2 %)" in summary
    reading = text[text.index("## Reading") :]
    assert f"95 % interval [-0.025, +0.025]: {gated} (the claim depends" in reading
    regime = text[text.index("## Regime") : text.index("## Fraction of training")]
    assert "| 0.40 % (n=3) |  | ≥ 2 % | **does not hold** |" in regime
    # not measured is not met either
    text = _gated_report(tmp_path / "unmeasured", None)
    assert "conditions not met (alpha = 0 fraction not measured, needs 2 %): no verdict" in text


def test_a_claim_that_needs_the_regime_is_judged_where_it_holds(tmp_path: Path) -> None:
    text = _gated_report(tmp_path, ALPHA0_HOLDS)
    summary = text[text.index("## Summary") : text.index("## Set-up")]
    lead = next(ln for ln in summary.splitlines() if ln.startswith("| p | The adaptive scheme"))
    assert lead.endswith("| cannot resolve | saturation not checked; conditions met |")
    assert "The conditions hold: the claim that depends on the adaptive indicator is judged." in (
        text
    )


@pytest.mark.parametrize(
    ("alpha0", "label"),
    [(ALPHA0_FAILS, "conditions not met"), (None, "conditions not measured yet")],
)
def test_a_regime_claim_without_results_is_labelled_as_the_regime_stands(
    tmp_path: Path, alpha0: dict | None, label: str
) -> None:
    """While FCD has no results, FACD - FCD is not measured; its label must still say that the
    conditions fail (or are not measured), never "conditions met"."""
    path = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS})
    psnr = {k: v for k, v in PSNR.items() if k != "fcd"}
    write_student_runs(tmp_path / "p" / "results", psnr, {"facd": alpha0} if alpha0 else None)
    text = _report(path)
    summary = text[text.index("## Summary") : text.index("## Set-up")]
    lead = next(ln for ln in summary.splitlines() if ln.startswith("| p | The adaptive scheme"))
    assert lead.endswith(f"| not measured | saturation not checked; {label} |")
    assert "conditions met" not in lead


def test_an_equal_budget_study_labels_every_verdict(tmp_path: Path) -> None:
    study = {"kind": "equal_budget", "doubling_gain_db": 0.4, "doubling_source": "a ladder run"}
    text = _gated_report(tmp_path, ALPHA0_HOLDS, study)
    summary = text[text.index("## Summary") : text.index("## Set-up")]
    assert (
        "- **Equal budget, not saturated:** every row trains 3 iterations; doubling that gains "
        "+0.40 dB (a ladder run)" in summary
    )
    label = "equal budget B = 3 iterations, not saturated (doubling B gains +0.40 dB)"
    lead = [ln for ln in summary.splitlines() if ln.startswith("| p |")]
    assert len(lead) == 5 and all(f"| {label}" in ln for ln in lead)
    # the label column carries it: the verdict cell beside it does not repeat it
    assert not any("; equal budget B = 3, not saturated" in ln for ln in lead)
    claims = text[text.index("## The paper's claims") : text.index("## Ablations")]
    judged = [ln for ln in claims.splitlines() if ln.startswith("| ") and "(n=3)" in ln]
    assert judged and all(ln.endswith("; equal budget B = 3, not saturated |") for ln in judged)
    assert "**reproduced**; equal budget B = 3, not saturated (the interval" in text
    with pytest.raises(ConfigError, match="doubling_source"):
        _gated_report(tmp_path / "x", None, {"kind": "equal_budget"})
    with pytest.raises(ConfigError, match="'study.kind' must be one of"):
        _gated_report(tmp_path / "y", None, {"kind": "budget"})


def test_the_summary_states_the_caveats_before_the_verdicts(tmp_path: Path) -> None:
    """Reconstructed baselines, untuned weights and a benchmark image in training are named
    before the table of verdicts."""
    from facd.reproduce.runstats import trains_on

    rows = [*ROWS, {"method": "lsfd", "seeds": [0, 1, 2]}]
    path = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS}, rows=rows)
    write_student_runs(tmp_path / "p" / "results", {**PSNR, "lsfd": [29.9, 30.0, 30.1]})
    text = _report(path)
    summary = text[text.index("## Summary") : text.index("## Set-up")]
    table = summary.index("| protocol | claim |")
    recon = summary.index("- **Reconstructions:** LSFD is reconstructed from the papers")
    untuned = summary.index("- **Untuned weights:** FAKD, FCD, FACD and LSFD run at the method")
    assert recon < table and untuned < table
    assert "| p | FACD beats LSFD | +0.100 [+0.100, +0.100] (n=3) | – | holds (sign only) |" in (
        summary
    )
    # the CI data holds no BSD200 folder; the check itself reads the folders and the list
    assert "benchmark image in training" not in summary
    image = "BSD200/HR/302003.png"
    assert trains_on({"train_dirs": ["../shared/data/BSD200/HR"]}, image)
    assert not trains_on({"train_dirs": ["../shared/data/T91/HR"]}, image)
    val_split = str(REPO / "configs/splits/val291.txt")  # the split only: not left out
    assert trains_on({"train_dirs": ["x/BSD200/HR"], "exclude": val_split}, image)
    assert not trains_on(
        {
            "train_dirs": ["x/BSD200/HR"],
            "exclude": str(REPO / "configs/splits/train-exclude-291.txt"),
        },
        image,
    )


def test_included_protocols_bring_their_claims_and_state(tmp_path: Path) -> None:
    """A report that includes other protocols shows each one's claims table (with verdicts),
    Table 13 analogue and regime table, says which are partial or not run, and lists their
    reversed claims in its own summary."""
    regime = {
        "gap_row": "scratch",
        "gap_paper_db": 0.271,
        "gap_paper_text": "0.27 dB (EDSR x2, Set5)",
        "alpha0_row": "facd",
        "alpha0_min": 0.02,
        "alpha_patch": 0,
    }
    partial = _protocol_with(
        tmp_path, {"reference": "scratch", "claims": CLAIMS, "regime": regime}, name="partial"
    )
    write_student_runs(tmp_path / "partial" / "results", {k: PSNR[k] for k in ("facd", "fakd")})
    empty = _protocol_with(tmp_path, {"claims": CLAIMS[:2]}, name="empty")
    main = _protocol_with(tmp_path, {"include": [str(partial), str(empty)]}, name="main")
    text = _report(main)
    assert f"- **Reversed (`{partial}`):** FACD beats FAKD" in text
    assert (
        f"- `{partial}` (partial: 6 of 13 runs finished): 5 claims: 1 reversed; 4 not measured."
        in text
    )
    assert (
        f"- `{empty}` (not run yet: none of its 13 runs has finished): 2 claims: 2 not measured."
        in text
    )
    part = text[
        text.index(f"## From the `{partial}` protocol") : text.index(f"## From the `{empty}`")
    ]
    assert "(partial: 6 of 13 runs finished)" in part
    assert "### The paper's claims: our difference beside the paper's" in part
    assert "| FACD beats FAKD | FACD − FAKD |" in part and "**reversed**" in part
    assert "### Student vs teacher (analogue of the paper's Table 13)" in part
    assert "### Regime: are the paper's mechanisms active?" in part
    assert "| teacher − Student (scratch) gap, Set5 | not measured yet |" not in part  # no Set5
    rest = text[text.index(f"## From the `{empty}` protocol") :]
    rest = rest[: rest.index("\n## ", 3)]
    assert "(not run yet: none of its 13 runs has finished)" in rest
    assert "|" not in rest  # one line, no tables of "not measured" cells


def test_shipped_protocols_quote_the_paper_with_their_settings(monkeypatch) -> None:
    """Every claim of the shipped protocols that the paper has rows for quotes them; the EDSR x2
    protocol labels Table 8 (RCAN x4) and Table 11 (EDSR x4) as mismatches."""
    from facd.reproduce.reportdoc import Report
    from facd.reproduce.results import Results

    monkeypatch.chdir(REPO)
    edsr = load_protocol("configs/repro/regime-edsr-x2.yaml")
    rep = Report(Results(edsr), "test", "configs/repro/regime-edsr-x2.yaml")
    by_text = {r.claim.text: r for r in rep.claims.results()}
    assert by_text["Teacher supervision alone helps"].mismatch == (
        "Table 8 is RCAN x4, this protocol EDSR x2"
    )
    assert by_text["Eq. 6 beats Eq. 7"].paper.text() == "+0.012"
    assert by_text["FACD beats FAKD"].mismatch == ""
    assert by_text["FACD beats FAKD"].paper.text() == "+0.083"
    rcan = load_protocol("configs/repro/regime-rcan-x4.yaml")
    rep = Report(Results(rcan), "test", "configs/repro/regime-rcan-x4.yaml")
    by_text = {r.claim.text: r for r in rep.claims.results()}
    assert by_text["FACD beats FAKD"].paper.text() == "+0.088"
    assert by_text["FACD follows the teacher more closely than FAKD (Table 13)"].paper.text() == (
        "+0.878"
    )
    assert all(r.verdict == "not measured" for r in rep.claims.results()) or rep.r.runs
    pilot = load_protocol("configs/repro/swinir-pilot.yaml")
    rep = Report(Results(pilot), "test", "configs/repro/swinir-pilot.yaml")
    assert rep.claims.results()[0].mismatch == "Table 2 is EDSR x4, this protocol SwinIR x4"


def _published_report(monkeypatch: pytest.MonkeyPatch):
    from facd.reproduce.reportdoc import Report
    from facd.reproduce.results import Results

    monkeypatch.chdir(REPO)
    path = "configs/repro/mini-x4.yaml"
    proto = load_protocol(path)
    return Report(Results.load(proto), f"facd reproduce {path} --report-only", path)


def test_published_summary_gates_the_adaptive_claims_and_is_current(monkeypatch) -> None:
    """In docs/results.md the claims that depend on the adaptive indicator read "conditions not
    met" with the measured numbers (mini-x4: alpha = 0 on 0.4 % of patches, needs 2 %), and are
    not counted as reproduced or not; the published Summary is the one the results give."""
    from facd.reproduce.summary import summary as write_summary

    rep = _published_report(monkeypatch)
    write_summary(rep)
    summary = "\n".join(rep.lines)
    text = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    assert summary in text
    gated = (
        "conditions not met (gap 1.03 dB on Set5, needs ≤ 0.5 dB; alpha = 0 on 0.4 %, needs "
        "2 %): no verdict"
    )
    for claim in ("The adaptive scheme helps", "Eq. 6 beats Eq. 7"):
        lead = next(ln for ln in summary.splitlines() if ln.startswith(f"| mini-x4 | {claim} |"))
        assert f"| {gated} | saturation not checked; conditions not met |" in lead
    assert "2 with the regime conditions not met (no verdict)" in summary
    assert "1 not reproduced" not in summary.split("swinir-pilot")[0]
    assert "**A benchmark image in training:** the runs and the teacher train on" in summary


def test_readme_what_we_found_is_generated_from_the_published_claims(monkeypatch) -> None:
    from facd.reproduce.summary import README_MARKERS, what_we_found

    rep = _published_report(monkeypatch)
    lines = what_we_found(rep, Path("README.md"))
    assert 3 <= len([ln for ln in lines if ln.strip()]) <= 5
    start, end = README_MARKERS
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## What we found\n\n" + start in readme
    assert readme.split(start, 1)[1].split(end, 1)[0] == "\n" + "\n".join(lines) + "\n", (
        "regenerate: facd reproduce configs/repro/mini-x4.yaml --report-only --no-figures"
    )
    assert "Reversed: FACD beats FAKD" in readme and "(docs/results.md)" in readme


def test_update_readme_needs_its_markers(tmp_path: Path) -> None:
    from facd.reproduce.summary import update_readme

    path = tmp_path / "README.md"
    path.write_text("# x\n\n<!-- what-we-found -->\nold\n<!-- /what-we-found -->\nrest\n")
    update_readme(path, ["new", "lines"])
    assert path.read_text() == (
        "# x\n\n<!-- what-we-found -->\nnew\nlines\n<!-- /what-we-found -->\nrest\n"
    )
    path.write_text("# x\n")
    with pytest.raises(ConfigError, match="needs one '<!-- what-we-found -->' line"):
        update_readme(path, ["new"])


def test_published_report_states_the_reversal_in_its_summary() -> None:
    """docs/results.md says at the top that the protocol reverses FACD > FAKD."""
    text = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    summary = text[text.index("## Summary") : text.index("## Set-up")]
    assert "- **Reversed:** FACD beats FAKD: FACD − FAKD = -0.0" in summary
    assert text.lower().count("negligible") == text.count("no 'negligible' floor")
    for path in ("swinir-pilot", "regime-rcan-x4", "regime-edsr-x2"):
        assert f"## From the `configs/repro/{path}.yaml` protocol" in text


@pytest.mark.parametrize(
    ("grad_share", "line"),
    [
        (
            0.15,
            "- FCD: its distillation terms are only 0.50 % of the loss at the end of training, "
            "yet 15.0 % of the student's gradient after training: small in the loss, they still act.",
        ),
        (
            0.004,
            "- FCD: its distillation terms are 0.50 % of the loss at the end of training and "
            "0.40 % of the student's gradient after training: they barely act, so it trains almost "
            "as it would without them.",
        ),
        (
            None,
            "- FCD: its distillation terms are 0.50 % of the loss at the end of training; "
            "whether they act is their share of the student's gradient, not measured for this row.",
        ),
    ],
)
def test_a_term_small_in_the_loss_is_judged_by_its_gradient_share(
    tmp_path: Path, grad_share: float | None, line: str
) -> None:
    """A distillation term that is 0.5 % of the loss may still give a real share of the
    gradient (FCD's contrast at lambda 0.4 in the budget study: 0.8 % and 15 %): the reading
    says which the gradient share shows, or that it was not measured, and never that the
    row trains "like scratch" (FCD without its contrast is TS, not scratch)."""
    import json

    path = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS})
    results = tmp_path / "p" / "results"
    write_student_runs(results, PSNR)
    for seed in range(3):
        run = results / f"fcd-s{seed}.json"
        doc = json.loads(run.read_text())
        doc["config"]["loss"]["contrast"] = {"weight": 1.0}
        doc["final_terms"] = {"l1_gt": 0.995, "contrast": 0.005}
        run.write_text(json.dumps(doc))
    if grad_share is not None:
        terms = [
            {"name": "l1_gt", "grad_share": 1 - grad_share},
            {"name": "contrast", "grad_share": grad_share},
        ]
        (results / "gradshare-fcd-s0.json").write_text(json.dumps({"terms": terms}))
    text = _report(path)
    observations = text[text.index("Observations (also generated") :]
    assert line in observations
    assert "like scratch" not in text


def test_a_row_at_another_budget_is_set_against_scratch_at_its_budget(tmp_path: Path) -> None:
    """A lambda-curve row at B/2 whose contrast is most of its loss is not set against scratch
    trained for B (that would charge it the missing half of the schedule): the reading and the
    Table 13 analogue compare it with the scratch row at B/2, and say nothing where the
    protocol has none."""
    import json

    half = {"method": "fcd", "name": "fcd-l100", "seeds": [0, 1], "weight": 100, "schedule": 0.5}
    half["label"] = "FCD, lambda 100, B/2"
    scratch_half = {"method": "scratch", "name": "scratch-b2", "seeds": [0, 1], "schedule": 0.5}
    scratch_half["label"] = "Student (scratch), B/2"
    for rows, expected in (
        (
            [*ROWS, scratch_half, half],
            "gain over scratch at its budget (Student (scratch), B/2) is",
        ),
        ([*ROWS, half], None),
    ):
        name = "with" if expected else "without"
        path = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS}, rows, name)
        doc = yaml.safe_load(path.read_text())
        doc["shared"]["train"].update(iterations=4, iters_per_epoch=2, lr_milestones=[1])
        path.write_text(yaml.safe_dump(doc))
        results = tmp_path / name / "results"
        psnr = dict(PSNR, **{"fcd-l100": [29.0, 29.1]})
        if expected:
            psnr["scratch-b2"] = [29.05, 29.0]
        write_student_runs(results, psnr)
        for seed in range(2):
            run = results / f"fcd-l100-s{seed}.json"
            doc = json.loads(run.read_text())
            doc["config"]["loss"]["contrast"] = {"weight": 100 / 255}
            doc["final_terms"] = {"l1_gt": 0.1, "contrast": 0.9}
            run.write_text(json.dumps(doc))
        text = _report(path)
        table13 = text.split("## Student vs teacher")[1].split("\n## ")[0]
        cell = next(x for x in table13.splitlines() if x.startswith("| FCD, lambda")).split("|")[-2]
        observations = text.split("Observations (also generated")[1]
        line = next((x for x in observations.splitlines() if x.startswith("- FCD, lambda")), None)
        if expected:
            assert line is not None and expected in line and "+0.025" in line, line
            assert "+0.03 ± 0.11 (n=2) vs Student (scratch), B/2" in cell, cell  # Table 13
        else:
            assert line is None, line  # scratch at B is not the reference of a B/2 row
            assert cell.strip() == "", cell
