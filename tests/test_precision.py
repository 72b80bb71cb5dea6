"""Mixed precision, channels_last and torch.compile on CPU.

bf16 autocast and fp16 autocast with ``torch.amp.GradScaler("cpu")`` both run on CPU, so the
same code paths as on a GPU are exercised here (only the speed differs). torch.compile is
tested with the ``aot_eager`` backend (traces the student, hooks included, in seconds); the
``inductor`` backend compiles C++ and takes about a minute on a small CPU, so its test runs
only with ``FACD_TEST_INDUCTOR=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from facd.cli import main
from facd.train.config import load_config
from facd.train.loop import run_training
from facd.train.state import load_state, state_files
from facd.train.trainer import Trainer

from .helpers import make_checkpoint, make_image_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("precision")
    make_image_folder(root / "bench/Tiny/HR", count=2, size=(24, 28), seed=3)
    return {
        "bench": root / "bench",
        "data": make_image_folder(root / "data", count=3, size=(40, 48)),
        "teacher": make_checkpoint(root / "teacher.safetensors", "edsr-tiny-t", 2),
    }


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))


def overrides(assets: dict[str, Path], iterations: int = 3, *extra: str) -> list[str]:
    return [
        "scale=2",
        f"data.train_dirs=[{assets['data']}]",
        "data.patch_size=8",
        "train.batch_size=2",
        f"train.iterations={iterations}",
        "train.log_every=1",
        "train.save_every=3",
        "train.device=cpu",
        "val.sets=[]",
        f"teacher.weights={assets['teacher']}",
        *extra,
    ]


def config(assets, name: str = "fakd", iterations: int = 3, *extra: str):
    over = overrides(assets, iterations, *extra)
    if name == "scratch":
        over = [o for o in over if not o.startswith("teacher.")]
    return load_config(REPO / f"configs/tiny/{name}.yaml", over)


def losses(run: Path) -> list[float]:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in recs if "loss" in r]


def student_output_dtype(trainer: Trainer) -> torch.dtype:
    seen: list[torch.dtype] = []
    handle = trainer.model.student.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    trainer.train_step(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16))
    handle.remove()
    return seen[0]


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_autocast_runs_the_student_in_low_precision(assets, tmp_path, precision, dtype):
    rcfg = config(assets, "fakd", 3, f"train.precision={precision}")
    trainer = Trainer(rcfg, tmp_path)
    assert student_output_dtype(trainer) == dtype
    assert trainer.scaler.is_enabled() == (precision == "fp16")


def test_bf16_follows_fp32_closely(assets, tmp_path):
    run_training(config(assets, "fakd", 3), tmp_path / "fp32", progress=False)
    run_training(
        config(assets, "fakd", 3, "train.precision=bf16"), tmp_path / "bf16", progress=False
    )
    a, b = losses(tmp_path / "fp32"), losses(tmp_path / "bf16")
    assert all(torch.isfinite(torch.tensor(b)))
    assert max(abs(x - y) / x for x, y in zip(a, b, strict=True)) < 0.05  # bf16: ~3 digits


def test_fp16_grad_scaler_state_is_saved_and_resume_is_exact(assets, tmp_path):
    rcfg = config(assets, "scratch", 6, "train.precision=fp16")
    run_training(rcfg, tmp_path / "once", progress=False)
    run_training(rcfg, tmp_path / "twice", progress=False, stop_after=3)
    scaler = load_state(state_files(tmp_path / "twice")[0])["scaler"]
    assert scaler["scale"] > 0 and "_growth_tracker" in scaler
    run_training(rcfg, tmp_path / "twice", resume=True, progress=False)
    a, b = (
        load_file(tmp_path / "once/last.safetensors"),
        load_file(tmp_path / "twice/last.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    final = load_state(state_files(tmp_path / "once")[0])["scaler"]
    assert final == load_state(state_files(tmp_path / "twice")[0])["scaler"]


def test_precision_flag_is_a_shortcut_for_the_config_key(assets, tmp_path, capsys):
    over = [a for o in overrides(assets, 1) if not o.startswith("teacher.") for a in ("--set", o)]
    out = tmp_path / "run"
    code = main(["train", str(REPO / "configs/tiny/scratch.yaml"), "--out", str(out),
                 "--no-progress", "--precision", "bf16", *over])  # fmt: skip
    assert code == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["precision"] == "bf16"
    assert "precision bf16" in capsys.readouterr().err


def test_channels_last_gives_the_same_training(assets, tmp_path):
    run_training(config(assets, "fakd", 3), tmp_path / "plain", progress=False)
    rcfg = config(assets, "fakd", 3, "train.channels_last=true")
    trainer = Trainer(rcfg, tmp_path / "unused")
    conv = trainer.model.student.head[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    run_training(rcfg, tmp_path / "cl", progress=False)
    a, b = losses(tmp_path / "plain"), losses(tmp_path / "cl")
    assert max(abs(x - y) / x for x, y in zip(a, b, strict=True)) < 1e-5
    wa, wb = (
        load_file(tmp_path / "plain/last.safetensors"),
        load_file(tmp_path / "cl/last.safetensors"),
    )
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-5


def test_compiled_student_keeps_its_taps_and_its_results(assets, tmp_path, monkeypatch):
    """FAKD reads features through hooks on the student's blocks: they must survive compile."""
    monkeypatch.setenv("FACD_COMPILE_BACKEND", "aot_eager")
    run_training(config(assets, "fakd", 3), tmp_path / "eager", progress=False)
    val = [f"val.data_root={assets['bench']}", "val.sets=[Tiny]"]  # validated eagerly
    rcfg = config(assets, "fakd", 3, "train.compile=true", *val)
    summary = run_training(rcfg, tmp_path / "compiled", progress=False)
    assert summary["val"]["Tiny"]["psnr_y"] > 10
    a, b = losses(tmp_path / "eager"), losses(tmp_path / "compiled")
    assert max(abs(x - y) / x for x, y in zip(a, b, strict=True)) < 1e-5
    # plain state-dict keys: the weights load anywhere, no '_orig_mod.' prefix
    keys = load_file(tmp_path / "compiled/last.safetensors").keys()
    assert keys == load_file(tmp_path / "eager/last.safetensors").keys()


