// Times one layer's decode attention alone on the device (the H200): the
// WebGPU backend's pagedAttention (work items, decode kernel, reduce) on
// Llama-3.1-8B and 3.2-1B head shapes, bf16 pages at shuffled page ids,
// full attention and 20% of the keys admitted, one and eight sequences.
// Variants of the kernel choice take turns (each measured in three rounds,
// the median kept), so the machine's drift spreads over all of them.
//
//   node scripts/device/attention-bench.mjs [--quick]
//
// Prints one JSON line per measurement (GB/s of K and V read) and writes
// $OUT/attention.jsonl. Correctness of every variant is the tests'
// (webgpuAttention.test.ts): run them in the same call.
import { appendFileSync } from "node:fs";
import { createNodeWebGpuBackend } from "../../dist/platform/node/webgpu.js";
import { keepBusy, msPerCall } from "./timeCalls.mjs";
import { SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../../dist/backends/stepLayout.js";

const QUICK = process.argv.includes("--quick");
const OUT = process.env.OUT ?? ".";
const W = 256;
const SHAPES = { "8b": { Hq: 32, Hkv: 8, d: 128 }, "1b": { Hq: 32, Hkv: 8, d: 64 } };
const VARIANTS = JSON.parse(process.env.ATTENTION_VARIANTS ?? "null") ?? [
  ["default", {}],
  ["two-pass", { decodeAttentionTwoPass: true }],
  ["two-pass, 256 items", { decodeAttentionTwoPass: true, attentionItems: 256 }],
  ["two-pass, 1024 items", { decodeAttentionTwoPass: true, attentionItems: 1024 }],
  ["two-pass, 2048 items", { decodeAttentionTwoPass: true, attentionItems: 2048 }],
  ["two-pass, splits of 32 tiles", { decodeAttentionTwoPass: true, attentionSplitTiles: 32 }],
  ["two-pass, splits of 8 tiles", { decodeAttentionTwoPass: true, attentionSplitTiles: 8 }],
  ["8 lanes", { decodeAttentionLanes: 8 }],
];
const CASES = JSON.parse(process.env.ATTENTION_CASES ?? "null") ?? (QUICK
  ? [["8b", 131072, 1, 1]]
  : [["8b", 8192, 1, 1], ["8b", 32768, 1, 1], ["8b", 131072, 1, 1], ["8b", 409600, 1, 1], ["8b", 131072, 0.2, 1], ["8b", 409600, 0.2, 1], ["8b", 32768, 1, 8], ["1b", 131072, 1, 1], ["1b", 131072, 0.2, 1]]);

const b = await createNodeWebGpuBackend();
console.log(`device: ${b.description}`);
const base = { ...b.kernels };
let seed = 7;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const tensor = (shape, dtype, data, label) => {
  const t = b.createTensor(shape, dtype, label);
  if (data) b.write(t, data);
  return t;
};

/**
 * One attention call per layer for S sequences of `context` tokens with `rate` of the older keys admitted, in a
 * pool of L layers (ATTENTION_LAYERS, default 1): with several, each call reads another layer's pages, as decode does.
 */
function setUp(shapeName, context, rate, S) {
  const { Hq, Hkv, d } = SHAPES[shapeName];
  const L = Number(process.env.ATTENTION_LAYERS ?? 1);
  const nG = Math.round(rate * (context - W));
  const ringPages = W / 16, globalPages = Math.ceil(nG / 16), rowStride = ringPages + globalPages;
  const perLayer = S * Hkv * rowStride;
  const pool = b.createKvPool(L * perLayer, d, "bf16", L);
  // NOTE: a layer's pages at shuffled ids of its group, as a pool that served many sequences hands them out (ATTENTION_PAGES=sequential: in order)
  const ids = new Int32Array(L * perLayer);
  for (let l = 0; l < L; l++) {
    const group = Math.floor((l * pool.numGroups) / L), layersPerGroup = L / pool.numGroups;
    const first = group * pool.pagesPerGroup + (l - group * layersPerGroup) * perLayer;
    const layerIds = Int32Array.from({ length: perLayer }, (_, i) => first + i);
    for (let i = process.env.ATTENTION_PAGES === "sequential" ? 0 : perLayer - 1; i > 0; i--) {
      const j = Math.floor(((random() + 1) / 2) * (i + 1)) % (i + 1);
      [layerIds[i], layerIds[j]] = [layerIds[j], layerIds[i]];
    }
    // tables [S, L, Hkv, rowStride]: sequence s, layer l
    for (let s = 0; s < S; s++) ids.set(layerIds.subarray(s * Hkv * rowStride, (s + 1) * Hkv * rowStride), (s * L + l) * Hkv * rowStride);
  }
  const seqs = new Int32Array(S * SEQ_FIELDS);
  for (let s = 0; s < S; s++) {
    const f = s * SEQ_FIELDS;
    seqs[f + SEQ_ROW_START] = s;
    seqs[f + SEQ_NUM_ROWS] = 1;
    seqs[f + SEQ_START_POS] = context;
    seqs[f + SEQ_WINDOW] = W;
    seqs[f + SEQ_SLOT] = s;
  }
  const tensors = {
    seqs: tensor([S, SEQ_FIELDS], "i32", seqs, "seqs"),
    numGlobal: tensor([S, L, Hkv], "i32", new Int32Array(S * L * Hkv).fill(nG), "global counts"),
    blockTables: tensor([S, L, Hkv, rowStride], "i32", ids, "tables"),
    ringFlags: tensor([S, L, Hkv, W], "u8", new Uint8Array(S * L * Hkv * W), "flags"),
    q: tensor([S, Hq * d], "f32", Float32Array.from({ length: S * Hq * d }, random), "q"),
    k: tensor([S, Hkv * d], "f32", Float32Array.from({ length: S * Hkv * d }, random), "k"),
    v: tensor([S, Hkv * d], "f32", Float32Array.from({ length: S * Hkv * d }, random), "v"),
    out: tensor([S, Hq * d], "f32", null, "out"),
  };
  const { seqs: st, numGlobal, blockTables, ringFlags, q, k, v, out } = tensors;
  const batch = { seqs: st, numSeqs: S, numGlobal, tables: { blockTables, ringFlags, numSlots: S, rowStride, maxWindow: W }, selection: null };
  const dims = { numLayers: L, numHeads: Hq, numKvHeads: Hkv, headDim: d };
  return {
    // NOTE: per layer: the time of a call is the time of its L layers over L
    bytes: S * Hkv * (W + nG) * d * 2 * 2,
    layers: L,
    call: () => {
      for (let l = 0; l < L; l++) b.pagedAttention(out, q, k, v, pool, l, batch, dims);
    },
    out,
    free: () => {
      for (const t of Object.values(tensors)) b.destroyTensor(t);
      b.destroyKvPool(pool);
    },
  };
}

for (const [shapeName, context, rate, S] of CASES) {
  const c = setUp(shapeName, context, rate, S);
  const reps = Number(process.env.ATTENTION_REPS ?? 0) || Math.max(3, Math.min(200, Math.round(Number(process.env.ATTENTION_BYTES ?? 2e10) / c.bytes / c.layers)));
  const ms = new Map(VARIANTS.map(([name]) => [name, []]));
  await keepBusy(b, c);
  for (let round = 0; round < 3; round++) {
    for (const [name, v] of VARIANTS) {
      Object.assign(b.kernels, base, v);
      try {
        ms.get(name).push((await msPerCall(b, c, reps)) / c.layers);
      } catch (err) {
        ms.get(name).push(NaN);
        console.log(`${name}: ${String(err.message).split("\n")[0]}`);
      }
    }
  }
  for (const [name] of VARIANTS) {
    const runs = ms.get(name).sort((x, y) => x - y);
    const r = { part: "attention", layers: c.layers, shape: shapeName, context, rate, seqs: S, variant: name, us: +(runs[1] * 1e3).toFixed(1), spread_us: +((runs[2] - runs[0]) * 1e3).toFixed(1), GBps: Math.round(c.bytes / runs[1] / 1e6) };
    console.log(JSON.stringify(r));
    appendFileSync(`${OUT}/attention.jsonl`, JSON.stringify(r) + "\n");
  }
  c.free();
}
Object.assign(b.kernels, base);
b.dispose();
process.exit(0);
