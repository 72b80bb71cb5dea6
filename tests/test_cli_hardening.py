"""CLI hardening: outputs never overwrite inputs, write failures are caught before any work,
out-of-memory and NaN weights give one-line errors, ``facd compare`` takes its arguments in any
order, and a closed stdout pipe ends a command quietly."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facd.archs import build_model, preset_spec
from facd.archs.common import SRNetwork
from facd.archs.io import save_model
from facd.cli import main

from .helpers import make_checkpoint, make_image_folder

# a path whose folder is not writable even for root (procfs), where the platform has one
READ_ONLY_DIR = Path("/proc/sys")
HAS_READ_ONLY_DIR = READ_ONLY_DIR.is_dir() and not os.access(READ_ONLY_DIR, os.W_OK)
#: ``facd.cli.EXIT_BROKEN_PIPE``: 128 + SIGPIPE, the shell's status for a tool killed by it
EXIT_BROKEN_PIPE = 141


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (to prove nothing changed)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith(f"facd {command}: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in "\n".join(err)
    return lines[0]


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "m.safetensors", preset="edsr-tiny-s", scale=2)


@pytest.fixture()
def nan_ckpt(tmp_path: Path) -> Path:
    spec = preset_spec("edsr-tiny-s", 2)
    model = build_model(spec)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if n.endswith("weight")).fill_(float("nan"))
    path = tmp_path / "nan.safetensors"
    save_model(path, model, spec)
    return path


@pytest.fixture()
def tiny_root(tmp_path: Path) -> Path:
    """A benchmark data root with one set, ``Tiny``, of two small HR images."""
    make_image_folder(tmp_path / "bench" / "Tiny" / "HR", count=2, size=(24, 20))
    return tmp_path / "bench"


# ----------------------------------------------------------------------------- item 1


def test_upscale_refuses_an_output_that_is_another_input(
    tmp_path, ckpt, capsys, monkeypatch
) -> None:
    src = make_image_folder(tmp_path / "imgs", count=1, size=(16, 12))
    (src / "img00.png").rename(src / "a.png")
    make_image_folder(tmp_path / "other", count=1, size=(16, 12), seed=1)
    (tmp_path / "other" / "img00.png").rename(src / "a_x2.png")  # a.png's output name
    before = _snapshot(src)
    assert main(["upscale", str(ckpt), str(src), "-o", str(src), "-q"]) == 2
    line = _error_line(capsys, "upscale")
    assert "a_x2.png" in line and "a.png" in line and "is also an input" in line
    assert _snapshot(src) == before  # nothing written, not even a.png's neighbours

    # the same clash spelled through a symlinked folder and ./ is still found
    (tmp_path / "link").symlink_to(src, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    args = ["upscale", str(ckpt), "./imgs/a.png", "imgs/a_x2.png", "-o", "./link/", "-q"]
    assert main(args) == 2
    line = _error_line(capsys, "upscale")
    assert "link/a_x2.png" in line and "imgs/a.png" in line and "imgs/a_x2.png" in line
    assert _snapshot(src) == before

    # an output that is a hard link to an input
    out = tmp_path / "out"
    out.mkdir()
    os.link(src / "a_x2.png", out / "a_x2.png")
    assert main(["upscale", str(ckpt), "imgs/a.png", "imgs/a_x2.png", "-o", "out", "-q"]) == 2
    assert "a_x2.png" in _error_line(capsys, "upscale")
    assert _snapshot(src) == before

    # without a clash it works
    assert main(["upscale", str(ckpt), "imgs/a.png", "-o", "fresh", "-q"]) == 0
    assert (tmp_path / "fresh" / "a_x2.png").is_file()


# ----------------------------------------------------------------------------- item 2


def test_upscale_output_folder_checked_before_work(tmp_path, ckpt, capsys) -> None:
    src = make_image_folder(tmp_path / "imgs", count=1, size=(16, 12))
    a_file = tmp_path / "note.txt"
    a_file.write_text("keep me")
    before = _snapshot(tmp_path)
    for out, words in ((a_file, "is a file"), (a_file / "sub", "is a file, not a folder")):
        assert main(["upscale", str(ckpt), str(src), "-o", str(out), "-q"]) == 2
        line = _error_line(capsys, "upscale")
        assert f"-o {out}" in line and words in line
    assert _snapshot(tmp_path) == before
    assert a_file.read_text() == "keep me"


@pytest.mark.skipif(not HAS_READ_ONLY_DIR, reason="no read-only folder (/proc/sys) here")
@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("upscale", ["upscale", "{ckpt}", "{img}", "-o", "{ro}/out"]),
        ("eval", ["eval", "-m", "bicubic", "-s", "2", "--data-root", "{root}", "--sets", "Tiny",
                  "--json", "{ro}/r.json"]),
        ("eval", ["eval", "-m", "bicubic", "-s", "2", "--data-root", "{root}", "--sets", "Tiny",
                  "--save-images", "{ro}/sr"]),
        ("export", ["export", "{ckpt}", "--onnx", "{ro}/m.onnx", "--no-verify"]),
        ("degrade", ["degrade", "{hr}", "{ro}/lr", "--scale", "2"]),
        ("compare", ["compare", "{img}", "-m", "A={ckpt}", "-s", "2", "--crop", "0,0,4,4", "-o",
                     "{ro}/f.png"]),
    ],
)  # fmt: skip
def test_not_writable_output_is_refused_first(
    tmp_path, ckpt, tiny_root, capsys, command, argv
) -> None:
    hr = tiny_root / "Tiny" / "HR"
    fields = dict(ckpt=ckpt, img=hr / "img00.png", root=tiny_root, hr=hr, ro=READ_ONLY_DIR)
    args = [a.format(**fields) for a in argv]
    before = _snapshot(tmp_path)
    assert main([*args, "-q"] if command in ("upscale", "eval", "degrade") else args) == 2
    line = _error_line(capsys, command)
    assert str(READ_ONLY_DIR) in line and "not writable" in line
    assert _snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only-mode folder")
def test_read_only_mode_folder_is_refused(tmp_path, ckpt, capsys) -> None:
    src = make_image_folder(tmp_path / "imgs", count=1, size=(16, 12))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["upscale", str(ckpt), str(src), "-o", str(locked), "-q"]) == 2
        assert "not writable" in _error_line(capsys, "upscale")
    finally:
        locked.chmod(0o700)


def test_eval_json_and_images_paths_checked_before_work(tmp_path, tiny_root, capsys) -> None:
    base = ["eval", "-m", "bicubic", "-s", "2", "--data-root", str(tiny_root), "--sets", "Tiny"]
    folder = tmp_path / "results"
    folder.mkdir()
    a_file = tmp_path / "note.txt"
    a_file.write_text("keep me")
    before = _snapshot(tmp_path)
    assert main([*base, "--json", str(folder), "-q"]) == 2
    line = _error_line(capsys, "eval")
    assert f"--json {folder}" in line and "is a folder" in line and "results.json" in line
    assert main([*base, "--json", str(a_file / "r.json"), "-q"]) == 2
    assert "note.txt is a file" in _error_line(capsys, "eval")
    assert main([*base, "--save-images", str(a_file), "-q"]) == 2
    assert f"--save-images {a_file}" in _error_line(capsys, "eval")
    assert _snapshot(tmp_path) == before
    assert "PSNR" not in capsys.readouterr().out  # refused before the evaluation
    assert main([*base, "--json", str(tmp_path / "new" / "r.json"), "-q"]) == 0
    assert (tmp_path / "new" / "r.json").is_file()


def test_export_onnx_folder_refused_before_export(tmp_path, ckpt, capsys) -> None:
    folder = tmp_path / "onnx"
    folder.mkdir()
    assert main(["export", str(ckpt), "--onnx", str(folder), "--no-verify"]) == 2
    line = _error_line(capsys, "export")
    assert f"--onnx {folder}" in line and "model.onnx" in line
    assert list(folder.iterdir()) == []
    out = capsys.readouterr().out
    assert "wrote" not in out

    from facd.archs.io import load_model
    from facd.errors import FacdError
    from facd.infer.export import export_onnx

    model, spec = load_model(ckpt)
    with pytest.raises(FacdError, match="is a folder"):
        export_onnx(model, spec, folder)


def test_degrade_output_folder_checked_before_work(tmp_path, capsys) -> None:
    hr = make_image_folder(tmp_path / "hr", count=2, size=(16, 12))
    a_file = tmp_path / "note.txt"
    a_file.write_text("keep me")
    out = tmp_path / "lr"
    out.mkdir()
    (out / "X3").write_text("a file where X3/ goes")
    before = _snapshot(tmp_path)
    assert main(["degrade", str(hr), str(a_file), "--scale", "2", "-q"]) == 2
    assert f"OUT_DIR {a_file}: is a file" in _error_line(capsys, "degrade")
    assert main(["degrade", str(hr), str(out), "--scale", "2", "3", "-q"]) == 2
    assert f"OUT_DIR {out / 'X3'}: is a file" in _error_line(capsys, "degrade")
    assert _snapshot(tmp_path) == before  # X2 was not written either


def test_compare_output_checked_before_work(tmp_path, ckpt, capsys) -> None:
    make_image_folder(tmp_path / "imgs", count=1, size=(16, 12))
    img = tmp_path / "imgs" / "img00.png"
    base = ["compare", str(img), "-m", f"A={ckpt}", "--scale", "2", "--crop", "0,0,4,4"]
    before = _snapshot(tmp_path)
    assert main([*base, "-o", str(tmp_path / "imgs")]) == 2
    assert "is a folder" in _error_line(capsys, "compare")
    assert main([*base, "-o", str(tmp_path / "fig.txt")]) == 2
    assert "unsupported image extension" in _error_line(capsys, "compare")
    assert _snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- item 3


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate "
            "memory)"
        ),
        RuntimeError("[enforce fail at alloc_cpu.cpp:83] not enough memory: you tried to allocate"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    ],
    ids=["cpu-allocator", "cpu-not-enough", "cuda"],
)
def test_upscale_out_of_memory_says_use_tile(tmp_path, ckpt, capsys, monkeypatch, error) -> None:
    def boom(self, x):
        raise error

    monkeypatch.setattr(SRNetwork, "forward", boom)
    monkeypatch.setattr(SRNetwork, "forward_features", boom)
    src = make_image_folder(tmp_path / "imgs", count=1, size=(16, 12))
    out = tmp_path / "out"
    assert main(["upscale", str(ckpt), str(src), "--tile", "0", "-o", str(out), "-q"]) == 2
    line = _error_line(capsys, "upscale")
    assert "out of memory" in line and "--tile " in line and "img00.png" in line
    assert not list(out.glob("*.png")) if out.exists() else True
    assert main(["upscale", str(ckpt), str(src), "--tile", "8", "-o", str(out), "-q"]) == 2
    assert "use a smaller --tile, e.g. 4" in _error_line(capsys, "upscale")


def test_other_runtime_errors_are_not_called_out_of_memory() -> None:
    from facd.infer.tiling import is_out_of_memory

    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert is_out_of_memory(MemoryError())


def test_compare_out_of_memory_says_use_tile(tmp_path, ckpt, capsys, monkeypatch) -> None:
    def boom(self, x):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1")

    monkeypatch.setattr(SRNetwork, "forward", boom)
    monkeypatch.setattr(SRNetwork, "forward_features", boom)
    img = make_image_folder(tmp_path / "imgs", count=1, size=(16, 12)) / "img00.png"
    fig = tmp_path / "fig.png"
    args = ["compare", str(img), "-m", f"A={ckpt}", "-s", "2", "--crop", "0,0,4,4", "-o", str(fig)]
    assert main(args) == 2
    assert "--tile 256" in _error_line(capsys, "compare")
    assert not fig.exists()


# ----------------------------------------------------------------------------- item 4


def test_nan_weights_fail_eval_clearly(tmp_path, nan_ckpt, tiny_root, capsys) -> None:
    json_path = tmp_path / "r.json"
    args = ["eval", "-m", str(nan_ckpt), "--data-root", str(tiny_root), "--sets", "Tiny"]
    assert main([*args, "--json", str(json_path), "-q"]) == 2
    line = _error_line(capsys, "eval")
    assert str(nan_ckpt) in line and "Tiny/img00" in line and "NaN" in line
    assert "dB" not in capsys.readouterr().out
    assert not json_path.exists()


def test_nan_weights_fail_upscale_clearly(tmp_path, nan_ckpt, capsys) -> None:
    src = make_image_folder(tmp_path / "imgs", count=2, size=(16, 12))
    out = tmp_path / "out"
    assert main(["upscale", str(nan_ckpt), str(src), "-o", str(out), "-q"]) == 2
    line = _error_line(capsys, "upscale")
    assert str(nan_ckpt) in line and "img00.png" in line and "NaN" in line
    assert not out.exists() or not list(out.iterdir())


def test_nan_weights_fail_compare_and_api(tmp_path, nan_ckpt, capsys) -> None:
    img = make_image_folder(tmp_path / "imgs", count=1, size=(16, 12)) / "img00.png"
    fig = tmp_path / "fig.png"
    args = ["compare", str(img), "-m", f"bad={nan_ckpt}", "-s", "2", "--crop", "0,0,4,4"]
    assert main([*args, "-o", str(fig)]) == 2
    line = _error_line(capsys, "compare")
    assert "model bad" in line and "img00" in line and "NaN" in line
    assert not fig.exists()
    import facd
    from facd.infer.tiling import NonFiniteOutputError

    up = facd.load(str(nan_ckpt), device="cpu")
    with pytest.raises(NonFiniteOutputError, match="NaN"):
        up(np.zeros((8, 8, 3), np.uint8))


# ----------------------------------------------------------------------------- item 5


def test_compare_options_in_any_order_and_scale_from_checkpoint(tmp_path, ckpt, capsys) -> None:
    imgs = make_image_folder(tmp_path / "imgs", count=2, size=(16, 12))
    a, b = imgs / "img00.png", imgs / "img01.png"
    fig = tmp_path / "fig.png"
    orders = [
        ["--models", f"A={ckpt}", str(a), str(b), "--crop", "0,0,4,4", "-o", str(fig)],
        ["--crop", "0,0,4,4", "-o", str(fig), "-m", f"A={ckpt}", "B=edsr-tiny-s", str(a), str(b)],
        [str(a), "--models", f"A={ckpt}", "-o", str(fig), str(b), "--crop", "0,0,4,4"],
        ["-o", str(fig), str(a), "--crop=0,0,4,4", f"--models=A={ckpt}", str(b)],
    ]
    for order in orders:
        fig.unlink(missing_ok=True)
        assert main(["compare", *order]) == 0, order
        out = capsys.readouterr().out
        assert "shave 2" in out  # the checkpoint's scale, without --scale
        rows = [ln.split()[0] for ln in out.splitlines()[2:]]
        assert rows == ["img00", "img01"], order
        assert fig.is_file()


def test_compare_scale_errors(tmp_path, ckpt, capsys) -> None:
    img = make_image_folder(tmp_path / "imgs", count=1, size=(16, 12)) / "img00.png"
    x4 = make_checkpoint(tmp_path / "x4.safetensors", preset="edsr-tiny-s", scale=4)
    base = ["compare", str(img), "--crop", "0,0,4,4", "-o", str(tmp_path / "f.png")]
    assert main([*base, "-m", "A=edsr-tiny-s"]) == 2
    assert "give --scale" in _error_line(capsys, "compare")
    assert main([*base, "-m", f"A={ckpt}", f"B={x4}"]) == 2
    line = _error_line(capsys, "compare")
    assert "model A is x2" in line and "model B" in line and "x4" in line
    assert main([*base, "-m", f"A={ckpt}", "--scale", "4"]) == 2
    assert "--scale is 4" in _error_line(capsys, "compare")
    # a preset listed before a checkpoint takes the checkpoint's scale
    assert main([*base, "-m", "P=edsr-tiny-s", f"A={ckpt}"]) == 0
    assert "shave 2" in capsys.readouterr().out


def test_group_models_rewrites_only_the_model_list() -> None:
    from facd.commands.compare import group_models

    assert group_models(["-m", "A=x", "B=y", "img.png", "-o", "f.png"]) == [
        "--models=A=x", "--models=B=y", "img.png", "-o", "f.png",
    ]  # fmt: skip
    assert group_models(["--models", "typo", "img.png"]) == ["--models=typo", "img.png"]
    assert group_models(["--mod", "A=x", "--", "B=y"]) == ["--models=A=x", "--", "B=y"]
    assert group_models(["-mA=x", "B=y", "-o", "a=b.png"]) == [
        "--models=A=x", "--models=B=y", "-o", "a=b.png",
    ]  # fmt: skip
    assert group_models(["-m", "-o", "f.png"]) == ["--models", "-o", "f.png"]


# ----------------------------------------------------------------------------- item 6


def _env() -> dict[str, str]:
    """The environment for ``python -m facd`` importing the same facd as this test."""
    import facd

    src = str(Path(facd.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def _run_into_closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m facd ARGS`` with stdout a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "facd", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=_env(),
            timeout=120,
        )
    finally:
        os.close(write_end)


def test_closed_stdout_pipe_exits_quietly(tmp_path) -> None:
    from facd import cli

    assert cli.EXIT_BROKEN_PIPE == EXIT_BROKEN_PIPE
    proc = _run_into_closed_pipe(["methods"], tmp_path)
    assert proc.returncode == EXIT_BROKEN_PIPE
    assert proc.stderr == ""


def test_eval_into_closed_pipe_still_writes_json(tmp_path, tiny_root) -> None:
    args = ["eval", "-m", "bicubic", "-s", "2", "--data-root", str(tiny_root), "--sets", "Tiny"]
    proc = _run_into_closed_pipe([*args, "--json", "r.json", "-q"], tmp_path)
    assert proc.returncode == EXIT_BROKEN_PIPE
    assert proc.stderr == ""
    assert (tmp_path / "r.json").is_file()


def test_pipe_to_head(tmp_path) -> None:
    cmd = f"'{sys.executable}' -m facd methods --json | head -c 1; exit ${{PIPESTATUS[0]}}"
    proc = subprocess.run(
        ["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=120
    )
    assert proc.stdout == "["
    assert proc.returncode in (0, EXIT_BROKEN_PIPE)  # 0 if all output fit before head quit
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


def test_several_values_after_one_set_say_to_repeat_it(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "cfg.yaml", "--set", "train.lr=2e-3", "train.iterations=3000"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "facd train: error: unrecognized arguments: train.iterations=3000; --set takes one "
        "KEY=VALUE: repeat it (--set a=1 --set b=2)"
    )
    with pytest.raises(SystemExit) as exc:  # other strays: the plain argparse message
        main(["train", "cfg.yaml", "stray"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "facd train: error: unrecognized arguments: stray"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["upscale", "m", "x", "-o", "o", "--batch", "0"], "argument --batch: must be >= 1, got 0"),
        (["upscale", "m", "x", "-o", "o", "--tile", "ab"], "--tile: expected an integer, got 'ab'"),
        (["upscale", "m", "x", "-o", "o", "--tile-overlap", "-1"], "must be >= 0, got -1"),
        (["degrade", "hr", "-o", "lr", "--scale", "17"], "must be between 2 and 16, got 17"),
        (["eval", "-m", "bicubic", "--scale", "0"], "argument --scale/-s: must be >= 1, got 0"),
    ],
)
def test_integer_options_are_refused_in_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"facd {argv[0]}: error: ") and err.endswith(message)


def test_exit_status_is_the_error_trees_rule(capsys) -> None:
    """One handler for ``facd`` and the reproduction's job processes: error line and code."""
    from facd.errors import StorageError, exit_status

    def fail(error: BaseException):
        def action() -> None:
            raise error

        return action

    assert exit_status("p", lambda: None) == 0 and exit_status("p", lambda: 1) == 1
    assert exit_status("p", fail(StorageError("disk  full"))) == 4
    assert capsys.readouterr().err == "p: error: disk full\n"
    assert exit_status("p", fail(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "p: interrupted\n"
    with pytest.raises(ValueError):
        exit_status("p", fail(ValueError("a bug keeps its traceback")))
