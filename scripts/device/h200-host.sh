#!/usr/bin/env bash
# Where decode's time goes on the H200: host recording against GPU time.
# Runs 1B decode after a 1K prompt under Dawn toggle variants
# (WGKV_DAWN_TOGGLES against the defaults of platform/node/webgpu.ts), a
# per-kernel GPU profile, node CPU profiles, and 8B decode at 8K and 128K
# with and without the hardware toggles. With dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-host.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
B1=(dist/cli.js bench --backend webgpu --model $SHAPES/llama-3.2-1b --random-weights 1 --kv-memory 8GiB --kv-dtype bf16 --context 1024 --decode 128 --warmup 0 --repeat 1 --json)
for t in "" -skip_validation -vulkan_use_buffer_robust_access_2 disable_workgroup_init; do
  step "1b-${t:-default}" 60 env WGKV_DAWN_TOGGLES="$t" node "${B1[@]}"
  figures "$RES/1b-${t:-default}.out"
done
step 1b-profile 60 env WGKV_PROFILE=1 node "${B1[@]}"
grep -A30 "^\[profile" "$RES/1b-profile.log" | head -34
step 1b-cpuprof-default 60 node --cpu-prof --cpu-prof-dir=$RES/cpu-default "${B1[@]}"
step 1b-cpuprof-validated 60 env WGKV_DAWN_TOGGLES=-skip_validation node --cpu-prof --cpu-prof-dir=$RES/cpu-validated "${B1[@]}"
for t in "" -skip_validation,-vulkan_use_buffer_robust_access_2; do
  step "8b-${t:-default}" 120 env WGKV_DAWN_TOGGLES="$t" node dist/cli.js bench --backend webgpu --model $SHAPES/llama-3.1-8b --random-weights 1 --kv-memory 24GiB --kv-dtype bf16 --synthetic-fill --context 8192,131072 --admission random:0.2 --window 256 --decode 32 --warmup 0 --repeat 1 --json
  figures "$RES/8b-${t:-default}.out"
done
tar czf "$OUT/results.tgz" -C "$RES" .
