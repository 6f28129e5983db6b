// Times the WebGPU backend's kernel variants on the device (the H200), each
// as the backend records it, and prints one JSON line per measurement plus a
// table. Correctness of every variant is the tests' (webgpuMatmul.test.ts,
// the conformance suites): run them in the same call.
//
//   node scripts/device/kernel-bench.mjs [--quick] [--e2e]
//
// Parts: matvec variants on Llama-3.1-8B decode shapes (GB/s of weights);
// prefill matmul variants (TFLOP/s); with --e2e, the 8B model (random
// weights) decoding after a synthetic fill at 8K and 128K under attention
// variants and with fusion off, and an 8K prefill with the f32 and f16 tiles.
import { writeFileSync, appendFileSync } from "node:fs";
import { createNodeWebGpuBackend } from "../../dist/platform/node/webgpu.js";
import { MATVEC_VARIANTS, SG_MATRIX_VARIANTS, TILED_VARIANTS } from "../../dist/backends/webgpu/kernelVariants.js";
import { randomBf16Weight } from "./randomWeights.mjs";

const argv = process.argv.slice(2);
const QUICK = argv.includes("--quick");
const E2E = argv.includes("--e2e");
const OUT = process.env.OUT ?? "bench-out";
const results = [];
const record = (r) => {
  results.push(r);
  console.log(JSON.stringify(r));
  appendFileSync(`${OUT}/kernels.jsonl`, JSON.stringify(r) + "\n");
};


/** Wall ms per call; with WGKV_PROFILE=1 the GPU's own ms per call (timestamps) instead. */
async function time(b, reps, record, sync) {
  record();
  await b.read([{ tensor: sync }]);
  await b.takeProfile();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) record();
  await b.read([{ tensor: sync }]);
  const wall = (performance.now() - t0) / reps;
  const profile = await b.takeProfile();
  if (!profile) return wall;
  // NOTE: the read's own copy is not a dispatch: only the kernels count
  return profile.kernels.reduce((s, k) => s + k.ms, 0) / reps;
}

const b = await createNodeWebGpuBackend();
console.log(`device: ${b.description}`);
const base = { ...b.kernels };
b.kernels.fuse = false;

// ---- decode matvecs (rows = 1): GB/s of weights read
const shapes = [["q/o 4096x4096", 4096, 4096], ["k/v 1024x4096", 1024, 4096], ["gate/up 14336x4096", 14336, 4096], ["down 4096x14336", 4096, 14336], ["lm_head 128256x4096", 128256, 4096]];
const hasSubgroups = base.matvec.subgroups;
for (const [name, N, K] of shapes) {
  const w = randomBf16Weight(b, N, K);
  const x = b.createTensor([1, K], "f32", "x"), out = b.createTensor([1, N], "f32", "out");
  for (const v of MATVEC_VARIANTS) {
    if (v.subgroups && !hasSubgroups) continue;
    b.kernels.matvec = v;
    const ms = await time(b, QUICK ? 20 : 100, () => b.matmul(out, x, w, null, 1), out);
    record({ part: "matvec", shape: name, variant: v, ms, GBps: (N * K * 2) / ms / 1e6 });
  }
  for (const t of [w, x, out]) b.destroyTensor(t);
}
b.kernels.matvec = base.matvec;

// ---- prefill matmuls: TFLOP/s
const rows = 2048;
for (const [name, N, K] of shapes.slice(0, 4)) {
  const w = randomBf16Weight(b, N, K);
  const x = b.createTensor([rows, K], "f32", "x"), out = b.createTensor([rows, N], "f32", "out");
  const variants = [...TILED_VARIANTS.map((v) => ({ tiled: v, sgMatrix: null })), ...(b.subgroupMatrixUsable ? SG_MATRIX_VARIANTS.map((v) => ({ tiled: base.tiled, sgMatrix: v, sgMatrixSmall: null })) : [])];
  for (const v of variants) {
    Object.assign(b.kernels, v);
    try {
      const ms = await time(b, QUICK ? 3 : 10, () => b.matmul(out, x, w, null, rows), out);
      record({ part: "matmul", shape: name, rows, variant: v.sgMatrix ? { sgMatrix: v.sgMatrix } : { tiled: v.tiled }, ms, TFLOPs: (2 * rows * N * K) / ms / 1e9 });
    } catch (err) {
      record({ part: "matmul", shape: name, variant: v, error: String(err.message).split("\n")[0] });
    }
  }
  for (const t of [w, x, out]) b.destroyTensor(t);
}
Object.assign(b.kernels, base);
b.dispose();

