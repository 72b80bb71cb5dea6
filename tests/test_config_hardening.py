"""Config validation against hostile or mistyped input: ranges, notation, merges, YAML bombs.

Every refusal is checked through the CLI: exit code 2, one error line that names the key (or the
file), the value and the allowed range, and no run folder written.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from facd import typedconfig
from facd.cli import main
from facd.errors import ConfigError
from facd.train.config import config_schema, load_config
from facd.typedconfig import apply_overrides

REPO = Path(__file__).resolve().parents[1]

CONFIG = """\
method: scratch
scale: 4
seed: 0
student: {preset: edsr-tiny-s}
data: {train_dirs: [images], patch_size: 16}
val: {sets: [Set5], every: 5, max_images: 2}
train: {iterations: 10, batch_size: 8, lr: 1.0e-3, log_every: 5, save_every: 5}
"""


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cfg.yaml"
    path.write_text(CONFIG)
    return path


def refused(capsys: pytest.CaptureFixture, config: Path, *sets: str) -> str:
    """Run ``facd train`` expecting a config error; return its one line. Nothing is written."""
    args = ["train", str(config), "--out", "run"]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("facd train: error: ")
    assert not (config.parent / "run").exists()
    return lines[0]


# ---------------------------------------------------------------- items 1, 2, 6: ranges


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("seed=-1", ["'seed' must be >= 0, got -1", "[0, 4294967295]"]),
        ("seed=1e20", ["'seed' must be an integer, got str '1e20'", "[0, 4294967295]"]),
        ("seed=1.0e+20", ["'seed' must be an integer, got float", "[0, 4294967295]"]),
        ("seed=100000000000000000000", ["'seed' must be <= 4294967295", "[0, 4294967295]"]),
        (
            "train.batch_size=100000000",
            ["'train.batch_size' must be <= 65536, got 100000000", "[1, 65536]"],
        ),
        ("train.lr=.inf", ["'train.lr' must be a finite number, got inf", "(0, 1]"]),
        ("train.lr=.nan", ["'train.lr' must be a finite number, got nan", "(0, 1]"]),
        ("train.lr=-.inf", ["'train.lr' must be a finite number, got -inf"]),
        ("train.lr=2", ["'train.lr' must be <= 1, got 2.0", "(0, 1]"]),
        ("train.lr_gamma=-1", ["'train.lr_gamma' must be > 0, got -1.0", "(0, 1]"]),
        ("train.lr_gamma=1.5", ["'train.lr_gamma' must be <= 1, got 1.5", "(0, 1]"]),
        ("val.max_images=-3", ["'val.max_images' must be >= 0, got -3"]),
        ("val.every=-1", ["'val.every' must be >= 0, got -1"]),
        ("train.iterations=0", ["'train.iterations' must be >= 1, got 0", "[1, 1000000000]"]),
        ("train.iterations=1e5", ["'train.iterations' must be an integer, got str '1e5'"]),
        ("train.log_every=0", ["'train.log_every' must be >= 1, got 0"]),
        ("train.save_every=0", ["'train.save_every' must be >= 1, got 0"]),
        ("train.keep_checkpoints=0", ["'train.keep_checkpoints' must be >= 1, got 0"]),
        ("train.iters_per_epoch=0", ["'train.iters_per_epoch' must be >= 1, got 0"]),
        ("train.lr_milestones=[10, -2]", ["'train.lr_milestones[1]' must be >= 0, got -2"]),
        ("train.grad_clip=-1", ["'train.grad_clip' must be >= 0, got -1.0"]),
        ("train.grad_clip=.inf", ["'train.grad_clip' must be a finite number, got inf"]),
        ("train.max_skips=-1", ["'train.max_skips' must be >= 0, got -1"]),
        ("data.patch_size=2", ["'data.patch_size' must be >= 4, got 2", "[4, 1024]"]),
        ("data.num_workers=-1", ["'data.num_workers' must be >= 0, got -1", "[0, 256]"]),
        ("student.n_feats=0", ["'student.n_feats' must be >= 1, got 0", "[1, 4096]"]),
        ("student.res_scale=.nan", ["'student.res_scale' must be a finite number, got nan"]),
        ("scale=5", ["'scale' must be one of 2, 3, 4, 8, got 5"]),
        ("loss.pixel.gt_weight=.inf", ["'loss.pixel.gt_weight' must be a finite number"]),
    ],
)
def test_numeric_key_out_of_range_is_one_line_naming_key_value_range(
    cfg: Path, capsys: pytest.CaptureFixture, override: str, needles: list[str]
) -> None:
    line = refused(capsys, cfg, override)
    for needle in needles:
        assert needle in line, line


def test_range_is_checked_in_config_files_too(cfg: Path, capsys: pytest.CaptureFixture) -> None:
    cfg.write_text(CONFIG.replace("seed: 0", "seed: -1").replace("lr: 1.0e-3", "lr: .inf"))
    assert "'seed' must be >= 0, got -1" in refused(capsys, cfg)


def test_bounds_are_in_the_schema_and_the_committed_schema_is_current() -> None:
    schema = config_schema()
    props = schema["properties"]
    assert props["seed"]["minimum"] == 0 and props["seed"]["maximum"] == 2**32 - 1
    train = props["train"]["properties"]
    assert train["batch_size"]["maximum"] == 65536
    assert train["lr"]["exclusiveMinimum"] == 0 and train["lr"]["maximum"] == 1
    assert train["lr_gamma"]["exclusiveMinimum"] == 0 and train["lr_gamma"]["maximum"] == 1
    assert props["val"]["properties"]["max_images"]["minimum"] == 0
    assert train["lr_milestones"]["items"]["minimum"] == 0
    committed = json.loads((REPO / "docs/config-schema.json").read_text())
    assert set(committed["properties"]) == set(schema["properties"])  # every section, loss too
    assert committed == schema, "regenerate: facd train --schema > docs/config-schema.json"


# ---------------------------------------------------------------- item 3: number notation


@pytest.mark.parametrize(
    ("raw", "expected"), [("5e-4", 5e-4), ("1E-3", 1e-3), ("+2e-4", 2e-4), ("5.0e-4", 5e-4)]
)
def test_float_key_accepts_exponent_notation(cfg: Path, raw: str, expected: float) -> None:
    lr = load_config(cfg, [f"train.lr={raw}"]).config.train.lr
    assert isinstance(lr, float) and lr == pytest.approx(expected, rel=1e-12)


def test_float_notation_in_a_file_and_saved_as_a_number(cfg: Path) -> None:
    cfg.write_text(CONFIG.replace("lr: 1.0e-3", "lr: 5e-4"))
    rcfg = load_config(cfg)
    assert rcfg.config.train.lr == pytest.approx(5e-4, rel=1e-12)
    assert "lr: 0.0005" in rcfg.to_yaml()


def test_cli_accepts_lr_in_exponent_notation(cfg: Path, capsys: pytest.CaptureFixture) -> None:
    # the config is valid; the run then stops on the missing training folder, not on the lr
    assert main(["train", str(cfg), "--out", "run", "--set", "train.lr=5e-4"]) == 2
    err = capsys.readouterr().err
    assert "train.lr" not in err and "Traceback" not in err


# ---------------------------------------------------------------- item 4: section overrides


def test_section_override_merges_into_the_section(cfg: Path) -> None:
    train = load_config(cfg, ["train={iterations: 2}"]).config.train
    assert train.iterations == 2
    assert (train.batch_size, train.lr, train.log_every, train.save_every) == (8, 1e-3, 5, 5)


def test_nested_section_override_merges_at_every_level(cfg: Path) -> None:
    rcfg = load_config(cfg, ["student={n_feats: 8}", "loss={pixel: {gt_weight: 2.0}}"])
    assert rcfg.config.student.preset == "edsr-tiny-s" and rcfg.config.student.n_feats == 8
    assert rcfg.loss.pixel.gt_weight == 2.0 and rcfg.loss.pixel.teacher_weight == 0.0


def test_non_mapping_override_still_replaces() -> None:
    data = {"train": {"iterations": 5, "lr_milestones": [1, 2]}}
    out = apply_overrides(data, ["train.lr_milestones=[3]", "teacher=null"])
    assert out == {"train": {"iterations": 5, "lr_milestones": [3]}, "teacher": None}
    assert data == {"train": {"iterations": 5, "lr_milestones": [1, 2]}}  # input untouched


@pytest.mark.parametrize("item", ["train..lr=1", "=3", "train.=1"])
def test_override_with_an_empty_key_part_is_refused(item: str) -> None:
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        apply_overrides({}, [item])


# ---------------------------------------------------------------- items 5, 7: bounded text


def billion_laughs(key: str = "seed") -> str:
    """Nine levels of nine aliases each: 9**9 strings once expanded, from under 500 bytes."""
    levels = ["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    names = "abcdefghi"
    for prev, name in zip(names, names[1:], strict=False):
        levels.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return f"{key}: [{', '.join(levels)}]\n"


def test_billion_laughs_file_is_refused_fast_with_a_short_message(
    cfg: Path, capsys: pytest.CaptureFixture
) -> None:
    text = billion_laughs()
    assert len(text.encode()) < 500
    bomb = cfg.parent / "bomb.yaml"
    bomb.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_config("bomb.yaml")
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert message.startswith("bomb.yaml: refused:") and "aliases" in message
    assert len(message) < 300 and "\n" not in message
    line = refused(capsys, bomb)
    assert len(line) < 300 and "bomb.yaml" in line


def test_billion_laughs_in_an_override_is_refused(cfg: Path) -> None:
    value = billion_laughs("x").split(": ", 1)[1]
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="override 'seed': refused:") as err:
        load_config(cfg, [f"seed={value}"])
    assert time.perf_counter() - start < 1.0
    assert len(str(err.value)) < 300


def test_a_large_but_allowed_value_is_quoted_short(cfg: Path) -> None:
    # 6**6 = 46656 values: under the expansion limit, so the type check quotes it
    levels = ["&a [1, 1, 1, 1, 1, 1]"] + [
        f"&{n} [" + ", ".join([f"*{p}"] * 6) + "]" for p, n in zip("abcde", "bcdef", strict=True)
    ]
    cfg.write_text(CONFIG.replace("seed: 0", f"seed: [{', '.join(levels)}]"))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="'seed' must be an integer, got list") as err:
        load_config(cfg)
    assert time.perf_counter() - start < 1.0
    assert len(str(err.value)) < 300


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: &a [*a]\n", "alias refers to the value that contains it"),
        ("seed: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
    ids=["recursive", "deep"],
)
def test_recursive_and_deep_yaml_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: refused:")


@pytest.mark.parametrize(
    "override",
    [
        "seed=" + "x" * 100_000,
        "train.precision=" + "y" * 100_000,
        "train.device=[" + ", ".join(["1"] * 20_000) + "]",
        "student.preset=" + "z" * 100_000,
        "train." + "k" * 100_000 + "=1",
    ],
    ids=["int", "literal", "str", "preset", "key"],
)
def test_long_values_and_keys_are_cut_in_messages(cfg: Path, override: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(cfg, [override])
    message = str(err.value)
    assert len(message) < 400 and "\n" not in message, message[:500]
    assert (
        max(len(run) for run in re.findall(r"(x+|y+|z+|k+|(?:1, )+)", message))
        <= typedconfig.MAX_REPR
    )


def test_short_repr_is_bounded() -> None:
    short_repr = typedconfig.short_repr
    assert short_repr("abc") == "'abc'"
    assert len(short_repr("x" * 10**6)) == typedconfig.MAX_REPR
    shared: list = [1] * 10
    for _ in range(30):  # 10**30 leaves once expanded; repr would never finish
        shared = [shared] * 10
    start = time.perf_counter()
    assert len(short_repr(shared)) <= typedconfig.MAX_REPR
    assert time.perf_counter() - start < 0.1


def test_load_yaml_keeps_safe_loader_semantics() -> None:
    load_yaml = typedconfig.load_yaml
    assert load_yaml("a: &x [1, 2]\nb: *x\n", "t") == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(ConfigError, match="t line 1: invalid YAML"):
        load_yaml("a: !!python/object/apply:os.system ['true']\n", "t")
