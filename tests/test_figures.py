"""The report's figures: the plotted numbers (paired differences, intervals, curve bands) against
hand-computed cases, the drawn PNGs, what is left out, and crops chosen where models differ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facd.archs import build_model, preset_spec
from facd.compare import best_window
from facd.errors import FacdError
from facd.reproduce.figures import (
    CAPTION_KEY,
    CLAIMS_ALT,
    QUALITATIVE_ALT,
    X_MEAN,
    X_PAPER,
    claims_figure,
    curves_figure,
    draw_claim_panels,
    draw_curve_differences,
    draw_qualitative_measured,
    figure_section,
)
from facd.reproduce.plotdata import choose_crops, claim_points, curve_differences
from facd.reproduce.protocol import Protocol
from facd.reproduce.results import Results
from facd.typedconfig import from_dict

from .helpers import make_checkpoint

SETS = ["Set5", "Set14"]

# seed -> (Set5, Set14) Y-PSNR; the means over the two sets are 28.50/28.60/28.45 (scratch) and
# 28.58/28.63/28.51 (FACD): paired differences 0.08, 0.03, 0.06.
SCRATCH = {0: (30.00, 27.00), 1: (30.10, 27.10), 2: (29.90, 27.00)}
FACD = {0: (30.10, 27.06), 1: (30.14, 27.12), 2: (30.00, 27.02)}
FAKD = {0: (30.00, 27.00), 1: (30.20, 27.00)}  # means 28.50, 28.60
# validation curves: seed 1 of scratch stops before iteration 300
SCRATCH_CURVES = {
    0: [[100, 20.0], [200, 21.0], [300, 22.0]],
    1: [[100, 20.5], [200, 21.5]],
    2: [[100, 20.0], [200, 21.2], [300, 22.1]],
}
FACD_CURVES = {
    0: [[100, 20.3], [200, 21.1], [300, 22.2]],
    1: [[100, 20.4], [200, 21.9], [300, 22.0]],
    2: [[100, 20.1], [200, 21.0], [300, 22.4]],
}
CLAIMS = [
    {"text": "FACD improves the student over scratch", "rows": ["facd", "scratch"]},
    {"text": "FACD beats FAKD", "rows": ["facd", "fakd"]},
    {"text": "Teacher supervision alone helps", "rows": ["ts", "scratch"]},  # ts: no results
    {"text": "FACD beats LSFD", "rows": ["facd", "lsfd"]},  # lsfd: not a row
    {
        "text": "FACD follows the teacher more closely",
        "rows": ["facd", "scratch"],
        "metric": "teacher_psnr",
    },
]


def _doc(row: str, seed: int, psnr: tuple[float, float], curve: list, weights: str) -> dict:
    sets = {s: {"psnr_y": v, "ssim_y": 0.8} for s, v in zip(SETS, psnr, strict=True)}
    teacher = {s: {"psnr_y": v + 5.0} for s, v in zip(SETS, psnr, strict=True)}
    return {
        "kind": "student",
        "run_id": f"{row}-s{seed}",
        "row": row,
        "seed": seed,
        "weights": weights,
        "sets": sets,
        "teacher_psnr": teacher,
        "curve": curve,
    }


def _results(tmp: Path, claims: list[dict] = CLAIMS, weights: dict[str, str] | None = None):
    """A protocol (scratch and FACD on seeds 0-2, FAKD on 0-1, TS never run) and its results as
    hand-written JSON documents in ``tmp/results``."""
    root = tmp / "results"
    root.mkdir(parents=True, exist_ok=True)
    weights = weights or {}
    runs = [("scratch", SCRATCH, SCRATCH_CURVES), ("facd", FACD, FACD_CURVES)]
    runs.append(("fakd", FAKD, {s: [[150, 20.0], [250, 21.0]] for s in FAKD}))
    for row, psnr, curves in runs:
        for seed, values in psnr.items():
            doc = _doc(row, seed, values, curves[seed], weights.get(row, f"{row}.safetensors"))
            (root / f"{row}-s{seed}.json").write_text(json.dumps(doc))
    proto = from_dict(
        Protocol,
        {
            "name": "figs",
            "teacher": {"weights": "teacher.safetensors"},
            "eval": {"sets": SETS, "data_root": str(tmp / "bench")},
            "rows": [
                {"method": "scratch", "seeds": [0, 1, 2]},
                {"method": "facd", "seeds": [0, 1, 2]},
                {"method": "fakd", "seeds": [0, 1]},
                {"method": "ts", "seeds": [0]},
            ],
            "results_dir": str(root),
            "report": {"path": str(tmp / "docs" / "results.md"), "claims": claims},
        },
    )
    return Results.load(proto)


def test_claim_points_are_paired_differences_with_t_intervals(tmp_path: Path) -> None:
    res = _results(tmp_path)
    points = claim_points(res, res.proto.report.claims, [None, 0.07, 0.5, 0.1, None])
    # TS has no results and LSFD is no row: those claims are left out
    assert [(p.a, p.b, p.metric) for p in points] == [
        ("facd", "scratch", "psnr_y"),
        ("facd", "fakd", "psnr_y"),
        ("facd", "scratch", "teacher_psnr"),
    ]
    main, fakd, teacher = points
    assert main.seeds == (0, 1, 2)
    assert main.values == pytest.approx((0.08, 0.03, 0.06), abs=1e-9)
    assert main.mean == pytest.approx(0.0566667, abs=1e-6)
    # mean ± t(0.975, 2) * s / sqrt(3) = 0.056667 ± 4.302653 * 0.025166 / 1.732051
    assert main.ci == pytest.approx((-0.005849, 0.119183), abs=1e-5)
    assert main.paper is None and fakd.paper == pytest.approx(0.07)
    assert fakd.values == pytest.approx((0.08, 0.03), abs=1e-9)  # 28.58 - 28.50, 28.63 - 28.60
    assert fakd.ci == pytest.approx((0.055 - 12.7062 * 0.025, 0.055 + 12.7062 * 0.025), abs=1e-3)
    assert teacher.values == pytest.approx(main.values, abs=1e-9)  # teacher PSNR = PSNR + 5
    assert main.title == f"{res.proto.label('facd')} - {res.proto.label('scratch')}"


def test_curve_differences_pair_seeds_at_common_iterations(tmp_path: Path) -> None:
    res = _results(tmp_path)
    bands = curve_differences(res, "scratch")
    # FAKD's curves share no iteration with scratch's, TS has no results
    assert [b.row for b in bands] == ["facd"]
    (b,) = bands
    assert b.seeds == (0, 1, 2)
    assert b.iterations == (100, 200, 300)
    assert b.n == (3, 3, 2)  # scratch seed 1 has no point at 300
    assert b.mean == pytest.approx((0.1, 0.1, 0.25), abs=1e-9)
    assert b.lo == pytest.approx((-0.1, -0.2, 0.2), abs=1e-9)
    assert b.hi == pytest.approx((0.3, 0.4, 0.3), abs=1e-9)
    assert curve_differences(res, "ts") == []  # a reference without results


def test_curve_differences_leave_out_rows_at_another_budget(tmp_path: Path) -> None:
    """A row trained for half the schedule has its lr milestones at other iterations, so its
    curve is not set against the reference's at the same iteration."""
    res = _results(tmp_path)
    res.proto.row("facd").schedule = 0.5
    assert curve_differences(res, "scratch") == []


