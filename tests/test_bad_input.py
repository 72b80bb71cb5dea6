"""Bad input never loses work: one-line errors naming the culprit, non-zero exit, files intact.

Each case starts from a copy of a finished two-iteration run (its data folder beside it, paths
relative to the working folder), breaks one thing, runs ``facd train ... --resume`` through the
CLI and checks the exit code, the single error line, and that every file of the earlier run is
byte-for-byte unchanged. The table in ``docs/robustness.md`` lists the same cases.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facd import fileio
from facd.cli import main
from facd.train.manifest import claim_files

from .helpers import make_checkpoint, make_finished_run

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "facd"

CONFIG = """\
method: scratch
scale: 2
seed: 0
student: {preset: edsr-tiny-s}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [], every: 0}
train: {iterations: 2, batch_size: 2, log_every: 1, save_every: 1, device: cpu}
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A finished run: ``cfg.yaml``, ``data/`` and ``run/`` in one folder."""
    root = tmp_path_factory.mktemp("base")
    os.environ.setdefault("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))
    return make_finished_run(root, CONFIG)


@pytest.fixture
def case(base, tmp_path, monkeypatch) -> Path:
    """A private copy of the finished run; the working folder is the copy."""
    root = tmp_path / "case"
    shutil.copytree(base, root)
    monkeypatch.chdir(root)
    return root


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def train(*extra: str) -> int:
    return main(["train", "cfg.yaml", "--out", "run", "--no-progress", *extra])


def resume(*sets: str) -> int:
    args = ["--resume", "--set", "train.iterations=4"]
    for s in sets:
        args += ["--set", s]
    return train(*args)


def new_run() -> int:
    """A new run beside ``run`` (a resume of ``run`` with an image added is refused before any
    image is read: its training inputs changed, see tests/test_run_manifest.py)."""
    return main(["train", "cfg.yaml", "--out", "fresh", "--no-progress"])


def error_line(capsys) -> str:
    """The one error line on stderr (other lines are the run's description)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("facd train: error:")]
    assert len(lines) == 1, err
    return lines[0]


def expect_refused(capsys, run: Path, code: int, *needles: str, rc: int = 2) -> str:
    before = snapshot(run)
    assert code == rc
    line = error_line(capsys)
    for needle in needles:
        assert needle in line, line
    assert snapshot(run) == before
    return line


# ---------------------------------------------------------------- training data


def test_truncated_png_is_named(case, capsys):
    good = (case / "data/img00.png").read_bytes()
    (case / "data/cut.png").write_bytes(good[: len(good) // 3])
    before = snapshot(case / "run")
    code = new_run()
    assert code == 2
    line = error_line(capsys)
    assert "data/cut.png" in line and "cannot read image" in line
    assert snapshot(case / "run") == before


def test_truncated_jpeg_is_named(case, capsys):
    Image.open(case / "data/img01.png").save(case / "data/photo.jpg", quality=90)
    raw = (case / "data/photo.jpg").read_bytes()
    (case / "data/photo.jpg").write_bytes(raw[: len(raw) // 2])
    before = snapshot(case / "run")
    assert new_run() == 2
    assert "data/photo.jpg" in error_line(capsys)
    assert snapshot(case / "run") == before


def test_png_that_is_not_an_image_is_named(case, capsys):
    (case / "data/notes.png").write_text("not an image")
    before = snapshot(case / "run")
    assert new_run() == 2
    line = error_line(capsys)
    assert "data/notes.png" in line and "cannot identify image file" in line
    assert snapshot(case / "run") == before


def test_files_without_an_image_extension_are_ignored(case, capsys):
    (case / "data/README.txt").write_text("about these images")
    (case / "data/.DS_Store").write_bytes(b"\0\1")
    assert resume() == 0
    assert "resumed from iteration 2" in capsys.readouterr().err


def test_image_smaller_than_the_hr_patch_is_named(case, capsys):
    Image.new("RGB", (12, 12), (90, 20, 20)).save(case / "data/small.png")
    before = snapshot(case / "run")
    assert new_run() == 2
    line = error_line(capsys)
    assert "data/small.png" in line and "12x12" in line and "16x16" in line
    assert "data.patch_size" in line
    assert snapshot(case / "run") == before


def test_empty_training_folder(case, capsys):
    for p in (case / "data").iterdir():
        p.unlink()
    before = snapshot(case / "run")
    assert resume() == 2
    line = error_line(capsys)
    assert "data: no images found" in line
    assert snapshot(case / "run") == before


def test_missing_training_folder(case, capsys):
    shutil.rmtree(case / "data")
    before = snapshot(case / "run")
    assert resume() == 2
    assert "data: image folder not found" in error_line(capsys)
    assert snapshot(case / "run") == before


def test_grayscale_and_opaque_rgba_images_are_used(case, capsys):
    img = Image.open(case / "data/img00.png")
    img.convert("L").save(case / "data/gray.png")
    img.convert("RGBA").save(case / "data/opaque.png")
    assert new_run() == 0


def test_transparent_rgba_is_refused(case, capsys):
    rgba = np.full((40, 48, 4), 200, np.uint8)
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(case / "data/alpha.png")
    before = snapshot(case / "run")
    assert new_run() == 2
    line = error_line(capsys)
    assert "data/alpha.png" in line and "transparent pixels" in line
    assert snapshot(case / "run") == before


def test_16_bit_image_is_refused(case, capsys):
    deep = (np.random.default_rng(0).random((40, 48)) * 65535).astype(np.uint16)
    Image.fromarray(deep).save(case / "data/deep.png")
    before = snapshot(case / "run")
    assert new_run() == 2
    line = error_line(capsys)
    assert "data/deep.png" in line and "16 bits per channel" in line
    assert snapshot(case / "run") == before


# ---------------------------------------------------------------- checkpoints


def test_student_weights_of_another_architecture(case, capsys):
    make_checkpoint(case / "wide.safetensors", "edsr-tiny-t", 2)
    code = main(["train", "cfg.yaml", "--out", "fresh", "--no-progress",
                 "--set", "student.weights=wide.safetensors"])  # fmt: skip
    assert code == 2
    line = error_line(capsys)
    assert "wide.safetensors" in line and "architecture does not match" in line
    assert re.search(r"n_feats: expected \d+, found 32", line)
    assert not list((case / "fresh").rglob("*.*"))  # nothing written


def test_student_weights_of_another_scale(case, capsys):
    make_checkpoint(case / "x4.safetensors", "edsr-tiny-s", 4)
    code = main(["train", "cfg.yaml", "--out", "fresh", "--no-progress",
                 "--set", "student.weights=x4.safetensors"])  # fmt: skip
    assert code == 2
    assert "scale: expected 2, found 4" in error_line(capsys)


def test_resume_with_another_architecture_is_refused(case, capsys):
    expect_refused(capsys, case / "run", resume("student.preset=edsr-tiny-t"),
                   "differs from run/config.yaml in student.preset")  # fmt: skip


def test_state_that_does_not_fit_the_config(case, capsys):
    (case / "run/config.yaml").unlink()  # without it only the state itself can tell
    run = case / "run"
    line = expect_refused(capsys, run, resume("student.n_feats=8"), "state-00000002.pt")
    assert re.search(r"does not fit this config: 'student\.\S+' expected \(8, .*found \(", line)
    line = expect_refused(capsys, run, resume("student.preset=edsr-tiny-t"), "state-00000002.pt")
    assert "does not fit this config: missing [" in line and "unexpected [" in line


def test_damaged_config_in_the_run_folder(case, capsys):
    (case / "run/config.yaml").write_text("train: [unclosed\n")
    expect_refused(capsys, case / "run", resume(), "run/config.yaml is damaged")


def test_missing_teacher_file(case, capsys):
    code = main(["train", str(REPO / "configs/tiny/facd.yaml"), "--out", "distil",
                 "--no-progress", "--set", "teacher.weights=teachers/missing.safetensors",
                 "--set", "data.train_dirs=[data]", "--set", "val.sets=[]"])  # fmt: skip
    assert code == 2
    assert "teacher weights not found: teachers/missing.safetensors" in error_line(capsys)
    assert not (case / "distil/config.yaml").exists()


class _Payload:
    """Unpickling this runs ``os.system`` — if a loader ever unpickles code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_as_weights_runs_no_code(case, capsys):
    marker = case / "pwned"
    torch.save({"params": _Payload(marker)}, case / "evil.pt")
    code = main(["train", "cfg.yaml", "--out", "fresh", "--no-progress",
                 "--set", "student.weights=evil.pt"])  # fmt: skip
    assert code == 2
    line = error_line(capsys)
    assert "evil.pt: refused to load" in line
    assert not marker.exists()


def test_malicious_pickle_as_newest_state_runs_no_code(case, capsys):
    marker = case / "pwned"
    # a state file facd wrote (its manifest names it), replaced by a malicious one
    claim_files(case / "run", ["checkpoints/state-00000003.pt"])
    torch.save(
        {"iteration": 3, "model": _Payload(marker)}, case / "run/checkpoints/state-00000003.pt"
    )
    assert resume() == 0
    err = capsys.readouterr().err
    assert "skipping state-00000003.pt: " in err and "refused to load" in err
    assert "resumed from iteration 2" in err
    assert not marker.exists()
    assert (case / "run/checkpoints/state-00000003.pt.unreadable").exists()


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.iteratons=3", "unknown config key 'train.iteratons'; did you mean 'iterations'?"),
        ("train.batch_size=two", "'train.batch_size' must be an integer, got str 'two'"),
        ("train.batch_size=0", "'train.batch_size' must be >= 1, got 0"),
        ("train.lr=-1", "'train.lr' must be > 0, got -1.0"),
        (
            "train.precision=fp8",
            "'train.precision' must be one of 'fp32', 'bf16', 'fp16', got 'fp8'",
        ),
    ],
)
def test_config_typo_type_and_range(case, capsys, override, needle):
    expect_refused(capsys, case / "run", resume(override), needle)


def test_config_file_not_found(case, capsys):
    assert main(["train", "nope.yaml", "--out", "run2"]) == 2
    assert "config file not found: nope.yaml" in error_line(capsys)


def test_unknown_validation_set_fails_before_training(case, capsys):
    os.makedirs(case / "bench/Tiny/HR")
    shutil.copy(case / "data/img00.png", case / "bench/Tiny/HR/a.png")
    expect_refused(capsys, case / "run", resume("val.data_root=bench", "val.sets=[Tyni]"),
                   "benchmark set 'Tyni' not found", "Tiny")  # fmt: skip


# ---------------------------------------------------------------- storage


def _full_disk(path, data: bytes) -> None:
    """Write half of ``data`` through the real atomic writer, then fail like a full disk."""
    with fileio.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_saving_the_state(case, capsys, monkeypatch):
    from facd.train import state

    run = case / "run"
    logs = ("metrics", "tb", "config", ".facd-run.json")  # the manifest names state 3 first
    kept = {k: v for k, v in snapshot(run).items() if not k.startswith(logs)}
    with monkeypatch.context() as m:
        m.setattr(state, "atomic_write_bytes", _full_disk)
        assert resume() == 4
    line = error_line(capsys)
    assert "cannot write run/checkpoints/state-00000003.pt: No space left on device" in line
    assert "the previous state state-00000002.pt is intact" in line
    now = snapshot(run)
    assert {k: now[k] for k in kept} == kept  # every checkpoint file unchanged
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert resume() == 0  # space freed: the run continues from the intact state


def test_disk_full_while_saving_the_weights(case, capsys, monkeypatch):
    from facd.archs import io

    before = (case / "run/last.safetensors").read_bytes()
    monkeypatch.setattr(io, "atomic_write_bytes", _full_disk)
    assert resume() == 4
    line = error_line(capsys)
    assert "cannot write run/last.safetensors: No space left on device" in line
    assert (case / "run/last.safetensors").read_bytes() == before


def test_out_that_is_a_file(case, capsys):
    (case / "afile").write_text("x")
    assert main(["train", "cfg.yaml", "--out", "afile"]) == 2
    assert "--out afile exists and is not a folder" in error_line(capsys)
    assert (case / "afile").read_text() == "x"


# ---------------------------------------------------------------- code and paths


def test_no_eval_exec_or_unsafe_loading_in_the_sources():
    pattern = re.compile(
        r"(?<![\w.])(eval|exec)\(|pickle\.loads?\(|yaml\.load\(|yaml\.unsafe_load|"
        r"torch\.load\((?![^)]*weights_only=True)"  # the call may span lines
    )
    hits = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            hits.append(f"{path.relative_to(REPO)}:{line}: {m.group(0)}")
    assert not hits, hits


def test_config_values_are_data_not_code(case, capsys):
    marker = case / "pwned"
    code = resume(f"train.device=__import__('os').system('touch {marker}')")
    assert code == 2
    assert "'train.device' is \"__import__('os')" in error_line(capsys)
    assert not marker.exists()


def test_writes_stay_inside_the_run_folder(case, capsys, tmp_path):
    """Config paths (data, sets, a hostile pointer) are read, never written to."""
    os.makedirs(case / "bench/Tiny/HR")
    shutil.copy(case / "data/img00.png", case / "bench/Tiny/HR/a.png")
    (case / "run/checkpoints/latest.json").write_text('{"state": "../../../escape.pt"}')
    outside = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if "run" not in p.parts}
    assert resume("val.data_root=bench", "val.sets=[Tiny]", "val.every=1") == 0
    capsys.readouterr()
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if "run" not in p.parts}
    assert after == outside
    assert (case / "run/best.safetensors").exists()
