"""The report's figures, drawn with matplotlib to be read at a glance.

* **Claim panels** (:func:`draw_claim_panels`): one small panel per claim ``a - b`` of the
  reading. Dots: the difference of each seed, paired by seed, on the mean over the evaluation
  sets; dark bar: their mean with its 95 % Student-t interval (``Diff.ci95``, two or more
  seeds); orange diamond: the paper's difference (given by the caller); line: zero. Axes: one
  y axis **shared by all panels of a metric** (Y-PSNR against HR; Y-PSNR against the teacher's
  output gets its own, on its own rows of panels), so effect sizes compare across claims. The
  axis spans the dots, means, paper values, zero and the intervals of three or more seeds; a
  two-seed interval (``t = 12.7``) may run off it and ends in an arrow there.
* **Curve differences** (:func:`draw_curve_differences`): one panel per row, its validation
  Y-PSNR minus the reference row's at the same iteration, paired by seed. Line: the mean over
  seeds; band: **min to max over seeds** (no band with one seed). The y axis is shared and fitted
  to the second half of training (early differences are large and would flatten the end, where
  the methods settle), so early points may run off it.
* **Measured qualitative crops** (:func:`draw_qualitative_measured`): the crops where two
  models' mean squared errors on Y differ most (:func:`facd.reproduce.plotdata.choose_crops`),
  one row each: the whole image with the crop marked, then the crop of HR, bicubic and every
  model (:func:`facd.compare.comparison_rows`), pixels enlarged without smoothing, the Y-PSNR
  on the crop under each. The crops' PSNR differences are given in the caption.

The numbers come from :mod:`facd.reproduce.plotdata`. Every figure is :data:`WIDTH_IN` inches
wide at :data:`DPI` (1000 px, the size the report embeds it at), four panels to a row (panels
keep one size whatever their number), one colour per role (:data:`SEED_COLOUR`,
:data:`MEAN_COLOUR`, :data:`PAPER_COLOUR`, :data:`ZERO_COLOUR`).
The ``*_figure`` functions build a matplotlib figure (Agg canvas, no pyplot state); the
``draw_*`` functions write it as PNG through :func:`facd.fileio.atomic_write_bytes`.
matplotlib is the ``repro`` extra (``pip install 'facd[repro]'``), imported only here, when a
figure is drawn (:func:`require_matplotlib`).

A report written without redrawing (:func:`figure_section` with ``draw=False``, ``facd
reproduce --no-figures``) links the figures already on disk; the crops figure keeps its
measured caption in the PNG (:data:`CAPTION_KEY`) for that.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from facd.errors import FacdError
from facd.fileio import atomic_write_bytes
from facd.reproduce.plotdata import (
    ClaimPoints,
    CurveBand,
    choose_crops,
    claim_points,
    curve_differences,
    hr_path,
)

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from facd.compare import Row
    from facd.reproduce.reportspec import ReportClaim
    from facd.reproduce.results import Results

__all__ = [
    "claims_figure",
    "crops_figure",
    "curves_figure",
    "draw_claim_panels",
    "draw_curve_differences",
    "draw_qualitative_measured",
    "figure_section",
    "require_matplotlib",
]

#: What ``facd reproduce`` needs to draw its figures.
REPRO_INSTALL = "pip install 'facd[repro]'"
#: Width of every figure (inches) and its resolution: 1000 px, the size the report embeds.
WIDTH_IN, DPI = 10.0, 100
#: One colour per role, the same in every figure.
SEED_COLOUR = "#6e96c8"  # a seed's dot; the curve band is its light tint
BAND_COLOUR = "#cddcf0"
MEAN_COLOUR = "#142d6e"  # the mean (and its interval bar, the mean curve)
PAPER_COLOUR = "#e16414"  # the paper's difference
ZERO_COLOUR = "#000000"
TEXT_GREY = "#505050"

METRIC_AXIS = {
    "psnr_y": "Y-PSNR a − b (dB)",
    "teacher_psnr": "PSNR to teacher a − b (dB)",
}
#: Panels per row, always: panels keep one size (and text scale) whatever their number.
MAX_COLS = 4
# x positions of the three columns of a claim panel
X_SEEDS, X_MEAN, X_PAPER = 0.0, 1.0, 2.0


# ---------------------------------------------------------------- drawing helpers


def require_matplotlib() -> None:
    """Raise a one-line :class:`FacdError` naming the install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FacdError(
            "facd reproduce draws its figures with matplotlib, which is not installed: "
            f"{REPRO_INSTALL} (or pass --no-figures)"
        ) from None


