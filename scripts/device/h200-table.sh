#!/usr/bin/env bash
# The H200 figures of the closing note in one call of under 6 minutes, with
# build/ (npm run build:test), dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-table.sh
# The WebGPU test files on the GPU; the decode table (synthetic fill) and the
# prefill table (h200-bench.sh; shorter contexts: prefill attention is the
# slow part); the default model's shapes on the GPU against the CPU (16
# cores) at 4K and 8K; a few gate-training steps on the GPU at the
# reference recipe's sample size (2 x 4096 tokens). Random weights
# throughout (scripts/device/shapes/*). All outputs: $OUT/results.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench-out}
RES=$(mktemp -d)
export WGKV_GPU_MEMORY=${WGKV_GPU_MEMORY:-135GiB}
# NOTE: everything must end by DEADLINE seconds (the session's device time): each part gets at most what is left
DEADLINE=${DEADLINE:-300}
cap() { local left=$((DEADLINE - SECONDS - ${2:-0})); [ "$left" -lt "$1" ] && echo $((left > 1 ? left : 1)) || echo "$1"; }
step() { # name limit command...
  local name=$1 limit; limit=$(cap "$2"); shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$RES/$name.out" 2> "$RES/$name.log"
  echo "$name: exit $? after $((SECONDS - t0)) s" | tee -a "$RES/runs.txt"
}
files=$(ls build/backends/webgpu/*.test.js build/train/webgpu/*.test.js | grep -v webgpuFixtures)
step tests 40 env WGKV_TEST_CONCURRENCY=6 node scripts/run-tests.mjs $files
grep -E "^(not ok|FAIL|tests:)" "$RES/tests.out" | head
OUT=$RES LIMIT=$(cap ${DECODE_LIMIT:-80} 140) bash scripts/device/h200-bench.sh decode > "$RES/decode.txt" 2>&1
OUT=$RES LIMIT=$(cap ${PREFILL_LIMIT:-45} 100) PREFILL_1B=1024,8192 PREFILL_8B=1024,8192 bash scripts/device/h200-bench.sh prefill > "$RES/prefill.txt" 2>&1
tail -24 "$RES/prefill.txt"
# NOTE: the default model's folder: random weights stand in for its model.safetensors, which a device call leaves behind
TINY=models/wgkv-tiny-chat
for backend in webgpu cpu; do
  step tiny-$backend 30 node dist/cli.js bench --backend $backend --model $TINY --random-weights 1 --kv-dtype f16 --context 4096,8192 --decode 64 --warmup 0 --repeat 1
  tail -3 "$RES/tiny-$backend.out"
done
step train-webgpu 40 node dist/cli.js train-gate --backend webgpu --model $TINY --random-weights 1 --data data/haystack.txt.br \
  --lambda 0.08 --steps 4 --batch 2 --length 4096 --needle-mix 0.6 --report-samples 1 --out "$RES/timing-gate.safetensors"
grep -E "^step|train-gate:" "$RES/train-webgpu.log" | head -8
tar czf "$OUT/results.tgz" -C "$RES" .
