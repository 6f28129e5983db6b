// The host's time per decode step: from the end of one step's read to the
// next step's read (planning, uploads, recording every op), with submits only
// at the read so the GPU runs nothing meanwhile (on a software adapter its
// work would share the CPU). Any adapter, lavapipe included: the figure is
// the host's, the GPU's own time is left out. Prints the median and the
// quartiles over the steps of a few decode runs.
//
//   node scripts/device/host-step.mjs [model folder, default models/wgkv-tiny-chat] [context, default 512]
import { loadModel } from "../../dist/index.js";
import { runBenches } from "../../dist/bench/bench.js";
import { FULL, WGKV, timeReads } from "./decodeRuns.mjs";

const dir = process.argv[2] ?? "models/wgkv-tiny-chat";
const context = Number(process.argv[3] ?? 512);
const model = await loadModel(dir, { backend: "webgpu", randomWeights: process.env.RANDOM_WEIGHTS ? 1 : undefined, kvMemory: process.env.KV_MEMORY ?? "512MiB", maxSeqs: 1, maxContext: context + 256 });
const b = model.backend;
b.submitEvery = 0;
const reads = timeReads(b);
const policy = (process.env.POLICY === "full" ? FULL : WGKV).policy;
const decode = Number(process.env.DECODE ?? 24);
await runBenches(model, { context, decode: 4, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0 }, [{ tag: "warm", policy }], 1);
const all = [];
for (let run = 0; run < Number(process.env.RUNS ?? 3); run++) {
  reads.takeGaps();
  await runBenches(model, { context, decode, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0 }, [{ tag: "run", policy }], 1);
  // the decode steps' gaps: the last `decode` (the fill's steps come first)
  all.push(...reads.takeGaps().slice(-decode));
}
all.sort((x, y) => x - y);
const q = (f) => all[Math.floor(f * (all.length - 1))].toFixed(3);
const mean = all.reduce((a, x) => a + x, 0) / all.length;
console.log(JSON.stringify({ host_ms_mean: +mean.toFixed(3), model: dir, context, layers: model.config.numLayers, steps: all.length, host_ms_median: +q(0.5), host_ms_q1: +q(0.25), host_ms_q3: +q(0.75) }));
model.dispose();
process.exit(0);
