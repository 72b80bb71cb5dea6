"""Configs that compose: every shipped YAML file loads; ``base:`` includes; paths relative to the
config file; shipped assets by name; fingerprints free of any machine's layout; error classes.

``tests/data/configs_resolved_ea.json`` holds the config (``to_dict(load_config(f).config)``,
loss overrides unresolved) of every shipped config file as it was before the files were
rewritten into bases: each file must still load to exactly that, from the repository root,
except where a default has changed on purpose since (``CHANGED_DEFAULTS``) and the file does not
set the key: there it loads to today's default.
"""

from __future__ import annotations

import ast
import copy
import json
import os
from pathlib import Path

import pytest

from facd.assets import QUICKSTART_TEACHER, resolve_asset, shipped_assets
from facd.cli import main
from facd.errors import ConfigError, FacdError
from facd.train.config import (
    Config,
    absolute_paths,
    load_config,
    portable_paths,
    read_config_file,
)
from facd.typedconfig import path_keys, to_dict

REPO = Path(__file__).resolve().parents[1]
EXPECTED = json.loads((REPO / "tests/data/configs_resolved_ea.json").read_text())
ALL_YAML = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").rglob("*.yaml"))
TRAIN_YAML = [p for p in ALL_YAML if not p.startswith("configs/repro/")]
# configs/repro/base/ holds parts of protocols (composed by 'base:'), not protocols
PROTOCOL_BASES = [p for p in ALL_YAML if p.startswith("configs/repro/base/")]
PROTOCOLS = [p for p in ALL_YAML if p.startswith("configs/repro/") and p not in PROTOCOL_BASES]


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------------- every shipped file


