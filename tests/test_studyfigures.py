"""The lambda and budget figures: which rows form each curve, the paired differences against
hand-computed cases, and the drawn PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from facd.reproduce.protocol import Protocol
from facd.reproduce.results import Results
from facd.reproduce.studyfigures import (
    budget_figure,
    budget_series,
    lambda_figure,
    lambda_points,
    study_figure_lines,
    study_target,
)
from facd.typedconfig import from_dict

SETS = ["Set5", "Set14"]

# row -> (schedule, weight, group, {seed: mean Y-PSNR}); each set holds mean -/+ 1 dB
ROWS = {
    "scratch": (1.0, None, "main", {0: 28.0, 1: 28.1, 2: 28.2}),
    "ts": (1.0, None, "main", {0: 28.1, 1: 28.1, 2: 28.3}),
    "facd": (1.0, None, "main", {0: 28.3, 1: 28.2, 2: 28.4, 3: 28.0}),
    "fakd": (1.0, None, "main", {0: 28.0}),  # one budget only: no budget series
    "ts-b2": (0.5, None, "lambda", {0: 27.5, 1: 27.6, 2: 27.7}),
    "facd-l0": (0.5, 0.0, "lambda", {0: 27.5, 1: 27.7, 2: 27.6}),
    "facd-l4": (0.5, 4.0, "lambda", {0: 27.6, 1: 27.8, 2: 27.9}),
    "facd-l40": (0.5, 40.0, "lambda", {0: 27.4, 1: 27.5}),
    "scratch-b4": (0.25, None, "budget", {0: 27.0, 1: 27.1, 2: 27.0}),
    "facd-b4": (0.25, None, "budget", {0: 27.2, 1: 27.2, 2: 27.3}),
    "scratch-b2": (0.5, None, "budget", {0: 27.4, 1: 27.5, 2: 27.5}),
    "facd-b2": (0.5, None, "budget", {0: 27.7, 1: 27.7, 2: 27.8}),
}
METHOD = {
    "scratch": "scratch",
    "ts": "ts",
    "facd": "facd",
    "fakd": "fakd",
    "ts-b2": "ts",
    "scratch-b4": "scratch",
    "scratch-b2": "scratch",
}


def _results(tmp: Path, rows: dict = ROWS) -> Results:
    root = tmp / "results"
    root.mkdir(parents=True, exist_ok=True)
    proto_rows = []
    for name, (schedule, weight, group, psnr) in rows.items():
        method = METHOD.get(name, "facd")
        row = {"method": method, "name": name, "group": group, "seeds": sorted(psnr)}
        row |= {"schedule": schedule} if schedule != 1.0 else {}
        row |= {"weight": weight} if weight is not None else {}
        proto_rows.append(row)
        for seed, m in psnr.items():
            sets = {"Set5": {"psnr_y": m + 1.0}, "Set14": {"psnr_y": m - 1.0}}
            doc = {"kind": "student", "run_id": f"{name}-s{seed}", "row": name, "seed": seed,
                   "weights": f"{name}.safetensors", "sets": sets, "curve": []}  # fmt: skip
            (root / f"{name}-s{seed}.json").write_text(json.dumps(doc))
    proto = from_dict(
        Protocol,
        {
            "name": "study",
            "teacher": {"weights": "teacher.safetensors"},
            "eval": {"sets": SETS, "data_root": str(tmp / "bench")},
            "rows": proto_rows,
            "results_dir": str(root),
            "report": {
                "path": str(tmp / "docs" / "results.md"),
                "claims": [{"text": "FACD beats scratch", "rows": ["facd", "scratch"]}]
                if "facd" in rows and "scratch" in rows
                else [],
            },
        },
    )
    return Results.load(proto)


def test_lambda_curve_is_each_fixed_weight_against_its_groups_reference(tmp_path: Path) -> None:
    curve = lambda_points(_results(tmp_path))
    assert curve is not None
    assert curve.reference == "ts-b2"
    assert curve.weights == (0.0, 4.0, 40.0)
    assert curve.rows == ("facd-l0", "facd-l4", "facd-l40")
    l0, l4, l40 = curve.diffs
    assert l0.values == pytest.approx((0.0, 0.1, -0.1), abs=1e-9)
    assert l4.values == pytest.approx((0.1, 0.2, 0.2), abs=1e-9)
    assert l4.mean == pytest.approx(0.5 / 3, abs=1e-9)
    # mean +- t(0.975, 2) * s / sqrt(3); s = 0.057735
    half = 4.302653 * 0.0577350 / 3**0.5
    assert l4.ci95() == pytest.approx((0.5 / 3 - half, 0.5 / 3 + half), abs=1e-5)
    assert l40.seeds == (0, 1) and l40.values == pytest.approx((-0.1, -0.1), abs=1e-9)


def test_no_lambda_curve_without_a_single_reference(tmp_path: Path) -> None:
    rows = {k: v for k, v in ROWS.items() if k != "ts-b2"}
    assert lambda_points(_results(tmp_path, rows)) is None
    one = {k: v for k, v in ROWS.items() if k not in ("facd-l4", "facd-l40")}
    assert lambda_points(_results(tmp_path / "one", one)) is None  # a single weight is no curve


def test_budget_series_pair_facd_with_each_method_at_every_shared_budget(tmp_path: Path) -> None:
    res = _results(tmp_path)
    assert study_target(res) == "facd"
    series = budget_series(res, "facd")
    # FAKD has one budget; TS has B and B/2 (ts-b2, the lambda group's reference)
    assert [s.other for s in series] == ["scratch", "ts"]
    scratch, ts = series
    assert scratch.fractions == (0.25, 0.5, 1.0)
    b4, b2, b = scratch.diffs
    assert b4.values == pytest.approx((0.2, 0.1, 0.3), abs=1e-9)
    assert b2.values == pytest.approx((0.3, 0.2, 0.3), abs=1e-9)
    assert b.seeds == (0, 1, 2)  # facd's seed 3 has no scratch partner
    assert b.values == pytest.approx((0.3, 0.1, 0.2), abs=1e-9)
    assert ts.fractions == (0.5, 1.0)
    assert ts.diffs[0].values == pytest.approx((0.2, 0.1, 0.1), abs=1e-9)
    assert scratch.label == "FACD − Student (scratch)" or "FACD" in scratch.label


def _gid(ax, gid: str) -> list:
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def test_figures_draw_the_numbers(tmp_path: Path) -> None:
    res = _results(tmp_path)
    curve = lambda_points(res)
    assert curve is not None
    ax = lambda_figure(curve, "TS, B/2", "Set5, Set14").axes[0]
    (mean,) = _gid(ax, "mean")
    assert list(mean.get_xdata()) == [0.0, 4.0, 40.0]
    assert list(mean.get_ydata()) == pytest.approx([d.mean for d in curve.diffs])
    (seeds,) = _gid(ax, "seeds")
    assert len(seeds.get_ydata()) == 8
    assert len(_gid(ax, "interval")) == 3
    assert ax.get_xscale() == "symlog"
    series = budget_series(res, "facd")
    ax = budget_figure(series, 6000, "Set5, Set14").axes[0]
    (scratch,) = _gid(ax, "mean-scratch")
    assert list(scratch.get_ydata()) == pytest.approx([d.mean for d in series[0].diffs])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["B/4\n1,500", "B/2\n3,000", "B\n6,000"]


def test_study_figure_lines_write_and_link_both_pngs(tmp_path: Path) -> None:
    res = _results(tmp_path)
    fig_dir, report = tmp_path / "docs" / "img", tmp_path / "docs" / "results.md"
    lines = study_figure_lines(res, fig_dir, report, 6000, draw=True)
    for name in ("lambda.png", "budget.png"):
        with Image.open(fig_dir / name) as img:
            assert img.format == "PNG" and img.width == 1000
        assert any(f"(img/{name})" in line for line in lines)
    assert study_figure_lines(res, fig_dir, report, 6000, draw=False) == lines
    assert study_figure_lines(_results(tmp_path / "none", {"scratch": ROWS["scratch"]}),
                              tmp_path / "none" / "img", report, 6000, draw=True) == []  # fmt: skip
