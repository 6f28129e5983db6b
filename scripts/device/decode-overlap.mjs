// Where a decode step's time goes on the device: the host recording the
// step against the wait for the GPU at the step's read. The 8B shapes
// (random weights) decode after a synthetic fill, full attention and
// random:0.2 taking turns, with the backend submitting every 48 commands
// (the GPU starts while the host records) and only at the read (the wait
// is then the GPU's whole step). Prints one JSON line per run.
//
//   node scripts/device/decode-overlap.mjs [contexts, default 8192,131072]
import { appendFileSync } from "node:fs";
import { loadModel } from "../../dist/index.js";
import { runBenches } from "../../dist/bench/bench.js";
import { FULL as full, WGKV as wgkv, timeReads } from "./decodeRuns.mjs";

const OUT = process.env.OUT ?? ".";
const contexts = (process.argv[2] ?? "8192,131072").split(",").map(Number);
const model = await loadModel("scripts/device/shapes/llama-3.1-8b", { backend: "webgpu", randomWeights: 1, kvMemory: "60GiB", kvDType: "bf16", maxSeqs: 1, maxContext: Math.max(...contexts) + 64 });
const b = model.backend;
const reads = timeReads(b);
// NOTE: compiles the decode kernels before anything is timed
await runBenches(model, { context: 1024, decode: 4, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0 }, [wgkv, full], 1);
const decode = 32;
for (const context of contexts) {
  for (const submitEvery of [48, 0, 48]) {
    for (const c of [full, wgkv]) {
      b.submitEvery = submitEvery;
      // NOTE: 2 s of untimed decode after each fill, whose light load lets the GPU lower its clocks; the run ends right after its timed steps
      const [r] = await runBenches(model, { context, decode, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0, decodeWarmupMs: 2000 }, [c], 1);
      const waits = reads.take();
      const wait = waits.slice(-decode).reduce((a, x) => a + x, 0) / decode;
      const row = { context, policy: c.tag, submitEvery, ms_per_token: r.decode_ms_per_token, wait_ms_per_token: +wait.toFixed(2), host_ms_per_token: +(r.decode_ms_per_token - wait).toFixed(2), reads: waits.length };
      console.log(JSON.stringify(row));
      appendFileSync(`${OUT}/overlap.jsonl`, JSON.stringify(row) + "\n");
    }
  }
}
b.submitEvery = 48;
model.dispose();
process.exit(0);
