// The decode matvecs of one Llama-3.1-8B layer as decode records them (q, k
// and v fused; o; gate and up with the siluMul; down) and the lm_head, under
// matvec variants taking turns (ROUNDS rounds, default 5; medians), with the GPU kept
// busy: two seconds of work first, then each measurement ~100 back-to-back
// layers (the clock governor lowers the SM clock within ~0.3 s of light
// load, which made earlier per-call timings of these kernels unreliable).
// Prints one JSON line per (variant, op) with GB/s of weights, and writes
// $OUT/matvec.jsonl.
//
//   [ROUNDS=5] [BYTES=4e9] [MATVEC_VARIANTS=JSON] node scripts/device/matvec-bench.mjs
import { appendFileSync } from "node:fs";
import { createNodeWebGpuBackend } from "../../dist/platform/node/webgpu.js";
import { MATVEC_VARIANTS } from "../../dist/backends/webgpu/kernelVariants.js";
import { randomBf16Weight } from "./randomWeights.mjs";
import { keepBusy } from "./timeCalls.mjs";

const OUT = process.env.OUT ?? ".";
const b = await createNodeWebGpuBackend();
console.log(`device: ${b.description}`);
// NOTE: the variants the tests check (kernelVariants.ts), those with subgroups (the H200 has them)
const VARIANTS = JSON.parse(process.env.MATVEC_VARIANTS ?? "null") ?? MATVEC_VARIANTS.filter((v) => v.subgroups);
// NOTE: SMALL=1 shrinks the shapes for a run on a software adapter (the script's own check)
const [H, I, Q, KV, V] = process.env.SMALL ? [256, 512, 256, 64, 1000] : [4096, 14336, 4096, 1024, 128256];
const w = { q: randomBf16Weight(b, Q, H), k: randomBf16Weight(b, KV, H), v: randomBf16Weight(b, KV, H), o: randomBf16Weight(b, H, Q), gate: randomBf16Weight(b, I, H), up: randomBf16Weight(b, I, H), down: randomBf16Weight(b, H, I), lm: randomBf16Weight(b, V, H) };
const t = (n, label) => b.createTensor([1, n], "f32", label);
const a = { xb: t(H, "xb"), q: t(Q, "q"), k: t(KV, "k"), v: t(KV, "v"), attn: t(Q, "attn"), proj: t(H, "proj"), gate: t(I, "gate"), up: t(I, "up"), logits: t(V, "logits") };
b.write(a.xb, Float32Array.from({ length: H }, (_, i) => Math.sin(i)));
b.write(a.attn, Float32Array.from({ length: Q }, (_, i) => Math.cos(i)));
b.write(a.gate, Float32Array.from({ length: I }, (_, i) => Math.sin(i / 7)));
const OPS = {
  qkv: [(Q + 2 * KV) * H * 2, () => { b.matmul(a.q, a.xb, w.q, null, 1); b.matmul(a.k, a.xb, w.k, null, 1); b.matmul(a.v, a.xb, w.v, null, 1); }],
  o: [H * Q * 2, () => b.matmul(a.proj, a.attn, w.o, null, 1)],
  "gate-up": [2 * I * H * 2, () => { b.matmul(a.gate, a.xb, w.gate, null, 1); b.matmul(a.up, a.xb, w.up, null, 1); b.siluMul(a.gate, a.gate, a.up, 1); }],
  down: [H * I * 2, () => b.matmul(a.proj, a.up, w.down, null, 1)],
  lm_head: [V * H * 2, () => b.matmul(a.logits, a.xb, w.lm, null, 1)],
};
const base = { ...b.kernels };
async function time(op, reps) {
  for (let i = 0; i < reps; i++) {
    op();
    b.add(a.xb, a.proj, 0); // settles the fused ops (0 rows: no work)
  }
  await b.read([{ tensor: a.proj, numElements: 1 }]);
}
// ---- the GPU busy for two seconds, so its clocks are up
await keepBusy(b, { call: () => Object.values(OPS).forEach(([, op]) => { op(); b.add(a.xb, a.proj, 0); }), out: a.proj }, process.env.SMALL ? 100 : 2000);
const ms = new Map();
// NOTE: ROUNDS (default 5) of every variant in turn, each op ~BYTES (default 4e9) of weights per measurement
const ROUNDS = Number(process.env.ROUNDS ?? 5), BYTES = Number(process.env.BYTES ?? 4e9);
for (let round = 0; round < ROUNDS; round++) {
  for (const v of VARIANTS) {
    // NOTE: a variant's "pairHalfUnroll" is the kernel choice matvecPairHalfUnroll (the gate/up pair at half the unroll)
    const { pairHalfUnroll, ...matvec } = v;
    b.kernels.matvec = matvec;
    b.kernels.matvecPairHalfUnroll = pairHalfUnroll ?? false;
    for (const [name, [bytes, op]] of Object.entries(OPS)) {
      const reps = process.env.SMALL ? 2 : Math.max(20, Math.round(BYTES / bytes));
      await time(op, 2);
      const s = performance.now();
      await time(op, reps);
      const key = `${JSON.stringify(v)} ${name}`;
      ms.set(key, [...(ms.get(key) ?? []), { us: ((performance.now() - s) * 1000) / reps, bytes }]);
    }
  }
}
for (const [key, runs] of ms) {
  const us = runs.map((r) => r.us).sort((x, y) => x - y);
  const mid = Math.floor(us.length / 2);
  const [variant, op] = [key.slice(0, key.lastIndexOf(" ")), key.slice(key.lastIndexOf(" ") + 1)];
  const r = { part: "matvec", op, variant: JSON.parse(variant), us: +us[mid].toFixed(2), spread_us: +(us[us.length - 1] - us[0]).toFixed(2), GBps: Math.round(runs[0].bytes / us[mid] / 1e3) };
  console.log(JSON.stringify(r));
  appendFileSync(`${OUT}/matvec.jsonl`, JSON.stringify(r) + "\n");
}
b.kernels.matvec = base.matvec;
b.kernels.matvecPairHalfUnroll = base.matvecPairHalfUnroll;
b.dispose();
process.exit(0);
