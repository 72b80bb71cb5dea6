"""Weight sweeps of a reproduction protocol: each swept row's distillation weight chosen on the
validation split (the grid extended when the best weight sits at an end), rows that inherit the
choice, and the main runs at the chosen weight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from facd.cli import main
from facd.errors import ConfigError
from facd.reproduce.protocol import (
    SWEEP_SEED,
    Row,
    choose_weight,
    load_protocol,
    next_weight,
    scaled_schedule,
    sweep_run_id,
    weight_key,
    weight_override,
)
from facd.reproduce.runner import Reproduction

from .helpers import split_protocol, write_protocol

# ------------------------------------------------------------------------------ the rule


def test_choice_is_the_best_split_score_ties_to_the_smaller_weight() -> None:
    assert choose_weight({0.4: 30.1, 4.0: 30.3, 40.0: 30.2}) == 4.0
    assert choose_weight({1.0: 30.0, 10.0: 30.0, 0.1: 29.0}) == 1.0
    with pytest.raises(ValueError):
        choose_weight({})


def test_extension_one_step_beyond_the_edge_in_the_grids_spacing() -> None:
    grid = [0.4, 4.0, 40.0]
    assert next_weight(grid, grid, 4.0) is None  # inside: no extension
    assert next_weight(grid, grid, 40.0) == 400.0  # geometric: times the ratio
    assert next_weight(grid, grid, 0.4) == 0.04  # exactly, not 0.04000000000000001
    # after one extension, the next one steps from the new edge
    assert next_weight(grid, [0.04, *grid], 0.04) == 0.004
    assert next_weight(grid, [0.04, *grid], 4.0) is None
    # two values: both are ends
    assert next_weight([1.0, 10.0], [1.0, 10.0], 1.0) == 0.1
    # arithmetic when the declared values are not positive and evenly spaced in log
    assert next_weight([0.0, 2.0, 4.0], [0.0, 2.0, 4.0], 4.0) == 6.0
    assert next_weight([0.0, 2.0, 4.0], [0.0, 2.0, 4.0], 0.0) is None  # never below 0
    assert next_weight([1.0, 2.0, 5.0], [1.0, 2.0, 5.0], 5.0) == 8.0  # the step at that end


def test_weight_key_is_data_and_weights_convert_as_the_methods_own() -> None:
    from facd.distill.methods import get_method

    fcd = Row(method="fcd", name="fcd", weight_grid=[0.4, 4.0])
    assert weight_key(fcd) == "loss.contrast.weight"  # the method's one non-pixel term
    own = get_method("fcd").resolved_dict()["contrast"]["weight"]
    assert weight_override(fcd, 4.0) == {"contrast": {"weight": own}}  # the method's units
    pisr = Row(method="pisr", name="pisr", weight_grid=[1e-7, 1e-6])
    assert weight_key(pisr) == "loss.vid.weight"
    assert weight_override(pisr, 1e-6)["vid"]["weight"] == pytest.approx(1e-6)
    explicit = Row(method="fcd", name="x", weight_key="loss.pixel.teacher_weight")
    assert weight_override(explicit, 0.25) == {"pixel": {"teacher_weight": 0.25}}
    with pytest.raises(ConfigError, match="weight_key"):
        weight_key(Row(method="ts", name="ts"))  # no non-pixel term: say which option
    assert sweep_run_id("pisr", 1e-7, 0) == "pisr-w1e-07-s0"
    assert sweep_run_id("fcd", 4.0, 1) == "fcd-w4-s1"


# ------------------------------------------------------------------------------ the protocol


def _protocol(tmp: Path, rows: list[dict], sweep: dict | None = None, split: bool = True) -> Path:
    doc = split_protocol(tmp, "ci-sweep", rows, val_every=3, split=split)
    if sweep is not None:
        doc["sweep"] = sweep
    return write_protocol(tmp, doc)


def test_protocol_refuses_bad_sweeps(tmp_path: Path) -> None:
    def load(rows: list[dict], split: bool = True) -> None:
        load_protocol(_protocol(tmp_path, rows, split=split))

    with pytest.raises(ConfigError, match="'rows\\[1\\].weight_from' names 'ts'"):
        load([{"method": "ts"}, {"method": "fcd-faa", "weight_from": "ts"}])
    with pytest.raises(ConfigError, match="at least two values"):
        load([{"method": "fcd", "weight_grid": [4]}])
    with pytest.raises(ConfigError, match="both 'weight_grid' and 'weight_from'"):
        load([{"method": "fcd", "weight_grid": [4, 40]}, {"method": "facd", "weight_grid": [1, 2], "weight_from": "fcd"}])  # fmt: skip
    with pytest.raises(ConfigError, match="shared.val.split"):
        load([{"method": "fcd", "weight_grid": [4, 40]}], split=False)
    with pytest.raises(ConfigError, match="weight_key"):
        load([{"method": "ts", "weight_grid": [1, 2]}])


def test_fingerprints_cover_the_weight(tmp_path: Path) -> None:
    rows = [{"method": "fcd", "weight_grid": [1, 10]}, {"method": "fcd-faa", "weight_from": "fcd"}]
    proto = load_protocol(_protocol(tmp_path, rows))
    rep = Reproduction(proto, tmp_path / "runs")
    fcd, faa = proto.row("fcd"), proto.row("fcd-faa")
    assert rep.configs.sweep_fingerprint(fcd, 1.0) != rep.configs.sweep_fingerprint(fcd, 10.0)
    assert rep.configs.row_fingerprint(faa, 0, 1.0) != rep.configs.row_fingerprint(faa, 0, 10.0)
    # the method's own weight (4) as an override is the method itself: same fingerprint
    plain = Row(method="fcd", name="fcd")
    assert rep.configs.row_fingerprint(fcd, 0, 4.0) == rep.configs.row_fingerprint(plain, 0)
    # before the sweep has chosen, a row that needs the choice is refused, naming the sweep
    with pytest.raises(Exception, match="sweep of row 'fcd'.*has not chosen"):
        rep.configs.row_config(faa, 0)


@pytest.mark.slow
def test_weight_sweep_end_to_end(tmp_path: Path) -> None:
    rows = [
        {"method": "fcd", "seeds": [0], "weight_grid": [1, 10]},
        {"method": "fcd-faa", "seeds": [0], "weight_from": "fcd"},
    ]
    proto = _protocol(tmp_path, rows, sweep={"max_extensions": 1})
    out = tmp_path / "runs"
    assert main(["reproduce", str(proto), "--out", str(out), "--no-figures"]) == 0
    results = tmp_path / "results"
    sweep = json.loads((results / "sweep-fcd.json").read_text())
    # two values: the best is at an end, so the grid is extended once (the cap here)
    assert sweep["declared"] == [1, 10] and len(sweep["extensions"]) == 1
    ext = sweep["extensions"][0]
    scores = {r["weight"]: r["psnr_y"] for r in sweep["runs"]}
    best_declared = choose_weight({w: scores[w] for w in (1, 10)})
    assert ext == (0.1 if best_declared == 1 else 100.0)
    assert sorted(scores) == sorted([1, 10, ext])
    assert sweep["chosen"] == choose_weight(scores)
    assert sweep["split"] == "split" and sweep["images"] == 2  # the validation split only
    assert sweep["inherited_by"] == ["fcd-faa"]
    for w in scores:
        doc = json.loads((results / f"{sweep_run_id('fcd', w, SWEEP_SEED)}.json").read_text())
        assert doc["kind"] == "sweep-run" and doc["weight"] == w and doc["split"] == "split"
        assert doc["psnr_y"] == scores[w]
    # the main runs run at the chosen weight, the inheriting row too
    chosen = sweep["chosen"]
    for name in ("fcd", "fcd-faa"):
        doc = json.loads((results / f"{name}-s0.json").read_text())
        assert doc["config"]["loss"]["contrast"]["weight"] == pytest.approx(chosen / 255)
    # the sweep ran on its own seed: no evaluation run is a sweep run
    seed = load_protocol(proto).sweep_seed
    assert sweep["seed"] == seed != 0
    main_doc = json.loads((results / "fcd-s0.json").read_text())
    sweep_doc = json.loads((results / f"{sweep_run_id('fcd', chosen, seed)}.json").read_text())
    assert sweep_doc["seed"] == seed and main_doc["weights_sha256"] != sweep_doc["weights_sha256"]

    report = (tmp_path / "docs" / "results.md").read_text()
    assert "## Weight sweeps on the validation split" in report
    assert "at most 1 extension per row" in report
    assert "(extension) |" in report and "**chosen**" in report
    assert "Runs at this weight too (they only flip a switch): FCD (FAA)." in report
    assert "validation split `split` (2 images); grid extended 1 time." in report

    # cached: a second invocation trains nothing
    logs = sorted((out / "logs").glob("*.log"))
    sizes = [p.stat().st_size for p in logs]
    assert main(["reproduce", str(proto), "--out", str(out), "--no-figures"]) == 0
    assert [p.stat().st_size for p in logs] == sizes

    # a changed choice re-runs the rows at the new weight (their fingerprints hold it)
    middle = 1 if ext == 0.1 else 10
    path = results / f"{sweep_run_id('fcd', middle, SWEEP_SEED)}.json"
    doc = json.loads(path.read_text())
    doc["psnr_y"] = 1000.0
    path.write_text(json.dumps(doc))
    assert main(["reproduce", str(proto), "--out", str(out), "--no-figures"]) == 0
    assert json.loads((results / "sweep-fcd.json").read_text())["chosen"] == middle
    for name in ("fcd", "fcd-faa"):
        doc = json.loads((results / f"{name}-s0.json").read_text())
        assert doc["config"]["loss"]["contrast"]["weight"] == pytest.approx(middle / 255)


def test_sweeps_run_on_a_seed_of_their_own_and_no_sweep_run_is_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep run is never an evaluation run: the sweep trains on the protocol's sweep seed,
    which no row lists, and every evaluation run of the swept row and of the rows that inherit
    its weight is trained itself (none is a copy of the winning sweep run, which was chosen for
    its luck on the split)."""
    import torch
    from safetensors.torch import save_file

    rows = [
        {"method": "fcd", "seeds": [0, 1], "weight_grid": [1, 10, 100]},
        {"method": "fcd-faa", "seeds": [0, 1], "weight_from": "fcd"},
    ]
    proto = load_protocol(_protocol(tmp_path, rows))
    assert proto.sweep_seed == SWEEP_SEED and all(SWEEP_SEED not in r.seeds for r in proto.rows)
    rep = Reproduction(proto, tmp_path / "runs")
    trained: dict[str, int] = {}

    def train(name: str, cfg: dict, run_dir: Path) -> bool:
        if (run_dir / "last.safetensors").is_file():
            return False  # a finished run (e.g. one copied in): nothing trained
        trained[name] = cfg["seed"]
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = {"iteration": json.dumps(cfg["train"]["iterations"])}
        save_file({"w": torch.full((1,), float(len(trained)))}, run_dir / "last.safetensors", meta)
        return True

    def split_eval(name: str, job: dict) -> None:
        weight = float(name.split("-w")[1].split("-s")[0])
        score = 30.0 - abs(weight - 10.0) / 100  # the middle weight wins: no extension
        models = {m: {"psnr_y": score} for m in job["models"]}
        out = {"split": "split", "images": 2, "eval_s": 0.0, "models": models}
        Path(job["out"]).write_text(json.dumps(out))

    monkeypatch.setattr(rep.jobrunner, "train", train)
    monkeypatch.setattr(rep.jobrunner, "run_job", split_eval)
    rep.sweeps.task_choose(proto.row("fcd"))
    assert trained == {sweep_run_id("fcd", w, SWEEP_SEED): SWEEP_SEED for w in (1, 10, 100)}
    assert rep.configs.chosen_weight(proto.row("fcd-faa")) == 10
    for name in ("fcd", "fcd-faa"):
        for seed in (0, 1):
            assert rep.trainings.task_run(proto.row(name), seed)
            assert trained[f"{name}-s{seed}"] == seed  # trained itself, on its own seed


