#!/usr/bin/env bash
# First H200 call of a session: the WebGPU test files on the real GPU (the
# optional features lavapipe lacks: subgroup matrices, NVIDIA's subgroups of
# 32), then the kernel variants' quick timings. With build/ (npm run
# build:test), dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
t0=$SECONDS
# NOTE: the default model (31 MB) may stay behind (the call's 64 MiB limit); then the fixture test cannot run
files=$(ls build/backends/webgpu/*.test.js build/train/webgpu/*.test.js build/cli/trainGateWebgpu.test.js)
[ -s models/wgkv-tiny-chat/model.safetensors ] || files=$(echo "$files" | grep -v -e webgpuFixtures -e trainGateWebgpu)
WGKV_TEST_CONCURRENCY=${WGKV_TEST_CONCURRENCY:-6} timeout "${TEST_LIMIT:-200}" node scripts/run-tests.mjs $files > "$OUT/tests.log" 2>&1
echo "tests: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/runs.txt"
tail -5 "$OUT/tests.log"
t0=$SECONDS
WGKV_PROFILE=1 timeout "${KERNEL_LIMIT:-120}" node scripts/device/kernel-bench.mjs --quick > "$OUT/kernels.log" 2>&1
echo "kernel-bench: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/runs.txt"
