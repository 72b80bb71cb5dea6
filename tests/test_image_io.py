"""Tests of image reading/writing: channel handling, alpha, bit depth, corrupt files, EXIF."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facd.data.image_io import (
    IMAGE_EXTENSIONS,
    list_images,
    read_image,
    read_image_raw,
    write_image,
)
from facd.errors import DataError


def _rgb(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_one_line_naming(err: pytest.ExceptionInfo, path: Path) -> None:
    message = str(err.value)
    assert path.name in message
    assert "\n" not in message


def _png_48bit(path: Path, h: int = 6, w: int = 5) -> None:
    """Hand-built 16-bit-per-channel RGB PNG (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    pixels = (np.arange(h * w * 3).reshape(h, w, 3) * 997).astype(">u2")
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)


# --------------------------------------------------------------------- channels


def test_rgb_png_round_trip(tmp_path: Path):
    img = _rgb()
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    assert np.array_equal(read_image_raw(tmp_path / "a.png"), img)


def test_gray_is_expanded_to_rgb_but_raw_keeps_one_channel(tmp_path: Path):
    gray = _rgb()[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png")
    assert rgb.shape == gray.shape + (3,) and rgb.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(rgb[:, :, c], gray)
    raw = read_image_raw(tmp_path / "g.png")
    assert raw.shape == gray.shape and np.array_equal(raw, gray)


def test_palette_images(tmp_path: Path):
    colour = Image.fromarray(_rgb()).quantize(16)
    colour.save(tmp_path / "p.png")
    expected = np.asarray(colour.convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "p.png"), expected)
    assert read_image_raw(tmp_path / "p.png").shape == expected.shape

    gray = Image.fromarray(_rgb()[:, :, 1]).convert("P")  # gray palette
    gray.save(tmp_path / "pg.png")
    assert read_image_raw(tmp_path / "pg.png").ndim == 2
    assert read_image(tmp_path / "pg.png").shape[2] == 3


def test_bmp_and_jpeg_read_as_rgb(tmp_path: Path):
    img = _rgb()
    Image.fromarray(img).save(tmp_path / "a.bmp")
    assert np.array_equal(read_image(tmp_path / "a.bmp"), img)
    write_image(tmp_path / "a.jpg", img, quality=90)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == img.shape and out.dtype == np.uint8


# --------------------------------------------------------------------- alpha


def test_opaque_rgba_drops_alpha(tmp_path: Path):
    img = _rgb()
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    assert np.array_equal(read_image(tmp_path / "opaque.png"), img)


def test_opaque_la_keeps_gray(tmp_path: Path):
    gray = _rgb()[:, :, 2]
    la = Image.merge("LA", [Image.fromarray(gray), Image.new("L", gray.shape[::-1], 255)])
    la.save(tmp_path / "la.png")
    assert np.array_equal(read_image_raw(tmp_path / "la.png"), gray)


def test_transparent_rgba_is_refused(tmp_path: Path):
    rgba = np.concatenate([_rgb(), np.full((12, 16, 1), 255, np.uint8)], axis=2)
    rgba[0, 0, 3] = 128
    path = tmp_path / "see_through.png"
    Image.fromarray(rgba).save(path)
    with pytest.raises(DataError, match="transparent") as err:
        read_image(path)
    _assert_one_line_naming(err, path)


def test_palette_with_transparency_is_refused(tmp_path: Path):
    pal = Image.fromarray(_rgb()).quantize(8)
    index = int(np.asarray(pal)[0, 0])
    path = tmp_path / "pal_t.png"
    pal.save(path, transparency=index)
    with pytest.raises(DataError, match="transparent") as err:
        read_image(path)
    _assert_one_line_naming(err, path)


# --------------------------------------------------------------------- bit depth


def test_16bit_gray_is_refused(tmp_path: Path):
    path = tmp_path / "deep.png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 13).astype(np.uint16)).save(path)
    with pytest.raises(DataError, match="8 bits") as err:
        read_image(path)
    _assert_one_line_naming(err, path)


def test_16bit_rgb_is_refused(tmp_path: Path):
    path = tmp_path / "deep_rgb.png"
    _png_48bit(path)
    assert Image.open(path).mode == "RGB"  # Pillow would silently keep only the high byte
    with pytest.raises(DataError, match="8 bits") as err:
        read_image_raw(path)
    _assert_one_line_naming(err, path)


# --------------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file_is_refused(tmp_path: Path, ext: str):
    full = tmp_path / f"full{ext}"
    write_image(full, _rgb(64, 64), quality=95)
    path = tmp_path / f"cut{ext}"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataError, match="cannot read") as err:
        read_image(path)
    _assert_one_line_naming(err, path)


def test_non_image_is_refused(tmp_path: Path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(DataError, match="cannot read") as err:
        read_image(path)
    _assert_one_line_naming(err, path)


def test_missing_file_is_refused(tmp_path: Path):
    path = tmp_path / "absent.png"
    with pytest.raises(DataError) as err:
        read_image(path)
    _assert_one_line_naming(err, path)


# --------------------------------------------------------------------- EXIF


def test_exif_orientation_is_applied(tmp_path: Path):
    stored = np.zeros((10, 20, 3), np.uint8)
    stored[:, :10] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: display rotated 90 degrees clockwise
    path = tmp_path / "rotated.png"
    Image.fromarray(stored).save(path, exif=exif)
    img = read_image(path)
    assert img.shape == (20, 10, 3)
    # Rotating clockwise puts the stored left half on top.
    assert (img[:10] == 255).all() and (img[10:] == 0).all()


# --------------------------------------------------------------------- writing and listing


def test_write_is_atomic_and_creates_folders(tmp_path: Path):
    path = tmp_path / "sub" / "dir" / "a.webp"
    img = _rgb()
    write_image(path, img)  # WebP defaults to lossless
    assert np.array_equal(read_image(path), img)
    write_image(path, img[:, :, 0])  # overwrite in place, gray
    assert read_image_raw(path).shape[:2] == img.shape[:2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.webp"]  # no temp left


def test_write_rejects_bad_input(tmp_path: Path):
    with pytest.raises(DataError, match="extension"):
        write_image(tmp_path / "a.tga", _rgb())
    with pytest.raises(DataError, match="uint8"):
        write_image(tmp_path / "a.png", _rgb().astype(np.float32))
    assert list(tmp_path.iterdir()) == []


def test_list_images(tmp_path: Path):
    for name in ["b.png", "a.JPG", "c.bmp", "d.webp", ".hidden.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.bmp", "d.webp"]
    assert {".png", ".jpg", ".jpeg", ".bmp", ".webp"} <= IMAGE_EXTENSIONS


def test_list_images_errors_name_the_folder(tmp_path: Path):
    with pytest.raises(DataError, match="not found") as err:
        list_images(tmp_path / "missing_dir")
    _assert_one_line_naming(err, tmp_path / "missing_dir")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="no images") as err:
        list_images(tmp_path / "empty_dir")
    _assert_one_line_naming(err, tmp_path / "empty_dir")
