// Times one layer's prefill attention alone on the device (the H200): the
// WebGPU backend's pagedAttention for a chunk of T rows after P cached
// tokens (ring of W + a share `rate` of the older keys in global pages,
// the chunk's own keys causal), Llama-3.1-8B and 3.2-1B head shapes, under
// kernel-choice variants taking turns (three rounds, the median kept).
// Every variant's output is compared with the f32 tiled kernel's (relative
// L2 error), so a variant that is fast and wrong shows it.
//
//   node scripts/device/prefill-attention-bench.mjs
//
// PREFILL_VARIANTS / PREFILL_CASES (JSON) override the lists. Prints one
// JSON line per measurement (ms per call, TFLOP/s of the visible products)
// and writes $OUT/prefill-attention.jsonl.
import { appendFileSync } from "node:fs";
import { createNodeWebGpuBackend } from "../../dist/platform/node/webgpu.js";
import { msPerCall } from "./timeCalls.mjs";
import { ADMIT_FULL, SEQ_ADMISSION, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../../dist/backends/stepLayout.js";

const OUT = process.env.OUT ?? ".";
const W = 256;
const SHAPES = { "8b": { Hq: 32, Hkv: 8, d: 128 }, "1b": { Hq: 32, Hkv: 8, d: 64 } };
const REFERENCE = { sgAttentionKeys: 0, sgAttentionDirectKeys: 0 };
const VARIANTS = JSON.parse(process.env.PREFILL_VARIANTS ?? "null") ?? [
  ["staged split k16", { sgAttentionDirectKeys: 0, sgAttentionKeys: 16, sgAttentionSplit: true }],
  ["staged f16 k32", { sgAttentionDirectKeys: 0, sgAttentionKeys: 32, sgAttentionSplit: false }],
  ["direct split k16", { sgAttentionDirectKeys: 16, sgAttentionSplit: true }],
  ["direct split k32", { sgAttentionDirectKeys: 32, sgAttentionSplit: true }],
  ["direct f16 k16", { sgAttentionDirectKeys: 16, sgAttentionSplit: false }],
  ["direct f16 k32", { sgAttentionDirectKeys: 32, sgAttentionSplit: false }],
];
// [shape, P tokens cached, T chunk rows, rate of older keys admitted, page dtype]
const CASES = JSON.parse(process.env.PREFILL_CASES ?? "null") ?? [
  ["8b", 30720, 2048, 1, "f16"],
  ["8b", 6144, 2048, 1, "f16"],
  ["8b", 30720, 2048, 0.2, "f16"],
  ["1b", 30720, 2048, 1, "f16"],
  ["8b", 30720, 2048, 1, "bf16"],
];

const b = await createNodeWebGpuBackend();
console.log(`device: ${b.description}`);
const base = { ...b.kernels };
let seed = 11;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const randoms = (n) => Float32Array.from({ length: n }, random);
const tensor = (shape, dtype, data, label) => {
  const t = b.createTensor(shape, dtype, label);
  if (data) b.write(t, data);
  return t;
};

function setUp(shapeName, P, T, rate, kvDType) {
  const { Hq, Hkv, d } = SHAPES[shapeName];
  const nG = Math.round(rate * (P - W));
  const ringPages = W / 16, globalPages = Math.ceil(nG / 16), rowStride = ringPages + globalPages;
  const pool = b.createKvPool(Hkv * rowStride, d, kvDType, 1);
  // table [1, 1, Hkv, rowStride]: head h's ring pages, then its global pages, at shuffled ids
  const ids = Int32Array.from({ length: Hkv * rowStride }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(((random() + 1) / 2) * (i + 1)) % (i + 1);
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  // every slot of every page written with random keys and values (writeKv: slots[h * n + t])
  const n = rowStride * 16;
  const slots = new Int32Array(Hkv * n);
  for (let h = 0; h < Hkv; h++) for (let t = 0; t < n; t++) slots[h * n + t] = ids[h * rowStride + Math.floor(t / 16)] * 16 + (t % 16);
  const fill = { k: tensor([n, Hkv * d], "f32", randoms(n * Hkv * d), "fill k"), v: tensor([n, Hkv * d], "f32", randoms(n * Hkv * d), "fill v"), slots: tensor([Hkv * n], "i32", slots, "fill slots") };
  b.writeKv(pool, fill.k, fill.v, fill.slots, 0, n);
  const seqs = new Int32Array(SEQ_FIELDS);
  seqs[SEQ_ROW_START] = 0;
  seqs[SEQ_NUM_ROWS] = T;
  seqs[SEQ_START_POS] = P;
  seqs[SEQ_WINDOW] = W;
  seqs[SEQ_SLOT] = 0;
  seqs[SEQ_ADMISSION] = ADMIT_FULL;
  const tensors = {
    ...fill,
    seqs: tensor([1, SEQ_FIELDS], "i32", seqs, "seqs"),
    numGlobal: tensor([1, 1, Hkv], "i32", new Int32Array(Hkv).fill(nG), "global counts"),
    blockTables: tensor([1, 1, Hkv, rowStride], "i32", ids, "tables"),
    ringFlags: tensor([1, 1, Hkv, W], "u8", Uint8Array.from({ length: Hkv * W }, () => (random() < 2 * rate - 1 ? 1 : 0)), "flags"),
    q: tensor([T, Hq * d], "f32", randoms(T * Hq * d), "q"),
    k: tensor([T, Hkv * d], "f32", randoms(T * Hkv * d), "k"),
    v: tensor([T, Hkv * d], "f32", randoms(T * Hkv * d), "v"),
    out: tensor([T, Hq * d], "f32", null, "out"),
  };
  const { seqs: st, numGlobal, blockTables, ringFlags, q, k, v, out } = tensors;
  const batch = { seqs: st, numSeqs: 1, numGlobal, tables: { blockTables, ringFlags, numSlots: 1, rowStride, maxWindow: W }, selection: null, admitted: null };
  const dims = { numLayers: 1, numHeads: Hq, numKvHeads: Hkv, headDim: d };
  // visible keys per query row r: ring (at most W, the flagged rest is small) + global + r + 1 of the chunk's own
  const visible = T * (W + nG) + (T * (T + 1)) / 2;
  return {
    flops: 4 * d * Hq * visible,
    call: () => b.pagedAttention(out, q, k, v, pool, 0, batch, dims),
    out,
    numOut: T * Hq * d,
    free: () => {
      for (const t of Object.values(tensors)) b.destroyTensor(t);
      b.destroyKvPool(pool);
    },
  };
}

async function output(c) {
  c.call();
  const [o] = await b.read([{ tensor: c.out, numElements: c.numOut }]);
  return Float32Array.from(o);
}

function relativeL2(x, want) {
  let e = 0, n = 0;
  for (let i = 0; i < want.length; i++) {
    e += (x[i] - want[i]) ** 2;
    n += want[i] ** 2;
  }
  return Math.sqrt(e / n);
}

for (const [shapeName, P, T, rate, kvDType] of CASES) {
  const c = setUp(shapeName, P, T, rate, kvDType);
  Object.assign(b.kernels, base, REFERENCE);
  const want = await output(c);
  const ms = new Map(VARIANTS.map(([name]) => [name, []]));
  const errors = new Map();
  for (const [name, v] of VARIANTS) {
    Object.assign(b.kernels, base, v);
    try {
      errors.set(name, relativeL2(await output(c), want));
    } catch (err) {
      errors.set(name, NaN);
      console.log(`${name}: ${String(err.message).split("\n")[0]}`);
    }
  }
  const reps = Number(process.env.PREFILL_REPS ?? 5);
  for (let round = 0; round < 3; round++) {
    for (const [name, v] of VARIANTS) {
      Object.assign(b.kernels, base, v);
      try {
        ms.get(name).push(await msPerCall(b, c, reps));
      } catch {
        ms.get(name).push(NaN);
      }
    }
  }
  for (const [name] of VARIANTS) {
    const runs = ms.get(name).sort((x, y) => x - y);
    const r = { part: "prefill attention", shape: shapeName, context: P, rows: T, rate, kvDType, variant: name, ms: +runs[1].toFixed(2), spread_ms: +(runs[2] - runs[0]).toFixed(2), TFLOPs: +(c.flops / runs[1] / 1e9).toFixed(1), error: Number(errors.get(name).toExponential(2)) };
    console.log(JSON.stringify(r));
    appendFileSync(`${OUT}/prefill-attention.jsonl`, JSON.stringify(r) + "\n");
  }
  c.free();
}
Object.assign(b.kernels, base);
b.dispose();
process.exit(0);
