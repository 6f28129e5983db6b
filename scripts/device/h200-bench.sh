#!/usr/bin/env bash
# H200 figures of the WebGPU backend (issue 9), in two device calls of at
# most ~9 minutes each. On the GPU machine, from the project root, with dist/
# and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-bench.sh decode   (or decode1b, decode8b)
#   bash .devcarry/run.sh bash scripts/device/h200-bench.sh prefill
# Writes $OUT/<phase>-<model>.json (wgkv bench --json) and .log, and prints
# the table of measured figures next to the attainable ones and PyTorch's
# (summarize.mjs).
#
# Models: random bf16 weights of real shapes made at load (--random-weights),
# full attention and random:0.2 (W = 256) taking turns in one process, bf16
# KV pages (KV_DTYPE=f16: f16, which the tensor-core attention reads directly; pools larger than one storage binding are split by layer groups).
# decode: the cache filled synthetically at the policy's admission rate
#   (bench --synthetic-fill: the cache's own ops only), then 2 s of untimed
#   decode (the fill's light load lets the GPU drop its clocks to 345 MHz;
#   they take up to ~2 s to return to 1980), then 32 tokens timed.
# prefill: real chunked prefills, one run each (a 1K context first takes
#   the kernels' compilation); 128K only on request (PREFILL_8B=...), as
#   the attention of a 128K prefill takes minutes with today's kernels.
set -uo pipefail
cd "$(dirname "$0")/../.."
PHASE=${1:-decode}
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export WGKV_GPU_MEMORY=${WGKV_GPU_MEMORY:-135GiB}
SHAPES=${SHAPES:-scripts/device/shapes}
LIMIT=${LIMIT:-280}
node --version
node -e 'import("webgpu").then(async ({create, globals}) => { Object.assign(globalThis, globals); const g = create(["enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia"]); const a = await g.requestAdapter(); console.log(JSON.stringify({ info: { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description }, features: [...a.features].sort(), maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize })); process.exit(0); })' | tee "$OUT/adapter.json"

run() {
  local tag=$1; shift
  local t0=$SECONDS
  timeout "$LIMIT" node dist/cli.js bench --backend webgpu --json --kv-dtype "${KV_DTYPE:-bf16}" --admission random:0.2 --window 256 --repeat 1 "$@" > "$OUT/$tag.json" 2> "$OUT/$tag.log"
  echo "$tag: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/runs.txt"
}

case "$PHASE" in
  decode|decode1b|decode8b)
    # KV of full attention at 400K: 1B 13 GB, 8B 54 GB (bf16); decode1b, decode8b: one model (a call each)
    # NOTE: the 1K row takes the kernels' compilation, so no warm-up run is needed (each fill costs seconds at 400K)
    [ "$PHASE" = decode8b ] || run decode-1b --model "$SHAPES/llama-3.2-1b" --random-weights 1 --kv-memory 16GiB --synthetic-fill --context 1024,32768,131072,400000 --decode 32 --warmup 0
    [ "$PHASE" = decode1b ] || run decode-8b --model "$SHAPES/llama-3.1-8b" --random-weights 1 --kv-memory 56GiB --synthetic-fill --context 1024,8192,32768,131072,400000 --decode 32 --warmup 0
    ;;
  prefill)
    run prefill-1b --model "$SHAPES/llama-3.2-1b" --random-weights 1 --kv-memory 8GiB --context ${PREFILL_1B:-1024,8192,32768} --decode 8 --warmup 0
    run prefill-8b --model "$SHAPES/llama-3.1-8b" --random-weights 1 --kv-memory 24GiB --context ${PREFILL_8B:-1024,8192,32768} --decode 8 --warmup 0
    ;;
  *)
    echo "usage: h200-bench.sh decode|decode1b|decode8b|prefill" >&2
    exit 2
    ;;
esac

node scripts/device/summarize.mjs "$OUT" | tee "$OUT/summary-$PHASE.md"