@pytest.mark.parametrize("name", TRAIN_YAML)
def test_every_config_file_loads_and_validates(name: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository root: paths follow the file
    rcfg = load_config(REPO / name)
    assert rcfg.config.scale in (2, 3, 4)
    rcfg.to_yaml()


@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_protocol_file_loads_and_validates(name: str, monkeypatch) -> None:
    from facd.reproduce.protocol import load_protocol

    monkeypatch.chdir(REPO)
    proto = load_protocol(name)
    assert proto.rows


def test_every_protocol_base_is_composed_by_a_protocol() -> None:
    """A part in configs/repro/base/ is checked through the protocols that name it."""
    import yaml

    named = set()
    for name in PROTOCOLS:
        bases = yaml.safe_load((REPO / name).read_text()).get("base") or []
        for b in [bases] if isinstance(bases, str) else bases:
            named.add(((REPO / name).parent / b).resolve().relative_to(REPO).as_posix())
    assert PROTOCOL_BASES and set(PROTOCOL_BASES) <= named


def test_the_fixture_covers_every_file_that_existed() -> None:
    missing = sorted(set(EXPECTED) - set(TRAIN_YAML))
    assert not missing, f"shipped configs that no longer exist: {missing}"


#: Defaults changed on purpose since the fixture was recorded: (section, key) -> the old default.
CHANGED_DEFAULTS = {("train", "channels_last"): False}


def expected_today(name: str) -> dict:
    """The fixture's config of ``name``, with today's default for each changed default that the
    file (its bases merged) leaves unset."""
    expected = copy.deepcopy(EXPECTED[name])
    written = read_config_file(REPO / name)
    for (section, key), old in CHANGED_DEFAULTS.items():
        assert expected[section][key] == old
        if key not in (written.get(section) or {}):
            expected[section][key] = getattr(getattr(Config(), section), key)
    return expected


def without_none(x: object) -> object:
    """``x`` without None values (an optional key added later, unset, changes no meaning)."""
    if isinstance(x, dict):
        return {k: without_none(v) for k, v in x.items() if v is not None}
    return x


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_old_config_names_load_to_the_same_config(name: str, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    got = to_dict(load_config(REPO / name).config)
    assert without_none(got) == without_none(expected_today(name))
    assert (got["teacher"] is None) == (EXPECTED[name]["teacher"] is None)


def test_configs_mean_the_same_files_from_any_directory(tmp_path: Path, monkeypatch) -> None:
    """From another directory, each path key names the same file as from the repository root."""
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    for name in EXPECTED:
        got = absolute_paths(to_dict(load_config(REPO / name).config))
        monkeypatch.chdir(REPO)
        want = absolute_paths(expected_today(name))
        monkeypatch.chdir(elsewhere)
        assert without_none(got) == without_none(want), name


def test_tiny_configs_find_the_data_and_the_shipped_teacher_from_anywhere(
    tmp_path: Path, monkeypatch, data_root: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(REPO / "configs/tiny/facd.yaml").config
    assert all(Path(d).is_dir() for d in cfg.data.train_dirs)
    assert Path(cfg.val.data_root).resolve() == data_root.resolve()
    assert cfg.teacher is not None and cfg.teacher.weights is not None
    assert Path(cfg.teacher.weights).resolve() == resolve_asset(QUICKSTART_TEACHER).resolve()


def test_paper_presets_are_bases_plus_one_short_file_per_row() -> None:
    rows = sorted((REPO / "configs/paper").glob("*.yaml"))
    bases = sorted((REPO / "configs/paper/base").glob("*.yaml"))
    assert len(rows) == 120 and len(bases) == 7
    for row in rows:
        lines = [ln for ln in row.read_text().splitlines() if ln.strip() and ln[0] != "#"]
        assert lines[0].startswith("base: base/"), row.name
        assert len(lines) <= 6, row.name


def test_tiny_presets_are_one_base_plus_their_method() -> None:
    rows = sorted((REPO / "configs/tiny").glob("*.yaml"))
    assert len(rows) >= 19
    sizes = {}
    for row in rows:
        lines = [ln for ln in row.read_text().splitlines() if ln.strip() and ln[0] != "#"]
        assert lines[:2] == ["base: base/tiny.yaml", f"method: {row.stem}"], row.name
        sizes[row.stem] = len(lines)
    extra = {k: n for k, n in sizes.items() if n > 2}
    assert set(extra) == {"csd", "fcd-infonce", "pisr", "pisr-teacher", "scratch"}, extra


# ---------------------------------------------------------------------- base: includes


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bases_merge_in_order_then_the_files_own_keys(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "b/one.yaml", "seed: 1\ntrain: {iterations: 10, batch_size: 4}\n")
    write(tmp_path / "b/two.yaml", "seed: 2\ntrain: {iterations: 20}\nscale: 2\n")
    cfg = write(
        tmp_path / "c.yaml",
        "base: [b/one.yaml, b/two.yaml]\nmethod: scratch\ntrain: {lr: 1.0e-3}\nscale: 3\n",
    )
    c = load_config(cfg).config
    assert (c.seed, c.scale) == (2, 3)  # two over one, the file over both
    assert (c.train.iterations, c.train.batch_size, c.train.lr) == (20, 4, 1e-3)  # key by key


def test_a_base_of_a_base_and_null_drops_a_section(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "x/y/root.yaml", "teacher: {preset: edsr-tiny-t, weights: t.pt}\n")
    write(tmp_path / "x/mid.yaml", "base: y/root.yaml\nmethod: facd\n")
    c = load_config(write(tmp_path / "top.yaml", "base: x/mid.yaml\n")).config
    assert c.method == "facd" and c.teacher is not None
    assert Path(c.teacher.weights or "").resolve() == tmp_path / "x/y/t.pt"  # the base's folder
    c = load_config(write(tmp_path / "top2.yaml", "base: x/mid.yaml\nmethod: scratch\nteacher:\n"))
    assert c.config.teacher is None


def test_paths_are_relative_to_the_file_that_wrote_them(tmp_path: Path, monkeypatch) -> None:
    run_from = tmp_path / "somewhere"
    run_from.mkdir()
    monkeypatch.chdir(run_from)
    write(tmp_path / "cfgs/base/common.yaml", "val: {data_root: ../../bench}\n")
    cfg = write(
        tmp_path / "cfgs/run.yaml",
        "base: base/common.yaml\n"
        "data: {train_dirs: [imgs, /abs/imgs], exclude: split.txt}\n"
        "student: {preset: edsr-tiny-s, weights: w/s.pt}\n"
        "loss: {csd: {vgg_weights: vgg.pth}, vid: {teacher_encoder: enc.safetensors}}\n",
    )
    c = load_config(cfg).config
    where = tmp_path / "cfgs"
    assert [Path(d).resolve() for d in c.data.train_dirs] == [where / "imgs", Path("/abs/imgs")]
    assert c.data.train_dirs[1] == "/abs/imgs"  # absolute paths stay as written
    assert Path(c.data.exclude or "").resolve() == where / "split.txt"
    assert Path(c.val.data_root).resolve() == tmp_path / "bench"
    assert Path(c.student.weights or "").resolve() == where / "w/s.pt"
    assert Path(c.loss["csd"]["vgg_weights"]).resolve() == where / "vgg.pth"
    assert Path(c.loss["vid"]["teacher_encoder"]).resolve() == where / "enc.safetensors"


def test_paths_given_with_set_stay_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path / "deep/cfg.yaml", "data: {train_dirs: [imgs]}\n")
    c = load_config(cfg, ["data.train_dirs=[mine]", "val.data_root=bench"]).config
    assert c.data.train_dirs == ["mine"] and c.val.data_root == "bench"
    assert load_config(cfg).config.data.train_dirs == [os.path.join("deep", "imgs")]
    c = load_config(None, [], base={"data": {"train_dirs": ["rel"]}}).config
    assert c.data.train_dirs == ["rel"]  # a dict's paths: relative to the current directory


def test_every_path_key_is_marked() -> None:
    keys = set(path_keys(Config))
    assert keys >= {
        "student.weights",
        "teacher.weights",
        "data.train_dirs",
        "data.exclude",
        "val.data_root",
        "loss.csd.vgg_weights",
        "loss.vid.teacher_encoder",
    }
    assert "method" not in keys and "train.device" not in keys


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"a.yaml": "base: a.yaml\n"}, "include each other (a.yaml -> a.yaml)"),
        (
            {"a.yaml": "base: b.yaml\n", "b.yaml": "base: [c.yaml]\n", "c.yaml": "base: a.yaml\n"},
            "include each other (a.yaml -> b.yaml -> c.yaml -> a.yaml)",
        ),
        ({"a.yaml": "base: nope.yaml\n"}, "base config 'nope.yaml' not found"),
        ({"a.yaml": "base: {x: 1}\n"}, "'base' must be a config file name or a list of them"),
        ({"a.yaml": "base: [b.yaml, 3]\n", "b.yaml": "seed: 1\n"}, "'base' must be"),
    ],
)
def test_bad_bases_are_one_line_errors(
    tmp_path: Path, monkeypatch, capsys, files: dict[str, str], needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "a.yaml")
    assert needle in one_line(err.value)
    assert main(["train", "a.yaml", "--out", "run"]) == 2
    out = capsys.readouterr().err.strip().splitlines()
    assert len(out) == 1 and needle in out[0] and not (tmp_path / "run").exists()


