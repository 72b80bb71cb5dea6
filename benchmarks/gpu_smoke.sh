#!/usr/bin/env bash
# GPU smoke test (< 5 minutes on one GPU): the paper's EDSR x4 FACD config for a few hundred
# steps in fp32 and bf16 with channels_last, Set5 evaluation, ms/step against a 30 ms target and
# the peak GPU memory. `--dry-run` checks the same path on a CPU in seconds (run by the tests).
# Any other options go to benchmarks/gpu_smoke.py (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/gpu_smoke.py "$@"
