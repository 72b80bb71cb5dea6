"""Gradient share and loss share of each loss term on the student, from a run's saved weights.

    python tools/gradient_share.py RUN_DIR [--batch N --patch P --seed S] [--json OUT]
    python tools/gradient_share.py --config CONFIG [--set KEY=VALUE ...] [...]   # at initialisation

For each active term k: share_k = ||d(w_k L_k)/d theta_S|| / sum_j ||d(w_j L_j)/d theta_S||,
its ratio to the L1_GT term's gradient norm, and its loss share w_k L_k / sum_j w_j L_j, on one
fixed, seeded batch of the run's training data (definitions: facd.reproduce.gradshare). Run it
from the folder the run was trained from (the run's config holds paths relative to it).
Exit codes as facd's: 2 for a bad run folder, config or checkpoint, 4 when --json cannot be
written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", type=Path, help="a facd train run folder")
    ap.add_argument("--config", type=Path, help="measure this config at initialisation instead")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--batch", type=int, help="batch size (default: the run's)")
    ap.add_argument("--patch", type=int, help="LR patch side (default: the run's)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fixed batch (default 0)")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args(argv)
    if (args.run_dir is None) == (args.config is None):
        ap.error("give a run folder or --config, not both")
    if args.overrides and args.config is None:
        ap.error("--set applies to --config only")

    import torch

    from facd.errors import FacdError, StorageError
    from facd.fileio import atomic_write_text
    from facd.reproduce.gradshare import markdown_table, measure, run_gradient_shares
    from facd.train.config import load_config

    torch.set_num_threads(1)
    try:
        if args.config is not None:
            rcfg = load_config(args.config, args.overrides)
            result = measure(rcfg, None, args.batch, args.patch, args.seed)
            label = f"{rcfg.config.method} (init)"
        else:
            result = run_gradient_shares(args.run_dir, args.batch, args.patch, args.seed)
            label = f"{result['method']} (it. {result['iteration']})"
        if args.json:
            try:
                atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
            except OSError as err:
                raise StorageError(f"cannot write {args.json}: {err.strerror or err}") from None
    except FacdError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    b = result["batch"]
    print(f"batch {b['size']} x {b['patch']}px LR patches, seed {b['seed']}")
    print(markdown_table([result], [label]))
    print(f"total gradient norm: {result['total_grad_norm']:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
