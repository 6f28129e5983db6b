#!/usr/bin/env bash
# One H200 call that checks and measures what issue 9 asks, within the
# call's 10 minutes (each part has its own time limit). With build/
# (npm run build:test), dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-session.sh
# Parts: the WebGPU test files on the GPU; kernel variants (GPU time from
# timestamps); a per-kernel GPU profile of 8B decode at 8K and 128K; the
# decode table (synthetic fill) and the prefill table (h200-bench.sh). All
# outputs go to $OUT/results.tgz, the tables also to stdout.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench-out}
RES=$(mktemp -d)
export WGKV_GPU_MEMORY=${WGKV_GPU_MEMORY:-135GiB}
step() { # name limit command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$RES/$name.out" 2> "$RES/$name.log"
  echo "$name: exit $? after $((SECONDS - t0)) s" | tee -a "$RES/runs.txt"
}
TEST_LIMIT=${TEST_LIMIT:-90} KERNEL_LIMIT=${KERNEL_LIMIT:-60} OUT=$RES bash scripts/device/h200-check.sh
grep -E "^(not ok|FAIL|tests:)" "$RES/tests.log" | head -20
# GPU time per kernel: 8B decode after a short prompt (full attention), then an 8K prefill
step profile-8b "${PROFILE_LIMIT:-100}" env WGKV_PROFILE=1 node dist/cli.js bench --backend webgpu --model scripts/device/shapes/llama-3.1-8b --random-weights 1 \
  --kv-memory 24GiB --kv-dtype bf16 --window 256 --context 512,8192 --decode 64 --warmup 0 --repeat 1 --json
grep -A16 "^\[profile" "$RES/profile-8b.log"
# host time per function of a 1B decode (node's sampling profiler)
step cpu-prof-1b "${CPU_PROF_LIMIT:-60}" node --cpu-prof --cpu-prof-dir="$RES/cpu-prof" dist/cli.js bench --backend webgpu --model scripts/device/shapes/llama-3.2-1b --random-weights 1 \
  --kv-memory 8GiB --kv-dtype bf16 --window 256 --context 1024 --decode 256 --warmup 0 --repeat 1
tail -3 "$RES/cpu-prof-1b.out"
# decode variants at 128K and prefill tiles at 8K on the 8B shapes
step e2e "${E2E_LIMIT:-150}" env E2E_CONTEXTS=${E2E_CONTEXTS:-131072} OUT=$RES node scripts/device/kernel-bench.mjs --e2e --quick
grep -E '"part":"(decode|prefill)"' "$RES/kernels.jsonl"
OUT=$RES LIMIT=${DECODE_LIMIT:-150} bash scripts/device/h200-bench.sh decode > "$RES/decode.txt" 2>&1; cat "$RES/decode.txt" | tail -20
OUT=$RES LIMIT=${PREFILL_LIMIT:-100} bash scripts/device/h200-bench.sh prefill > "$RES/prefill.txt" 2>&1; cat "$RES/prefill.txt" | tail -14
tar czf "$OUT/results.tgz" -C "$RES" .