def new_figure(height_in: float) -> Figure:
    """A blank :data:`WIDTH_IN`-wide figure on the Agg canvas (no pyplot, no global state)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, caption: str = "", palette: bool = False) -> Path:
    """Write ``fig`` as PNG at :data:`DPI`, atomically; ``caption`` goes into its
    :data:`CAPTION_KEY` text chunk. With ``palette`` (plots, not photographs) the image is
    stored with a palette of 256 colours, a third of the size. No software version is stored,
    so that redrawing the same numbers with another matplotlib release changes only pixels."""
    path = Path(path)
    meta = {"Software": None, **({CAPTION_KEY: caption} if caption else {})}
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=meta, pil_kwargs={"optimize": True})
    if palette:
        from PIL import Image

        with Image.open(buf) as img:
            small = img.convert("RGB").quantize(256, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _y_range(values: Sequence[float], min_span: float = 0.02) -> tuple[float, float]:
    """A range around ``values`` (zero included by the caller), padded by 10 %, at least
    ``min_span`` wide."""
    lo, hi = min(values), max(values)
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    pad = 0.1 * (hi - lo)
    return lo - pad, hi + pad


def signed_tick(value: float, _pos: object = None) -> str:
    """A tick label with its sign (``+0.05``, ``0``, ``−0.05``)."""
    if abs(value) < 1e-12:
        return "0"
    return f"{value:+.3g}".replace("-", "−")


def _db(value: float) -> str:
    """``+0.055 dB`` / ``−0.021 dB``."""
    return f"{value:+.3f} dB".replace("-", "−")


def _iter_label(value: float, _pos: object = None) -> str:
    return f"{value / 1000:g}k" if abs(value) >= 10000 else f"{value:g}"


def _panel_title(ax: Axes, title: str, subtitle: str, lines: int) -> None:
    """``title`` (wrapped to two lines) over ``subtitle`` (grey, wrapped to ``lines`` lines)
    above the plot box."""
    wrapped = textwrap.wrap(subtitle, 34, max_lines=lines, placeholder=" …")
    head = textwrap.wrap(title, 28, max_lines=2, placeholder=" …")
    ax.set_title(
        "\n".join(head), loc="left", fontsize=10, fontweight="bold", pad=4 + 11 * len(wrapped)
    )
    ax.text(
        0,
        1.02,
        "\n".join(wrapped),
        transform=ax.transAxes,
        fontsize=8.5,
        color=TEXT_GREY,
        va="bottom",
        ha="left",
        in_layout=False,  # the title's pad leaves room for it
    )


def _legend(fig: Figure, title: str, handles: Sequence[Artist]) -> None:
    """The figure's title with its legend in one line under it, above the panels."""
    fig.legend(
        handles=handles,
        title=title,
        title_fontsize=13,
        loc="outside upper center",
        ncols=len(handles),
        frameon=False,
        fontsize=9.5,
    )


def _grid_axes(fig: Figure, cells: int, row_of: Sequence[int], rows: int) -> list[Axes]:
    """``cells`` panels on ``rows`` rows of :data:`MAX_COLS` (panel ``i`` on row
    ``row_of[i]``, in the next free column)."""
    spec = fig.add_gridspec(rows, MAX_COLS)
    used = [0] * rows
    out = []
    for i in range(cells):
        r = row_of[i]
        out.append(fig.add_subplot(spec[r, used[r]]))
        used[r] += 1
    return out


# ---------------------------------------------------------------- 1. claim panels


