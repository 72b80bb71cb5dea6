"""docs/extending.md: a method added from outside src/ trains through the public API and
through ``facd train --plugin``; the page's excerpts are the example module's code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .helpers import isolate_registries, make_checkpoint, make_image_folder

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DOC = REPO / "docs" / "extending.md"


@pytest.fixture
def registries(monkeypatch):
    """Registrations made by the test are undone afterwards (other tests list every method)."""
    isolate_registries(monkeypatch)
    monkeypatch.setattr(sys, "path", [str(EXAMPLES), *sys.path])
    sys.modules.pop("my_method", None)
    yield
    sys.modules.pop("my_method", None)


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_doc_excerpts_are_the_example_module():
    source = (EXAMPLES / "my_method.py").read_text()
    excerpts = [b for b in _blocks() if b.startswith("# examples/my_method.py\n")]
    assert len(excerpts) == 3
    for block in excerpts:
        for part in block.split("\n", 1)[1].split("\n\n\n"):  # top-level pieces
            lines = [ln for ln in part.splitlines() if ln.strip()]
            assert "\n".join(lines) in "\n".join(ln for ln in source.splitlines() if ln.strip())


def test_new_method_trains_through_the_api_as_documented(registries, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(EXAMPLES)
    make_image_folder(tmp_path / "hr_images", count=3, size=(48, 48))
    make_checkpoint(tmp_path / "teacher.safetensors", "edsr-tiny-t", 4)
    usage = [b for b in _blocks() if not b.startswith("# examples/my_method.py\n")]
    assert len(usage) == 2  # the images, then the loop
    namespace: dict = {}
    for block in usage:
        exec(compile(block, "docs/extending.md", "exec"), namespace)  # noqa: S102
    out, distiller = namespace["out"], namespace["distiller"]
    assert set(out.terms) == {"l1_gt", "fitnet"} and distiller.weights["fitnet"] == 1e-3
    assert distiller.iteration == 2
    assert any(k.startswith("terms.fitnet.regressor") for k in distiller.state_dict())
    from facd.commands.methods import method_rows

    (row,) = method_rows(["fitnet"])
    assert row["label"] == "FitNet" and row["needs"] == ["teacher features", "student features"]


def test_new_method_through_facd_train_plugin(tmp_path):
    data = make_image_folder(tmp_path / "hr", count=3, size=(48, 48))
    teacher = make_checkpoint(tmp_path / "teacher.safetensors", "edsr-tiny-t", 4)
    cfg = {
        "method": "fitnet",
        "scale": 4,
        "student": {"preset": "edsr-tiny-s"},
        "teacher": {"preset": "edsr-tiny-t", "weights": str(teacher)},
        "data": {"train_dirs": [str(data)], "patch_size": 8},
        "val": {"sets": [], "every": 0},
        "train": {"iterations": 2, "batch_size": 4, "log_every": 1, "save_every": 2},
    }
    config = tmp_path / "fitnet.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(REPO / "src")])}
    cmd = [sys.executable, "-m", "facd", "train", str(config), "--out", str(tmp_path / "run"),
           "--no-progress", "--plugin", "my_method", "--set", "loss.fitnet.weight=0.01"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0.01 x fitnet[tap -1, 1x1 regressor, MSE]" in proc.stderr
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["loss"]["fitnet"] == {"weight": 0.01, "tap": -1}
    missing = subprocess.run(
        cmd[:-4] + ["--plugin", "no_such_plugin"], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 2
    assert "--plugin no_such_plugin: cannot import it" in missing.stderr
    assert "Traceback" not in missing.stderr
