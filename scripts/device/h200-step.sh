#!/usr/bin/env bash
# One H200 call after a change to the decode path: the WebGPU test files on
# the GPU, decode variants at 8K and 128K (8B, kernel-bench --e2e), Dawn
# toggle variants on 1B decode (host-bound), and a per-kernel GPU profile of
# 8B decode at 8K (synthetic fill). With build/, dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-step.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
files=$(ls build/backends/webgpu/*.test.js | grep -v -e webgpuFixtures)
WGKV_TEST_CONCURRENCY=6 step tests "${TEST_LIMIT:-150}" node scripts/run-tests.mjs $files
grep -E "^(not ok|FAIL|tests:)" "$RES/tests.out" | head -20
step e2e "${E2E_LIMIT:-200}" env E2E_CONTEXTS=8192,131072 OUT=$RES node scripts/device/kernel-bench.mjs --e2e --quick
grep -E '"part":"decode"' "$RES/kernels.jsonl"
for t in "" -skip_validation "" -skip_validation -vulkan_use_buffer_robust_access_2; do
  step "1b${t:-default}" 40 env WGKV_DAWN_TOGGLES="$t" node dist/cli.js bench --backend webgpu --model $SHAPES/llama-3.2-1b --random-weights 1 --kv-memory 8GiB --kv-dtype bf16 --context 1024 --decode 128 --warmup 0 --repeat 1 --json
  figures "$RES/1b${t:-default}.out"
done
step profile-8b "${PROFILE_LIMIT:-90}" env WGKV_PROFILE=1 node dist/cli.js bench --backend webgpu --model $SHAPES/llama-3.1-8b --random-weights 1 --kv-memory 24GiB --kv-dtype bf16 --synthetic-fill --context 8192 --decode 64 --warmup 0 --repeat 1 --json
grep -A24 "^\[profile" "$RES/profile-8b.log" | head -60
tar czf "$OUT/results.tgz" -C "$RES" .
