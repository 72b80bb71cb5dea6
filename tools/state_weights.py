"""Write the student's weights of a run's training state as a facd safetensors file.

A run keeps its training states (``checkpoints/state-<iteration>.pt``; all of them with
``train.keep_checkpoints`` large enough), but only the last weights as ``last.safetensors``. This
tool takes the network out of the state at ``--iteration`` (the student's entries of the
state's ``model``, strictly loaded into the network the run's ``config.yaml`` builds) and writes
it as ``last.safetensors`` would be written, e.g. a teacher at half its schedule:

    python tools/state_weights.py runs/budget-rcan-t-x4 --iteration 6000 -o teacher-6k.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def extract(run_dir: Path, iteration: int, out: Path) -> None:
    from facd.archs import build_model
    from facd.archs.io import save_model
    from facd.errors import CheckpointError, ConfigError
    from facd.fileio import torch_load_weights_only
    from facd.train.netconfig import NetConfig
    from facd.typedconfig import from_dict

    path = run_dir / "checkpoints" / f"state-{iteration:08d}.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no training state at iteration {iteration}")
    state = torch_load_weights_only(path, "training state")
    if state.get("iteration") != iteration:
        raise CheckpointError(f"{path}: holds iteration {state.get('iteration')}, not {iteration}")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    if not isinstance(saved, dict) or not isinstance(saved.get("student"), dict):
        raise ConfigError(f"{run_dir / 'config.yaml'}: not a run config with a student section")
    net_cfg = {k: v for k, v in saved["student"].items() if k != "weights" and v is not None}
    spec = from_dict(NetConfig, net_cfg).spec(int(saved["scale"]))
    net = build_model(spec)
    prefix = "student."
    weights = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    net.load_state_dict(weights, strict=True)
    save_model(out, net, spec, extra_metadata={"iteration": iteration})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iteration", type=int, required=True)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from facd.errors import FacdError

    try:
        extract(args.run_dir, args.iteration, args.out)
    except FacdError as err:
        print(f"state_weights: {err}", file=sys.stderr)
        return err.exit_code
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
