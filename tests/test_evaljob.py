"""The protocol's final evaluation compares the student with the teacher in memory: the numbers
are those of the former route (write the student's SR PNGs, read them back, psnr_against)."""

from __future__ import annotations

from pathlib import Path

from facd.archs.io import load_model
from facd.evaluate import evaluate
from facd.reproduce.evaljob import evaluate_model, psnr_against

from .helpers import make_checkpoint, make_image_folder


def test_in_memory_teacher_psnr_equals_the_png_round_trip(tmp_path: Path, monkeypatch) -> None:
    bench = tmp_path / "bench"
    make_image_folder(bench / "Tiny" / "HR", count=3, size=(48, 40), seed=1)
    make_image_folder(bench / "Other" / "HR", count=2, size=(44, 52), seed=2)
    sets = ["Tiny", "Other"]
    teacher = make_checkpoint(tmp_path / "t.safetensors", "edsr-tiny-t", 4, seed=0)
    student = make_checkpoint(tmp_path / "s.safetensors", "edsr-tiny-s", 4, seed=1)
    teacher_sr = tmp_path / "teacher-sr"
    tdoc = evaluate_model(str(teacher), sets, 4, bench, keep_sr=teacher_sr)
    assert (teacher_sr / "Tiny" / "X4" / "img00.png").is_file()
    assert tdoc["teacher_psnr"] is None

    # the former route: the student's SR images written as PNG, then compared with the teacher's
    model, _ = load_model(student, 4)
    before_dir = tmp_path / "student-sr"
    before = evaluate(model, sets, 4, bench, device="cpu", save_images=before_dir, progress=False)
    before_t = psnr_against(before_dir, teacher_sr, sets, 4)

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # nothing may be written there
    (tmp_path / "tmp").mkdir()
    after = evaluate_model(str(student), sets, 4, bench, teacher_sr=teacher_sr)
    assert list((tmp_path / "tmp").iterdir()) == []
    for s in sets:
        for key in ("psnr_y", "ssim_y"):
            assert abs(after["sets"][s][key] - before["sets"][s][key]) < 1e-10
        a, b = after["teacher_psnr"][s], before_t[s]
        assert a["images"] == b["images"] and a["identical_images"] == b["identical_images"]
        assert abs(a["psnr_y"] - b["psnr_y"]) < 1e-10
        assert a["per_image"].keys() == b["per_image"].keys()
        for name, v in b["per_image"].items():
            assert abs(a["per_image"][name] - v) < 1e-10
    assert after["teacher_psnr_s"] >= 0 and after["eval_s"] > 0


def test_teacher_compared_with_itself_counts_identical_images(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    make_image_folder(bench / "Tiny" / "HR", count=2, size=(48, 40), seed=1)
    teacher = make_checkpoint(tmp_path / "t.safetensors", "edsr-tiny-t", 4)
    evaluate_model(str(teacher), ["Tiny"], 4, bench, keep_sr=tmp_path / "tsr")
    doc = evaluate_model(str(teacher), ["Tiny"], 4, bench, teacher_sr=tmp_path / "tsr")
    assert doc["teacher_psnr"]["Tiny"]["identical_images"] == 2
