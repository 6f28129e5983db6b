#!/usr/bin/env bash
# One H200 call after a change to the decode step: the decode table
# (h200-bench.sh decode), then, with submits only at the read, the step as
# is and with the matmuls alone at 8K and 128K in turn (decode-knockout.mjs:
# the same work at both contexts once the clocks are up). nvidia-smi logs
# the clocks, power and throttle reasons all along ($RES/smi.csv).
# With build/, dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-decode-ab.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
mkdir -p "$RES/floor"
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 250 > "$RES/smi.csv" 2>&1 &
SMI=$!
OUT=$RES LIMIT=${BENCH_LIMIT:-220} bash scripts/device/h200-bench.sh decode > "$RES/table.out" 2>&1
cat "$RES/summary-decode.md"
POLICIES=full KNOCKOUT_VARIANTS='[["as is",{},[]],["matmuls only",{},"ALL-matmul"]]' step floor "${FLOOR_LIMIT:-120}" env OUT="$RES/floor" node scripts/device/decode-knockout.mjs 8192,131072
cat "$RES/floor.out"
kill $SMI
tar czf "$OUT/results.tgz" -C "$RES" .
