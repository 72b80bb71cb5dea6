"""The weight sweeps of a protocol (rows with ``weight_grid``;
:data:`facd.reproduce.protocol.SWEEP_RULE`).

The declared weights train in parallel (:meth:`Sweeps.task_run`), then ``sweep:<row>``
(:meth:`Sweeps.task_choose`) chooses on the validation split, training the grid's extensions
itself when the best weight sits at an end. The row's runs (and those of rows with
``weight_from: <row>``) wait for that choice and run at the chosen weight, which their config,
and so their fingerprint, holds. Sweep runs use the protocol's ``sweep_seed``, which no row
lists, so that no evaluation run is a sweep run: a run chosen for its score on the split would
carry that luck into the row's comparisons.

Published: ``<row>-w<weight>-s<seed>.json`` (one sweep run: its validation-split Y-PSNR) and
``sweep-<row>.json`` (every weight tried, its score, the chosen weight).
"""

from __future__ import annotations

import json

from facd.fileio import sha256_file
from facd.reproduce.jobrunner import TaskGroup
from facd.reproduce.protocol import (
    Row,
    choose_weight,
    format_weight,
    next_weight,
    sweep_run_id,
    weight_key,
)
from facd.reproduce.records import (
    final_terms,
    finished_iteration,
    load_config_dict,
    read_json,
    read_jsonl,
    val_curve,
    write_json,
)


class Sweeps(TaskGroup):
    """The sweep tasks of a protocol."""

    def run_json(self, row: Row, weight: float) -> str:
        """The file name of one sweep run's result."""
        return f"{sweep_run_id(row.name, weight, self.p.sweep_seed)}.json"

    def task_run(self, row: Row, weight: float) -> bool:
        """Train one weight of ``row``'s sweep (on the protocol's sweep seed) and measure it on
        the validation split; publish ``<row>-w<weight>-s<seed>.json``. Cached by its
        fingerprint alone, so a later sitting without the run folders keeps the score."""
        seed = self.p.sweep_seed
        rid = sweep_run_id(row.name, weight, seed)
        result = self.results / f"{rid}.json"
        key = self.configs.sweep_fingerprint(row, weight)
        if read_json(result).get("fingerprint") == key:
            return False
        run_dir = self.out / rid
        cfg = self.configs.sweep_config(row, weight)
        self.jobs.train(rid, cfg, run_dir)
        resolved = load_config_dict(cfg)
        weights = run_dir / "last.safetensors"
        train_dirs = list(resolved["data"]["train_dirs"])
        ev = self.jobs.split_eval(rid, [str(weights)], train_dirs, run_dir / "split-eval.json")
        records = read_jsonl(run_dir / "metrics.jsonl")
        timing = read_json(run_dir / "repro_timing.json")
        section, option = weight_key(row).split(".")[1:]
        write_json(
            result,
            {
                "kind": "sweep-run",
                "run_id": rid,
                "row": row.name,
                "method": row.method,
                "seed": seed,
                "weight": weight,
                "weight_key": weight_key(row),
                "resolved_weight": resolved["loss"][section][option],
                "split": ev["split"],
                "images": ev["images"],
                "psnr_y": ev["models"][str(weights)]["psnr_y"],
                "ssim_y": ev["models"][str(weights)].get("ssim_y"),
                "iterations": finished_iteration(run_dir),
                "weights_sha256": sha256_file(weights),
                "curve": val_curve(records),
                "final_terms": final_terms(records),
                "train_s": timing.get("train_s"),
                "eval_s": ev["eval_s"],
                "fingerprint": key,
            },
        )
        return True

    def task_choose(self, row: Row) -> bool:
        """Choose ``row``'s weight (:data:`~facd.reproduce.protocol.SWEEP_RULE`): score every
        weight tried, extend the grid by one value while the best sits at an end (at most
        ``sweep.max_extensions`` times; the extensions train here, one after the other), and
        publish ``sweep-<row>.json``. Always rewritten from the cached sweep runs (cheap)."""
        declared = sorted(row.weight_grid)
        tried = list(declared)
        cap = self.p.sweep.max_extensions
        extended: list[float] = []
        while True:
            for w in tried:
                self.task_run(row, w)  # cached unless new or stale
            docs = {w: read_json(self.results / self.run_json(row, w)) for w in tried}
            scores = {w: float(d["psnr_y"]) for w, d in docs.items()}
            best = choose_weight(scores)
            nxt = next_weight(declared, tried, best)
            if nxt is None or len(extended) >= cap:
                break
            self.log(
                f"sweep {row.name}: best weight {format_weight(best)} is at an end of "
                f"{[format_weight(w) for w in sorted(tried)]}; trying {format_weight(nxt)}"
            )
            extended.append(nxt)
            tried = sorted(tried + [nxt])
        tried = sorted(tried)
        doc = {
            "kind": "weight-sweep",
            "row": row.name,
            "method": row.method,
            "weight_key": weight_key(row),
            "seed": self.p.sweep_seed,
            "declared": declared,
            "extensions": extended,
            "max_extensions": cap,
            "at_edge": best in (tried[0], tried[-1]),
            "edge_unresolved": next_weight(declared, tried, best) is not None,
            "split": docs[best].get("split"),
            "images": docs[best].get("images"),
            "runs": [
                {
                    "weight": w,
                    "run_id": docs[w].get("run_id"),
                    "psnr_y": scores[w],
                    "extension": w in extended,
                }
                for w in tried
            ],
            "chosen": best,
            "inherited_by": [r.name for r in self.p.rows if r.weight_from == row.name],
        }
        path = self.results / f"sweep-{row.name}.json"
        changed = read_json(path) != json.loads(json.dumps(doc))
        if changed:
            write_json(path, doc)
            self.log(f"sweep {row.name}: chose {format_weight(best)} ({doc['split']} split)")
        return changed
