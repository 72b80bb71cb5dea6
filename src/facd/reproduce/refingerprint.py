"""One-off migration: re-stamp published results after the fingerprint's definition changed.

``python -m facd.reproduce.refingerprint PROTOCOL [--write]``

The result fingerprint used to hash a row's config as written in the protocol, before the
method's loss options were resolved, so redefining a method (Table 10 on FCD, InfoNCE's dot
product) would have reused stale results under the new label. It now hashes the resolved config
(``RunConfigs.row_fingerprint``). That changes every fingerprint, so this tool re-stamps a
published result only when it provably means the same thing under the new definitions:

1. its stored fingerprint equals the *old* definition's fingerprint of its row (same row config,
   same teacher bytes, same evaluation sets), and its weights match their recorded SHA-256;
2. the config it was trained with (the resolved config recorded in its JSON), with the options
   added since filled in with the values that reproduce the old behaviour (``LEGACY_VALUES``),
   equals the row's resolved config today, compared with ``canonical_config``.

A result whose method was redefined is re-stamped under the method that keeps the old meaning
(``MethodDef.formerly`` in the method declarations, e.g. the cosine InfoNCE): its files are
renamed to the protocol row of that method. Anything else is left alone and listed, so that
``facd reproduce`` re-runs it. Without ``--write`` nothing is changed.

Paths are compared, and hashed, relative to the protocol's root folder (as the fingerprint
does), so moving a config's paths between relative and absolute forms changes nothing here.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from facd.fileio import atomic_write_text, move, remove_file, sha256_file
from facd.reproduce.protocol import Protocol, Row, canonical_config, load_protocol, run_id
from facd.reproduce.records import RESULT_VERSION, fingerprint
from facd.reproduce.runconfig import RunConfigs
from facd.train.config import portable_paths

#: Options added after results were published, with the value that reproduces what the code
#: did before the option existed.
LEGACY_VALUES: dict[tuple[str, str], object] = {("contrast", "infonce_form"): "cosine"}


def renamed_methods() -> dict[str, str]:
    """Methods whose definition changed: old name -> the method that now has the old definition.

    Read from the declarations (``MethodDef.formerly``).
    """
    from facd.distill.methods import METHODS

    return {old: m.name for m in METHODS.values() for old in m.formerly}


def old_fingerprint(rep: RunConfigs, row: Row, seed: int, method: str) -> str:
    """The fingerprint as defined before (row config as written, before resolving)."""
    cfg = portable_paths(rep.row_config(row, seed), getattr(rep.p, "root_dir", None))
    cfg["method"] = method
    if "teacher" in cfg:
        cfg["teacher"]["weights"] = rep.teacher_identity(row)
    return fingerprint({"config": cfg, "eval": rep.p.eval.sets, "v": RESULT_VERSION})


def _comparable(resolved: dict, root: str | Path | None = None) -> dict:
    out = canonical_config(portable_paths(resolved, root))
    out.pop("method", None)  # the label; the loss section holds the definition
    if out.get("teacher"):
        out["teacher"].pop("weights", None)  # checked by the old fingerprint (teacher bytes)
    return out


def _with_legacy(recorded: dict) -> dict:
    out = copy.deepcopy(recorded)
    for (section, key), value in LEGACY_VALUES.items():
        sec = (out.get("loss") or {}).get(section)
        if sec is not None:
            sec.setdefault(key, value)
    return out


def _diff(a: object, b: object, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _diff(a.get(k), b.get(k), f"{where}.{k}".lstrip("."))]
    return [] if a == b else [f"{where}: {a!r} -> {b!r}"]


def migrate(proto: Protocol, write: bool = False, log=print) -> dict[str, list[str]]:
    """Re-stamp the protocol's results; returns {"restamped": [...], "renamed": [...],
    "current": [...], "stale": [...]} (run ids)."""
    from facd.train.config import load_config

    rep = RunConfigs(proto, Path("runs") / f"repro-{proto.name}", log=lambda m: None)
    root = Path(proto.results_dir)
    outcome: dict[str, list[str]] = {"restamped": [], "renamed": [], "current": [], "stale": []}
    for row in proto.rows:
        for seed in [] if row.skip else row.seeds:
            rid = row.run_id(seed)
            src, method = root / f"{rid}.json", row.method
            if not src.is_file():
                old = [o for o, n in renamed_methods().items() if n == row.method]
                cand = [root / f"{run_id(o, seed)}.json" for o in old]
                found = [(c, o) for c, o in zip(cand, old, strict=True) if c.is_file()]
                if not found:
                    continue
                src, method = found[0]
            doc = json.loads(src.read_text())
            weights = src.with_suffix(".safetensors")
            new_fp = rep.row_fingerprint(row, seed)
            if src.name == f"{rid}.json" and doc.get("fingerprint") == new_fp:
                outcome["current"].append(rid)
                continue
            reasons = []
            if doc.get("fingerprint") != old_fingerprint(rep, row, seed, doc.get("method", method)):
                reasons.append("its fingerprint does not match its row under the old definition")
            if not weights.is_file() or doc.get("weights_sha256") != sha256_file(weights):
                reasons.append("its weights file is missing or differs from the recorded SHA-256")
            now = load_config(None, [], base=rep.row_config(row, seed)).to_dict()
            anchor = getattr(proto, "root_dir", None)
            recorded = _with_legacy(doc.get("config") or {})
            reasons += _diff(_comparable(recorded, anchor), _comparable(now, anchor))
            if reasons:
                outcome["stale"].append(rid)
                log(f"{src.name}: left alone: {'; '.join(reasons)}")
                continue
            doc["fingerprint"] = new_fp
            if src.name != f"{rid}.json":
                new_weights = root / f"{rid}.safetensors"
                doc.update(run_id=rid, row=row.name, method=row.method, weights=str(new_weights))
                doc["renamed_from"] = {
                    "run_id": src.stem,
                    "method": method,
                    "why": f"method {method!r} was redefined; {row.method!r} keeps the definition "
                    "this run was trained with (see its config)",
                }
                outcome["renamed"].append(f"{src.stem} -> {rid}")
                log(f"{src.name}: renamed to {rid} (method {row.method}), re-stamped")
                if write:
                    move(weights, new_weights)
                    remove_file(src)
            else:
                outcome["restamped"].append(rid)
                log(f"{src.name}: re-stamped")
            if write:
                atomic_write_text(root / f"{rid}.json", json.dumps(doc, indent=1) + "\n")
    return outcome


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facd.reproduce.refingerprint")
    ap.add_argument("protocol")
    ap.add_argument("--write", action="store_true", help="change the files (default: dry run)")
    args = ap.parse_args(argv)
    out = migrate(load_protocol(args.protocol), write=args.write)
    print({k: len(v) for k, v in out.items()}, "(dry run)" if not args.write else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