def test_a_sweep_seed_that_a_row_lists_is_refused(tmp_path: Path) -> None:
    rows = [{"method": "fcd", "seeds": [0, 1], "weight_grid": [1, 10]}]
    path = _protocol(tmp_path, rows)
    doc = yaml.safe_load(path.read_text())
    doc["sweep_seed"] = 1
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="'sweep_seed' 1 is also a seed of row\\(s\\) fcd"):
        load_protocol(path)


def test_regime_ablations_inherit_the_weight_of_their_switch_partner(monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    p = load_protocol("configs/repro/regime-edsr-x2.yaml")
    # FACD (the indicator on FCD) and Eq. 7 (the indicator off in the feature term) flip
    # switches of FCD: all run at FCD's chosen lambda, so FACD vs Eq. 7 shares it too
    for name in ("facd", "icd", "fcd-sa", "fcd-faa", "fcd-fab", "facd-eq7", "gt-fcd", "t-fcd"):
        assert p.row(name).weight_from == "fcd" and not p.row(name).weight_grid
    swept = [r.name for r in p.rows if r.weight_grid]
    assert swept == ["fakd", "lsfd", "lsfd-ts", "fcd", "pisr", "fcd-infonce"]
    assert p.sweep.max_extensions == 2


def test_sweep_runs_train_for_the_declared_fraction_of_the_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sweep.schedule: 0.5`` trains every sweep run for half the rows' schedule (B/2), lr
    milestones halved alike; the evaluation rows keep B; the fraction is in the sweep's
    fingerprint, and the default (1) leaves it as it was."""
    rows = [{"method": "fcd", "seeds": [0], "weight_grid": [1, 10]}]
    doc = split_protocol(tmp_path, "ci-sweep", rows, val_every=3)
    doc["shared"]["train"].update(iterations=4, iters_per_epoch=2, lr_milestones=[1])
    full = load_protocol(write_protocol(tmp_path, doc))
    doc["sweep"] = {"schedule": 0.5}
    half = load_protocol(write_protocol(tmp_path, doc))
    rep, rep_full = Reproduction(half, tmp_path / "runs"), Reproduction(full, tmp_path / "runs")
    cfg = rep.configs.sweep_config(half.row("fcd"), 1.0)
    assert cfg["train"]["iterations"] == 2 and cfg["train"]["iters_per_epoch"] == 1
    assert rep.configs.row_config(half.row("fcd"), 0, 1.0)["train"]["iterations"] == 4
    assert rep_full.configs.sweep_config(full.row("fcd"), 1.0) == rep_full.configs.row_config(
        full.row("fcd"), full.sweep_seed, 1.0
    )
    fcd = half.row("fcd")
    assert rep.configs.sweep_fingerprint(fcd, 1.0) != rep_full.configs.sweep_fingerprint(
        full.row("fcd"), 1.0
    )
    trained: dict[str, int] = {}

    def train(name: str, cfg: dict, run_dir: Path) -> bool:
        trained[name] = cfg["train"]["iterations"]
        raise RuntimeError("stop after the first training")

    monkeypatch.setattr(rep.jobrunner, "train", train)
    with pytest.raises(RuntimeError):
        rep.sweeps.task_run(fcd, 1.0)
    assert trained == {sweep_run_id("fcd", 1.0, half.sweep_seed): 2}


def test_a_fraction_of_a_schedule_must_stay_whole() -> None:
    from facd.train.config import load_config

    cfg = {"train": {"iterations": 6000, "iters_per_epoch": 100, "lr_milestones": [32, 44, 52]}}
    quarter = scaled_schedule(cfg, 0.25)["train"]
    assert quarter == {"iterations": 1500, "iters_per_epoch": 25, "lr_milestones": [32, 44, 52]}
    milestones = load_config(None, [], base={"train": quarter}).config.train.milestone_iterations
    assert milestones == [800, 1100, 1300]  # a quarter of 3200, 4400, 5200
    double = scaled_schedule(cfg, 2)["train"]  # a whole factor scales the milestones
    assert double["iterations"] == 12000 and double["lr_milestones"] == [64, 88, 104]
    with pytest.raises(ConfigError, match="train.iters_per_epoch 100 gives 0.7"):
        scaled_schedule(cfg, 0.007)


def test_rows_of_a_curve_run_at_a_fixed_weight_and_a_fraction_of_the_budget(
    tmp_path: Path,
) -> None:
    """A lambda curve's rows run at a fixed ``weight`` (converted as a swept weight is) and a
    budget curve's rows at a ``schedule`` fraction; both are in the run's config, so in its
    fingerprint, and a row without them is unchanged."""
    rows = [
        {"method": "facd", "seeds": [0]},
        {"method": "facd", "name": "facd-l40", "seeds": [0], "weight": 40},
        {"method": "facd", "name": "facd-half", "seeds": [0], "schedule": 0.5},
    ]
    doc = split_protocol(tmp_path, "ci-curves", rows, val_every=3)
    doc["shared"]["train"].update(iterations=4, iters_per_epoch=2, lr_milestones=[1])
    proto = load_protocol(write_protocol(tmp_path, doc))
    rep = Reproduction(proto, tmp_path / "runs")
    plain, fixed, half = (proto.row(n) for n in ("facd", "facd-l40", "facd-half"))
    assert rep.configs.row_config(fixed, 0) == rep.configs.row_config(plain, 0, 40.0)
    assert rep.configs.row_config(half, 0)["train"]["iterations"] == 2
    assert rep.configs.row_config(half, 0)["train"]["iters_per_epoch"] == 1
    prints = {rep.configs.row_fingerprint(r, 0) for r in (plain, fixed, half)}
    assert len(prints) == 3
    bad = [{"method": "fcd", "weight_grid": [1, 10], "weight": 4}]
    with pytest.raises(ConfigError, match="fixed 'weight' and a 'weight_grid'"):
        load_protocol(write_protocol(tmp_path, split_protocol(tmp_path, "b", bad, val_every=3)))
    no_key = [{"method": "ts", "weight": 4}]
    with pytest.raises(ConfigError, match="weight_key"):
        load_protocol(write_protocol(tmp_path, split_protocol(tmp_path, "c", no_key, val_every=3)))


def test_largest_dip_is_the_fall_below_the_running_best() -> None:
    from facd.reproduce.runstats import largest_dip

    assert largest_dip([]) is None
    assert largest_dip([[500, 26.0], [1000, 27.0], [1500, 27.5]]) == (0.0, 500)  # monotone
    # the budget study's FCD sweep at lambda 4: 27.28 at 1000, 10.44 at 1500, back to 23.85
    curve = [[500, 26.57], [1000, 27.28], [1500, 10.44], [2000, 22.02], [3000, 23.85]]
    dip, at = largest_dip(curve)  # type: ignore[misc]
    assert dip == pytest.approx(27.28 - 10.44) and at == 1500
    dip, at = largest_dip([[1, 30.0], [2, 29.5], [3, 31.0], [4, 29.0]])  # type: ignore[misc]
    assert dip == pytest.approx(2.0) and at == 4  # below the later, higher best


def test_sweep_table_marks_a_diverged_run(tmp_path: Path) -> None:
    from facd.reproduce.checktables import sweep_tables
    from facd.reproduce.reportdoc import Report
    from facd.reproduce.results import Results

    proto = load_protocol(_protocol(tmp_path, [{"method": "fcd", "weight_grid": [1, 10]}]))
    results = Path(proto.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    curves = {1: [[3, 25.0], [6, 26.0]], 10: [[3, 25.0], [6, 20.0], [9, 24.0]]}
    for w, curve in curves.items():
        rid = sweep_run_id("fcd", w, proto.sweep_seed)
        doc = {"kind": "sweep-run", "run_id": rid, "weight": w, "psnr_y": curve[-1][1]}
        (results / f"{rid}.json").write_text(json.dumps(doc | {"curve": curve}))
    rep = Report(Results.load(proto), "cmd", "p.yaml")
    sweep_tables(rep)
    text = rep.text()
    assert "| 1 | 26.000 | stable | |" in text
    assert "| 10 | 24.000 | diverged (−5.0 dB at it. 6) | |" in text
    assert "fell more than 1 dB below its best validation Y-PSNR" in text


def test_a_report_before_any_run_shows_the_partial_sweeps(tmp_path: Path) -> None:
    from facd.reproduce.report import write_report

    proto = load_protocol(_protocol(tmp_path, [{"method": "fcd", "weight_grid": [1, 10]}]))
    results = Path(proto.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    rid = sweep_run_id("fcd", 1, proto.sweep_seed)
    doc = {"kind": "sweep-run", "run_id": rid, "weight": 1, "psnr_y": 26.0, "curve": [[3, 26.0]]}
    (results / f"{rid}.json").write_text(json.dumps(doc))
    text = write_report(proto, "p.yaml", figures=False, log=lambda m: None).read_text()
    assert "**Not run yet:**" in text
    assert "| 1 | 26.000 | stable | |" in text and "| 10 | not run yet |  | |" in text
    assert "No weight chosen yet (partial)." in text


def test_a_run_identical_to_an_earlier_rows_is_trained_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A curve's point at a fixed weight and a row at the weight its sweep chose are the same
    run where the weights agree (equal fingerprints): the later row waits for the earlier one
    and copies its finished run folder instead of training it again; runs at other weights,
    or whose twin has not finished, train themselves."""
    import torch
    import yaml as pyyaml
    from safetensors.torch import save_file

    from facd.train.config import load_config

    rows = [
        {"method": "fcd", "name": "fcd-l10", "seeds": [0, 1], "weight": 10},
        {"method": "fcd", "name": "fcd-l100", "seeds": [0], "weight": 100},
        {"method": "fcd", "seeds": [0, 1], "weight_grid": [1, 10, 100]},
    ]
    proto = load_protocol(_protocol(tmp_path, rows))
    rep = Reproduction(proto, tmp_path / "runs")
    deps = {t.key: t.deps for t in rep.build_tasks()}
    assert (
        "train:fcd-l10-s0" in deps["train:fcd-s0"] and "train:fcd-l100-s0" in deps["train:fcd-s0"]
    )
    assert "train:fcd-l10-s0" not in deps["train:fcd-l100-s0"]  # two fixed, different weights
    trained: list[str] = []

    def train(name: str, cfg: dict, run_dir: Path) -> bool:
        trained.append(name)
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = load_config(None, [], base=cfg).to_dict()
        (run_dir / "config.yaml").write_text(pyyaml.safe_dump(resolved))
        meta = {"iteration": json.dumps(cfg["train"]["iterations"])}
        save_file({"w": torch.full((1,), float(len(trained)))}, run_dir / "last.safetensors", meta)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        (run_dir / "checkpoints" / "latest.json").write_text(json.dumps({"run": name}))
        return True

    def split_eval(name: str, job: dict) -> None:
        weight = float(name.split("-w")[1].split("-s")[0])
        models = {m: {"psnr_y": 30.0 - abs(weight - 10.0) / 100} for m in job["models"]}
        out = {"split": "split", "images": 2, "eval_s": 0.0, "models": models}
        Path(job["out"]).write_text(json.dumps(out))

    monkeypatch.setattr(rep.jobrunner, "train", train)
    monkeypatch.setattr(rep.jobrunner, "run_job", split_eval)
    rep.sweeps.task_choose(proto.row("fcd"))
    assert rep.configs.chosen_weight(proto.row("fcd")) == 10
    trained.clear()
    for name in ("fcd-l10", "fcd-l100", "fcd"):
        assert rep.trainings.task_run(proto.row(name), 0)
    assert trained == ["fcd-l10-s0", "fcd-l100-s0"]  # fcd-s0 is fcd-l10-s0's run
    out = tmp_path / "runs"
    assert (out / "fcd-s0" / "last.safetensors").read_bytes() == (
        out / "fcd-l10-s0" / "last.safetensors"
    ).read_bytes()
    latest = json.loads((out / "fcd-s0" / "checkpoints" / "latest.json").read_text())
    assert latest == {"run": "fcd-l10-s0"}  # its training state too (for the gradient shares)
    timing = json.loads((out / "fcd-s0" / "repro_timing.json").read_text())
    assert timing == {"train_s": 0.0, "shared_with": "fcd-l10-s0"}
    assert rep.configs.twin(proto.row("fcd-l100"), 0) is None
    # the twin of seed 1 has not trained: the run trains itself
    assert rep.trainings.task_run(proto.row("fcd"), 1) and trained[-1] == "fcd-s1"
