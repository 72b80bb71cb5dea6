"""A run folder is facd's only if facd marked it (``RUN/.facd-run.json``), and a resumed run
trains from the inputs it started with.

``--resume`` and ``--overwrite`` act only on folders with a manifest (or a facd training state
from before manifests, adopted when its config matches) and ``--overwrite`` deletes only the files
the manifest names; a user's folder (a hand-written ``config.yaml`` and ``metrics.jsonl``) is
refused in every mode and left byte for byte. A resume whose training images or teacher weights
changed since the run started is refused, naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from facd.cli import main
from facd.train.manifest import MANIFEST_NAME, read_manifest
from facd.train.state import state_files

from .helpers import make_checkpoint, make_finished_run, make_image_folder

CONFIG = """\
method: ts
scale: 2
seed: 0
student: {preset: edsr-tiny-s}
teacher: {preset: edsr-tiny-t, weights: teacher.safetensors}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [], every: 0}
train: {iterations: 2, batch_size: 2, log_every: 1, save_every: 1, device: cpu}
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """``run/``: a finished two-iteration distillation run beside its config, data and teacher."""
    root = tmp_path_factory.mktemp("manifest")
    os.environ.setdefault("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))
    make_checkpoint(root / "teacher.safetensors", "edsr-tiny-t", scale=2, seed=4)
    return make_finished_run(root, CONFIG)


@pytest.fixture
def case(base, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "case"
    shutil.copytree(base, root)
    monkeypatch.chdir(root)
    return root


def train(*extra: str, out: str = "run", config: str = "cfg.yaml") -> int:
    return main(["train", config, "--out", out, "--no-progress", *extra])


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("facd train: error:")]
    assert len(lines) == 1, err
    return lines[0].removeprefix("facd train: error: ")


def users_folder(root: Path) -> Path:
    """A folder with a hand-written config.yaml and metrics.jsonl (no facd run)."""
    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(CONFIG)
    (exp / "metrics.jsonl").write_text('{"my": "own log"}\n')
    return exp


# ------------------------------------------------------------------ whose folder it is


def test_a_run_names_every_file_it_wrote_in_its_manifest(case):
    run = case / "run"
    doc = read_manifest(run)
    assert doc is not None
    written = {
        str(p.relative_to(run))
        for p in run.rglob("*")
        if p.is_file() and p.name not in (MANIFEST_NAME, ".facd.lock")
    }
    assert written
    assert written <= set(doc["files"]), written - set(doc["files"])
    assert {"checkpoints/state-00000002.pt", "last.safetensors", "config.yaml"} <= written
    assert [f["files"] for f in doc["inputs"]["images"]] == [
        {p.name: p.stat().st_size for p in sorted((case / "data").iterdir())}
    ]
    teacher = case / "teacher.safetensors"
    assert doc["inputs"]["teacher"]["sha256"] == hashlib.sha256(teacher.read_bytes()).hexdigest()


def test_the_config_given_is_never_replaced(case, capsys):
    """``facd train exp/config.yaml --out exp``: the user's config and log stay as they are."""
    exp = users_folder(case)
    before = snapshot(exp)
    for flags in ((), ("--resume",), ("--overwrite",)):
        assert train(*flags, out="exp", config="exp/config.yaml") == 2
        line = error_line(capsys)
        assert line.startswith("CONFIG exp/config.yaml is the config.yaml that facd train writes")
        assert snapshot(exp) == before


def test_a_users_folder_is_refused_in_every_mode_and_kept(case, capsys):
    exp = users_folder(case)
    before = snapshot(exp)
    assert train(out="exp") == 2
    assert error_line(capsys) == (
        "exp is not empty and was not made by facd: it holds files facd did not write "
        "(config.yaml, metrics.jsonl); choose another --out"
    )
    assert train("--resume", out="exp") == 2
    assert error_line(capsys).startswith(
        "--resume: exp holds no facd run to continue (no .facd-run.json, no training state)"
    )
    assert train("--overwrite", out="exp") == 2
    assert error_line(capsys).startswith(
        "--overwrite: exp holds no facd run (no .facd-run.json, no training state), so nothing "
        "there is facd's to replace"
    )
    assert snapshot(exp) == before


def test_resume_into_an_empty_or_missing_folder_starts_a_run(case):
    """What job scripts rely on: ``--resume`` always works on a folder facd may write."""
    (case / "empty").mkdir()
    assert train("--resume", out="empty") == 0
    assert train("--resume", out="missing") == 0
    assert read_manifest(case / "missing") is not None


def test_overwrite_deletes_only_the_files_the_manifest_names(case, capsys):
    run = case / "run"
    planted = {
        "tb/events.out.tfevents.1.otherhost.7": "another tool's log",
        "notes.txt": "mine",
    }
    for rel, text in planted.items():
        (run / rel).write_text(text)
    assert train("--overwrite", "--set", "seed=5") == 0
    capsys.readouterr()
    for rel, text in planted.items():
        assert (run / rel).read_text() == text
    doc = read_manifest(run)
    assert doc is not None and not set(planted) & set(doc["files"])


def test_a_state_file_the_manifest_does_not_name_is_refused(case, capsys):
    run = case / "run"
    shutil.copy(state_files(run)[0], run / "checkpoints/state-00000009.pt")
    before = snapshot(run)
    for flags in (("--resume",), ("--overwrite",)):
        assert train(*flags) == 2
        assert "state-00000009.pt is named like a training state but" in error_line(capsys)
    assert snapshot(run) == before


# ------------------------------------------------------------- runs from before manifests


def old_style_run(case: Path) -> Path:
    """A finished run as facd wrote it before run manifests: the same files, no manifest."""
    run = case / "run"
    (run / MANIFEST_NAME).unlink()
    return run


def test_a_run_from_before_manifests_is_adopted_on_resume(case, capsys):
    run = old_style_run(case)
    mine = run / "notes.txt"
    mine.write_text("keep")
    assert train("--resume", "--set", "train.iterations=3") == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if ln.startswith("note: run is a facd run from before")]
    assert len(notes) == 1, err
    assert "resumed from iteration 2" in err
    doc = read_manifest(run)
    assert doc is not None and "inputs" in doc
    assert {"checkpoints/state-00000003.pt", "config.yaml", "last.safetensors"} <= set(doc["files"])
    assert "notes.txt" not in doc["files"] and mine.read_text() == "keep"
    # adopted: the next resume checks the inputs it recorded
    (case / "data/img00.png").unlink()
    assert train("--resume", "--set", "train.iterations=4") == 2
    assert "1 training image(s) removed (data/img00.png)" in error_line(capsys)


