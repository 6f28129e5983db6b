#!/usr/bin/env bash
# The last H200 call of a session: the WebGPU test files on the GPU, then the
# decode table (h200-bench.sh decode), with nvidia-smi logging the clocks.
# With build/, dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-final.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
clocks_logged
files=$(ls build/backends/webgpu/*.test.js | grep -v -e webgpuFixtures)
WGKV_TEST_CONCURRENCY=6 step tests "${TEST_LIMIT:-150}" node scripts/run-tests.mjs $files
grep -E "^(not ok|tests:)" "$RES/tests.out" | head -20
OUT=$RES LIMIT=${BENCH_LIMIT:-220} bash scripts/device/h200-bench.sh decode > "$RES/table.out" 2>&1
cat "$RES/summary-decode.md"
tar czf "$OUT/results.tgz" -C "$RES" .