def claims_figure(points: Sequence[ClaimPoints], sets_text: str) -> Figure:
    """The claim panels of ``points`` (see the module docstring), one per point, in order;
    each metric starts a new row and has its own shared y axis."""
    metrics: list[str] = []
    for p in points:
        if p.metric not in metrics:
            metrics.append(p.metric)
    row_of: list[int] = []
    rows = 0
    ordered: list[ClaimPoints] = []
    for m in metrics:
        group = [p for p in points if p.metric == m]
        row_of += [rows + i // MAX_COLS for i in range(len(group))]
        rows += math.ceil(len(group) / MAX_COLS)
        ordered += group
    fig = new_figure(1.0 + 2.5 * rows)
    axes = _grid_axes(fig, len(ordered), row_of, rows)
    ranges = {m: _y_range(_claim_values([p for p in points if p.metric == m])) for m in metrics}
    first_in_row: set[int] = set()
    for i, (ax, p) in enumerate(zip(axes, ordered, strict=True)):
        if i == 0 or row_of[i] != row_of[i - 1]:
            first_in_row.add(i)
        _claim_panel(ax, p, ranges[p.metric])
        if i in first_in_row:
            ax.set_ylabel(METRIC_AXIS.get(p.metric, f"a − b, {p.metric}"), fontsize=9.5)
        else:
            ax.tick_params(labelleft=False)
    title = f"Claims: paired difference a − b per seed, mean over {sets_text}"
    _claims_legend(fig, title, any(p.paper is not None for p in points))
    return fig


def _claims_legend(fig: Figure, title: str, paper: bool) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="o", mfc=SEED_COLOUR, mec=MEAN_COLOUR, label="one seed"),
        Line2D([], [], color=MEAN_COLOUR, lw=2.5, marker="o", label="mean, 95 % t-interval"),
        Line2D([], [], ls="", marker="D", mfc=PAPER_COLOUR, mec="#783200", label="paper"),
        Line2D([], [], color=ZERO_COLOUR, lw=1, label="zero"),
    ]
    if not paper:
        del handles[2]  # no paper marker drawn
    _legend(fig, title, handles)


def _claim_values(points: Sequence[ClaimPoints]) -> list[float]:
    """The values the shared y axis must show (see the module docstring)."""
    vals = [0.0]
    for p in points:
        vals += [*p.values, p.mean]
        if p.paper is not None:
            vals.append(p.paper)
        if p.ci is not None and p.n >= 3:
            vals += list(p.ci)
    return vals


def _claim_panel(ax: Axes, p: ClaimPoints, y_range: tuple[float, float]) -> None:
    """Seeds at :data:`X_SEEDS`, the mean and its interval at :data:`X_MEAN`, the paper at
    :data:`X_PAPER`; artists carry gids ``seeds``, ``mean``, ``interval``, ``paper``,
    ``off-axis``."""
    from matplotlib.ticker import FuncFormatter

    lo, hi = y_range
    _panel_title(ax, p.title, p.text, 2)
    ax.axhline(0.0, color=ZERO_COLOUR, lw=1, zorder=2)
    ax.grid(axis="y", color="#e4e4e4", lw=0.8, zorder=0)
    spread = min(0.12, 0.5 / max(p.n - 1, 1))
    xs = [X_SEEDS + (i - (p.n - 1) / 2) * spread for i in range(p.n)]
    ax.plot(
        xs,
        sorted(p.values),
        ls="",
        marker="o",
        ms=7,
        mfc=SEED_COLOUR,
        mec=MEAN_COLOUR,
        gid="seeds",
        zorder=3,
    )
    if p.ci is not None:
        ax.plot(
            [X_MEAN, X_MEAN],
            list(p.ci),
            color=MEAN_COLOUR,
            lw=2.5,
            marker="_",
            ms=12,
            mew=2,
            gid="interval",
            zorder=2,
        )
        for end, edge, marker in ((p.ci[1], hi, "^"), (p.ci[0], lo, "v")):
            beyond = end > hi if marker == "^" else end < lo
            if beyond:  # the interval runs off the shared axis
                ax.plot(
                    [X_MEAN],
                    [edge],
                    ls="",
                    marker=marker,
                    ms=9,
                    color=MEAN_COLOUR,
                    clip_on=False,
                    gid="off-axis",
                    zorder=4,
                )
    ax.plot([X_MEAN], [p.mean], ls="", marker="o", ms=8, color=MEAN_COLOUR, gid="mean", zorder=3)
    if p.paper is not None:
        ax.plot(
            [X_PAPER],
            [p.paper],
            ls="",
            marker="D",
            ms=8,
            mfc=PAPER_COLOUR,
            mec="#783200",
            gid="paper",
            zorder=3,
        )
    ax.set_xlim(X_SEEDS - 0.6, X_PAPER + 0.6)
    ax.set_ylim(lo, hi)
    ax.set_xticks([X_SEEDS, X_MEAN, X_PAPER], ["seeds", "mean", "paper"], fontsize=8.5)
    ax.yaxis.set_major_formatter(FuncFormatter(signed_tick))
    ax.tick_params(axis="y", labelsize=8.5)
    seeds = f"{p.n} seed" + ("s" if p.n != 1 else "")
    ax.set_xlabel(f"mean {_db(p.mean)}, {seeds}", fontsize=9.5)