def _gid(ax, gid: str) -> list:
    """The lines of ``ax`` drawn with ``gid``."""
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def _texts(fig) -> str:
    """Every text of ``fig`` (titles, labels, legend), one per line."""
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


def test_claims_figure_draws_seeds_interval_and_paper_per_claim(tmp_path: Path) -> None:
    res = _results(tmp_path)
    points = claim_points(res, res.proto.report.claims, [None, 0.07, None, None, 0.3])
    fig = claims_figure(points, "Set5, Set14")
    assert len(fig.axes) == 3  # one panel per drawable claim
    main, fakd, teacher = fig.axes
    for ax, p in zip(fig.axes, points, strict=True):
        (seeds,) = _gid(ax, "seeds")
        assert sorted(seeds.get_ydata()) == pytest.approx(sorted(p.values))
        (interval,) = _gid(ax, "interval")  # the 95 % t-interval as a bar at X_MEAN
        assert list(interval.get_xdata()) == [X_MEAN, X_MEAN]
        assert list(interval.get_ydata()) == pytest.approx(list(p.ci))
        (mean,) = _gid(ax, "mean")
        assert mean.get_ydata()[0] == pytest.approx(p.mean)
        assert ax.get_title(loc="left").replace("\n", " ") == p.title
    assert _gid(main, "paper") == []  # no paper difference given, no diamond
    (paper,) = _gid(fakd, "paper")
    assert (paper.get_xdata()[0], paper.get_ydata()[0]) == (X_PAPER, pytest.approx(0.07))
    # Y-PSNR panels share one axis; the teacher-PSNR panel has its own, on a row of its own
    assert main.get_ylim() == fakd.get_ylim() != teacher.get_ylim()
    assert main.get_position().y0 == fakd.get_position().y0 > teacher.get_position().y0
    lo, hi = main.get_ylim()
    assert lo < 0 < hi and lo <= min(points[0].values) and hi >= points[0].ci[1]
    # FAKD has two seeds: its interval (t = 12.7) runs off the shared axis, an arrow says so
    assert fakd.get_ylim()[1] < fakd.get_ylim()[1] + 1 and points[1].ci[1] > hi
    assert len(_gid(fakd, "off-axis")) == 2 and _gid(main, "off-axis") == []
    text = _texts(fig)
    assert "mean over Set5, Set14" in text and "paper" in text and "95 % t-interval" in text
    assert "mean +0.057 dB, 3 seeds" in text and "PSNR to teacher a − b (dB)" in text


