#!/usr/bin/env bash
# One H200 call to judge variants of the decode step (decode-knockout.mjs):
# the variants take turns in one process, three rounds each, at 8K and 128K
# (8B, full attention and WG-KV), with submits only at the read, so the wait
# at the read is the GPU's whole step (GPU-side changes show without the
# host's noise); then the same with the usual submits (what a user sees).
# nvidia-smi logs the clocks, power and throttle reasons ($RES/smi.csv).
# AB_VARIANTS overrides the variants: [name, kernel choice, ops knocked out,
# runtime fields] each. With build/, dist/ and .devcarry/ carried:
#   bash .devcarry/run.sh bash scripts/device/h200-decode-ab.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/device/common.sh
mkdir -p "$RES/gpu" "$RES/wall"
clocks_logged
AB=${AB_VARIANTS:-'[["as is",{},[]],["gate/up pair at half the unroll",{"matvecPairHalfUnroll":true},[]],["norms in a loop",{"normHeld":false},[]]]'}
ROUNDS=3 SUBMIT_EVERY=0 KNOCKOUT_VARIANTS="$AB" step gpu "${AB_LIMIT:-240}" env OUT="$RES/gpu" node scripts/device/decode-knockout.mjs ${AB_CONTEXTS:-8192,131072}
grep "^|" "$RES/gpu.out"
ROUNDS=3 SUBMIT_EVERY=48 KNOCKOUT_VARIANTS="$AB" step wall "${AB_LIMIT:-240}" env OUT="$RES/wall" node scripts/device/decode-knockout.mjs ${AB_CONTEXTS:-8192,131072}
grep "^|" "$RES/wall.out"
tar czf "$OUT/results.tgz" -C "$RES" .
