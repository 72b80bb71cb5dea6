"""Shared test utilities: synthetic images and tiny checkpoints (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facd.archs import build_model, preset_spec
from facd.archs.io import save_model


def load_tool(name: str):
    """The module of ``tools/<name>.py`` (the tools are scripts, not a package)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def make_image_folder(
    folder: Path, count: int = 4, size: tuple[int, int] = (72, 64), seed: int = 0
) -> Path:
    """Smooth random RGB images (low-frequency noise plus edges), so SR has something to learn."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        coarse = rng.random((h // 8 + 2, w // 8 + 2, 3))
        img = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
        img[:, w // 2 :] *= 0.5
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def make_checkpoint(path: Path, preset: str = "edsr-tiny-t", scale: int = 4, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    spec = preset_spec(preset, scale)
    save_model(path, build_model(spec), spec)
    return path


def make_finished_run(root: Path, config: str, bench: bool = False) -> Path:
    """``cfg.yaml`` (``config``), three training images in ``data/`` (and, with ``bench``, a
    one-image benchmark set ``bench/Tiny``), and ``run/``: the config trained by the CLI,
    with ``root`` as the working folder. Returns ``root``."""
    import os

    from facd.cli import main

    make_image_folder(root / "data", count=3, size=(40, 48))
    if bench:
        make_image_folder(root / "bench/Tiny/HR", count=1, size=(24, 24), seed=5)
    (root / "cfg.yaml").write_text(config)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["train", "cfg.yaml", "--out", "run", "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    return root


def split_protocol(
    tmp: Path,
    name: str,
    rows: list[dict],
    *,
    val_every: int,
    split: bool = True,
    teacher_schedule: bool = False,
) -> dict:
    """A CI-sized protocol document whose training data holds out a validation split.

    Five synthetic images in ``tmp/data/A/HR`` (the last two listed in ``tmp/split.txt``, left
    out of training; with ``split`` the runs validate on them every ``val_every`` steps, else
    not at all), a two-image benchmark set ``Tiny`` for the final evaluation, a random tiny EDSR
    teacher with its config (``teacher_schedule``: the config also carries the validation and a
    two-step schedule), a 1-block EDSR student, 3 steps. The caller extends the document and
    writes it with :func:`write_protocol`.
    """
    import yaml

    train = make_image_folder(tmp / "data" / "A" / "HR", count=5, size=(72, 64))
    split_file = tmp / "split.txt"
    split_file.write_text("A/HR/img03.png\nA/HR/img04.png\n")
    make_image_folder(tmp / "bench" / "Tiny" / "HR", count=2, size=(48, 40), seed=1)
    teacher = make_checkpoint(tmp / "teacher.safetensors", "edsr-tiny-t", 4)
    shared_train = {
        "iterations": 3,
        "batch_size": 2,
        "lr": 1e-3,
        "iters_per_epoch": 1,
        "lr_milestones": [2],
        "log_every": 1,
        "save_every": 1,
    }
    data = {"train_dirs": [str(train)], "patch_size": 8, "exclude": str(split_file)}
    val = {"split": str(split_file), "every": val_every} if split else {"sets": [], "every": 0}
    teacher_doc: dict = {"method": "scratch", "student": {"preset": "edsr-tiny-t"}, "data": data}
    if teacher_schedule:
        teacher_doc.update(val=val, train={**shared_train, "iterations": 2})
    teacher_cfg = tmp / "teacher.yaml"
    teacher_cfg.write_text(yaml.safe_dump(teacher_doc))
    return {
        "name": name,
        "scale": 4,
        "teacher": {"config": str(teacher_cfg), "weights": str(teacher)},
        "student": {"arch": "edsr", "n_blocks": 1, "n_feats": 8},
        "shared": {"data": data, "val": val, "train": shared_train},
        "eval": {"sets": ["Tiny"], "data_root": str(tmp / "bench")},
        "rows": rows,
        "results_dir": str(tmp / "results"),
        "report": str(tmp / "docs" / "results.md"),
        "figures_dir": str(tmp / "docs" / "img"),
    }


def write_protocol(tmp: Path, doc: dict) -> Path:
    """``doc`` as ``tmp/proto.yaml``."""
    import yaml

    path = tmp / "proto.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def write_student_runs(
    results: Path, psnr: dict[str, list[float]], alpha0: dict[str, dict] | None = None
) -> None:
    """Published run documents (``results/<row>-s<seed>.json``) of a one-set (``Tiny``)
    protocol, without training: seed ``i`` of row ``r`` has Y-PSNR ``psnr[r][i]`` and a PSNR
    against the teacher 10 dB higher; ``alpha0[r]`` is row ``r``'s logged alpha = 0 summary."""
    import json

    results.mkdir(parents=True, exist_ok=True)
    for name, values in psnr.items():
        for seed, v in enumerate(values):
            doc = {
                "kind": "student",
                "row": name,
                "seed": seed,
                "weights": str(results / f"{name}-s{seed}.safetensors"),
                "sets": {"Tiny": {"psnr_y": v, "ssim_y": 0.5}},
                "teacher_psnr": {"Tiny": {"psnr_y": v + 10}},
                "alpha0": (alpha0 or {}).get(name),
                "timing": {"train_s": 1.0, "eval_s": 1.0, "median_it_per_s": 10.0},
                "config": {"loss": {"pixel": {"gt_weight": 1.0}}},
                "final_terms": {"l1_gt": 0.1},
            }
            (results / f"{name}-s{seed}.json").write_text(json.dumps(doc))


def isolate_registries(monkeypatch) -> None:
    """Declarations registered during a test (archs, terms, methods) are undone afterwards."""
    from facd.archs.registry import ARCHS
    from facd.distill.methods import METHODS
    from facd.distill.terms import TERMS

    for registry in (ARCHS, TERMS, METHODS):
        list(registry)  # its built-in modules are imported first
        monkeypatch.setattr(registry, "_items", dict(registry._items))
