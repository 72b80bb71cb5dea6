#!/usr/bin/env bash
# The paper-scale plan on one GPU (< 10 minutes): benchmarks/gpu_smoke.sh, a timed training
# step of every method of configs/repro/paper-{edsr,rcan}-x4.yaml on the paper's networks, and
# the GPU-hours of those protocols. `--dry-run` checks the same path on a CPU (run by the tests).
# Other options go to benchmarks/gpu_paper_plan.py (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/gpu_paper_plan.py "$@"
