/**
 * The WebGPU backend's fusion of consecutive ops (transformerOps.ts Pending:
 * q/k/v matvecs in one dispatch, gate/up with the siluMul after them, the
 * ropes of q and k, an add with the rmsNorm of its result) gives the same
 * bits as the ops one by one, and leaves every output an op names (up
 * included) as the unfused ops do.
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
    const [wq, wk, wv, wo, wg, wu] = [weight(Q, H, "BF16"), weight(KV, H, "BF16"), weight(KV, H, "F32"), weight(H, Q, "BF16"), weight(I, H, "BF16"), weight(I, H, "BF16")];
    const bq = b.uploadWeight(weightData([Q], vec(Q)), "vector"), norm = b.uploadWeight(weightData([H], vec(H)), "vector");
    const x0 = vec(rows * H);
    const table = { invFreq: Float32Array.from({ length: d / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / d)) };
    const base = b.kernels.matvec;
    const run = async (fuse: boolean, pairHalfUnroll = false, matvec = base): Promise<Float32Array[]> => {
      b.kernels.fuse = fuse;
      b.kernels.matvecPairHalfUnroll = pairHalfUnroll;
      b.kernels.matvec = matvec;
      const t = (n: number, label: string) => b.createTensor([rows, n], "f32", label);
      const [x, xb, q, k, v, proj, gate, up] = [t(H, "x"), t(H, "xb"), t(Q, "q"), t(KV, "k"), t(KV, "v"), t(H, "proj"), t(I, "gate"), t(I, "up")];
      const positions = b.createTensor([rows], "i32", "positions");
      b.write(x, x0);
      b.write(positions, Int32Array.of(5, 900, 17));
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
