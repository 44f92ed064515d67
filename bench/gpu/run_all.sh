#!/usr/bin/env bash
# The one prepared script a session with an NVIDIA GPU runs, from the repository root:
#
#     bash bench/gpu/run_all.sh
#
# bench/gpu_check.py (device energy against NVML's own counter, attributed share against the
# SM-time share with a foreign process), bench/gpu_train.py (a small training job under
# --progress-from-output in a pseudo-terminal) and bench/gpu/accounting_check.py (short jobs
# credited through accounting mode), each under a time limit: about 4 minutes, at most 6.
# Results go to bench/results/ and, where the device tool gives one, to $OUT. Exit status: 0
# when every check passed, else the first failure's.
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-}"
day="$(date +%F)"
status=0
log="bench/results/$day-gpu-run-all.log"
mkdir -p bench/results

step() {  # step NAME LIMIT_S COMMAND...: run it, keep its output, remember the first failure
    local name=$1 limit=$2 rc
    shift 2
    echo "== $name (limit ${limit} s)" | tee -a "$log"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc" | tee -a "$log"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

if ! "$PY" -c 'import pynvml, torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    2>/dev/null; then
    echo "run_all: no CUDA GPU with torch and nvidia-ml-py for $PY here: nothing to check" >&2
    exit 2
fi

{
    echo "# $(date -Is) $(uname -r)"
    nvidia-smi --query-gpu=name,driver_version,persistence_mode,accounting.mode --format=csv
    "$PY" -c 'import torch, pynvml; print("torch", torch.__version__, "nvidia-ml-py", pynvml.__file__)'
} 2>&1 | tee "$log"

step gpu_check 150 "$PY" bench/gpu_check.py --seconds 60
step gpu_train 120 "$PY" bench/gpu_train.py --seconds 45
step accounting_check 80 "$PY" bench/gpu/accounting_check.py

if [ -n "$OUT_DIR" ]; then
    cp bench/results/"$day"-gpu-*.md "$log" "$OUT_DIR"/ 2>/dev/null
    cp bench/results/"$day"-gpu-train-*.terminal.txt "$OUT_DIR"/ 2>/dev/null
fi
echo "run_all: exit $status"
exit "$status"
