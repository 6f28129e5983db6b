#!/usr/bin/env bash
# One H200 call after a change to the decode attention kernel: the attention
# tests on the GPU (every variant against the dense reference), then one
# layer's decode attention timed alone under the kernel variants
# (attention-bench.mjs; ATTENTION_VARIANTS / ATTENTION_CASES override).
# With build/, dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-attention.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
step tests "${TEST_LIMIT:-120}" node scripts/run-tests.mjs build/backends/webgpu/webgpuAttention.test.js
grep -E "^(not ok|FAIL|tests:)" "$RES/tests.out" | head -20
step attention "${ATTENTION_LIMIT:-400}" env OUT=$RES node scripts/device/attention-bench.mjs
cat "$RES/attention.jsonl"
tar czf "$OUT/results.tgz" -C "$RES" .