def test_claim_panels_png(tmp_path: Path) -> None:
    res = _results(tmp_path)
    claims = res.proto.report.claims
    out = draw_claim_panels(res, claims, [None, 0.07, None, None, None], tmp_path / "c.png")
    assert out == tmp_path / "c.png"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width == 1000  # the width the report embeds
    only_missing = [claims[2], claims[3]]
    assert draw_claim_panels(res, only_missing, None, tmp_path / "e.png") is None
    assert not (tmp_path / "e.png").exists()


def test_curves_figure_draws_the_mean_and_the_seed_band(tmp_path: Path) -> None:
    res = _results(tmp_path)
    (band,) = curve_differences(res, "scratch")
    fig = curves_figure([band, band], "Student (scratch)")
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    (mean,) = _gid(ax, "mean")
    assert list(mean.get_xdata()) == [100, 200, 300]
    assert list(mean.get_ydata()) == pytest.approx([0.1, 0.1, 0.25])
    (fill,) = [c for c in ax.collections if c.get_gid() == "band"]
    ys = fill.get_paths()[0].vertices[:, 1]
    assert min(ys) == pytest.approx(-0.2) and max(ys) == pytest.approx(0.4)  # min to max
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()  # one shared axis
    assert "minus Student (scratch)'s" in _texts(fig) and "at 300: +0.250 dB" in _texts(fig)
    out = draw_curve_differences(res, "scratch", tmp_path / "curves.png")
    assert Image.open(out).width == 1000
    assert draw_curve_differences(res, "ts", tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_one_seed_draws_no_band(tmp_path: Path) -> None:
    res = _results(tmp_path)
    for seed in (1, 2):
        del res.runs[f"facd-s{seed}"]
    (band,) = curve_differences(res, "scratch")
    ax = curves_figure([band], "Student (scratch)").axes[0]
    assert [c for c in ax.collections if c.get_gid() == "band"] == []
    assert len(_gid(ax, "mean")) == 1


def test_figures_without_matplotlib_say_which_install_is_missing(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import sys

    from facd.cli import main

    res = _results(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(FacdError, match=r"pip install 'facd\[repro\]'"):
        draw_claim_panels(res, res.proto.report.claims, None, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
    # facd reproduce says so before it reads the protocol or trains; --no-figures needs none
    missing = str(tmp_path / "missing.yaml")
    assert main(["reproduce", missing]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "matplotlib, which is not installed: pip install 'facd[repro]'" in line
    assert main(["reproduce", missing, "--report-only", "--no-figures"]) == 2
    assert "missing.yaml" in capsys.readouterr().err  # the protocol's own error


def test_best_window_finds_a_planted_error() -> None:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    a = np.clip(hr.astype(int) + rng.integers(-3, 4, hr.shape), 0, 255).astype(np.uint8)
    b = a.copy()
    b[20:36, 44:60] = 255 - b[20:36, 44:60]  # b is wrong in one 16x16 block
    # windows start at the 4-pixel border, in steps of 8: (44, 20) is the block
    x, y, mse_a, mse_b = best_window(hr, a, b, size=16, stride=8, shave=4)
    assert (x, y) == (44, 20)
    assert mse_b > 100 * mse_a
    assert best_window(hr, a, b, size=64, stride=8, shave=4) is None  # no window fits


class _Brightened(torch.nn.Module):
    """``net`` with its output darkened by 0.4 wherever the LR input is bright (> 0.9): the two
    networks differ only there."""

    def __init__(self, net: torch.nn.Module, scale: int) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x.mean(1, keepdim=True) > 0.9).float()
        up = torch.nn.functional.interpolate(bright, scale_factor=self.scale, mode="nearest")
        return self.net(x) - 0.4 * up


def _bench(root: Path, bright_patch: bool = True) -> Path:
    """``root/Tiny/HR``: two 96x96 images in mid tones; img01 holds a bright 16x16 patch at
    x = 24, y = 48 (aligned to the x4 grid)."""
    folder = root / "Tiny" / "HR"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(2):
        coarse = rng.random((14, 14, 3)) * 0.5 + 0.1
        img = (np.kron(coarse, np.ones((8, 8, 1)))[:96, :96] * 255).astype(np.uint8)
        if i == 1 and bright_patch:
            img[48:64, 24:40] = 250
        Image.fromarray(img).save(folder / f"img{i:02d}.png")
    return root


def test_choose_crops_finds_the_planted_difference(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_model(preset_spec("edsr-tiny-t", 4)).eval()
    root = _bench(tmp_path / "bench")
    models = [("plain", net), ("darkened", _Brightened(net, 4))]
    crops = choose_crops(models, root, 4, sets=["Tiny"], size=32, stride=16, k=2)
    first, second = crops
    # the only window (steps of 16 from the 4-pixel border) that holds the whole patch
    assert (first.set, first.image, first.x, first.y, first.w, first.h) == (
        "Tiny",
        "img01",
        20,
        36,
        32,
        32,
    )
    assert first.mse_gap < 0 and first.diff > 1.0  # "plain" is closer to the bright HR patch
    assert second.image == "img00" and second.mse_gap == 0.0 and second.diff == 0.0
    assert len(choose_crops(models, root, 4, sets=["Tiny"], size=32, k=1)) == 1


def test_figure_section_links_three_figures_with_captions(tmp_path: Path) -> None:
    root = _bench(tmp_path / "bench")
    weights = {
        row: str(make_checkpoint(tmp_path / f"{row}.safetensors", "edsr-tiny-t", 4, seed))
        for seed, row in enumerate(["scratch", "facd"])
    }
    res = _results(tmp_path, weights=weights)
    res.proto.eval.sets = ["Tiny"]  # the crops are searched in the protocol's sets
    res.proto.eval.data_root = str(root)
    for doc in res.runs.values():  # the runs were measured on Tiny
        doc["sets"] = {"Tiny": doc["sets"]["Set5"]}
        doc["teacher_psnr"] = {"Tiny": doc["teacher_psnr"]["Set5"]}
    lines = figure_section(res, tmp_path / "docs" / "img", tmp_path / "docs" / "results.md")
    text = "\n".join(lines)
    assert lines[0] == "## Figures"
    for name in ("claims.png", "curve-differences.png", "qualitative-measured.png"):
        assert f"](img/{name})" in text
        assert (tmp_path / "docs" / "img" / name).is_file()
    assert "95 % Student-t interval" in text and "lowest to the highest seed" in text
    assert "Crops chosen by measurement" in text and "(seed 0 of each)" in text
    assert "Tiny/img0" in text
    with Image.open(tmp_path / "docs" / "img" / "qualitative-measured.png") as png:
        kept = png.text[CAPTION_KEY]  # the measured caption, for a report not redrawing
    assert kept.startswith("Crops chosen by measurement") and kept in text
    fig, caption = draw_qualitative_measured(
        [("A", weights["facd"]), ("B", weights["scratch"])],
        root,
        4,
        tmp_path / "q.png",
        sets=["Tiny"],
        size=200,
    )
    assert fig is None and "200x200" in caption  # no window fits a 96-pixel image


def test_crops_figure_draws_the_overview_and_every_panel() -> None:
    from facd.reproduce.figures import crops_figure

    full = np.zeros((40, 60, 3), np.uint8)
    crop = np.full((8, 8, 3), 200, np.uint8)
    panels = [("HR", crop, None), ("Bicubic", crop, 20.5), ("FACD", crop, 23.25)]
    rows = [("a", full, (4, 8, 8, 8), panels), ("b", full, (10, 20, 8, 8), panels)]
    fig = crops_figure(rows, ["Set5", "Set14"])
    assert len(fig.axes) == 2 * 4  # per row: the overview, HR, bicubic, the model
    outline = [p for p in fig.axes[4].patches if p.get_gid() == "crop-outline"]
    assert [(p.get_x(), p.get_y(), p.get_width()) for p in outline] == [(9.5, 19.5, 8)]
    labels = [ax.get_xlabel() for ax in fig.axes[4:]]
    assert labels == [
        "Set14/b\ncrop 10,20 8x8",
        "HR\nY-PSNR on the crop",
        "Bicubic\n20.50 dB",
        "FACD\n23.25 dB",
    ]


def test_figure_section_is_empty_without_results(tmp_path: Path) -> None:
    res = _results(tmp_path)
    res.runs.clear()
    assert figure_section(res, tmp_path / "img", tmp_path / "results.md") == []


def test_figure_section_without_drawing_links_the_figures_on_disk(tmp_path: Path) -> None:
    """``draw=False`` (``--no-figures``) draws nothing and gives the section the drawn figures
    had, the measured caption of the crops included (kept in the PNG)."""
    root = _bench(tmp_path / "bench")
    weights = {
        row: str(make_checkpoint(tmp_path / f"{row}.safetensors", "edsr-tiny-t", 4, seed))
        for seed, row in enumerate(["scratch", "facd"])
    }
    res = _results(tmp_path, weights=weights)
    res.proto.eval.sets = ["Tiny"]
    res.proto.eval.data_root = str(root)
    for doc in res.runs.values():
        doc["sets"] = {"Tiny": doc["sets"]["Set5"]}
        doc["teacher_psnr"] = {"Tiny": doc["teacher_psnr"]["Set5"]}
    img, report = tmp_path / "docs" / "img", tmp_path / "docs" / "results.md"
    drawn = figure_section(res, img, report)
    files = {p.name: p.read_bytes() for p in img.iterdir()}
    assert len(files) == 3
    assert figure_section(res, img, report, draw=False) == drawn
    assert {p.name: p.read_bytes() for p in img.iterdir()} == files  # nothing redrawn
    (img / "curve-differences.png").unlink()
    kept = "\n".join(figure_section(res, img, report, draw=False, qualitative=False))
    assert "](img/claims.png)" in kept and "95 % Student-t interval" in kept
    assert "curve-differences" not in kept and "qualitative" not in kept
    for p in img.iterdir():
        p.unlink()
    assert figure_section(res, img, report, draw=False) == []


def test_report_without_figures_keeps_the_earlier_figures(tmp_path: Path) -> None:
    """``write_report(figures=False)`` (``--report-only --no-figures``) links the figures an
    earlier report drew, with the crops' caption of that report; no figure: no section."""
    from facd.reproduce.report import write_report

    res = _results(tmp_path)
    proto = res.proto
    img = tmp_path / "docs" / "img"
    proto.figures_dir = str(img)
    proto.teacher.config = str(tmp_path / "teacher.yaml")
    Path(proto.teacher.config).write_text("method: scratch\nstudent: {preset: edsr-tiny-t}\n")
    proto.student = {"preset": "edsr-tiny-s"}
    for path in Path(proto.results_dir).glob("*-s*.json"):  # what the report's tables read
        doc = json.loads(path.read_text())
        doc.update(
            method=doc["row"],
            params=40347,
            iterations=3,
            final_terms={},
            alpha0=None,
            timing={"train_s": 1.0, "eval_s": 1.0, "teacher_psnr_s": 0.0, "median_it_per_s": 1},
        )
        path.write_text(json.dumps(doc))
    report = Path(proto.report.path)
    write_report(proto, "proto.yaml", figures=False, log=lambda m: None)
    assert "## Figures" not in report.read_text()
    img.mkdir(parents=True)
    for name in ("claims.png", "qualitative-measured.png"):  # drawn by an earlier report
        Image.new("RGB", (4, 3), "white").save(img / name)
    caption = "Crops chosen by measurement, not by hand: ... Set5/baby +0.12 dB; ..."
    report.write_text(
        f"# old\n\n## Figures\n\n![crops where the two models differ most]"
        f"(img/qualitative-measured.png)\n\n{caption}\n\n## Reading\n"
    )
    files = {p.name: p.read_bytes() for p in img.iterdir()}
    write_report(proto, "proto.yaml", figures=False, log=lambda m: None)
    text = report.read_text()
    assert "## Figures" in text
    assert f"![{CLAIMS_ALT}](img/claims.png)" in text
    assert "95 % Student-t interval" in text  # the claims figure's caption
    assert f"![{QUALITATIVE_ALT}](img/qualitative-measured.png)" in text
    assert f"(img/qualitative-measured.png)\n\n{caption}\n" in text
    assert "curve-differences" not in text  # not on disk: not linked
    assert {p.name: p.read_bytes() for p in img.iterdir()} == files  # nothing redrawn
