"""Find training images that are near-duplicates of benchmark images.

Each image is reduced to a grey thumbnail of ``SIDE x SIDE`` pixels (box-filtered with Pillow,
aspect ratio ignored); the mean of each of its 8 x 8 blocks is subtracted (a high-pass: a plain
thumbnail correlates at 0.93 between a hazy mountain range and a glass pyramid under clouds,
because both go from bright to dark), and the result is scaled to unit norm, so that the dot
product of two thumbnails is their correlation r. A training image and a benchmark image are
flagged when, for one of the four orientations of the training thumbnail (as is, mirrored,
flipped, transposed):

    r >= THRESHOLD   and   |log(aspect_train / aspect_bench)| <= log(1 + ASPECT_TOL)

where aspect is width / height (height / width for the transposed orientation). Rescaling keeps r
high (BSD200/HR/302003.png against Set5's woman.png: r = 0.91); between the 291 training images
and the four benchmark sets, the closest other pair has r = 0.40 (printed by the tool).

    python tools/near_duplicates.py ../shared/data --train T91/HR BSD200/HR \\
        --bench Set5/HR Set14/HR B100/HR Urban100/HR

prints one line per flagged pair and, with ``--write LIST``, writes the training images found
in the format of ``data.exclude`` (a path relative to the data folder per line). The exit code
is 0 whether or not pairs are found; 2 on bad input.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 64
THRESHOLD = 0.7
ASPECT_TOL = 0.05
EXTENSIONS = {".png", ".bmp", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Pair:
    train: str  # path relative to the data root
    bench: str
    r: float  # the best Pearson correlation over the orientations


def thumbnail(path: Path, side: int = SIDE) -> tuple[np.ndarray, float]:
    """The unit-norm, zero-mean grey thumbnail of ``path`` and its aspect ratio (w / h)."""
    with Image.open(path) as im:
        grey = im.convert("L")
        aspect = grey.width / grey.height
        small = grey.resize((side, side), Image.Resampling.BOX)
    x = np.asarray(small, dtype=np.float64)
    k = side // 8  # remove the 8x8 block means: smooth sky-to-ground gradients correlate anyway
    x = x - np.kron(x.reshape(8, k, 8, k).mean(axis=(1, 3)), np.ones((k, k)))
    norm = np.linalg.norm(x)
    return (x / norm if norm > 0 else x), aspect


def images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"near_duplicates: image folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)


def _orientations(t: np.ndarray, aspect: float) -> list[tuple[np.ndarray, float]]:
    return [(t, aspect), (t[:, ::-1], aspect), (t[::-1, :], aspect), (t.T, 1.0 / aspect)]


def find_pairs(
    root: Path,
    train: list[str],
    bench: list[str],
    threshold: float = THRESHOLD,
    aspect_tol: float = ASPECT_TOL,
) -> tuple[list[Pair], Pair | None]:
    """Flagged pairs, best first, and the closest pair that was not flagged (or None)."""

    def load(dirs: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        names, thumbs, aspects = [], [], []
        for d in dirs:
            for p in images(root / d):
                t, a = thumbnail(p)
                names.append(p.relative_to(root).as_posix())
                thumbs.append(t.ravel())
                aspects.append(a)
        return names, np.array(thumbs).reshape(len(names), -1), np.array(aspects)

    tn, tt, ta = load(train)
    bn, bt, ba = load(bench)
    best_r = np.full((len(tn), len(bn)), -np.inf)
    aspect_ok = np.zeros_like(best_r, dtype=bool)
    limit = math.log1p(aspect_tol)
    for k in range(4):
        oriented = np.array(
            [
                _orientations(t.reshape(SIDE, SIDE), a)[k][0].ravel()
                for t, a in zip(tt, ta, strict=True)
            ]
        )
        o_aspect = ta if k < 3 else 1.0 / ta
        r = oriented @ bt.T
        ok = np.abs(np.log(o_aspect[:, None] / ba[None, :])) <= limit
        better = r > best_r
        best_r = np.where(better, r, best_r)
        aspect_ok = np.where(better, ok, aspect_ok)
    flagged = (best_r >= threshold) & aspect_ok
    pairs = [
        Pair(tn[i], bn[j], float(best_r[i, j])) for i, j in zip(*np.nonzero(flagged), strict=True)
    ]
    pairs.sort(key=lambda p: -p.r)
    rest = np.where(flagged, -np.inf, best_r)
    i, j = np.unravel_index(int(np.argmax(rest)), rest.shape) if rest.size else (0, 0)
    closest = Pair(tn[i], bn[j], float(rest[i, j])) if rest.size else None
    return pairs, closest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the data folder")
    ap.add_argument("--train", nargs="+", default=["T91/HR", "BSD200/HR"])
    ap.add_argument("--bench", nargs="+", default=["Set5/HR", "Set14/HR", "B100/HR", "Urban100/HR"])
    ap.add_argument("--threshold", type=float, default=THRESHOLD)
    ap.add_argument("--write", type=Path, help="write the flagged training images to this list")
    args = ap.parse_args(argv)
    if not 0 < args.threshold <= 1:
        print(
            f"near_duplicates: --threshold must be in (0, 1], got {args.threshold}", file=sys.stderr
        )
        return 2
    try:
        pairs, closest = find_pairs(args.root, args.train, args.bench, args.threshold)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    for p in pairs:
        print(f"{p.train}  ~  {p.bench}   r = {p.r:.4f}")
    print(f"{len(pairs)} near-duplicate pair(s) at r >= {args.threshold}")
    if closest is not None:
        print(f"closest pair not flagged: {closest.train} ~ {closest.bench}, r = {closest.r:.4f}")
    if args.write:
        names = sorted({p.train for p in pairs})
        args.write.write_text("".join(f"{n}\n" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
