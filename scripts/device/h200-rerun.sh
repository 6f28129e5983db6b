#!/usr/bin/env bash
# Rows of the H200 table again (runs on a shared machine vary): 1B decode
# with this build's Dawn toggles and with the toggles of before (validation
# on, Tint's index clamps), then 8B prefill. With build/, dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-rerun.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
run() { local tag=$1 limit=$2; shift 2; local t0=$SECONDS
  timeout "$limit" node dist/cli.js bench --backend webgpu --json --kv-dtype bf16 --admission random:0.2 --window 256 --repeat 1 --warmup 0 "$@" > "$RES/$tag.json" 2> "$RES/$tag.log"
  echo "$tag: exit $? after $((SECONDS - t0)) s" | tee -a "$RES/runs.txt"
  figures "$RES/$tag.json"
}
run decode-1b 110 --model $SHAPES/llama-3.2-1b --random-weights 1 --kv-memory 16GiB --synthetic-fill --context 1024,32768,131072,400000 --decode 32
WGKV_DAWN_TOGGLES=-skip_validation,-vulkan_use_buffer_robust_access_2 run decode-1b-before 50 --model $SHAPES/llama-3.2-1b --random-weights 1 --kv-memory 16GiB --synthetic-fill --context 1024,32768 --decode 32
run decode-1b-again 50 --model $SHAPES/llama-3.2-1b --random-weights 1 --kv-memory 16GiB --synthetic-fill --context 1024,32768 --decode 32
run prefill-8b 130 --model $SHAPES/llama-3.1-8b --random-weights 1 --kv-memory 24GiB --context 1024,8192 --decode 8
tar czf "$OUT/results.tgz" -C "$RES" .
