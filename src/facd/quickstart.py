"""The offline quickstart: distil a small student with FACD from the teacher shipped in the wheel.

1. Training images: a folder given by the user, or the natural photographs that scikit-image
   ships inside its wheel (no download). Two images are held out for evaluation.
2. The student (``edsr-tiny-s``) is distilled with FACD from ``assets/teacher-edsr-tiny-t-x4``,
   which ``facd train configs/teachers/quickstart-teacher-x4.yaml`` trained on T91 + BSD200;
   its config is ``assets/quickstart-student-x4.json``.
3. Bicubic, the teacher and the student are evaluated on the held-out images (Y-PSNR/SSIM,
   the benchmark protocol of ``facd eval``), and a side-by-side comparison image is written.

The same steps with a paper preset and a DIV2K folder are the real job (see the README).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from facd.data.image_io import list_images, read_image, write_image
from facd.errors import DataError, FacdError
from facd.fileio import atomic_write_text, remove_tree

SCALE = 4
TEACHER_ASSET = Path(__file__).parent / "assets" / "teacher-edsr-tiny-t-x4.safetensors"
#: The student's config (its method and networks): data, so that no method is named in code.
STUDENT_CONFIG = Path(__file__).parent / "assets" / "quickstart-student-x4.json"
# scikit-image's bundled colour photographs (all inside its wheel).
SKIMAGE_TRAIN = [
    "astronaut",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "ihc",
    "retina",
    "grass",
    "gravel",
    "brick",
    "logo",
    "color",
]
SKIMAGE_TEST = ["coffee", "chelsea"]
BENCH_NAME = "Holdout"


def _skimage_files(names: list[str]) -> list[Path]:
    try:
        import skimage
    except ImportError:
        raise FacdError(
            "scikit-image is not installed: pip install 'facd[quickstart]', "
            "or pass --data DIR with your own HR images"
        ) from None
    root = Path(skimage.__file__).parent / "data"
    found = []
    for name in names:
        hits = sorted(root.glob(f"{name}.*"))
        if hits:
            found.append(hits[0])
    return found


def prepare_images(out: Path, data: Path | None) -> tuple[Path, Path]:
    """Copy the training and held-out images as PNG; returns (train folder, benchmark root)."""
    train_dir, bench_root = out / "data" / "train", out / "data" / "bench"
    test_dir = bench_root / BENCH_NAME / "HR"
    if data is not None:
        files = list_images(data)
        if len(files) < 3:
            raise DataError(f"{data}: the quickstart needs at least 3 images (2 are held out)")
        train, test = files[:-2], files[-2:]
    else:
        train, test = _skimage_files(SKIMAGE_TRAIN), _skimage_files(SKIMAGE_TEST)
    for folder in (train_dir, test_dir):
        remove_tree(folder)
        folder.mkdir(parents=True)
    for src in train:
        write_image(train_dir / f"{src.stem}.png", read_image(src))
    for src in test:
        write_image(test_dir / f"{src.stem}.png", read_image(src))
    return train_dir, bench_root


def student_config(train_dir: Path, iterations: int, teacher: Path) -> dict:
    """The student's ``facd train`` config: the shipped :data:`STUDENT_CONFIG` (method, networks,
    batch and learning rate) with the training folder, the teacher's weights, the iterations
    and a learning-rate step at 70 % of them."""
    cfg = json.loads(STUDENT_CONFIG.read_text(encoding="utf-8"))
    cfg["data"]["train_dirs"] = [str(train_dir)]
    cfg["teacher"]["weights"] = str(teacher)
    train = cfg["train"]
    train["iterations"] = iterations
    train["lr_milestones"] = [max(1, int(0.7 * iterations / train["iters_per_epoch"]))]
    return cfg


def run_quickstart(out: Path, data: Path | None, iterations: int, progress: bool = True) -> dict:
    """The four steps of the module docstring, through library calls. The student's run folder
    is locked while it trains and a second call continues it (as ``facd train --resume``)."""
    from facd.archs.io import load_model
    from facd.evaluate import evaluate
    from facd.train import run as train

    if not TEACHER_ASSET.is_file():
        raise FacdError(f"the shipped teacher is missing: {TEACHER_ASSET}")
    out.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    log(f"[1/4] images -> {out / 'data'}")
    train_dir, bench_root = prepare_images(out, data)
    log(
        f"[2/4] distilling edsr-tiny-s from the shipped teacher with FACD ({iterations} iterations)"
    )
    run_dir = out / "student"
    train(
        student_config(train_dir, iterations, TEACHER_ASSET),
        run_dir,
        resume=True,
        progress=progress,
    )
    log("[3/4] evaluating bicubic, teacher and student on the held-out images")
    teacher, _ = load_model(TEACHER_ASSET)
    student, _ = load_model(run_dir / "last.safetensors")
    results = {}
    for name, model in (("bicubic", "bicubic"), ("teacher", teacher), ("student (FACD)", student)):
        res = evaluate(model, [BENCH_NAME], SCALE, bench_root, device="cpu", progress=False)
        results[name] = res["sets"][BENCH_NAME]
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    log("[4/4] comparison image")
    figure = out / "comparison.png"
    _comparison(bench_root / BENCH_NAME / "HR", run_dir / "last.safetensors", figure)
    return {"results": results, "figure": figure, "student": run_dir / "last.safetensors"}


def _comparison(hr_dir: Path, student: Path, figure: Path) -> None:
    """Centre crops (a third of the shorter side) of the teacher and the student."""
    from facd.compare import write_comparison

    images = list_images(hr_dir)
    crops = []
    for path in images:
        h, w = read_image(path).shape[:2]
        size = min(h, w) // 3
        crops.append((w // 2 - size // 2, h // 2 - size // 2, size, size))
    models = [("teacher", TEACHER_ASSET), ("student", student)]
    write_comparison(images, crops, models, SCALE, figure)


def format_table(results: dict) -> str:
    lines = [f"{'model':<16} {'Y-PSNR (dB)':>12} {'SSIM':>8}", "-" * 38]
    for name, r in results.items():
        lines.append(f"{name:<16} {r['psnr_y']:>12.3f} {r['ssim_y']:>8.4f}")
    return "\n".join(lines)
