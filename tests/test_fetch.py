"""``facd fetch`` against a local HTTP server on 127.0.0.1 (no test reaches the internet).

The server (``http.server`` in a thread) serves fixture files made here, honours ``Range``
(206 with ``Content-Range``, 416 past the end), and can answer an error status or cut a
response in half. ``FACD_FETCH_MIRROR`` points the real catalogue entries at it; fixture
entries are added to the catalogue for the cases that need a known checksum.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import facd
from facd import fileio as fileio_module
from facd.archs import build_model, preset_spec
from facd.cli import main
from facd.errors import FacdError
from facd.fetch.catalogue import CATALOGUE, Source
from facd.fetch.download import ATTEMPTS
from facd.fetch.install import fetch

SETS = ("Set5", "Set14", "B100", "Urban100")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}
        self.cuts: dict[str, int] = {}  # file -> responses still to cut in half
        self.redirects: dict[str, str] = {}  # path -> path it moved to (302, as GitHub does)
        self.requests: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        srv = self.server
        name = self.path.lstrip("/")
        wanted = self.headers.get("Range")
        srv.requests.append((name, wanted))
        if name in srv.status:
            self.send_error(srv.status[name])
            return
        if name in srv.redirects:
            self.send_response(302)
            self.send_header("Location", f"{srv.url}/{srv.redirects[name]}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if name not in srv.files:
            self.send_error(404)
            return
        data = srv.files[name]
        start = 0
        if wanted:
            match = re.fullmatch(r"bytes=(\d+)-", wanted)
            assert match, wanted
            start = int(match[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cuts.get(name, 0) > 0:
            srv.cuts[name] -= 1
            body = body[: len(body) // 2]  # the connection closes (HTTP/1.0) short of the length
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: _Server) -> Path:
    folder = tmp_path / "facd-home"
    monkeypatch.setenv("FACD_HOME", str(folder))
    monkeypatch.setenv("FACD_FETCH_MIRROR", server.url)
    monkeypatch.delenv("FACD_DATA_ROOT", raising=False)
    return folder


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _weights_bytes(preset: str = "edsr-tiny-s", scale: int = 2, seed: int = 0) -> bytes:
    """A small network's state dict in the official key layout, as torch.save writes it."""
    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(build_model(preset_spec(preset, scale)).state_dict(), buf)
    return buf.getvalue()


def _fixture_entry(monkeypatch: pytest.MonkeyPatch, data: bytes, published: bool = True) -> Source:
    src = Source(
        "fixture-x2", "weights", "test weights", "fixture_x2.pt", "http://127.0.0.1:9/none",
        "tests/test_fetch.py", "MIT", "1 kB", sha256=_sha256(data) if published else None,
        sha256_from="the test",
    )  # fmt: skip
    monkeypatch.setitem(CATALOGUE, src.name, src)
    return src


