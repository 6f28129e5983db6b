/**
 * The WebGPU backend's fusion of consecutive ops (transformerOps.ts Pending:
 * q/k/v matvecs in one dispatch, gate/up with the siluMul after them, the
 * ropes of q and k, an add with the rmsNorm of its result; matvecs with the
 * rmsNorm before them, the residual add and RoPE after them) gives the same
 * bits as the ops one by one, and leaves every output an op names (up, proj
 * and the normed xb included) as the unfused ops do.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Tensor } from "../backend.js";
import { weightData } from "../conformance/testData.js";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";

function random(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

test("fused decode ops give the bits of the ops one by one", async () => {
  const b = await createNodeWebGpuBackend();
  try {
    // NOTE: H past 1024: the norms hold rows of two rounds in registers
    const [H, Q, KV, I, rows, heads, kvHeads, d] = [1032, 32, 16, 40, 3, 4, 2, 8];
    const r = random(7);
    const vec = (n: number) => Float32Array.from({ length: n }, r);
    const weight = (n: number, k: number, dtype: "F32" | "BF16") => b.uploadWeight(weightData([n, k], vec(n * k), dtype), "matrix");
    // NOTE: v's f32 weight keeps it out of q and k's dispatch (and so RoPE out of their stores); vBf16 lets it in
    const [wq, wk, wvF32, wo, wg, wu] = [weight(Q, H, "BF16"), weight(KV, H, "BF16"), weight(KV, H, "F32"), weight(H, Q, "BF16"), weight(I, H, "BF16"), weight(I, H, "BF16")];
    const wvBf16 = weight(KV, H, "BF16");
    const bq = b.uploadWeight(weightData([Q], vec(Q)), "vector"), norm = b.uploadWeight(weightData([H], vec(H)), "vector");
    const x0 = vec(rows * H);
    const table = { invFreq: Float32Array.from({ length: d / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / d)) };
    const base = b.kernels.matvec;
    let dispatches = 0;
    const run = async (fuse: boolean, pairHalfUnroll = false, matvec = base, fuseNormRope = true, wv = wvF32): Promise<Float32Array[]> => {
      b.kernels.fuse = fuse;
      b.kernels.fuseNormRope = fuseNormRope;
      b.kernels.matvecPairHalfUnroll = pairHalfUnroll;
      b.kernels.matvec = matvec;
      const t = (n: number, label: string) => b.createTensor([rows, n], "f32", label);
      const [x, xb, q, k, v, proj, gate, up] = [t(H, "x"), t(H, "xb"), t(Q, "q"), t(KV, "k"), t(KV, "v"), t(H, "proj"), t(I, "gate"), t(I, "up")];
      const positions = b.createTensor([rows], "i32", "positions");
      b.write(x, x0);
      b.write(positions, Int32Array.of(5, 900, 17));
      const before = b.numDispatches;
      b.rmsNorm(xb, x, norm, rows, 1e-5);
      b.matmul(q, xb, wq, bq, rows);
      b.matmul(k, xb, wk, null, rows);
      b.matmul(v, xb, wv, null, rows);
      b.rope(q, positions, rows, heads, table);
      b.rope(k, positions, rows, kvHeads, table);
      b.matmul(proj, q, wo, null, rows);
      b.add(x, proj, rows);
      b.rmsNorm(xb, x, norm, rows, 1e-5);
      b.matmul(gate, xb, wg, null, rows);
      b.matmul(up, xb, wu, null, rows);
      b.siluMul(gate, gate, up, rows);
      b.submit();
      dispatches = b.numDispatches - before;
      const outs: Tensor[] = [x, xb, q, k, v, proj, gate, up];
      const got = (await b.read(outs.map((tensor) => ({ tensor })))) as Float32Array[];
      for (const tensor of [...outs, positions]) b.destroyTensor(tensor);
      return got;
    };
    const apart = await run(false);
    const names = ["x", "xb", "q", "k", "v", "proj", "gate", "up"];
    const bits = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);
    // NOTE: the gate/up pair at half the unroll sums each thread's products in the same order
    for (const pairHalfUnroll of [false, true]) {
      const fused = await run(true, pairHalfUnroll);
      fused.forEach((f, i) => assert.deepEqual(bits(f), bits(apart[i]), `${names[i]}${pairHalfUnroll ? " (pair at half the unroll)" : ""}`));
    }
    // NOTE: the norms and the residual add cost no dispatch of their own: q/k, v, the ropes, o and gate/up where also two norms
    const counts = [dispatches];
    const earlier = await run(true, false, base, false);
    earlier.forEach((f, i) => assert.deepEqual(bits(f), bits(apart[i]), `${names[i]} (without the norm and rope fusions)`));
    counts.push(dispatches);
    assert.deepEqual(counts, [5, 7]);
    // NOTE: with v in q and k's dispatch the ropes are its epilogue too: q/k/v, o and gate/up where six
    const apartBf16 = await run(false, false, base, true, wvBf16);
    for (const fuseNormRope of [true, false]) {
      const got = await run(true, false, base, fuseNormRope, wvBf16);
      got.forEach((f, i) => assert.deepEqual(bits(f), bits(apartBf16[i]), `${names[i]} (bf16 v${fuseNormRope ? "" : ", without the norm and rope fusions"})`));
      counts.push(dispatches);
    }
    assert.deepEqual(counts.slice(2), [3, 6]);
    // NOTE: teams of several output rows (rows past a segment's end: KV 16 and I 40 are not multiples of 3) sum each
    // row in the same order as teams of one, fused or not
    if (base.subgroups) {
      for (const outRows of [2, 3]) {
        const matvec = { ...base, outRows };
        for (const [fuse, pairHalfUnroll] of [[false, false], [true, false], [true, true]] as const) {
          const got = await run(fuse, pairHalfUnroll, matvec);
          got.forEach((f, i) => assert.deepEqual(bits(f), bits(apart[i]), `${names[i]} (${outRows} rows per team${fuse ? ", fused" : ""}${pairHalfUnroll ? ", pair at half the unroll" : ""})`));
        }
      }
    }
  } finally {
    b.dispose();
  }
});
