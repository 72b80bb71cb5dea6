"""tools/near_duplicates.py: training images that are benchmark images in disguise, and the
training exclusion list that leaves them out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .conftest import REPO
from .helpers import load_tool

EXCLUDE = REPO / "configs" / "splits" / "train-exclude-291.txt"
SPLIT = REPO / "configs" / "splits" / "val291.txt"


def _entries(path: Path) -> list[str]:
    lines = (x.split("#")[0].strip() for x in path.read_text().splitlines())
    return [x for x in lines if x]


def test_rescaled_and_transposed_copies_are_found_and_others_are_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # smooth random textures: what a thumbnail of a photo looks like
    base = np.kron(rng.integers(0, 256, (24, 36, 3)), np.ones((10, 10, 1))).astype(np.uint8)
    other = np.kron(rng.integers(0, 256, (24, 36, 3)), np.ones((10, 10, 1))).astype(np.uint8)
    for d in ("train", "bench"):
        (tmp_path / d).mkdir()
    Image.fromarray(base).save(tmp_path / "bench" / "b.png")
    Image.fromarray(base).resize((270, 180), Image.Resampling.BICUBIC).save(
        tmp_path / "train" / "small.png"
    )
    Image.fromarray(base.transpose(1, 0, 2)).save(tmp_path / "train" / "turned.png")
    Image.fromarray(other).save(tmp_path / "train" / "other.png")
    # same content, wrong aspect ratio: not a rescaled copy
    Image.fromarray(base).resize((360, 120)).save(tmp_path / "train" / "squashed.png")
    pairs, closest = load_tool("near_duplicates").find_pairs(tmp_path, ["train"], ["bench"])
    assert sorted(p.train for p in pairs) == ["train/small.png", "train/turned.png"]
    assert all(p.r > 0.9 for p in pairs)
    # the squashed copy correlates but is refused on its aspect ratio
    assert closest is not None and closest.train == "train/squashed.png"


def test_shared_data_has_exactly_the_known_contamination(data_root: Path) -> None:
    """BSD200/HR/302003.png is Set5's woman.png, rescaled; nothing else is that close."""
    pairs, closest = load_tool("near_duplicates").find_pairs(
        data_root, ["T91/HR", "BSD200/HR"], ["Set5/HR", "Set14/HR", "B100/HR", "Urban100/HR"]
    )
    assert [(p.train, p.bench) for p in pairs] == [("BSD200/HR/302003.png", "Set5/HR/woman.png")]
    assert closest is not None and closest.r < 0.6  # a wide margin below the 0.7 threshold
    # the training exclusion list leaves it out
    assert "BSD200/HR/302003.png" in _entries(EXCLUDE)


def test_training_exclusion_list_contains_the_whole_validation_split() -> None:
    excluded = set(_entries(EXCLUDE))
    assert set(_entries(SPLIT)) <= excluded
    assert excluded - set(_entries(SPLIT)) == {"BSD200/HR/302003.png"}


def test_tool_writes_the_list_in_data_exclude_format(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "found.txt"
    assert (
        load_tool("near_duplicates").main(
            [str(data_root), "--bench", "Set5/HR", "--write", str(out)]
        )
        == 0
    )
    assert out.read_text() == "BSD200/HR/302003.png\n"
    assert load_tool("near_duplicates").main([str(data_root), "--threshold", "2"]) == 2
