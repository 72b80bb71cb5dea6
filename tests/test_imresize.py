"""Tests of the MATLAB-exact bicubic resize.

Expected values come from the MATLAB-made reference LR files in ../shared/data and from Keys
kernel weights worked out by hand (a = -0.5), never from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facd.cli import main
from facd.data.image_io import read_image_raw
from facd.data.imresize import (
    bicubic_downsample,
    bicubic_upsample,
    contributions,
    imresize,
    modcrop,
)
from facd.errors import DataError

# Keys cubic (a = -0.5) at |d| = 0.25, 0.75, 1.25, 1.75, worked out by hand from
# 1.5|d|^3 - 2.5|d|^2 + 1 (|d| <= 1) and -0.5|d|^3 + 2.5|d|^2 - 4|d| + 2 (1 < |d| <= 2).
C025, C075, C125, C175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375
# Weights of f(j-1), f(j), f(j+1), f(j+2) at fractional offset t from f(j).
KEYS_T025 = np.array([C125, C025, C075, C175])
KEYS_T075 = np.array([C175, C075, C025, C125])
# Antialiased x1/2 kernel 0.5 * cubic(0.5 * d) at d = 3.5, 2.5, ..., -3.5 (8 taps).
HALF_TAPS = 0.5 * np.array([C175, C125, C075, C025, C025, C075, C125, C175])


# --------------------------------------------------------------------- reference LR files


def _cases(data_root: Path, set_name: str, scale: int) -> list[tuple[Path, Path]]:
    hr_dir = data_root / set_name / "HR"
    lr_dir = data_root / set_name / "LR_bicubic" / f"X{scale}"
    return [(p, lr_dir / f"{p.stem}x{scale}.png") for p in sorted(hr_dir.glob("*.png"))]


@pytest.mark.data
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("set_name, count", [("Set5", 5), ("Set14", 14)])
def test_matches_matlab_reference_files(data_root: Path, set_name: str, count: int, scale: int):
    cases = _cases(data_root, set_name, scale)
    assert len(cases) == count
    for hr_path, lr_path in cases:
        hr = read_image_raw(hr_path)
        ref = read_image_raw(lr_path)  # Set14 bridge: single-channel, compared as stored
        lr = bicubic_downsample(hr, scale)
        assert lr.dtype == np.uint8
        assert lr.shape == ref.shape, lr_path.name
        differing = int(np.count_nonzero(lr != ref))
        assert differing == 0, f"{lr_path.name}: {differing} values differ"


@pytest.mark.data
def test_without_intermediate_rounding_does_not_match(data_root: Path):
    # Guards the reference test: float (unrounded) passes are measurably different.
    hr_path, lr_path = _cases(data_root, "Set5", 3)[0]
    hr = read_image_raw(hr_path)
    cropped = modcrop(hr, 3).astype(np.float64)
    lr_float = imresize(cropped, 1 / 3)
    rounded_once = np.clip(np.floor(lr_float + 0.5), 0, 255).astype(np.uint8)
    assert np.count_nonzero(rounded_once != read_image_raw(lr_path)) > 0


@pytest.mark.data
def test_degrade_command_writes_reference_files(data_root: Path, tmp_path: Path, capsys):
    out = tmp_path / "LR_bicubic"
    rc = main(["degrade", str(data_root / "Set5" / "HR"), str(out), "--scale", "2", "3", "4"])
    assert rc == 0
    for scale in (2, 3, 4):
        ref_dir = data_root / "Set5" / "LR_bicubic" / f"X{scale}"
        written = sorted(p.name for p in (out / f"X{scale}").iterdir())
        assert written == sorted(p.name for p in ref_dir.glob("*.png"))
        for name in written:
            got, ref = read_image_raw(out / f"X{scale}" / name), read_image_raw(ref_dir / name)
            assert got.shape == ref.shape and np.array_equal(got, ref), name
    assert "wrote 15 images" in capsys.readouterr().err


def test_degrade_command_reports_missing_folder(tmp_path: Path, capsys):
    missing = tmp_path / "nope"
    assert main(["degrade", str(missing), str(tmp_path / "out"), "--scale", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "\n" not in err


# --------------------------------------------------------------------- hand-checkable cases


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2.0, 3.0])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_constant_image_stays_constant(scale: float, dtype):
    img = np.full((24, 18, 3), 173, dtype=dtype)
    out = imresize(img, scale)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, 173, atol=1e-9)


@pytest.mark.parametrize(
    "in_len, out_len, scale",
    [(10, 20, 2.0), (12, 4, 1 / 3), (9, 3, 1 / 3), (7, 29, 29 / 7), (5, 5, 1.0)],
)
def test_weights_sum_to_one_and_indices_in_range(in_len: int, out_len: int, scale: float):
    weights, indices = contributions(in_len, out_len, scale)
    assert weights.shape == indices.shape and weights.shape[0] == out_len
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    assert indices.min() >= 0 and indices.max() < in_len
    assert np.any(weights != 0, axis=0).all()  # all-zero columns dropped


def test_scale_one_is_identity():
    img = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    assert np.array_equal(imresize(img, 1.0), img)


def _keys_upsample_x2(f: np.ndarray) -> np.ndarray:
    """x2 upsampling of a 1-D signal by the hand-derived Keys weights with mirror padding.

    Output pixel x (1-based) samples u = x / 2 + 0.25, so t alternates 0.75 (odd x) and 0.25.
    """
    padded = np.pad(f, 3, mode="symmetric")  # padded[i + 3] = f[i]
    out = np.empty(2 * len(f))
    for x in range(1, 2 * len(f) + 1):
        u = x / 2 + 0.25
        j = int(np.floor(u)) - 1  # 0-based index of the sample left of u
        w = KEYS_T025 if u - np.floor(u) == 0.25 else KEYS_T075
        out[x - 1] = w @ padded[j - 1 + 3 : j + 3 + 3]
    return out


def test_upsample_x2_matches_hand_computed_keys_weights():
    f = np.random.default_rng(1).uniform(0, 1, 13)
    got = imresize(f[:, None], 2.0)  # a 13x1 column -> 26x2; both columns equal
    expected = _keys_upsample_x2(f)
    np.testing.assert_allclose(got[:, 0], expected, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], expected, atol=1e-12)


def test_upsample_ramp_interior_is_linear():
    # Keys a = -0.5 reproduces linear signals exactly away from the borders: value = u.
    ramp = np.arange(1, 17, dtype=np.float64)  # f(i) = i, 1-based
    got = imresize(ramp[None, :], 2.0)[0]
    x = np.arange(1, 33)
    u = x / 2 + 0.25
    interior = (u >= 2) & (u <= 15)
    np.testing.assert_allclose(got[interior], u[interior], atol=1e-12)


def test_downsample_x2_interior_uses_widened_kernel():
    f = np.random.default_rng(2).uniform(0, 1, 40)
    got = imresize(f[None, :], 0.5)[0]  # 1x40 -> 1x20 (height 1 stays 1)
    # Output x (1-based) centres at u = 2x - 0.5: taps f(2x-4) .. f(2x+3) with HALF_TAPS.
    for x in range(3, 19):
        window = f[2 * x - 5 : 2 * x + 3]
        assert got[x - 1] == pytest.approx(float(HALF_TAPS @ window), abs=1e-12)
    assert HALF_TAPS.sum() == pytest.approx(1.0)


def test_float_path_is_not_rounded_or_clipped():
    step = np.zeros((8, 8), dtype=np.float32)
    step[:, 4:] = 1.0
    out = imresize(step, 2.0)
    assert out.dtype == np.float32 and out.shape == (16, 16)
    assert out.min() < 0 and out.max() > 1  # cubic overshoot kept
    assert np.any((out > 0.01) & (out < 0.99))  # non-integer values kept


def test_uint8_rounds_after_each_pass():
    img = np.random.default_rng(3).integers(0, 256, (30, 24, 3), dtype=np.uint8)
    got = imresize(img, 0.5)
    # Two separate single-axis passes in float64, each rounded half up and clipped.
    rows = imresize(img.astype(np.float64), output_shape=(15, 24))
    rows = np.clip(np.floor(rows + 0.5), 0, 255)
    both = imresize(rows, output_shape=(15, 12))
    expected = np.clip(np.floor(both + 0.5), 0, 255).astype(np.uint8)
    assert np.array_equal(got, expected)


def test_output_sizes():
    img = np.zeros((255, 7, 3), dtype=np.uint8)
    assert imresize(img, 1 / 3).shape == (85, 3, 3)  # ceil(7/3) = 3; 255/3 exactly 85
    assert imresize(img, output_shape=(10, 20)).shape == (10, 20, 3)
    assert imresize(np.zeros((5, 6)), 2.5).shape == (13, 15)
    assert bicubic_downsample(np.zeros((11, 14, 3), np.uint8), 4).shape == (2, 3, 3)
    up = bicubic_upsample(np.zeros((5, 6), np.uint8), 3)
    assert up.shape == (15, 18) and up.dtype == np.uint8


def test_modcrop_takes_from_bottom_and_right():
    img = np.arange(7 * 10).reshape(7, 10)
    out = modcrop(img, 3)
    assert out.shape == (6, 9)
    assert np.array_equal(out, img[:6, :9])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(DataError, match="int16"):
        imresize(np.zeros((4, 4), np.int16), 2.0)
    with pytest.raises(DataError, match="HxW"):
        imresize(np.zeros((2, 4, 4, 3), np.uint8), 2.0)
    with pytest.raises(DataError, match="smaller than the scale"):
        bicubic_downsample(np.zeros((3, 8, 3), np.uint8), 4)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4), np.uint8))


def _rounded(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255)


def test_smaller_scale_axis_is_resized_first():
    # MATLAB resizes the axis with the smallest scale first: here columns (x1/4) before rows.
    img = np.random.default_rng(4).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    got = imresize(img, output_shape=(16, 12))
    f = img.astype(np.float64)
    cols_first = _rounded(
        imresize(_rounded(imresize(f, output_shape=(32, 12))), output_shape=(16, 12))
    )
    rows_first = _rounded(
        imresize(_rounded(imresize(f, output_shape=(16, 48))), output_shape=(16, 12))
    )
    assert np.array_equal(got, cols_first.astype(np.uint8))
    assert not np.array_equal(got, rows_first.astype(np.uint8))
