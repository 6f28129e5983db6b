// Where an 8B decode step's GPU time goes, per kernel, at each context and
// policy (full attention and random:0.2 taking turns) after a synthetic
// fill: one profile per run (WGKV_PROFILE's per-dispatch timestamps; the
// fill runs only the cache's ops, so compute kernels are decode's alone;
// per step: over the decode steps, warm-up included).
// Run with WGKV_PROFILE=1. Prints and appends one JSON line per run to $OUT/profile.jsonl.
//
//   node scripts/device/decode-profile.mjs [contexts, default 8192,131072]
import { appendFileSync } from "node:fs";
import { loadModel } from "../../dist/index.js";
import { runBenches } from "../../dist/bench/bench.js";
import { FULL as full, WGKV as wgkv } from "./decodeRuns.mjs";
import { formatProfile } from "../../dist/backends/webgpu/gpuProfiler.js";

const OUT = process.env.OUT ?? ".";
const contexts = (process.argv[2] ?? "8192,131072").split(",").map(Number);
const shape = process.env.SHAPE ?? "scripts/device/shapes/llama-3.1-8b";
const model = await loadModel(shape, { backend: "webgpu", randomWeights: 1, kvMemory: process.env.KV_MEMORY ?? "60GiB", kvDType: process.env.KV_DTYPE ?? "bf16", maxSeqs: 1, maxContext: Math.max(...contexts) + 64 });
const b = model.backend;
const decode = 32;
await runBenches(model, { context: 1024, decode: 4, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0 }, [wgkv, full], 1);
await b.takeProfile();
for (const context of contexts) {
  for (const c of [full, wgkv]) {
    // NOTE: 2 s of untimed decode after the fill (the GPU's clocks rise again); the profile holds those steps too
    const [r] = await runBenches(model, { context, decode, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0, decodeWarmupMs: 2000 }, [c], 1);
    const p = await b.takeProfile();
    // decode steps: one sampling dispatch each (the fill skips sampling)
    const steps = Math.max(1, p.kernels.find((k) => k.label.startsWith("sample"))?.count ?? 1);
    const kernels = p.kernels.map((k) => ({ label: k.label, calls: k.count, ms_per_step: +(k.ms / steps).toFixed(4), us_per_call: +((1000 * k.ms) / k.count).toFixed(2) }));
    const row = { context, policy: c.tag, ms_per_token: r.decode_ms_per_token, steps, kernels };
    console.log(`## ${c.tag} ${context}: ${r.decode_ms_per_token} ms/token\n${formatProfile(p)}`);
    appendFileSync(`${OUT}/profile.jsonl`, JSON.stringify(row) + "\n");
  }
}
model.dispose();
process.exit(0);