def draw_claim_panels(
    res: Results,
    claims: Sequence[ReportClaim],
    paper_diffs: Sequence[float | None] | None,
    path: str | Path,
) -> Path | None:
    """:func:`claims_figure` of :func:`claim_points`, written to ``path``; None (nothing
    written) when no claim has results on both rows."""
    points = claim_points(res, claims, paper_diffs)
    if not points:
        return None
    return save_figure(claims_figure(points, ", ".join(res.sets)), path, palette=True)


# ---------------------------------------------------------------- 2. curve differences


def curves_figure(bands: Sequence[CurveBand], ref_label: str) -> Figure:
    """One panel per band (see the module docstring), on one shared y axis; the mean line has
    gid ``mean``, the min-max band ``band``."""
    from matplotlib.ticker import FuncFormatter

    rows = math.ceil(len(bands) / MAX_COLS)
    fig = new_figure(0.9 + 2.2 * rows)
    axes = _grid_axes(fig, len(bands), [i // MAX_COLS for i in range(len(bands))], rows)
    x_hi = max(max(b.iterations) for b in bands) or 1.0
    lo, hi = _y_range(_settled_values(bands, x_hi))
    for i, (ax, b) in enumerate(zip(axes, bands, strict=True)):
        seeds = f"{len(b.seeds)} seed" + ("s" if len(b.seeds) != 1 else "")
        end = f"{seeds}; at {_iter_label(b.iterations[-1])}: {_db(b.mean[-1])}"
        _panel_title(ax, b.label, end, 1)
        ax.grid(color="#e4e4e4", lw=0.8, zorder=0)
        ax.axhline(0.0, color=ZERO_COLOUR, lw=1, zorder=2)
        if len(b.iterations) > 1 and max(b.n) > 1:
            ax.fill_between(b.iterations, b.lo, b.hi, color=BAND_COLOUR, lw=0, gid="band", zorder=2)
        one = len(b.iterations) == 1  # a single point is drawn as a dot
        ax.plot(
            b.iterations,
            b.mean,
            color=MEAN_COLOUR,
            lw=2,
            ls="" if one else "-",
            marker="o" if one else "",
            gid="mean",
            zorder=3,
        )
        ax.set_xlim(0, x_hi)
        ax.set_ylim(lo, hi)
        ax.yaxis.set_major_formatter(FuncFormatter(signed_tick))
        ax.xaxis.set_major_formatter(FuncFormatter(_iter_label))
        ax.tick_params(labelsize=8.5)
        if i % MAX_COLS:
            ax.tick_params(labelleft=False)
        else:
            ax.set_ylabel("difference (dB)", fontsize=9.5)
        if i >= len(bands) - MAX_COLS:
            ax.set_xlabel("iteration", fontsize=9)
    _curves_legend(fig, f"Validation Y-PSNR minus {ref_label}'s, paired by seed")
    return fig


def _curves_legend(fig: Figure, title: str) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=MEAN_COLOUR, lw=2, label="mean over seeds"),
        Patch(color=BAND_COLOUR, label="min to max over seeds"),
        Line2D([], [], color=ZERO_COLOUR, lw=1, label="zero"),
    ]
    _legend(fig, title, handles)


def _settled_values(bands: Sequence[CurveBand], x_hi: float) -> list[float]:
    """The values the shared y axis of the curve panels shows: zero and the means and bands
    over the second half of training (``iteration >= x_hi / 2``; a row without such points
    contributes its last one). Early differences are large and would flatten the end."""
    vals = [0.0]
    for b in bands:
        idx = [i for i, it in enumerate(b.iterations) if it >= x_hi / 2] or [len(b.iterations) - 1]
        vals += [v for i in idx for v in (b.lo[i], b.hi[i], b.mean[i])]
    return vals


def draw_curve_differences(res: Results, reference: str, path: str | Path) -> Path | None:
    """:func:`curves_figure` of :func:`curve_differences`, written to ``path``; None (nothing
    written) when no row shares iterations and seeds with the reference."""
    bands = curve_differences(res, reference)
    if not bands:
        return None
    return save_figure(curves_figure(bands, res.proto.label(reference)), path, palette=True)


