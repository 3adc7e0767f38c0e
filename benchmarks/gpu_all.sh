#!/usr/bin/env bash
# Every GPU benchmark of issue 12 in one command: synthesizes D = 2048 features on the
# real THUMOS14 and ActivityNet-1.2 annotations (hamnet synth --like ... --dim 2048), then
# times whole `hamnet train` / `hamnet ablate` processes (THUMOS14 fp32 and bf16,
# ActivityNet-1.2, the THUMOS14 ablation with 3 seeds), each step with its own timeout,
# and writes OUT/gpu_runs.json (rewritten after every step) and OUT/logs/.
#
#   benchmarks/gpu_all.sh ANNOTATIONS OUT [more gpu_runs.py options, e.g. --tiny]
#   benchmarks/gpu_all.sh ../shared/data "$OUT"              # on the GPU machine
#   benchmarks/gpu_all.sh ../shared/data /tmp/bench --tiny   # dry run on the CPU
#
# ANNOTATIONS holds thumos14/ and activitynet12/ (the real annotation .npy files).
set -euo pipefail
annotations=${1:?usage: benchmarks/gpu_all.sh ANNOTATIONS OUT [options]}
out=${2:?usage: benchmarks/gpu_all.sh ANNOTATIONS OUT [options]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}"
python "$here/gpu_runs.py" --annotations "$annotations" --out "$out" "$@"
