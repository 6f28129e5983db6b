# Shared by the H200 scripts (sourced from the project root): a results
# folder, the GPU memory the backend may use, and `step NAME LIMIT CMD...`,
# which runs CMD with a time limit, its stdout and stderr to $RES/NAME.out
# and .log, and notes its exit and time in $RES/runs.txt; `clocks_logged`
# logs the GPU's clocks, power and throttle reasons to $RES/smi.csv while
# the script runs (the governor drops the SM clock under light load).
OUT=${OUT:-bench-out}
RES=$(mktemp -d)
export WGKV_GPU_MEMORY=${WGKV_GPU_MEMORY:-135GiB}
SHAPES=scripts/device/shapes
step() {
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$RES/$name.out" 2> "$RES/$name.log"
  echo "$name: exit $? after $((SECONDS - t0)) s" | tee -a "$RES/runs.txt"
}
# The decode (and prefill) figures of a bench --json output file, one line per run.
figures() {
  node -e 'const s=require("fs").readFileSync(process.argv[1],"utf8");for(const l of s.split("\n")){try{for(const r of [].concat(JSON.parse(l)))if(r.decode_ms_per_token!==undefined)console.log(`  ${r.policy} ctx ${r.context}: prefill ${(r.prefill_ms/1e3).toFixed(2)} s, decode ${r.decode_ms_per_token} ms/token`)}catch{}}' "$1"
}
clocks_logged() {
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 250 > "$RES/smi.csv" 2>&1 &
  trap "kill $! 2>/dev/null" EXIT
}
