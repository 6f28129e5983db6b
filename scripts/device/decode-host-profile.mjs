// Where the host's time goes in a decode step: a CPU profile (node:inspector,
// 100 us sampling) of decode steps after a synthetic fill (8B shapes, random
// weights, full attention, the usual submits), with the host's gap and the
// wait at each step's read beside it. Writes $OUT/decode-host.cpuprofile and
// prints the functions taking the most self time. HEAP=1: a sampling heap
// profile instead (what the steps allocate, by function: the garbage whose
// collection is host time), $OUT/decode-host.heapprofile.
//
//   [SHAPE=scripts/device/shapes/llama-3.1-8b] [CONTEXT=8192] [POLICY=full|wgkv] [DECODE=128] [HEAP=1] node scripts/device/decode-host-profile.mjs
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { loadModel } from "../../dist/index.js";
import { runBenches } from "../../dist/bench/bench.js";
import { FULL, WGKV, timeReads } from "./decodeRuns.mjs";

const OUT = process.env.OUT ?? ".";
const shape = process.env.SHAPE ?? "scripts/device/shapes/llama-3.1-8b";
const context = Number(process.env.CONTEXT ?? 8192);
const policy = process.env.POLICY === "wgkv" ? WGKV : FULL;
const model = await loadModel(shape, { backend: "webgpu", randomWeights: 1, kvMemory: process.env.KV_MEMORY ?? "24GiB", kvDType: "bf16", maxSeqs: 1, maxContext: context + 512 });
const reads = timeReads(model.backend);
const opts = { context, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0 };
await runBenches(model, { ...opts, decode: 4 }, [policy], 1);
const session = new Session();
session.connect();
const HEAP = process.env.HEAP === "1";
if (HEAP) {
  // NOTE: objects collected before the stop count too (what a step allocates, not what it keeps)
  await session.post("HeapProfiler.enable");
  await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
} else {
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
}
reads.take();
reads.takeGaps();
if (!HEAP) await session.post("Profiler.start");
const decode = Number(process.env.DECODE ?? 128);
const [result] = await runBenches(model, { ...opts, decode, decodeWarmupMs: 1500 }, [policy], 1);
const gaps = reads.takeGaps().slice(-decode).sort((a, b) => a - b), waits = reads.take().slice(-decode).sort((a, b) => a - b);
const med = (a) => +a[Math.floor(a.length / 2)].toFixed(3);
const steps = gaps.length;
console.log(JSON.stringify({ context, policy: policy.tag, ms_per_token: result?.decode_ms_per_token ?? null, host_gap_ms_median: med(gaps), host_gap_ms_q3: +gaps[Math.floor(0.75 * gaps.length)].toFixed(3), read_wait_ms_median: med(waits) }));
const where = (f) => `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`;
if (HEAP) {
  const { profile } = await session.post("HeapProfiler.stopSampling");
  writeFileSync(`${OUT}/decode-host.heapprofile`, JSON.stringify(profile));
  const self = new Map();
  let total = 0;
  const visit = (n) => {
    const bytes = n.selfSize;
    if (bytes > 0) self.set(where(n.callFrame), (self.get(where(n.callFrame)) ?? 0) + bytes);
    total += bytes;
    for (const c of n.children) visit(c);
  };
  visit(profile.head);
  console.log(`sampled ${(total / 1e6).toFixed(1)} MB allocated (the fill's end and ~${steps} timed steps with the warm-up's)`);
  for (const [key, bytes] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${(bytes / 1e6).toFixed(2).padStart(9)} MB  ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${key}`);
} else {
  const { profile } = await session.post("Profiler.stop");
  writeFileSync(`${OUT}/decode-host.cpuprofile`, JSON.stringify(profile));
  // self time per function (native calls are charged to the JS function that made them)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const key = where(byId.get(id).callFrame);
    self.set(key, (self.get(key) ?? 0) + profile.timeDeltas[i]);
    total += profile.timeDeltas[i];
  });
  console.log(`profiled ${(total / 1000).toFixed(0)} ms`);
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 45)) console.log(`${(us / 1000).toFixed(1).padStart(9)} ms  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
}
model.dispose();
process.exit(0);
