#!/usr/bin/env bash
# The WebGPU test files on the H200 (the engine fixtures included: they run
# the default kernels there, the tensor-core matmul and attention among
# them), attention-sg-check.mjs, the prefill table (h200-bench.sh prefill:
# 1B and 8B, full attention and WG-KV taking turns, PREFILL_1B / PREFILL_8B
# contexts), then 8B prefills under each kernel choice of PREFILL_VARIANTS
# (WGKV_KERNELS values separated by spaces) at VARIANT_CONTEXTS, and the GPU
# time per kernel of an 8B prefill of 8K under PROFILE_KERNELS if set. With
# build/, dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-prefill-table.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
clocks_logged
files=$(ls build/backends/webgpu/*.test.js build/train/webgpu/*.test.js)
WGKV_TEST_CONCURRENCY=6 step tests "${TEST_LIMIT:-200}" node scripts/run-tests.mjs $files
grep -E "^(not ok|FAIL|tests:)" "$RES/tests.out" | head -20
step attention-check 60 node scripts/device/attention-sg-check.mjs
grep -v Warning "$RES/attention-check.out"
OUT=$RES LIMIT=${PREFILL_LIMIT:-150} bash scripts/device/h200-bench.sh prefill > "$RES/prefill.txt" 2>&1
for f in "$RES"/prefill-*.json; do echo "$(basename "$f"):"; figures "$f"; done
i=0
for v in ${PREFILL_VARIANTS:-}; do
  step "variant-$i" "${VARIANT_LIMIT:-120}" env WGKV_KERNELS="$v" node dist/cli.js bench --backend webgpu --json --kv-dtype bf16 --admission random:0.2 --window 256 --repeat 1 --model "$SHAPES/llama-3.1-8b" --random-weights 1 --kv-memory 24GiB --context "${VARIANT_CONTEXTS:-8192}" --decode 2 --warmup 0
  echo "variant-$i ($v):"; figures "$RES/variant-$i.out"; i=$((i + 1))
done
if [ -n "${PROFILE_KERNELS:-}" ]; then
  step profile 90 env WGKV_PROFILE=1 WGKV_KERNELS="$PROFILE_KERNELS" node dist/cli.js bench --backend webgpu --json --kv-dtype bf16 --admission random:0.2 --window 256 --repeat 1 --model "$SHAPES/llama-3.1-8b" --random-weights 1 --kv-memory 24GiB --context 8192 --decode 2 --warmup 0
  grep -A14 "^GPU time" "$RES/profile.log"
fi
tar czf "$OUT/results.tgz" -C "$RES" .