def test_a_diamond_of_bases_is_not_a_cycle(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "d.yaml", "seed: 7\n")
    write(tmp_path / "b.yaml", "base: d.yaml\n")
    write(tmp_path / "c.yaml", "base: d.yaml\n")
    assert load_config(write(tmp_path / "a.yaml", "base: [b.yaml, c.yaml]\n")).config.seed == 7


def test_read_config_file_gives_the_merged_raw_mapping(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c/base.yaml", "data: {train_dirs: [imgs]}\n")
    raw = read_config_file(write(tmp_path / "c/top.yaml", "base: base.yaml\nseed: 3\n"))
    assert raw == {"data": {"train_dirs": [os.path.join("c", "imgs")]}, "seed": 3}


# ---------------------------------------------------------------------- shipped assets


def test_asset_names_resolve_inside_the_package() -> None:
    import facd

    path = resolve_asset(QUICKSTART_TEACHER)
    assert path.is_file() and path.parent == Path(facd.__file__).parent / "assets"
    assert "teacher-edsr-tiny-t-x4.safetensors" in shipped_assets()
    assert resolve_asset("some/file.pt") == Path("some/file.pt")  # not an asset: a path


@pytest.mark.parametrize(
    "text",
    ["facd-asset:nope.pt", "facd-asset:../errors.py", "facd-asset:", "facd-asset:__init__.py"],
)
def test_unknown_assets_are_one_line_errors_listing_the_shipped_ones(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_asset(text, "teacher.weights")
    msg = one_line(err.value)
    assert msg.startswith("'teacher.weights': ") and QUICKSTART_TEACHER in msg


def test_an_asset_in_a_config_or_a_set_names_the_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path / "c.yaml", "student: {preset: edsr-tiny-s, weights: facd-asset:x.pt}\n")
    with pytest.raises(ConfigError, match=r"^'student.weights': no shipped asset named 'x.pt'"):
        load_config(cfg)
    base = {"student": {"preset": "edsr-tiny-s"}}
    c = load_config(None, [f"student.weights={QUICKSTART_TEACHER}"], base=base).config
    assert Path(c.student.weights or "").resolve() == resolve_asset(QUICKSTART_TEACHER).resolve()


# ---------------------------------------------------------------------- fingerprints


@pytest.fixture
def mini(monkeypatch):
    from facd.reproduce.protocol import load_protocol
    from facd.reproduce.runner import Reproduction

    monkeypatch.chdir(REPO)
    proto = load_protocol("configs/repro/mini-x4.yaml")
    return proto, Reproduction(proto, Path("runs/repro-mini-x4"), log=lambda m: None)


def test_published_results_are_still_current(mini) -> None:
    """Every published result of the fast protocol matches its row's fingerprint today."""
    proto, rep = mini
    checked = 0
    for row in proto.rows:
        for seed in [] if row.skip else row.seeds:
            doc_path = Path(proto.results_dir) / f"{row.name}-s{seed}.json"
            if doc_path.is_file():
                doc = json.loads(doc_path.read_text())
                assert doc["fingerprint"] == rep.configs.row_fingerprint(row, seed), doc_path.name
                checked += 1
    assert checked >= 20


def test_fingerprints_hold_no_absolute_path_and_ignore_the_path_form(mini, monkeypatch) -> None:
    from facd.reproduce import runconfig

    proto, rep = mini
    row = proto.row("facd")
    seen: list[str] = []
    real = runconfig.fingerprint
    monkeypatch.setattr(
        runconfig, "fingerprint", lambda obj: seen.append(json.dumps(obj)) or real(obj)
    )
    before = rep.configs.row_fingerprint(row, 0)
    assert seen and all(str(REPO) not in s and str(REPO.parent) not in s for s in seen)
    # the same folders written as absolute paths: the same fingerprint
    shared = proto.shared
    monkeypatch.setattr(proto, "shared", absolute_paths(shared))
    assert proto.shared["data"]["train_dirs"][0].startswith("/")
    assert rep.configs.row_fingerprint(row, 0) == before


def test_portable_paths_are_posix_and_relative_to_the_root(tmp_path: Path) -> None:
    data = {"data": {"train_dirs": [str(tmp_path / "a/b")]}, "val": {"data_root": "rel"}}
    out = portable_paths(data, tmp_path)
    assert out["data"]["train_dirs"] == ["a/b"]
    assert out["val"]["data_root"] == Path(os.path.relpath(Path.cwd() / "rel", tmp_path)).as_posix()
    assert portable_paths({"teacher": {"weights": QUICKSTART_TEACHER}})["teacher"] == {
        "weights": QUICKSTART_TEACHER
    }


# ---------------------------------------------------------------------- error classes


def test_every_error_class_is_defined_in_errors_py() -> None:
    """No FacdError subclass is defined outside facd/errors.py (the old names re-export it)."""
    import facd.errors as errors

    names = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, FacdError)}
    outside = []
    for path in (REPO / "src/facd").rglob("*.py"):
        if path.name == "errors.py" and path.parent.name == "facd":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & names:
                    outside.append(f"{path.relative_to(REPO)}:{node.name}")
    assert not outside, outside
    from facd.infer.tiling import NonFiniteOutputError
    from facd.train.rundir import RunDirBusy
    from facd.train.state import StorageError
    from facd.train.trainer import TrainingDiverged

    assert StorageError is errors.StorageError and StorageError.exit_code == 4
    assert TrainingDiverged is errors.TrainingDiverged and TrainingDiverged.exit_code == 3
    assert RunDirBusy is errors.RunDirBusy and issubclass(RunDirBusy, errors.ConfigError)
    assert NonFiniteOutputError is errors.NonFiniteOutputError
    for name in names:  # the exit-code table documents every class
        assert name in (errors.__doc__ or ""), name


def test_a_protocols_teacher_config_keeps_its_paths(mini, data_root: Path) -> None:
    """The teacher's training config (retrained when its weights are absent) is read with its
    paths relative to its own folder, so they name the same folders from the protocol's side."""
    proto, _ = mini
    cfg = proto.teacher_train_config()
    dirs = cfg["data"]["train_dirs"]
    assert [Path(d).resolve() for d in dirs] == [
        (data_root / "T91/HR").resolve(),
        (data_root / "BSD200/HR").resolve(),
    ]
    assert Path(cfg["val"]["data_root"]).resolve() == data_root.resolve()


def test_model_arguments_accept_shipped_asset_names(capsys) -> None:
    """facd.load, facd info (and every command that loads a model) read facd-asset: names."""
    import facd
    from facd.cli import main

    up = facd.load("facd-asset:teacher-edsr-tiny-t-x4.safetensors", device="cpu")
    assert up.scale == 4
    assert main(["info", "facd-asset:teacher-edsr-tiny-t-x4.safetensors"]) == 0
    assert "EDSR x4" in capsys.readouterr().out
    assert main(["info", "facd-asset:nope.safetensors"]) == 2
    assert "no shipped asset named 'nope.safetensors'" in capsys.readouterr().err
