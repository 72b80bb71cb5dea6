"""Checkpoint files are untrusted input: their metadata, tensor shapes and bytes are checked
before anything is built, and every defect is one line naming the file (exit 2).

- metadata that claims a bigger network than the tensors hold is refused before any memory is
  allocated (``build_model`` is watched);
- malformed metadata (a table of cases) never surfaces as a JSON/Type/Key/ZeroDivision error;
- a corrupt ``.pt`` is called corrupt, and only a pickled class/function is called "pickled
  objects other than tensors";
- absurd shapes in official-layout files are a ``CheckpointError``, not an ``IndexError``.
"""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import facd
import facd.archs
from facd.archs import build_model, preset_spec
from facd.archs.io import ARCH_METADATA_KEY, load_model
from facd.cli import main
from facd.errors import CheckpointError

from .helpers import make_image_folder

SPEC = preset_spec("edsr-tiny-s", 2)


def _state_dict(preset: str = "edsr-tiny-s", scale: int = 2) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(preset_spec(preset, scale))
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def _arch(**changes: object) -> dict:
    data = json.loads(SPEC.to_json())
    data.update(changes)
    return data


def write_with_metadata(path: Path, arch_text: str, sd: dict | None = None) -> Path:
    """Real ``edsr-tiny-s`` x2 tensors, with ``arch_text`` as the ``facd.arch`` metadata."""
    meta = {ARCH_METADATA_KEY: arch_text, "format": "facd"}
    save_file(_state_dict() if sd is None else sd, str(path), metadata=meta)
    return path


@pytest.fixture
def watch_builds(monkeypatch) -> list:
    """Record every spec built with real memory; fail on one wider than the files hold.

    A build on the meta device allocates nothing and is allowed.
    """
    built: list = []
    real = facd.archs.build_model

    def guarded(spec):
        on_meta = torch.empty(0).device.type == "meta"
        if not on_meta:
            built.append(spec)
            assert spec.n_feats <= 32 and spec.n_blocks <= 6, f"built {spec} from a tiny file"
        return real(spec)

    monkeypatch.setattr(facd.archs, "build_model", guarded)
    return built


