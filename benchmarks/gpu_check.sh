#!/usr/bin/env bash
# The GPU path, checked in one go (issue 18, item 4): the CUDA tests, then the benchmarks with the
# device set, each under a time limit, then a summary. Never part of the tests or CI.
#
#   benchmarks/gpu_check.sh             # on a machine with CUDA: a few minutes
#   benchmarks/gpu_check.sh --dry-run   # anywhere: the same steps, tiny, on the CPU (checks the script)
#
# Without CUDA and without --dry-run it says so and exits with status 2.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    if [ $DRY = 0 ]; then
        echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False): nothing to check."
        echo "gpu_check: run it on a machine with a GPU, or with --dry-run to check the script on the CPU."
        exit 2
    fi
    DEV=cpu
else
    DEV=cuda
fi

"$PY" - <<'PY' | tee "$OUT/device.txt"
import os, torch
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, torch {torch.__version__}")
else:
    print(f"device: none (dry run on the CPU, {os.cpu_count()} CPUs), torch {torch.__version__}")
PY

declare -A STATUS
step() {  # step NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo
    echo "=== $name (limit ${limit} s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    STATUS[$name]="rc=$rc, $((SECONDS - t0)) s"
}

if [ $DRY = 1 ]; then
    # the tests' CUDA cases skip here; the benchmarks run tiny on the CPU
    step cuda_tests 300 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_denet.py tests/test_reconstruction.py \
        tests/test_sparsity.py tests/test_occlusion_incremental.py -k "gpu or cuda"
    step occlusion_incremental 600 "$PY" benchmarks/occlusion_incremental.py --device cpu --arch alexnet \
        --repeats 1 --stride 64
    step topk_mining 300 "$PY" benchmarks/topk_mining.py --device cpu --n 16 --batch-size 8 --repeats 1 --layers c2
else
    step cuda_tests 300 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_denet.py tests/test_reconstruction.py \
        tests/test_sparsity.py tests/test_occlusion_incremental.py -k "gpu or cuda"
    step occlusion_incremental 420 "$PY" benchmarks/occlusion_incremental.py --device cuda --repeats 3 \
        --channels-last-floor
    step topk_mining 240 "$PY" benchmarks/topk_mining.py --device cuda --n 1024 --repeats 3 --layers c5,c2
fi

echo
echo "=== summary ($DEV; logs in $OUT)"
cat "$OUT/device.txt"
for name in cuda_tests occlusion_incremental topk_mining; do
    echo "$name: ${STATUS[$name]:-not run}"
done
grep -h -E "passed|failed|skipped|error" "$OUT/cuda_tests.log" | tail -n 3
grep -h -A3 "^summary" "$OUT/occlusion_incremental.log" "$OUT/topk_mining.log" 2>/dev/null
fail=0
for name in "${!STATUS[@]}"; do
    case ${STATUS[$name]} in rc=0,*) ;; *) fail=1 ;; esac
done
exit $fail