// ---- end to end on the 8B shapes: attention variants and fusion in decode after a synthetic fill; prefill tiles
if (E2E) {
  const { loadModel } = await import("../../dist/index.js");
  const { runBenches } = await import("../../dist/bench/bench.js");
  const { FULL: full, WGKV: wgkv } = await import("./decodeRuns.mjs");
  const t0 = performance.now();
  const model = await loadModel("scripts/device/shapes/llama-3.1-8b", { backend: "webgpu", randomWeights: 1, kvMemory: "24GiB", kvDType: "bf16", maxSeqs: 1, maxContext: 140000 });
  console.log(`8B loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${model.backend.description}`);
  const k = model.backend.kernels;
  const mbase = { ...k };
  // NOTE: runs vary by 10-20%: the default runs first and last, to show the spread
  const decodeVariants = [
    ["default", {}],
    ["attention: the team kernel", { decodeAttentionTwoPass: false }],
    ["attention: two-pass, 4 V rows at a time", { decodeAttentionValueLoads: 4 }],
    ["attention: two-pass, two keys per invocation", { decodeAttentionKeysPerInvocation: 2 }],
    ["attention: splits of 2 tiles at least", { attentionSplitTiles: 2 }],
    ["attention: 128 items", { attentionItems: 128 }],
    ["attention: 1024 items", { attentionItems: 1024 }],
    ["no fusion", { fuse: false }],
    ["submit every 96 commands", { submitEvery: 96 }],
    ["default again", {}],
  ];
  const submitEvery = model.backend.submitEvery;
  // NOTE: compiles every kernel the variants share before anything is timed
  await runBenches(model, { context: 1024, decode: 4, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0 }, [wgkv, full], 1);
  const contexts = process.env.E2E_CONTEXTS ? process.env.E2E_CONTEXTS.split(",").map(Number) : QUICK ? [8192] : [8192, 131072];
  for (const context of contexts) {
    for (const [name, { submitEvery: every, ...v }] of decodeVariants) {
      Object.assign(k, mbase, v);
      model.backend.submitEvery = every ?? submitEvery;
      const t = performance.now();
      // NOTE: 2 s of untimed decode after each fill, whose light load lets the GPU lower its clocks
      const [r, f] = await runBenches(model, { context, decode: 24, repeat: 1, concurrency: 1, syntheticFill: true, warmup: 0, decodeWarmupMs: 2000 }, [wgkv, full], 1);
      record({ part: "decode", context, variant: name, wgkv_ms: r.decode_ms_per_token, full_ms: f.decode_ms_per_token, fill_s: f.prefill_ms / 1e3, wall_s: (performance.now() - t) / 1e3 });
    }
  }
  model.backend.submitEvery = submitEvery;
  for (const [name, v] of [["f32 tiles", { sgMatrix: null }], ["default tiles", {}]]) {
    Object.assign(k, mbase, v);
    const t = performance.now();
    try {
      const [r] = await runBenches(model, { context: 8192, decode: 2, repeat: 1, concurrency: 1, warmup: 0 }, [full], 1);
      record({ part: "prefill", context: 8192, variant: name, prefill_s: r.prefill_ms / 1e3, wall_s: (performance.now() - t) / 1e3 });
    } catch (err) {
      record({ part: "prefill", variant: name, error: String(err.message).split("\n")[0] });
    }
  }
  model.dispose();
}
writeFileSync(`${OUT}/kernels.json`, JSON.stringify(results, null, 1));
process.exit(0);