def _png(size: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _benchmark_tar() -> bytes:
    return _tar({f"benchmark/{s}/HR/img{i}.png": _png(24, 10 * n + i)
                 for n, s in enumerate(SETS) for i in range(2)})  # fmt: skip


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The error message: one line, the last on stderr (notes such as "downloading" precede)."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("facd fetch: error: ")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    return errors[0]


# -- resume ------------------------------------------------------------------------------------


def test_a_cut_download_is_resumed_with_range_and_loads(server, home, monkeypatch) -> None:
    data = _weights_bytes()
    src = _fixture_entry(monkeypatch, data)
    server.files[src.file] = data
    server.cuts[src.file] = 1
    path = fetch(src.name, progress=False)
    assert path == home / "weights" / src.file and path.read_bytes() == data
    half = len(data) // 2
    assert server.requests == [(src.file, None), (src.file, f"bytes={half}-")]
    assert not (home / "downloads" / f"{src.file}.part").exists()
    # the installed file is what facd loads: same outputs as the network that was saved
    torch.manual_seed(0)
    original = build_model(preset_spec("edsr-tiny-s", 2)).eval()
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(facd.load(path, device="cpu").model(lr), original(lr), atol=1e-6)


def test_a_download_cut_every_time_stops_and_the_next_run_resumes(
    server, home, monkeypatch, capsys
) -> None:
    data = _weights_bytes(seed=1)
    src = _fixture_entry(monkeypatch, data)
    server.files[src.file] = data
    server.cuts[src.file] = ATTEMPTS
    assert main(["fetch", src.name, "-q"]) == 2
    line = _one_error_line(capsys)
    assert "run the same command again to resume" in line
    part = home / "downloads" / f"{src.file}.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not (home / "weights" / src.file).exists()
    server.requests.clear()
    assert main(["fetch", src.name, "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "weights" / src.file)
    assert server.requests == [(src.file, f"bytes={kept}-")]
    assert (home / "weights" / src.file).read_bytes() == data and not part.exists()


def test_resume_follows_a_redirect_like_github_releases(server, home, capsys) -> None:
    src = CATALOGUE["swinir-s-x4"]
    data = _weights_bytes("swinir-tiny-s", 4, seed=7)
    server.redirects[src.file] = "storage/blob"
    server.files["storage/blob"] = data
    server.cuts["storage/blob"] = 1
    assert main(["fetch", src.name, "-q"]) == 0
    assert Path(capsys.readouterr().out.strip()).read_bytes() == data
    half = len(data) // 2
    assert server.requests == [(src.file, None), ("storage/blob", None),
                               (src.file, f"bytes={half}-"), ("storage/blob", f"bytes={half}-")]  # fmt: skip


# -- checksums ---------------------------------------------------------------------------------


def test_a_checksum_mismatch_deletes_the_download(server, home, capsys) -> None:
    src = CATALOGUE["edsr-baseline-x2"]  # published prefix 1bc95232, from the file name
    wrong = b"not the EDSR weights" * 100
    assert not _sha256(wrong).startswith(src.sha256 or "")
    server.files[src.file] = wrong
    assert main(["fetch", src.name, "-q"]) == 2
    line = _one_error_line(capsys)
    assert "checksum mismatch for edsr-baseline-x2" in line and src.sha256 in line
    assert "the download was deleted" in line
    assert not (home / "weights" / src.file).exists()
    assert not (home / "downloads" / f"{src.file}.part").exists()


def test_trust_on_first_use_records_and_then_checks(server, home, monkeypatch, capsys) -> None:
    data = _weights_bytes(seed=2)
    src = _fixture_entry(monkeypatch, data, published=False)
    server.files[src.file] = data
    assert main(["fetch", src.name, "-q"]) == 0
    assert "no checksum is published; recorded its SHA-256" in capsys.readouterr().err
    assert json.loads((home / "checksums.json").read_text()) == {src.name: _sha256(data)}
    server.files[src.file] = _weights_bytes(seed=3)  # the file changed on the server
    assert main(["fetch", src.name, "-q", "--force"]) == 2
    assert "checksum mismatch" in _one_error_line(capsys)
    assert (home / "weights" / src.file).read_bytes() == data  # the installed file is kept


# -- server and network errors -------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_a_server_error_is_one_line_naming_the_status(server, home, capsys, status) -> None:
    src = CATALOGUE["swinir-s-x2"]
    server.status[src.file] = status
    assert main(["fetch", src.name, "-q"]) == 2
    line = _one_error_line(capsys)
    assert f"answered HTTP {status}" in line and f"{server.url}/{src.file}" in line
    assert f"facd fetch {src.name} --from FILE" in line
    assert not (home / "weights").exists()


def test_no_network_says_where_to_download_by_hand(home, monkeypatch, capsys) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FACD_FETCH_MIRROR", f"http://127.0.0.1:{port}")
    assert main(["fetch", "edsr-x4", "-q"]) == 2
    line = _one_error_line(capsys)
    assert f"cannot reach 127.0.0.1:{port}" in line
    assert CATALOGUE["edsr-x4"].url in line and "facd fetch edsr-x4 --from FILE" in line


# -- full disk ---------------------------------------------------------------------------------


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, path: str | Path, mode: str, room: int) -> None:
        self.file = open(path, mode)  # noqa: SIM115 (closed in __exit__)
        self.room = room

    def write(self, data: bytes) -> int:
        fits = data[: max(self.room, 0)]
        self.file.write(fits)
        self.room -= len(fits)
        if len(fits) < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def test_a_full_disk_keeps_only_the_resumable_part(server, home, monkeypatch, capsys) -> None:
    data = _weights_bytes(seed=4)
    src = _fixture_entry(monkeypatch, data)
    server.files[src.file] = data
    room = len(data) // 3
    monkeypatch.setattr(fileio_module, "open", lambda p, m: _FullDisk(p, m, room), raising=False)
    assert main(["fetch", src.name, "-q"]) == 4
    line = _one_error_line(capsys)
    assert "No space left on device" in line and "free some space" in line
    part = home / "downloads" / f"{src.file}.part"
    assert sorted(p.name for p in home.rglob("*") if p.is_file()) == [part.name]
    assert part.read_bytes() == data[:room]
    monkeypatch.delattr(fileio_module, "open")
    server.requests.clear()
    assert main(["fetch", src.name, "-q"]) == 0
    assert server.requests == [(src.file, f"bytes={room}-")]
    assert (home / "weights" / src.file).read_bytes() == data


def test_a_full_disk_while_extracting_leaves_no_partial_folder(
    server, home, monkeypatch, capsys
) -> None:
    server.files["benchmark.tar"] = _benchmark_tar()

    def full(f, data: bytes) -> None:  # every file contents write of facd.fileio fails
        raise OSError(errno.ENOSPC, "No space left on device")

    write_all = fileio_module._write_all
    monkeypatch.setattr(fileio_module, "_write_all", full)
    assert main(["fetch", "benchmark", "-q"]) == 4
    assert "free some space" in _one_error_line(capsys)
    assert list((home / "data").iterdir()) == []  # the staging folder is gone
    # the complete download is kept; the next run asks past its end (416) and installs it
    monkeypatch.setattr(fileio_module, "_write_all", write_all)
    server.requests.clear()
    assert main(["fetch", "benchmark", "-q"]) == 0
    size = len(server.files["benchmark.tar"])
    assert server.requests == [("benchmark.tar", f"bytes={size}-")]
    assert all(len(list((home / "data" / s / "HR").iterdir())) == 2 for s in SETS)


# -- archives ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "archive, bad",
    [
        (_tar({"benchmark/Set5/HR/a.png": b"x", "benchmark/../../escaped.txt": b"x"}), "../"),
        (_zip({"benchmark/Set5/HR/a.png": b"x", "/tmp/escaped.txt": b"x"}), "/tmp/"),
        (_tar({"benchmark/Set5/HR/a.png": b"x"}, links={"benchmark/Set5/HR/b.png": "/etc/passwd"}),
         "b.png"),
    ],
    ids=["dot-dot", "absolute", "symlink"],
)  # fmt: skip
def test_an_archive_escaping_its_folder_is_refused(
    server, home, tmp_path, capsys, archive, bad
) -> None:
    server.files["benchmark.tar"] = archive
    assert main(["fetch", "benchmark", "-q"]) == 2
    line = _one_error_line(capsys)
    assert bad in line and "the archive is refused and nothing was extracted" in line
    assert not (home / "data" / "Set5").exists() and not list(tmp_path.rglob("escaped.txt"))
    assert not (home / "downloads" / "benchmark.tar.part").exists()
    assert not (home / "checksums.json").exists()  # a refused file is not trusted


def test_benchmark_installs_the_eval_layout_and_eval_finds_it(
    server, home, tmp_path, monkeypatch, capsys
) -> None:
    server.files["benchmark.tar"] = _benchmark_tar()
    assert main(["fetch", "benchmark", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "data")
    for s in SETS:
        assert sorted(p.name for p in (home / "data" / s / "HR").iterdir()) == [
            "img0.png",
            "img1.png",
        ]
    assert list(home.rglob(".staging-*")) == [] and list(home.rglob("*.part")) == []
    work = tmp_path / "a" / "b"  # no ../shared/data here: eval falls back to the fetched sets
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", "bicubic", "--scale", "2", "-q", "--json", str(out)]) == 0
    sets = json.loads(out.read_text())["sets"]
    assert sorted(sets) == sorted(SETS) and all(r["images"] == 2 for r in sets.values())
    assert main(["fetch", "benchmark", "-q"]) == 0  # installed: nothing downloaded again
    assert [r for r in server.requests if r[0] == "benchmark.tar"] == [("benchmark.tar", None)]


def test_div2k_zip_installs_a_training_folder(server, home, capsys) -> None:
    images = {f"DIV2K_train_HR/{i:04d}.png": _png(32, i) for i in (1, 2, 3)}
    server.files["DIV2K_train_HR.zip"] = _zip(images)
    assert main(["fetch", "div2k", "-q"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder == home / "data" / "DIV2K_train_HR"
    assert {f"DIV2K_train_HR/{p.name}": p.read_bytes() for p in folder.iterdir()} == images


def test_eval_without_any_data_root_says_how_to_fetch(home, tmp_path, monkeypatch, capsys) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["eval", "--model", "bicubic", "--scale", "2"]) == 2
    line = capsys.readouterr().err.strip()
    assert "facd fetch benchmark" in line and str(home / "data") in line


# -- manual entries ----------------------------------------------------------------------------


def test_a_manual_entry_says_where_to_download(home, capsys) -> None:
    assert main(["fetch", "rcan-x4"]) == 2
    line = _one_error_line(capsys)
    assert "https://www.dropbox.com/" in line and "facd fetch rcan-x4 --from FILE" in line


def test_manual_weights_install_from_the_published_zip(home, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("FACD_FETCH_MIRROR")
    weights = _weights_bytes("rcan-tiny-s", 4, seed=5)
    zipped = tmp_path / "models_ECCV2018RCAN.zip"
    zipped.write_bytes(_zip({"models_ECCV2018RCAN/RCAN_BIX4.pt": weights}))
    assert main(["fetch", "rcan-x4", "--from", str(zipped)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == home / "weights" / "RCAN_BIX4.pt" and path.read_bytes() == weights
    assert facd.load(path, device="cpu").spec.arch == "rcan"
    assert main(["fetch", "rcan-x2", "--from", str(zipped)]) == 2
    assert "holds no file named RCAN_BIX2.pt" in _one_error_line(capsys)
    other = tmp_path / "RCAN_BIX4.pt"  # a different file for the same name: refused
    other.write_bytes(_weights_bytes("rcan-tiny-s", 4, seed=6))
    assert main(["fetch", "rcan-x4", "--from", str(other)]) == 2
    assert "checksum mismatch" in _one_error_line(capsys)
    assert path.read_bytes() == weights and other.exists()


def test_list_shows_every_entry_with_size_licence_and_checksum(home, capsys) -> None:
    assert main(["fetch", "--list"]) == 0
    out = capsys.readouterr().out
    for src in CATALOGUE.values():
        row = next(line for line in out.splitlines() if line.startswith(src.name + " "))
        assert "~" + src.size in row and src.licence in row
        assert ("sha256 " + src.sha256) in row if src.sha256 else "none published" in row
    assert out.count("manual") >= 3 and "Apache-2.0" in out and "MIT" in out


def test_unknown_and_manual_names_are_refused_before_any_download(
    server, home, monkeypatch, capsys
) -> None:
    assert main(["fetch", "edsr-x4", "no-such-thing"]) == 2
    assert "unknown name 'no-such-thing'" in _one_error_line(capsys)
    monkeypatch.delenv("FACD_FETCH_MIRROR")
    assert main(["fetch", "edsr-x4", "rcan-x4"]) == 2
    assert "rcan-x4 cannot be downloaded automatically" in _one_error_line(capsys)
    assert server.requests == []
    with pytest.raises(FacdError, match="unknown name"):
        fetch("no-such-thing")


def test_training_validates_on_fetched_sets_when_the_configured_root_lacks_them(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """``val.data_root`` left at a folder that is not there: the sets ``facd fetch benchmark``
    installed are used, and the log says so."""
    import json as _json

    from .helpers import make_image_folder

    home = tmp_path / "home"
    monkeypatch.setenv("FACD_HOME", str(home))
    make_image_folder(home / "data" / "Tiny" / "HR", count=2, size=(48, 40))
    train = make_image_folder(tmp_path / "train", count=3)
    out = tmp_path / "run"
    argv = [
        "train", "configs/tiny/scratch.yaml", "--out", str(out),
        "--set", f"data.train_dirs=[{train}]", "--set", "data.patch_size=8",
        "--set", f"val.data_root={tmp_path / 'nowhere'}", "--set", "val.sets=[Tiny]",
        "--set", "train.iterations=2", "--set", "train.batch_size=2",
    ]  # fmt: skip
    assert main(argv) == 0
    assert f"val: Tiny from {home / 'data'}" in capsys.readouterr().err
    last = _json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "Tiny" in last["val"]
