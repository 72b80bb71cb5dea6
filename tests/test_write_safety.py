"""What every command writes goes through ``facd.fileio``: no output overwrites an input, no
symbolic link is followed out of a run folder, a full disk is one line with exit 4 and leaves
no partial file, long names fit or are refused in one line, and ``--overwrite`` checks every
write before it deletes anything."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facd import fileio
from facd.cli import main
from facd.errors import FacdError, StorageError
from facd.train.rundir import RunLock

from .helpers import make_checkpoint, make_image_folder
from .test_run_folder import CONFIG, _cache, snapshot  # noqa: F401 - _cache is a fixture

REPO = Path(__file__).resolve().parents[1]


def error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith(f"facd {command}: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in "\n".join(err)
    return lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "m.safetensors", preset="edsr-tiny-s", scale=2)


@pytest.fixture()
def bench(tmp_path: Path) -> Path:
    """A data root with one set, ``Tiny``, of two small HR images."""
    make_image_folder(tmp_path / "bench" / "Tiny" / "HR", count=2, size=(24, 20))
    return tmp_path / "bench"


def eval_args(bench: Path, *extra: str) -> list[str]:
    return ["eval", "--data-root", str(bench), "--sets", "Tiny", "-q", *extra]


# ------------------------------------------------------------ 1. outputs that are inputs


def test_eval_json_never_overwrites_the_checkpoint(ckpt, bench, capsys):
    before = ckpt.read_bytes()
    assert main(eval_args(bench, "-m", str(ckpt), "--json", str(ckpt))) == 2
    line = error_line(capsys, "eval")
    assert f"--json {ckpt} is also an input" in line and "nothing was written" in line
    assert ckpt.read_bytes() == before


def test_eval_save_images_never_overwrite_the_benchmark_images(ckpt, bench, tmp_path, capsys):
    out = tmp_path / "sr"
    (out / "Tiny").mkdir(parents=True)
    (out / "Tiny" / "X2").symlink_to(bench / "Tiny" / "HR", target_is_directory=True)
    before = snapshot(bench)
    assert main(eval_args(bench, "-m", str(ckpt), "--save-images", str(out))) == 2
    line = error_line(capsys, "eval")
    assert "--save-images image" in line and "is also the input" in line and "HR/img00.png" in line
    assert snapshot(bench) == before


def test_export_never_overwrites_the_model_and_wants_onnx(ckpt, tmp_path, capsys):
    before = ckpt.read_bytes()
    assert main(["export", str(ckpt), "--onnx", str(ckpt), "--no-verify"]) == 2
    assert "must end in .onnx" in error_line(capsys, "export")
    link = tmp_path / "m.onnx"
    link.symlink_to(ckpt)  # the model, under an .onnx name
    assert main(["export", str(ckpt), "--onnx", str(link), "--no-verify"]) == 2
    line = error_line(capsys, "export")
    assert f"--onnx {link} is also the input {ckpt}" in line
    assert ckpt.read_bytes() == before
    assert main(["export", str(ckpt), "--onnx", str(tmp_path / "m.txt"), "--no-verify"]) == 2
    line = error_line(capsys, "export")
    assert "m.txt: the file name must end in .onnx, e.g. m.onnx" in line
    assert not (tmp_path / "m.txt").exists()


def test_compare_never_overwrites_an_image(ckpt, tmp_path, capsys):
    img = make_image_folder(tmp_path / "imgs", count=1, size=(32, 32)) / "img00.png"
    before = img.read_bytes()
    args = ["compare", str(img), "-m", f"A={ckpt}", "--crop", "0,0,8,8", "-o", str(img)]
    assert main(args) == 2
    line = error_line(capsys, "compare")
    assert f"-o {img} is also an input" in line
    assert img.read_bytes() == before


def test_degrade_never_writes_among_or_over_its_inputs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hr = make_image_folder(tmp_path / "dg" / "X2", count=2, size=(16, 16))
    (hr / "img00.png").rename(hr / "a.png")
    (hr / "img01.png").rename(hr / "ax2.png")  # a.png's output name
    before = snapshot(tmp_path / "dg")
    assert main(["degrade", "dg/X2", "dg", "--scale", "2", "-q"]) == 2
    line = error_line(capsys, "degrade")
    assert "dg/X2 is the HR folder dg/X2" in line
    # the same clash through a symbolic link to the HR folder's parent
    (tmp_path / "link").symlink_to(tmp_path / "dg", target_is_directory=True)
    assert main(["degrade", "link/X2", "dg", "--scale", "2", "-q"]) == 2
    error_line(capsys, "degrade")
    assert snapshot(tmp_path / "dg") == before
    # an output named like another input, in another folder that resolves to the same files
    other = tmp_path / "out"
    other.mkdir()
    (other / "X2").symlink_to(hr, target_is_directory=True)
    assert main(["degrade", "dg/X2", "out", "--scale", "2", "-q"]) == 2
    error_line(capsys, "degrade")
    assert snapshot(tmp_path / "dg") == before


def test_refuse_overwriting_inputs_compares_resolved_paths_and_inodes(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "hard.bin")
    (tmp_path / "sub").mkdir()
    fileio.refuse_overwriting_inputs([("out", tmp_path / "b.bin")], [a])  # no clash
    for out in (a, tmp_path / "sub" / ".." / "a.bin", tmp_path / "hard.bin"):
        with pytest.raises(FacdError, match="is also"):
            fileio.refuse_overwriting_inputs([("out", out)], [a])


# ------------------------------------------------------------ 3. links out of the run folder


@pytest.fixture()
def run_case(tmp_path, monkeypatch) -> Path:
    """``cfg.yaml`` and its data in ``tmp_path``, the working folder; no run yet."""
    make_image_folder(tmp_path / "data", count=3, size=(40, 48))
    make_image_folder(tmp_path / "bench" / "Tiny" / "HR", count=1, size=(24, 24), seed=5)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def earlier_run(run: Path) -> None:
    """The files of an earlier run, as facd names them."""
    (run / "checkpoints").mkdir(parents=True)
    (run / "tb").mkdir()
    (run / "config.yaml").write_text("method: scratch\n")
    (run / "metrics.jsonl").write_text('{"iteration": 1}\n')
    (run / "last.safetensors").write_bytes(b"weights")
    (run / "checkpoints" / "state-00000002.pt").write_bytes(b"state")
    (run / "checkpoints" / "latest.json").write_text('{"iteration": 2}')
    (run / "tb" / "events.out.tfevents.1.host.1").write_bytes(b"events")


def overwrite() -> int:
    return main(["train", "cfg.yaml", "--out", "run", "--no-progress", "--overwrite"])


@pytest.mark.parametrize("folder", ["checkpoints", "tb"])
def test_overwrite_never_deletes_through_a_symlinked_folder(run_case, folder, capsys):
    earlier_run(run_case / "run")
    elsewhere = run_case / "elsewhere"
    (run_case / "run" / folder).rename(elsewhere)
    (run_case / "run" / folder).symlink_to(elsewhere, target_is_directory=True)
    before, outside = snapshot(run_case / "run"), snapshot(elsewhere)
    assert overwrite() == 2
    line = error_line(capsys, "train")
    assert f"run/{folder} is a symbolic link (to {elsewhere})" in line
    assert "--overwrite deleted nothing" in line
    assert snapshot(elsewhere) == outside and snapshot(run_case / "run") == before


def test_remove_under_never_passes_through_a_link(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "f").write_text("keep")
    (tmp_path / "root" / "sub").symlink_to(tmp_path / "target", target_is_directory=True)
    with pytest.raises(FacdError, match="is a symbolic link"):
        fileio.remove_under(tmp_path / "root", "sub/f")
    assert (tmp_path / "target" / "f").read_text() == "keep"
    assert fileio.remove_under(tmp_path / "root", "missing/f") is False


def test_a_planted_lock_symlink_is_refused_not_followed(run_case, capsys):
    victim = run_case / "victim.txt"
    victim.write_text("precious\n")
    (run_case / "run").mkdir()
    (run_case / "run" / ".facd.lock").symlink_to(victim)
    assert main(["train", "cfg.yaml", "--out", "run", "--no-progress"]) == 2
    line = error_line(capsys, "train")
    assert "run/.facd.lock is a symbolic link" in line and "delete the link" in line
    assert victim.read_text() == "precious\n"


def test_a_fifo_lock_file_is_one_line(run_case, capsys):
    (run_case / "run").mkdir()
    os.mkfifo(run_case / "run" / ".facd.lock")
    assert main(["train", "cfg.yaml", "--out", "run", "--no-progress"]) == 2
    line = error_line(capsys, "train")
    assert "run/.facd.lock is a FIFO, not a lock file facd can use; delete it" in line


def test_the_lock_still_excludes_a_second_writer(tmp_path):
    with RunLock(tmp_path / "run"):
        assert (tmp_path / "run" / ".facd.lock").read_text() == f"{os.getpid()}\n"
        second = fileio.LockFile(tmp_path / "run" / ".facd.lock")
        if sys.platform.startswith("linux"):  # flock excludes a second open file on Linux
            assert not second.acquire() and second.holder == os.getpid()
    assert not (tmp_path / "run").exists()  # created by the lock and left empty


# ------------------------------------------------------------ 9. check before deleting


def test_overwrite_checks_every_write_before_deleting(run_case, capsys):
    earlier_run(run_case / "run")
    (run_case / "run" / "config.yaml").unlink()
    (run_case / "run" / "config.yaml").mkdir()
    before = snapshot(run_case / "run")
    assert overwrite() == 2
    line = error_line(capsys, "train")
    assert "run/config.yaml is a folder, but facd writes a file there" in line
    assert "--overwrite deleted nothing" in line
    assert snapshot(run_case / "run") == before


# ------------------------------------------------------------ 4. a full disk


def _half_then_enospc(f, data: bytes) -> None:
    f.write(data[: len(data) // 2])
    f.flush()
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture()
def full_disk(monkeypatch):
    monkeypatch.setattr(fileio, "_write_all", _half_then_enospc)


def assert_full_disk(capsys, command: str, path: Path) -> None:
    line = error_line(capsys, command)
    assert line.endswith(f"cannot write {path}: No space left on device"), line


def rgba_image(path: Path) -> Path:
    arr = np.full((12, 16, 4), 200, np.uint8)
    arr[..., 3] = np.arange(16, dtype=np.uint8)[None, :] * 8  # transparent pixels
    Image.fromarray(arr).save(path)
    return path


@pytest.mark.parametrize(("fmt", "alpha"), [("png", False), ("webp", False), ("png", True)])
def test_full_disk_upscale(ckpt, tmp_path, capsys, full_disk, fmt, alpha):
    src = make_image_folder(tmp_path / "in", count=1, size=(12, 16)) / "img00.png"
    if alpha:
        rgba_image(src)
    out = tmp_path / "out"
    assert main(["upscale", str(ckpt), str(src), "-o", str(out), "--format", fmt, "-q"]) == 4
    assert_full_disk(capsys, "upscale", out / f"img00_x2.{fmt}")
    assert files_under(out) == []


def test_full_disk_export_keeps_the_previous_file(ckpt, tmp_path, capsys, full_disk):
    pytest.importorskip("onnx")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous")
    assert main(["export", str(ckpt), "--onnx", str(out), "--no-verify"]) == 4
    assert_full_disk(capsys, "export", out)
    assert out.read_bytes() == b"previous" and files_under(tmp_path) == ["m.onnx", "m.safetensors"]


def test_full_disk_safetensors(tmp_path, full_disk):
    with pytest.raises(StorageError, match="No space left on device"):
        make_checkpoint(tmp_path / "w.safetensors")
    assert files_under(tmp_path) == []


def test_full_disk_eval_json_and_images(ckpt, bench, tmp_path, capsys, full_disk):
    out = tmp_path / "r.json"
    assert main(eval_args(bench, "-m", "bicubic", "-s", "2", "--json", str(out))) == 4
    assert_full_disk(capsys, "eval", out)
    sr = tmp_path / "sr"
    assert main(eval_args(bench, "-m", str(ckpt), "--save-images", str(sr))) == 4
    assert_full_disk(capsys, "eval", sr / "Tiny" / "X2" / "img00.png")
    assert files_under(sr) == [] and not out.exists()


def test_full_disk_degrade(tmp_path, capsys, full_disk):
    hr = make_image_folder(tmp_path / "hr", count=1, size=(16, 16))
    assert main(["degrade", str(hr), str(tmp_path / "lr"), "--scale", "2", "-q"]) == 4
    assert_full_disk(capsys, "degrade", tmp_path / "lr" / "X2" / "img00x2.png")
    assert files_under(tmp_path / "lr") == []


def test_full_disk_reproduce_report(tmp_path, capsys, monkeypatch):
    from .test_claims import ROWS, _protocol_with

    path = _protocol_with(tmp_path, {}, ROWS)
    report = Path(__import__("yaml").safe_load(path.read_text())["report"]["path"])
    monkeypatch.chdir(path.parent)
    assert main(["reproduce", str(path), "--report-only", "--no-figures"]) == 0
    before = report.read_bytes()
    monkeypatch.setattr(fileio, "_write_all", _half_then_enospc)
    assert main(["reproduce", str(path), "--report-only", "--no-figures"]) == 4
    assert_full_disk(capsys, "reproduce", report)
    assert report.read_bytes() == before
    assert not [p for p in report.parent.iterdir() if fileio.is_facd_temp(p.name)]


def _file_size_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no file size limit here")
def test_a_real_write_failure_in_a_subprocess_is_one_line(bench, tmp_path):
    """No patching: the operating system refuses to write past 256 bytes (``EFBIG``), as a full
    disk would refuse; the command prints one line, exits 4 and leaves no file."""
    out = tmp_path / "sr"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONDONTWRITEBYTECODE="1")
    args = eval_args(bench, "-m", "edsr-tiny-s", "-s", "2", "--save-images", str(out))
    proc = subprocess.run(
        [sys.executable, "-m", "facd", *args, "--json", str(tmp_path / "r.json")],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit,
        timeout=300,
    )
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "facd eval: error: cannot write" in proc.stderr and "File too large" in proc.stderr
    assert files_under(out) == [] or all(
        (out / f).stat().st_size > 0 for f in files_under(out)
    )  # only complete images, never a temporary file
    assert not [p for p in out.rglob("*") if fileio.is_facd_temp(p.name)]


# ------------------------------------------------------------ 5. long names


def test_the_longest_legal_name_can_be_written(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    for name in ("a" * (limit - 5) + ".json", "é" * ((limit - 5) // 2) + ".json"):
        fileio.atomic_write_text(tmp_path / name, "{}\n")
        assert (tmp_path / name).read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a" * (limit - 5) + ".json", "é" * ((limit - 5) // 2) + ".json"]
    )  # no temporary file left
    with fileio.atomic_path(tmp_path / ("b" * limit)) as tmp:
        assert fileio.is_facd_temp(tmp.name) and len(os.fsencode(tmp.name)) <= limit


def test_a_243_character_json_name_is_written_by_eval(bench, tmp_path, capsys):
    out = tmp_path / ("r" * 238 + ".json")
    assert main(eval_args(bench, "-m", "bicubic", "-s", "2", "--json", str(out))) == 0
    assert out.is_file()


@pytest.mark.parametrize("command", ["train", "upscale", "eval"])
def test_a_300_character_name_is_one_line(command, ckpt, bench, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    long = str(tmp_path / ("n" * 300))
    img = make_image_folder(tmp_path / "in", count=1, size=(12, 16)) / "img00.png"
    args = {
        "train": ["train", str(REPO / "configs/tiny/facd.yaml"), "--out", long],
        "upscale": ["upscale", str(ckpt), str(img), "-o", long, "-q"],
        "eval": eval_args(bench, "-m", "bicubic", "-s", "2", "--json", long + ".json"),
    }[command]
    assert main(args) == 2
    line = error_line(capsys, command)
    assert "bytes long, more than the" in line and "choose a shorter name" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench", "in", "m.safetensors"]