def test_a_run_from_before_manifests_with_another_config_is_refused(case, capsys):
    run = old_style_run(case)
    before = snapshot(run)
    assert train("--resume", "--set", "train.lr=0.5") == 2
    assert error_line(capsys).startswith("--resume with a config that differs from run/config.yaml")
    assert snapshot(run) == before


def test_a_state_from_before_manifests_without_its_config_is_refused(case, capsys):
    run = old_style_run(case)
    (run / "config.yaml").unlink()
    assert train("--resume") == 2
    assert error_line(capsys).startswith(
        "--resume: run holds a training state but neither .facd-run.json nor config.yaml"
    )


# ------------------------------------------------------------------ changed inputs


def test_resume_refuses_added_and_removed_images(case, capsys):
    run = case / "run"
    make_image_folder(case / "extra", count=2, size=(40, 48), seed=9)
    shutil.copy(case / "extra/img00.png", case / "data/img07.png")
    (case / "data/img01.png").unlink()
    before = snapshot(run)
    assert train("--resume", "--set", "train.iterations=3") == 2
    line = error_line(capsys)
    assert line.startswith("--resume: the training inputs changed since run was started: ")
    assert "1 training image(s) added (data/img07.png)" in line
    assert "1 training image(s) removed (data/img01.png)" in line
    assert line.endswith("restore them, or start a new run (--overwrite, or another --out)")
    assert snapshot(run) == before


def test_resume_refuses_an_image_changed_in_place(case, capsys):
    shutil.copy(case / "data/img02.png", case / "data/img00.png")
    assert train("--resume", "--set", "train.iterations=3") == 2
    assert "1 training image(s) changed (data/img00.png)" in error_line(capsys)


def test_resume_refuses_a_teacher_retrained_at_the_same_path(case, capsys):
    make_checkpoint(case / "teacher.safetensors", "edsr-tiny-t", scale=2, seed=99)
    assert train("--resume", "--set", "train.iterations=3") == 2
    line = error_line(capsys)
    assert "the teacher's weights in teacher.safetensors changed (sha256 " in line


def test_a_manifest_without_an_input_record_resumes_with_a_note(case, capsys):
    run = case / "run"
    doc = read_manifest(run)
    assert doc is not None
    del doc["inputs"]
    (run / MANIFEST_NAME).write_text(json.dumps(doc))
    assert train("--resume", "--set", "train.iterations=3") == 0
    err = capsys.readouterr().err
    assert "note: run has no record of its training inputs; recorded them" in err
    assert "inputs" in (read_manifest(run) or {})


def test_resume_with_unchanged_inputs_continues(case, capsys):
    assert train("--resume", "--set", "train.iterations=3") == 0
    assert "resumed from iteration 2" in capsys.readouterr().err
