#!/usr/bin/env bash
# One H200 call on prefill: the matmul variants alone (matmul-bench.mjs;
# MATMUL=0 skips), the WebGPU test files of TESTS under the kernel choice
# TEST_KERNELS (WGKV_KERNELS), then 8B prefills (PREFILL_CONTEXTS; full
# attention and WG-KV taking turns) under each of PREFILL_VARIANTS
# (WGKV_KERNELS values separated by spaces), and PROFILE_VARIANT again at
# 8K with WGKV_PROFILE=1 (GPU time per kernel). With build/, dist/ and
# .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-prefill.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
clocks_logged
SG128='"sgMatrix":{"bm":128,"bn":128,"bk":32,"sgm":2,"sgn":2,"pad":8},"sgMatrixSmall":null'
if [ "${MATMUL:-1}" != 0 ]; then
  step matmul "${MATMUL_LIMIT:-200}" env OUT="$RES" node scripts/device/matmul-bench.mjs
  grep "^|" "$RES/matmul.out"
fi
if [ -n "${TESTS:-}" ]; then
  kernels=${TEST_KERNELS:-"{}"}
  step tests "${TESTS_LIMIT:-200}" env WGKV_KERNELS="$kernels" node --test $TESTS
  grep -E "^# (pass|fail)|^not ok" "$RES/tests.out"
fi
prefill() {
  step "$1" "${PREFILL_LIMIT:-150}" env WGKV_KERNELS="$2" node dist/cli.js bench --backend webgpu --json --kv-dtype bf16 --admission random:0.2 --window 256 --repeat 1 --model "$SHAPES/llama-3.1-8b" --random-weights 1 --kv-memory 24GiB --context "$3" --decode 2 --warmup 0
  echo "$1 ($2):"; figures "$RES/$1.out"
}
i=0
for v in ${PREFILL_VARIANTS:-"{\"sgMatrix\":null} {$SG128}"}; do
  prefill "prefill-$i" "$v" "${PREFILL_CONTEXTS:-1024,8192}"; i=$((i + 1))
done
if [ -n "${PROFILE_VARIANT:-}" ]; then
  WGKV_PROFILE=1 prefill prefill-profile "$PROFILE_VARIANT" 8192
  grep -A14 "^GPU time" "$RES/prefill-profile.log"
fi
tar czf "$OUT/results.tgz" -C "$RES" .