def one_error_line(capsys, command: str, path: Path) -> str:
    """The single stderr line, with no traceback, naming ``path``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"facd {command}: error: ")
    assert path.name in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------- metadata that does not match the tensors


def test_metadata_claiming_a_huge_network_is_refused_before_building(
    tmp_path, capsys, watch_builds
):
    path = write_with_metadata(tmp_path / "claims.safetensors", json.dumps(
        _arch(n_feats=4096, n_blocks=64)))  # fmt: skip
    assert path.stat().st_size < 200_000
    assert main(["info", str(path)]) == 2
    line = one_error_line(capsys, "info", path)
    assert "n_feats = 4096" in line and "16" in line
    assert watch_builds == []


@pytest.mark.parametrize(
    ("field", "claimed"), [("n_blocks", 64), ("scale", 4), ("arch", "rcan"), ("n_feats", 8)]
)
def test_each_metadata_field_is_checked_against_the_shapes(tmp_path, field, claimed):
    changes: dict = {field: claimed}
    if claimed == "rcan":
        changes.update(n_groups=1, reduction=4)
    path = write_with_metadata(tmp_path / "m.safetensors", json.dumps(_arch(**changes)))
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    text = str(info.value)
    assert str(path) in text and field in text and repr(claimed) in text


def _entry_points(tmp_path: Path, model: Path) -> dict[str, list[str]]:
    make_image_folder(tmp_path / "img", count=1, size=(24, 24))
    hr = tmp_path / "img" / "img00.png"
    return {
        "info": ["info", str(model)],
        "eval": ["eval", "--model", str(model), "--data-root", str(tmp_path), "--sets", "img"],
        "upscale": ["upscale", str(model), str(hr), "-o", str(tmp_path / "out")],
        "export": ["export", str(model), "--onnx", str(tmp_path / "m.onnx")],
        "compare": [
            "compare",
            str(hr),
            "--models",
            f"M={model}",
            "--scale",
            "2",
            "--crop",
            "0,0,8,8",
            "-o",
            str(tmp_path / "fig.png"),
        ],  # fmt: skip
    }


@pytest.mark.parametrize("command", ["info", "eval", "upscale", "export", "compare"])
def test_every_cli_entry_point_checks_before_building(tmp_path, capsys, watch_builds, command):
    path = write_with_metadata(tmp_path / "claims.safetensors", json.dumps(
        _arch(n_feats=4096, n_blocks=64)))  # fmt: skip
    argv = _entry_points(tmp_path, path)[command]
    assert main(argv) == 2
    line = one_error_line(capsys, command, path)
    assert "n_feats = 4096" in line
    assert watch_builds == []


def test_python_api_and_training_teacher_check_before_building(
    tmp_path, capsys, watch_builds, monkeypatch
):
    path = write_with_metadata(tmp_path / "teacher.safetensors", json.dumps(
        _arch(n_feats=4096, n_blocks=64)))  # fmt: skip
    with pytest.raises(CheckpointError, match="n_feats = 4096"):
        facd.load(str(path))
    monkeypatch.setenv("FACD_CACHE", str(tmp_path / "cache"))
    make_image_folder(tmp_path / "data", count=2, size=(24, 24))
    (tmp_path / "cfg.yaml").write_text(
        "method: ts\nscale: 2\nseed: 0\n"
        "teacher: {preset: edsr-tiny-s, weights: teacher.safetensors}\n"
        "student: {preset: edsr-tiny-s}\n"
        "data: {train_dirs: [data], patch_size: 8}\nval: {sets: [], every: 0}\n"
        "train: {iterations: 1, batch_size: 1, device: cpu}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["train", "cfg.yaml", "--out", "run", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if "error:" in ln] == [
        next(ln for ln in err.splitlines() if "teacher.safetensors" in ln and "n_feats" in ln)
    ]
    assert all(spec.n_feats == 16 for spec in watch_builds)  # the student only


def test_sparse_keys_cannot_ask_for_a_huge_network(tmp_path, watch_builds):
    """Metadata and detected counts agree (64 blocks), but the file holds far fewer tensors."""
    sd = _state_dict()
    sd["body.63.body.0.weight"] = sd["body.0.body.0.weight"].clone()
    claims = json.dumps(_arch(n_blocks=64))
    for path in (
        tmp_path / "sparse.pt",
        write_with_metadata(tmp_path / "s.safetensors", claims, sd),
    ):
        if path.suffix == ".pt":
            torch.save(sd, path)
        with pytest.raises(CheckpointError, match="refusing to build it") as info:
            load_model(path)
        assert str(path) in str(info.value) and "64 ResBlocks" in str(info.value)
    assert watch_builds == []


# ----------------------------------------------------------------------- malformed metadata

MALFORMED = {
    "not JSON": "{arch: edsr, scale: 2",
    "JSON list": "[1, 2, 3]",
    "JSON string": '"edsr"',
    "string for a number": json.dumps(_arch(n_feats="16")),
    "float for an int": json.dumps(_arch(n_feats=16.0)),
    "null for a number": json.dumps(_arch(n_blocks=None)),
    "bool for a number": json.dumps(_arch(n_feats=True)),
    "zero channels": json.dumps(_arch(n_feats=0)),
    "negative blocks": json.dumps(_arch(n_blocks=-4)),
    "huge scale": json.dumps(_arch(scale=10**30)),
    "float scale": json.dumps(_arch(scale=1e308)),
    "unknown arch": json.dumps(_arch(arch="vdsr")),
    "arch not a string": json.dumps(_arch(arch=["edsr"])),
    "missing arch": json.dumps({k: v for k, v in _arch().items() if k != "arch"}),
    "missing scale": json.dumps({k: v for k, v in _arch().items() if k != "scale"}),
    "unknown field": json.dumps(_arch(n_layers=3)),
    "NaN res_scale": json.dumps(_arch(res_scale=float("nan"))),
    "infinite rgb_range": '{"arch": "edsr", "scale": 2, "n_feats": 16, "rgb_range": 1e999}',
    "huge int res_scale": json.dumps(_arch(res_scale=10**400)),
    "zero rgb_range": json.dumps(_arch(rgb_range=0)),
    "one colour": json.dumps(_arch(n_colors=1)),
    "rcan zero reduction": json.dumps(_arch(arch="rcan", n_groups=1, reduction=0)),
    "deeply nested": "[" * 100_000 + "]" * 100_000,
    "binary junk": "\x00\x01\x02\ufffd",
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_metadata_is_one_line_through_the_cli(tmp_path, capsys, watch_builds, case):
    path = write_with_metadata(tmp_path / "bad-meta.safetensors", MALFORMED[case])
    assert main(["info", str(path)]) == 2
    line = one_error_line(capsys, "info", path)
    assert ARCH_METADATA_KEY in line
    assert len(line) < 400
    assert watch_builds == []


# --------------------------------------------------------------------------- corrupt .pt


def _good_pt() -> bytes:
    buf = io.BytesIO()
    torch.save(_state_dict(), buf)
    return buf.getvalue()


def _damaged_member() -> bytes:
    src = zipfile.ZipFile(io.BytesIO(_good_pt()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("data.pkl"):
                data = data[:20] + bytes([167] * 10) + data[30:]
            dst.writestr(name, data)
    return out.getvalue()


def _random_bytes() -> bytes:
    rng = random.Random(0)
    return bytes(rng.randrange(256) for _ in range(4096))


def _legacy_truncated() -> bytes:
    buf = io.BytesIO()
    torch.save(_state_dict(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


CORRUPT = {
    "truncated zip": lambda: _good_pt()[: len(_good_pt()) // 2],
    "random bytes": _random_bytes,
    "damaged zip member": _damaged_member,
    "empty file": lambda: b"",
    "text file": lambda: b"hello world\n",
    "truncated legacy file": _legacy_truncated,
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_pt_is_called_corrupt(tmp_path, capsys, case):
    path = tmp_path / "model.pt"
    path.write_bytes(CORRUPT[case]())
    assert main(["info", str(path)]) == 2
    line = one_error_line(capsys, "info", path)
    assert "corrupt" in line
    assert "pickled objects" not in line


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


def test_only_a_pickled_global_is_called_pickled_objects(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"head.0.weight": torch.zeros(1), "x": _Payload()}, path)
    assert main(["info", str(path)]) == 2
    line = one_error_line(capsys, "info", path)
    assert "refused to load: it holds pickled objects other than tensors" in line
    assert "GLOBAL" in line and "corrupt" not in line


# ------------------------------------------------------------ absurd shapes in official files


def _absurd(change: str) -> dict[str, torch.Tensor]:
    sd = _state_dict()
    if change == "head with 0 channels":
        sd["head.0.weight"] = torch.zeros(0, 3, 3, 3)
    elif change == "head not 4-D":
        sd["head.0.weight"] = torch.zeros(16)
    elif change == "upsampler 0-D":
        sd["tail.0.0.weight"] = torch.tensor(1.0)
    elif change == "upsampler 0 outputs":
        sd["tail.0.0.weight"] = torch.zeros(0, 16, 3, 3)
    elif change == "upsampler 2-D":
        sd["tail.0.0.weight"] = torch.zeros(64, 16)
    elif change == "rcan attention 0-D":
        sd = _state_dict("rcan-tiny-s")
        sd["body.0.body.0.body.3.conv_du.0.weight"] = torch.tensor(2.0)
    elif change == "rcan attention 0 channels":
        sd = _state_dict("rcan-tiny-s")
        sd["body.0.body.0.body.3.conv_du.0.weight"] = torch.zeros(0, 16, 1, 1)
    elif change == "rcan attention wider than the features":
        sd = _state_dict("rcan-tiny-s")
        sd["body.0.body.0.body.3.conv_du.0.weight"] = torch.zeros(48, 16, 1, 1)
    elif change == "huge upsampler index":
        sd["tail.0." + "9" * 5000 + ".weight"] = torch.zeros(64, 16, 3, 3)
    elif change == "integer weights":
        sd["head.0.bias"] = torch.zeros(16, dtype=torch.int64)
    return sd


ABSURD = [
    "head with 0 channels",
    "head not 4-D",
    "upsampler 0-D",
    "upsampler 0 outputs",
    "upsampler 2-D",
    "rcan attention 0-D",
    "rcan attention 0 channels",
    "rcan attention wider than the features",
    "huge upsampler index",
    "integer weights",
]


@pytest.mark.parametrize("change", ABSURD)
def test_absurd_shapes_in_official_files_are_checkpoint_errors(tmp_path, change, watch_builds):
    path = tmp_path / "official.pt"
    torch.save(_absurd(change), path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_valid_files_still_load(tmp_path):
    """The checks accept what facd writes and official-layout files without metadata."""
    for preset, scale in (("edsr-tiny-s", 3), ("rcan-tiny-s", 4), ("edsr-tiny-t", 8)):
        sd = _state_dict(preset, scale)
        pt = tmp_path / f"{preset}-x{scale}.pt"
        torch.save({k: v for k, v in sd.items() if not k.startswith("sub_mean")}, pt)
        st = tmp_path / f"{preset}-x{scale}.safetensors"
        spec = preset_spec(preset, scale)
        save_file(sd, str(st), metadata={ARCH_METADATA_KEY: spec.to_json()})
        for path in (pt, st):
            model, found = load_model(path)
            assert (found.arch, found.scale, found.n_feats, found.n_blocks) == (
                spec.arch, scale, spec.n_feats, spec.n_blocks)  # fmt: skip
            assert torch.equal(model.state_dict()["head.0.weight"], sd["head.0.weight"])


def test_pisr_stage_files_with_damaged_metadata_are_checkpoint_errors(tmp_path: Path) -> None:
    """PISR's teacher-stage files are untrusted too: bad JSON or a damaged header is one line."""
    from facd.distill.pisr import (
        ENCODER_METADATA_KEY,
        HREncoder,
        check_teacher_stage,
        load_encoder_into,
    )

    enc_path = tmp_path / "pisr_encoder.safetensors"
    save_file({"x": torch.zeros(1)}, str(enc_path), metadata={ENCODER_METADATA_KEY: "{not json"})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_encoder_into(HREncoder(2, 4, 2), enc_path)
    bad = tmp_path / "teacher.safetensors"
    bad.write_bytes(b"\x00" * 5)
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        check_teacher_stage(str(bad))
