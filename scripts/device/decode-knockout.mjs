// What each class of op costs inside a real decode step (8B shapes, random
// weights, after a synthetic fill): the step timed as it is, with kernel
// variants, and with one class of ops knocked out (recorded as no-ops), at
// each context and policy (full attention and random:0.2 taking turns).
// The backend submits only at the step's read (SUBMIT_EVERY, default 0), so
// the wait at the read is the GPU's whole step and the rest is the host's; the
// drop in the wait when a class is knocked out is that class's GPU time in
// place. A variant is [name, kernel choice, ops knocked out, runtime fields
// (submitEvery, paceReads, and the engine's chainSteps)]; ROUNDS > 1 runs them all that many times in
// turn and prints the medians.
// Prints and appends one JSON line per run to $OUT/knockout.jsonl.
// MAX_CONTEXT sets the engine's maxContext (default: the longest context +
// 64; `wgkv bench` uses the model's max_position_embeddings, 524288 for the
// 8B shape), which sets the block tables' row stride and the untimed decode's
// room: the 32K row that the two harnesses measure differently.
//
//   node scripts/device/decode-knockout.mjs [contexts, default 8192,131072]
import { appendFileSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";
import { loadModel } from "../../dist/index.js";
import { runBenches } from "../../dist/bench/bench.js";
import { FULL as full, WGKV as wgkv, timeReads } from "./decodeRuns.mjs";

const OUT = process.env.OUT ?? ".";
const contexts = (process.argv[2] ?? "8192,131072").split(",").map(Number);
const shape = process.env.SHAPE ?? "scripts/device/shapes/llama-3.1-8b";
const model = await loadModel(shape, { backend: "webgpu", randomWeights: 1, kvMemory: process.env.KV_MEMORY ?? "60GiB", kvDType: process.env.KV_DTYPE ?? "bf16", maxSeqs: 1, maxContext: Number(process.env.MAX_CONTEXT ?? Math.max(...contexts) + 64) });
const b = model.backend;
const reads = timeReads(b);
// NOTE: garbage collection during a run (its pauses fall inside the steps they interrupt)
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ["gc"] });
const ALL = ["embed", "rmsNorm", "matmul", "rope", "siluMul", "add", "copyRows", "gatherRows", "pagedAttention", "sample", "admit", "writeRingFlags", "copySlots", "writeKv", "scatter", "updatePageBounds"];
const base = { ...b.kernels };
// NOTE: a variant's ops may be "ALL" (every op the step records) or "ALL-matmul" (all but the matmuls)
const VARIANTS = JSON.parse(process.env.KNOCKOUT_VARIANTS ?? "null") ?? [
  ["as is", {}, []],
  ["gate/up pair at half the unroll", { matvecPairHalfUnroll: true }, []],
  ["splits of 8 tiles", { attentionSplitTiles: 8 }, []],
  ["1024 items", { attentionItems: 1024 }, []],
  ["no attention", {}, ["pagedAttention"]],
  ["no cache writes", {}, ["admit", "writeRingFlags", "copySlots", "writeKv"]],
  ["no norms, adds", {}, ["rmsNorm", "add"]],
  ["no rope", {}, ["rope"]],
  ["no sampling", {}, ["sample"]],
  ["no matmuls", {}, ["matmul", "siluMul"]],
  ["nothing", {}, ALL],
  ["matmuls only", {}, ALL.filter((op) => op !== "matmul" && op !== "siluMul")],
];
for (const v of VARIANTS) {
  if (v[2] === "ALL") v[2] = ALL;
  else if (v[2] === "ALL-matmul") v[2] = ALL.filter((op) => op !== "matmul" && op !== "siluMul");
}
await runBenches(model, { context: 1024, decode: 4, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0 }, [wgkv, full], 1);
const decode = 32;
const ROUNDS = Number(process.env.ROUNDS ?? 1);
// NOTE: untimed decode after each fill: the GPU's clocks, lowered during the fill's light load, take up to ~2 s to rise
const WARMUP_MS = Number(process.env.DECODE_WARMUP ?? 2000);
const baseRuntime = { submitEvery: Number(process.env.SUBMIT_EVERY ?? 0) };
const rows = new Map();
for (const context of contexts) {
  for (let round = 0; round < ROUNDS; round++) {
    // NOTE: POLICIES=random:0.2,full,random:0.2 runs WG-KV in a fresh pool first, then after full attention's pages were freed
    for (const c of (process.env.POLICIES ?? "full,random:0.2").split(",").map((tag) => (tag === "full" ? full : wgkv))) {
      for (const [name, kernels, skipped, runtime] of VARIANTS) {
        Object.assign(b.kernels, base, kernels);
        const { chainSteps = true, ...fields } = runtime ?? {};
        Object.assign(b, baseRuntime, fields);
        model.engine.chainSteps = chainSteps;
        const target = b;
        // NOTE: knocked out once the fill is done (the fill's own cache ops must run): at the first decode step's read
        let armed = false;
        const arm = () => {
          if (armed) return;
          armed = true;
          for (const op of skipped) target[op] = () => {};
          gcMs = 0;
        };
        const [r] = await runBenches(model, { context, decode, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0, onDecodeStart: arm, decodeWarmupMs: WARMUP_MS }, [c], 1);
        const gc = gcMs;
        for (const op of skipped) delete target[op];
        // NOTE: the run ends (by abort) right after its last timed step: the last reads are the timed steps'
        const n = r.decode;
        const wait = reads.take().slice(-n).reduce((a, x) => a + x, 0) / n;
        const row = { context, policy: c.tag, variant: name, round, ms_per_token: r.decode_ms_per_token, gpu_ms: +wait.toFixed(2), host_ms: +(r.decode_ms_per_token - wait).toFixed(2), gc_ms_per_token: +(gc / n).toFixed(2) };
        console.log(JSON.stringify(row));
        appendFileSync(`${OUT}/knockout.jsonl`, JSON.stringify(row) + "\n");
        const key = `${context} ${c.tag} ${name}`;
        rows.set(key, [...(rows.get(key) ?? []), row]);
      }
    }
  }
}
if (ROUNDS > 1) {
  console.log("\n| context | policy | variant | ms/token (median) | runs | GPU wait, ms (median) | runs |\n|---|---|---|---|---|---|---|");
  const sorted = (xs) => [...xs].sort((x, y) => x - y);
  for (const [key, rs] of rows) {
    const ms = sorted(rs.map((r) => r.ms_per_token)), gpu = sorted(rs.map((r) => r.gpu_ms));
    const [context, policy, ...name] = key.split(" ");
    console.log(`| ${context} | ${policy} | ${name.join(" ")} | ${ms[Math.floor(ms.length / 2)]} | ${ms.join(", ")} | ${gpu[Math.floor(gpu.length / 2)]} | ${gpu.join(", ")} |`);
  }
}
Object.assign(b, baseRuntime);
Object.assign(b.kernels, base);
model.dispose();
process.exit(0);