def test_compile_failure_is_one_clear_line(assets, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACD_COMPILE_BACKEND", "no-such-backend")
    over = [a for o in overrides(assets, 1) for a in ("--set", o)]
    code = main(["train", str(REPO / "configs/tiny/fakd.yaml"), "--out", str(tmp_path / "run"),
                 "--no-progress", "--set", "train.compile=true", *over])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("facd train: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert "'train.compile': torch.compile with backend 'no-such-backend' failed" in lines[0]
    assert "set train.compile=false" in lines[0]


def test_compile_failing_at_the_first_step_is_one_clear_line(assets, tmp_path, monkeypatch, capsys):
    """Backends fail lazily (e.g. inductor without a C++ compiler): reported as one line."""
    from torch._dynamo import list_backends, register_backend

    def broken(gm, example_inputs):
        raise RuntimeError("C++ compiler not found")

    if "facd-test-broken" not in list_backends(exclude_tags=()):
        register_backend(broken, name="facd-test-broken")
    monkeypatch.setenv("FACD_COMPILE_BACKEND", "facd-test-broken")
    over = [a for o in overrides(assets, 1) for a in ("--set", o)]
    code = main(["train", str(REPO / "configs/tiny/fakd.yaml"), "--out", str(tmp_path / "run"),
                 "--no-progress", "--set", "train.compile=true", *over])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("facd train: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert "backend 'facd-test-broken' failed" in lines[0]
    assert "C++ compiler not found" in lines[0]
    assert not list((tmp_path / "run").glob("checkpoints/*"))


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FACD_TEST_INDUCTOR") != "1", reason="set FACD_TEST_INDUCTOR=1 (about a minute)"
)
def test_inductor_compile_on_cpu(assets, tmp_path, monkeypatch):
    monkeypatch.delenv("FACD_COMPILE_BACKEND", raising=False)
    run_training(config(assets, "fakd", 2), tmp_path / "eager", progress=False)
    run_training(config(assets, "fakd", 2, "train.compile=true"), tmp_path / "ind", progress=False)
    a, b = losses(tmp_path / "eager"), losses(tmp_path / "ind")
    assert max(abs(x - y) / x for x, y in zip(a, b, strict=True)) < 1e-4
