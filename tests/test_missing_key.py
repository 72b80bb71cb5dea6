"""A checkpoint missing a tensor is refused with the tensor's name (not only a count)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from facd.cli import main

from .conftest import REPO

ASSET = REPO / "src" / "facd" / "assets" / "teacher-edsr-tiny-t-x4.safetensors"


def test_the_missing_tensor_is_named(tmp_path: Path, capsys) -> None:
    with safe_open(str(ASSET), "pt") as f:
        meta = f.metadata()
    sd = load_file(str(ASSET))
    del sd["body.0.body.0.weight"]
    save_file(sd, str(tmp_path / "m.safetensors"), meta)
    torch.save(sd, tmp_path / "m.pt")
    for name in ("m.safetensors", "m.pt"):
        assert main(["info", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "missing ['body.0.body.0.weight']" in err