# ---------------------------------------------------------------- 3. measured qualitative crops


def _fmt_db(v: float) -> str:
    return f"{v:+.2f} dB" if math.isfinite(v) else ("+inf" if v > 0 else "-inf")


def crops_figure(rows: Sequence[Row], sets: Sequence[str]) -> Figure:
    """One row per crop of :func:`facd.compare.comparison_rows` (``sets[i]`` names row ``i``'s
    benchmark set): the whole image with the crop outlined (gid ``crop-outline``), then each
    panel's crop, enlarged without smoothing, its label and Y-PSNR on the crop under it."""
    from matplotlib.patches import Rectangle

    ncols = 1 + max(len(panels) for *_, panels in rows)
    side = WIDTH_IN / ncols
    fig = new_figure((side + 0.35) * len(rows))
    spec = fig.add_gridspec(len(rows), ncols)
    for r, ((name, full, (x, y, w, h), panels), set_name) in enumerate(
        zip(rows, sets, strict=True)
    ):
        ax = fig.add_subplot(spec[r, 0])
        ax.imshow(full, cmap="gray" if full.ndim == 2 else None, interpolation="antialiased")
        ax.add_patch(
            Rectangle(
                (x - 0.5, y - 0.5), w, h, fill=False, ec="#e61e1e", lw=1.5, gid="crop-outline"
            )
        )
        ax.set_xlabel(f"{set_name}/{name}\ncrop {x},{y} {w}x{h}", fontsize=9)
        for c, (label, pixels, psnr) in enumerate(panels, start=1):
            ax = fig.add_subplot(spec[r, c])
            ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, interpolation="nearest")
            below = "Y-PSNR on the crop" if psnr is None else f"{psnr:.2f} dB"
            ax.set_xlabel(f"{label}\n{below}", fontsize=9)
        for ax in fig.axes[-ncols:]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def draw_qualitative_measured(
    models: Sequence[tuple[str, str | Path]],
    data_root: str | Path,
    scale: int,
    path: str | Path,
    *,
    sets: Sequence[str] = ("Set5", "Set14"),
    max_images: int = 20,
    size: int = 64,
    stride: int | None = None,
    k: int = 3,
    device: str = "cpu",
    about: str = "",
) -> tuple[Path | None, str]:
    """Crops chosen by :func:`choose_crops`, drawn by :func:`crops_figure` (HR, bicubic and
    every model, the PSNR under each panel measured on the crop); the caption is kept in the
    PNG (:data:`CAPTION_KEY`). Returns (figure, caption) or (None, why no crop was found).
    ``about`` follows the two models' names in the caption, e.g. ``" (seed 0 of each)"``."""
    import facd
    from facd.compare import comparison_rows
    from facd.data.image_io import read_image_raw

    require_matplotlib()  # before the models run, not after
    step = stride or max(1, size // 2)
    crops = choose_crops(
        models,
        data_root,
        scale,
        sets=sets,
        max_images=max_images,
        size=size,
        stride=step,
        k=k,
        device=device,
    )
    where = " and ".join(sets) if len(sets) <= 2 else ", ".join(sets)
    if not crops:
        return None, f"no image of {where} holds a {size}x{size} window inside its border"
    images = [(c.image, read_image_raw(hr_path(data_root, c.set, c.image, scale))) for c in crops]
    loaded = [(label, facd.load(str(ref), device=device, tile=0)) for label, ref in models]
    rows, _ = comparison_rows(
        images, [(c.x, c.y, c.w, c.h) for c in crops], loaded, scale, psnr_region="crop"
    )
    a, b = models[0][0], models[1][0]
    measured = ", ".join(f"{c.set}/{c.image} {_fmt_db(c.diff)}" for c in crops)
    caption = (
        f"Crops chosen by measurement, not by hand: {a} and {b}{about} super-resolved up to "
        f"{max_images} images of each of {where} from the evaluation's LR input; a "
        f"{size}x{size} window moved in steps of {step} px inside the {scale}-pixel border; shown "
        f"are the {len(crops)} image{'s' if len(crops) != 1 else ''} whose best window has the "
        f"largest gap in mean squared error on Y between the two, |MSE({a}) − MSE({b})| (the "
        f"crops that weigh most in their PSNR difference). Crop Y-PSNR {a} − {b}: {measured}; "
        "the PSNR under each panel is measured on the crop."
    )
    fig = crops_figure(rows, [c.set for c in crops])
    return save_figure(fig, path, caption), caption


# ---------------------------------------------------------------- 4. the report's section


def relative_link(target: Path, report: Path) -> str:
    """``target`` as a Markdown link from the folder of ``report`` (POSIX separators)."""
    import os

    return os.path.relpath(target, report.parent).replace(os.sep, "/")


def _qualitative_pair(res: Results) -> tuple[str, str] | None:
    """The first Y-PSNR claim whose two rows have results (e.g. FACD vs scratch)."""
    for c in res.proto.report.claims:
        a, b = c.rows
        if c.metric == "psnr_y" and res.has(a) and res.has(b):
            return a, b
    return None


def _pair_models(res: Results, pair: tuple[str, str]) -> tuple[list[tuple[str, str]], str]:
    """``(label, weights)`` of the two rows at their smallest common seed (else each row's
    smallest seed, named in the labels), and the caption's words about the seed."""
    runs = [res.row_runs(res.proto.row(name)) for name in pair]
    common = sorted(set(runs[0]) & set(runs[1]))
    out = []
    for name, by_seed in zip(pair, runs, strict=True):
        seed = common[0] if common else min(by_seed)
        label = res.proto.label(name) + ("" if common else f" (seed {seed})")
        out.append((label, str(by_seed[seed]["weights"])))
    return out, f" (seed {common[0]} of each)" if common else ""


#: The files of the report's figures in ``figures_dir``.
CLAIMS_PNG, CURVES_PNG, QUALITATIVE_PNG = (
    "claims.png",
    "curve-differences.png",
    "qualitative-measured.png",
)
#: The PNG text key under which a drawn qualitative figure keeps its caption (its measured
#: numbers), so that a report written without redrawing can still give it.
CAPTION_KEY = "Description"


def figure_section(
    res: Results,
    fig_dir: str | Path,
    report_path: str | Path,
    paper_diffs: Sequence[float | None] | None = None,
    *,
    qualitative: bool = True,
    pair: tuple[str, str] | None = None,
    sets: Sequence[str] | None = None,
    device: str = "cpu",
    draw: bool = True,
) -> list[str]:
    """The report's "Figures" section as markdown lines (empty when there is no figure).

    Writes ``claims.png``, ``curve-differences.png`` and (with ``qualitative``)
    ``qualitative-measured.png`` into ``fig_dir``, linked relative to ``report_path``.
    ``paper_diffs[i]`` is the paper's difference for ``res.proto.report.claims[i]`` (dB, or
    None). The crops compare ``pair`` (default: the first Y-PSNR claim with results on both
    rows) at their first common seed, searched in ``sets`` (default: Set5 and Set14 where the
    protocol evaluates them, else its first set).

    With ``draw=False`` nothing is drawn: the figures already in ``fig_dir`` (from an earlier
    report) are linked with their captions, so that a report written without redrawing keeps
    them. The qualitative figure's caption holds measured numbers: it is read from the PNG
    (:data:`CAPTION_KEY`), else from the report at ``report_path`` that linked it, else a
    caption without the numbers is given.
    """
    fig_dir, report_path = Path(fig_dir), Path(report_path)
    body: list[str] = []
    ref = res.proto.reference
    if draw:
        claims = draw_claim_panels(res, res.proto.report.claims, paper_diffs, fig_dir / CLAIMS_PNG)
        curves = draw_curve_differences(res, ref, fig_dir / CURVES_PNG)
    else:
        claims, curves = existing_file(fig_dir / CLAIMS_PNG), existing_file(fig_dir / CURVES_PNG)
    if claims is not None:
        body += _claims_lines(claims, report_path, ", ".join(res.sets))
    if curves is not None:
        body += _curves_lines(curves, report_path, res.proto.label(ref))
    if qualitative and draw:
        body += _qualitative_lines(res, fig_dir, report_path, pair, sets, device)
    elif qualitative:
        body += _existing_qualitative_lines(fig_dir / QUALITATIVE_PNG, report_path)
    return ["## Figures", "", *body] if body else []


def existing_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def _claims_lines(fig: Path, report_path: Path, sets_text: str) -> list[str]:
    return [
        f"![{CLAIMS_ALT}]({relative_link(fig, report_path)})",
        "",
        f"Each panel is one claim a − b of the reading, on the mean Y-PSNR over {sets_text} "
        "(claims on PSNR against the teacher's output have their own axis): dots are the "
        "differences of single seeds, paired by seed; the dark bar is their mean with its "
        "95 % Student-t interval (two or more seeds; an arrow marks an interval that runs "
        "off the axis); the orange diamond is the paper's difference; the black line is zero. "
        "Claims whose rows have no results are left out.",
        "",
    ]


def _curves_lines(fig: Path, report_path: Path, ref_label: str) -> list[str]:
    return [
        f"![{CURVES_ALT}]({relative_link(fig, report_path)})",
        "",
        f"Validation Y-PSNR of each row minus that of {ref_label} at the same "
        "iteration, paired by seed: the line is the mean over seeds, the band spans the "
        "lowest to the highest seed (no band with one seed); the y axis is shared and fitted "
        "to the second half of training, so earlier points may sit on its edge.",
        "",
    ]


#: The figures' alt text in the report: what each shows, for a reader who cannot see it.
CLAIMS_ALT = (
    "Paired difference of each claim: one panel per claim a − b, with the seeds' differences "
    "as dots, their mean with its 95 % t-interval, the paper's difference as a diamond, and zero"
)
CURVES_ALT = (
    "Validation curves minus the reference: one panel per row, the mean difference over seeds "
    "against the iteration, with a band from the lowest to the highest seed, and zero"
)
QUALITATIVE_ALT = (
    "Crops where the two models differ most: per row, the whole image with the crop marked, "
    "then the crop of HR, bicubic and each model, with its Y-PSNR on the crop"
)


def _qualitative_figure_lines(fig: Path, report_path: Path, caption: str) -> list[str]:
    return [f"![{QUALITATIVE_ALT}]({relative_link(fig, report_path)})", "", caption, ""]


def _existing_qualitative_lines(fig: Path, report_path: Path) -> list[str]:
    """The qualitative figure already on disk, with its caption (see :func:`figure_section`)."""
    if not fig.is_file():
        return []
    caption = (
        _png_caption(fig)
        or _previous_caption(report_path, relative_link(fig, report_path))
        or (
            "Crops chosen by measurement, not by hand, where the two compared models' outputs "
            "differ most (drawn by an earlier report, whose caption with the measured "
            "differences was not kept; redraw the figures to have it)."
        )
    )
    return _qualitative_figure_lines(fig, report_path, caption)


def _png_caption(path: Path) -> str:
    """The caption kept in a PNG's text chunks ('' when there is none or it cannot be read)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            text = getattr(img, "text", {}) or {}
    except (OSError, ValueError):
        return ""
    return str(text.get(CAPTION_KEY, ""))


def _previous_caption(report_path: Path, link: str) -> str:
    """The paragraph right after the line that linked ``link`` in the report at
    ``report_path`` ('' when the report or the link is not there)."""
    try:
        lines = report_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    for i, line in enumerate(lines):
        if line.startswith("![") and line.endswith(f"]({link})"):
            after = [x for x in lines[i + 1 :] if x.strip()][:1]
            if after and not after[0].startswith(("![", "#")):
                return after[0]
            return ""
    return ""


def _qualitative_lines(
    res: Results,
    fig_dir: Path,
    report_path: Path,
    pair: tuple[str, str] | None,
    sets: Sequence[str] | None,
    device: str,
) -> list[str]:
    pair = pair or _qualitative_pair(res)
    if pair is None:
        return []
    if sets is None:
        sets = [s for s in ("Set5", "Set14") if s in res.sets] or res.sets[:1]
    models, about = _pair_models(res, pair)
    try:
        fig, caption = draw_qualitative_measured(
            models,
            res.proto.eval.data_root,
            res.proto.scale,
            fig_dir / QUALITATIVE_PNG,
            sets=sets,
            device=device,
            about=about,
        )
    except Exception as exc:  # noqa: BLE001 - the report must still be written
        return [f"The qualitative figure was not made: {type(exc).__name__}: {exc}", ""]
    if fig is None:
        return [f"The qualitative figure was not made: {caption}.", ""]
    return _qualitative_figure_lines(fig, report_path, caption)
