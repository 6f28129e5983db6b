#!/usr/bin/env bash
# H200 figures of the WebGPU backend (issue 9), within about 8 minutes.
# On the GPU machine, from the project root, with dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-bench.sh
# Writes $OUT/*.json (wgkv bench --json) and *.log, and prints a table of
# measured figures next to what the H200 could attain (summarize.mjs).
#
# Models: random bf16 weights of real shapes made at load (--random-weights),
# full attention and random:0.2 (W=256) taking turns in one process.
# NOTE: until KV pools are split across buffers, one pool must fit one
# storage binding (2 GiB on the H200): bf16 pages, and contexts where full
# attention's KV fits (1B: 32K; 8B: 8K); the WG-KV rows reach further.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export WGKV_GPU_MEMORY=${WGKV_GPU_MEMORY:-135GiB}
SHAPES=scripts/device/shapes
LIMIT=${LIMIT:-150}
node --version
node -e 'import("webgpu").then(async ({create, globals}) => { Object.assign(globalThis, globals); const g = create(["enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia"]); const a = await g.requestAdapter(); console.log(JSON.stringify({ info: { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description }, features: [...a.features].sort(), maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize })); process.exit(0); })' | tee "$OUT/adapter.json"

run() {
  local tag=$1; shift
  local t0=$SECONDS
  timeout "$LIMIT" node dist/cli.js bench --backend webgpu --json --kv-dtype bf16 --repeat 1 "$@" > "$OUT/$tag.json" 2> "$OUT/$tag.log"
  echo "$tag: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/runs.txt"
}

# 1B: full attention and random:0.2 at 8K and 32K; the WG-KV policy alone at 128K
run 1b-8k-32k --model $SHAPES/llama-3.2-1b --random-weights 1 --kv-memory 1.9GiB --admission random:0.2 --window 256 --context 8192,32768 --decode 32
run 1b-128k-wgkv --model $SHAPES/llama-3.2-1b --random-weights 1 --kv-memory 1.9GiB --admission random:0.2 --window 256 --context 131072 --decode 32
# 8B: full attention and random:0.2 at 8K; WG-KV at 32K
run 8b-8k --model $SHAPES/llama-3.1-8b --random-weights 1 --kv-memory 1.9GiB --admission random:0.2 --window 256 --context 8192 --decode 32
run 8b-32k-wgkv --model $SHAPES/llama-3.1-8b --random-weights 1 --kv-memory 1.9GiB --admission random:0.2 --window 256 --context 32768 --decode 32

node scripts/device/summarize.mjs "$OUT" | tee "$OUT/summary.md"
