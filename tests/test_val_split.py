"""Validation on a held-out split of the training images (``val.split``) instead of the
benchmark sets: what is read, that the benchmark sets stay untouched, and that the numbers are
those of the evaluation functions on the same images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from facd.archs.io import load_model
from facd.data.benchmark import SplitSet
from facd.data.imresize import bicubic_downsample, modcrop
from facd.errors import ConfigError, DataError
from facd.evaluate import evaluate
from facd.train.config import load_config
from facd.train.loop import run_training

REPO = Path(__file__).resolve().parents[1]


def _images(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> Path:
    """Smooth random RGB images of the given (h, w) sizes, named img00.png, img01.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        coarse = rng.random((h // 8 + 2, w // 8 + 2, 3))
        img = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture()
def split_data(tmp_path: Path) -> dict[str, Path]:
    # distinct sizes: validation runs each image as its own batch, so its numbers are exactly
    # those of the per-image evaluation
    train = _images(tmp_path / "A" / "HR", [(72, 64), (80, 68), (76, 60), (84, 72), (70, 66)])
    split = tmp_path / "split.txt"
    split.write_text("# held out\nA/HR/img03.png\nA/HR/img01.png  # comment\n")
    return {"train": train, "split": split, "root": tmp_path}


def test_split_set_reads_listed_training_images_in_list_order(split_data) -> None:
    s = SplitSet(split_data["split"], [split_data["train"]], 4)
    assert s.name == "split" and s.names == ["img03", "img01"] and len(s) == 2
    item = s[0]
    hr = np.asarray(Image.open(split_data["train"] / "img03.png"))
    assert np.array_equal(item.hr, modcrop(hr, 4))
    assert np.array_equal(item.lr, bicubic_downsample(hr, 4))


def test_split_entry_missing_from_the_training_folders(split_data, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("A/HR/img09.png\n")
    with pytest.raises(DataError, match="'A/HR/img09.png'.*matches no image"):
        SplitSet(bad, [split_data["train"]], 4)
    with pytest.raises(DataError, match="val.split: cannot read the list file"):
        SplitSet(tmp_path / "absent.txt", [split_data["train"]], 4)


def _config(split_data: dict[str, Path], run_root: Path) -> Path:
    cfg = {
        "method": "scratch",
        "scale": 4,
        "student": {"arch": "edsr", "n_blocks": 1, "n_feats": 8},
        "data": {
            "train_dirs": [str(split_data["train"])],
            "patch_size": 8,
            "exclude": str(split_data["split"]),
        },
        # the benchmark root does not exist and the set name is bogus: a run that touched
        # them would fail
        "val": {
            "split": str(split_data["split"]),
            "data_root": str(run_root / "no-benchmarks-here"),
            "sets": ["NoSuchSet"],
            "every": 2,
        },
        "train": {"iterations": 4, "batch_size": 2, "log_every": 1, "save_every": 2},
    }
    path = run_root / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_validates_on_the_split_only(split_data, tmp_path: Path, monkeypatch) -> None:
    import facd.data.benchmark as benchmark

    opened: list[str] = []
    real_init = benchmark.BenchmarkSet.__init__

    def spy(self, root, name, scale):  # a benchmark set opened during training
        opened.append(name)
        real_init(self, root, name, scale)

    monkeypatch.setattr(benchmark.BenchmarkSet, "__init__", spy)
    rcfg = load_config(_config(split_data, tmp_path))
    run = tmp_path / "run"
    summary = run_training(rcfg, run, progress=False)
    assert opened == []
    assert set(summary["val"]) == {"split"}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in lines if "val" in r]
    assert [r["iteration"] for r in vals] == [2, 4]
    assert all(set(r["val"]) == {"split"} for r in vals)

    # The last validation is the evaluation of last.safetensors on the same images.
    model, _ = load_model(run / "last.safetensors", 4)
    split = SplitSet(split_data["split"], [split_data["train"]], 4)
    ev = evaluate(model, [split], 4, tmp_path / "unused", device="cpu", progress=False)
    got = ev["sets"]["split"]
    assert got["images"] == 2
    assert abs(got["psnr_y"] - vals[-1]["val"]["split"]["psnr_y"]) < 1e-9
    assert abs(got["ssim_y"] - vals[-1]["val"]["split"]["ssim_y"]) < 1e-9
    # best.safetensors is chosen on the split
    from facd.archs.io import read_shapes

    _shapes, meta = read_shapes(run / "best.safetensors")
    best = max(r["val"]["split"]["psnr_y"] for r in vals)
    assert abs(float(meta["val_psnr_y"]) - best) < 1e-9


def test_a_wrong_split_fails_before_training(split_data, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("A/HR/nope.png\n")
    rcfg = load_config(_config(split_data, tmp_path), [f"val.split={bad}", f"data.exclude={bad}"])
    with pytest.raises(DataError, match="nope.png"):
        run_training(rcfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_split_that_training_can_see_is_refused_at_load(split_data, tmp_path: Path) -> None:
    """val.split must lie inside data.exclude: each split entry ends with an excluded entry."""
    cfg = _config(split_data, tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, ["data.exclude=null"])
    message = str(err.value)
    assert "\n" not in message and "training would see 2 of its 2 images" in message
    assert "(e.g. A/HR/img03.png)" in message and "set data.exclude to" in message
    one = tmp_path / "one.txt"
    one.write_text("A/HR/img01.png\n")  # img03 of the split is still trained on
    with pytest.raises(ConfigError, match="training would see 1 of its 2 images"):
        load_config(cfg, [f"data.exclude={one}"])
    more = tmp_path / "more.txt"  # the split's entries (one as a shorter suffix) and another
    more.write_text("img03.png\nA/HR/img01.png\nA/HR/img00.png\n")
    assert load_config(cfg, [f"data.exclude={more}"]).config.data.exclude == str(more)
    assert load_config(cfg, ["val.split=null", "data.exclude=null"]).config.val.split is None
    with pytest.raises(DataError, match="val.split: cannot read the list file"):
        load_config(cfg, [f"val.split={tmp_path / 'absent.txt'}"])


@pytest.mark.data
def test_committed_split_opens_from_the_training_folders(data_root: Path) -> None:
    dirs = [data_root / "T91" / "HR", data_root / "BSD200" / "HR"]
    s = SplitSet(REPO / "configs" / "splits" / "val291.txt", dirs, 4)
    assert s.name == "val291" and len(s) == 20
    assert s[0].lr.shape[2] == 3
