"""facd.load(...) refuses float pixels on the 0..255 scale instead of clipping them to white."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import facd
from facd.errors import DataError

TEACHER = "facd-asset:teacher-edsr-tiny-t-x4.safetensors"


def test_float_input_on_the_0_255_scale_is_refused_in_one_line() -> None:
    up = facd.load(TEACHER)
    img = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    assert up(img).shape == (32, 32, 3)  # [0, 1]: fine
    with pytest.raises(DataError, match=r"values go up to 2\d\d.*divide it by 255") as err:
        up(img * 255)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="float tensor"):
        up(torch.from_numpy(img * 255).permute(2, 0, 1))
    assert up((img * 255).astype(np.uint8)).dtype == np.uint8  # uint8 0..255: fine
