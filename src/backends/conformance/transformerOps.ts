/**
 * @module backends/conformance/transformerOps
 *
 * The transformer's ops (embed, uploadWeight, rmsNorm, matmul, rope,
 * siluMul, add, copyRows, gatherRows) against plain f64 references on
 * seeded random inputs. Every output tensor starts as a sentinel, so rows an
 * op must leave alone (past `rows`) show when written.
 *
 * Tolerances (max |error| / max |reference|), a few times what the CPU
 * backends reach (measured worst case over the reference kernels and wasm,
 * relaxed and baseline, 1 and 2 threads):
 * - exact: embed, uploadWeight, add (one f32 rounding of x + y), copyRows, gatherRows;
 * - rmsNorm 5e-7 (measured 1.4e-7): mean of squares, rsqrt and two products in f32;
 * - matmul 1e-6 (2.6e-7): f32 accumulation over K <= 300 against f64;
 * - rope 5e-7 (1.0e-7): cos/sin rounded to f32, two products and a sum in
 *   f32; the reference rounds each angle pos * invFreq to f32 first, as
 *   transformers does (an f64 angle differs by ~1e-4 rad at position 4000);
 * - siluMul 5e-7 (4e-8): an f32 exp (the wasm one is a polynomial of ~1 ulp).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { RopeTable } from "../backend.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";
import { f32Tensor, filledF32, i32Tensor, readF32, type ConformanceContext } from "./context.js";
import { assertClose, assertSameNumbers, TestRandom, weightData } from "./testData.js";

const RMS_NORM_TOLERANCE = 5e-7;
const MATMUL_TOLERANCE = 1e-6;
const ROPE_TOLERANCE = 5e-7;
const SILU_TOLERANCE = 5e-7;
/** A value no op computes: elements still holding it were not written. */
const SENTINEL = -12345.5;

export function describeTransformerOps(ctx: ConformanceContext): void {
  describe("transformer ops", () => {
    test("uploadWeight: F32 exact, F16 and BF16 widened exactly (a bf16 matrix may stay bf16)", async () => {
      const b = ctx.backend;
      const random = new TestRandom(101);
      const values = random.floats(6 * 5, 3);
      for (const dtype of ["F32", "F16", "BF16"] as const) {
        for (const kind of ["matrix", "vector"] as const) {
          const shape = kind === "matrix" ? [6, 5] : [30];
          const t = b.uploadWeight(weightData(shape, values, dtype), kind);
          assert.deepEqual([...t.shape], shape);
          const [raw] = await b.read([{ tensor: t }]);
          const got = t.dtype === "bf16" ? Array.from(raw, bf16BitsToF32) : Array.from(raw);
          assert.ok(t.dtype === "f32" || (t.dtype === "bf16" && dtype === "BF16"), `${dtype} ${kind} stored as ${t.dtype}`);
          const want = Array.from(values, (v) => (dtype === "F32" ? Math.fround(v) : dtype === "F16" ? f16BitsToF32(f32ToF16Bits(v)) : bf16BitsToF32(f32ToBf16Bits(v))));
          assertSameNumbers(got, want, `uploadWeight ${dtype} ${kind}`);
          b.destroyTensor(t);
        }
      }
    });

    for (const dtype of ["F32", "BF16", "F16"] as const) {
      test(`embed from a ${dtype} table: rows of ids (repeated, unordered) from an i32 tensor`, async () => {
        const b = ctx.backend;
        const random = new TestRandom(102);
        const [V, H] = [11, 24];
        const values = random.floats(V * H, 2);
        const table = b.uploadWeight(weightData([V, H], values, dtype), "matrix");
        const ids = [7, 0, 10, 7, 3, 9];
        const idTensor = i32Tensor(b, [8], [...ids, 1, 2], "ids"); // the last two ids are past `rows`
        const out = filledF32(b, [8, H], SENTINEL, "embedded");
        b.embed(out, table, idTensor, ids.length);
        const got = await readF32(b, out);
        const round = (v: number) => (dtype === "F32" ? Math.fround(v) : dtype === "F16" ? f16BitsToF32(f32ToF16Bits(v)) : bf16BitsToF32(f32ToBf16Bits(v)));
        const want = [...ids.flatMap((id) => Array.from(values.subarray(id * H, (id + 1) * H), round)), ...new Array(2 * H).fill(SENTINEL)];
        assertSameNumbers(got, want, `embed ${dtype}`);
        for (const t of [table, idTensor, out]) b.destroyTensor(t);
      });
    }

    test("rmsNorm: out of place, in place, rows of one head (q/k norm), tiny and large rows; rows past `rows` untouched", async () => {
      const b = ctx.backend;
      const random = new TestRandom(103);
      for (const [rows, dim, gain, extra] of [[5, 48, 1, 2], [3, 384, 1e-3, 0], [7, 33, 40, 1], [1, 1, 2, 1], [2, 3000, 1, 1], [1, 4096, 1, 0], [1, 9000, 0.5, 1]] as const) {
        const x = random.floats((rows + extra) * dim, gain), w = random.floats(dim, 1.5);
        const xt = f32Tensor(b, [rows + extra, dim], x, "x"), wt = f32Tensor(b, [dim], w, "weight");
        const out = filledF32(b, [rows + extra, dim], SENTINEL, "out");
        b.rmsNorm(out, xt, wt, rows, 1e-5);
        b.rmsNorm(xt, xt, wt, rows, 1e-6);
        const [outOf, inPlace] = await b.read([{ tensor: out }, { tensor: xt }]);
        const what = `rmsNorm ${rows}x${dim}`;
        assertClose(outOf.subarray(0, rows * dim), referenceRmsNorm(x, w, rows, dim, 1e-5), RMS_NORM_TOLERANCE, what);
        assertClose(inPlace.subarray(0, rows * dim), referenceRmsNorm(x, w, rows, dim, 1e-6), RMS_NORM_TOLERANCE, `${what} in place`);
        assert.ok(outOf.subarray(rows * dim).every((v) => v === SENTINEL), `${what}: wrote past its rows`);
        assertSameNumbers(inPlace.subarray(rows * dim), x.subarray(rows * dim), `${what}: in place wrote past its rows`);
      }
      // q-norm: a [T, Hq * d] tensor normed per head, rows = T * Hq, weight [d]
      const [T, Hq, d] = [3, 4, 16];
      const x = random.floats(T * Hq * d, 3), w = random.floats(d);
      const xt = f32Tensor(b, [T, Hq * d], x, "q");
      b.rmsNorm(xt, xt, f32Tensor(b, [d], w, "q norm"), T * Hq, 1e-6);
      assertClose(await readF32(b, xt), referenceRmsNorm(x, w, T * Hq, d, 1e-6), RMS_NORM_TOLERANCE, "rmsNorm per head");
    });

    for (const wDType of ["F32", "BF16"] as const) {
      test(`matmul with ${wDType} weights, with and without bias, K and N tails; rows past \`rows\` untouched`, async () => {
        const b = ctx.backend;
        const random = new TestRandom(104 + (wDType === "BF16" ? 1 : 0));
        for (const [rows, N, K, extra] of [[1, 1, 1, 0], [3, 7, 9, 1], [5, 19, 37, 2], [9, 130, 127, 0], [33, 64, 300, 1]] as const) {
          for (const withBias of [false, true]) {
            const x = random.floats((rows + extra) * K), w = random.floats(N * K), bias = random.floats(N);
            const wt = b.uploadWeight(weightData([N, K], w, wDType), "matrix");
            const bt = withBias ? b.uploadWeight(weightData([N], bias), "vector") : null;
            const xt = f32Tensor(b, [rows + extra, K], x, "x");
            const out = filledF32(b, [rows + extra, N], SENTINEL, "out");
            b.matmul(out, xt, wt, bt, rows);
            const got = await readF32(b, out);
            const wUsed = wDType === "F32" ? w : w.map((v) => bf16BitsToF32(f32ToBf16Bits(v)));
            const want = new Float64Array(rows * N);
            for (let r = 0; r < rows; r++) {
              for (let n = 0; n < N; n++) {
                let acc = withBias ? bias[n] : 0;
                for (let k = 0; k < K; k++) acc += x[r * K + k] * wUsed[n * K + k];
                want[r * N + n] = acc;
              }
            }
            const what = `matmul ${wDType} rows=${rows} N=${N} K=${K} bias=${withBias}`;
            assertClose(got.subarray(0, rows * N), want, MATMUL_TOLERANCE, what);
            assert.ok(got.subarray(rows * N).every((v) => v === SENTINEL), `${what}: wrote past its rows`);
            for (const t of [wt, xt, out, ...(bt ? [bt] : [])]) b.destroyTensor(t);
          }
        }
      });
    }

    test("rope: every row at its own position (unordered, repeated, far apart), q and k heads, positions rewritten between calls", async () => {
      const b = ctx.backend;
      const random = new TestRandom(106);
      const d = 32;
      const table: RopeTable = { invFreq: Float32Array.from({ length: d / 2 }, (_, i) => Math.fround(1 / 10000 ** ((2 * i) / d))) };
      const positions = [5, 4000, 3, 77, 77, 0, 1025];
      const rows = positions.length;
      const posTensor = i32Tensor(b, [rows + 1], [...positions, 9], "positions");
      const q = random.floats((rows + 1) * 4 * d), k = random.floats((rows + 1) * 2 * d);
      const qt = f32Tensor(b, [rows + 1, 4 * d], q, "q"), kt = f32Tensor(b, [rows + 1, 2 * d], k, "k");
      b.rope(qt, posTensor, rows, 4, table);
      b.rope(kt, posTensor, rows, 2, table);
      // the same tensor with new positions: a backend that caches angles must notice
      const moved = positions.map((p) => p + 1);
      b.write(posTensor, Int32Array.from(moved));
      const k2 = f32Tensor(b, [rows + 1, 2 * d], k, "k again");
      b.rope(k2, posTensor, rows, 2, table);
      const [gotQ, gotK, gotK2] = await b.read([{ tensor: qt }, { tensor: kt }, { tensor: k2 }]);
      assertClose(gotQ.subarray(0, rows * 4 * d), referenceRope(q, positions, 4, table), ROPE_TOLERANCE, "rope q");
      assertClose(gotK.subarray(0, rows * 2 * d), referenceRope(k, positions, 2, table), ROPE_TOLERANCE, "rope k");
      assertClose(gotK2.subarray(0, rows * 2 * d), referenceRope(k, moved, 2, table), ROPE_TOLERANCE, "rope k at new positions");
      assertSameNumbers(gotQ.subarray(rows * 4 * d), q.subarray(rows * 4 * d), "rope: the row past `rows` is untouched");
      // NOTE: a check of the check: the rotation is not the identity at these positions
      assert.ok(Math.abs(gotK[2 * d * 1] - k[2 * d * 1]) > 1e-3);
    });

    test("siluMul out of place and in place (exp saturating both ways), add exactly", async () => {
      const b = ctx.backend;
      const random = new TestRandom(107);
      const [rows, I, extra] = [6, 45, 1];
      const g = random.floats((rows + extra) * I, 30), u = random.floats((rows + extra) * I, 2);
      const gt = f32Tensor(b, [rows + extra, I], g, "gate"), ut = f32Tensor(b, [rows + extra, I], u, "up");
      const out = filledF32(b, [rows + extra, I], SENTINEL, "out");
      b.siluMul(out, gt, ut, rows);
      b.siluMul(gt, gt, ut, rows);
      const want = Array.from(g.subarray(0, rows * I), (x, i) => (x / (1 + Math.exp(-x))) * u[i]);
      const [outOf, inPlace] = await b.read([{ tensor: out }, { tensor: gt }]);
      assertClose(outOf.subarray(0, rows * I), want, SILU_TOLERANCE, "siluMul");
      assertClose(inPlace.subarray(0, rows * I), want, SILU_TOLERANCE, "siluMul in place");
      assert.ok(outOf.subarray(rows * I).every((v) => v === SENTINEL), "siluMul wrote past its rows");
      assertSameNumbers(inPlace.subarray(rows * I), g.subarray(rows * I), "siluMul in place wrote past its rows");

      const x = random.floats((rows + extra) * I, 100), y = random.floats((rows + extra) * I, 1e-3);
      const xt = f32Tensor(b, [rows + extra, I], x, "x");
      b.add(xt, f32Tensor(b, [rows + extra, I], y, "y"), rows);
      const sum = await readF32(b, xt);
      assertSameNumbers(sum, Array.from(x, (v, i) => (i < rows * I ? Math.fround(v + y[i]) : v)), "add");
    });

    test("copyRows and gatherRows copy exactly (repeated and unordered row indices); rows past the count untouched", async () => {
      const b = ctx.backend;
      const random = new TestRandom(108);
      const [R, W] = [7, 13];
      const x = random.floats(R * W, 5);
      const xt = f32Tensor(b, [R, W], x, "x");
      const dst = filledF32(b, [R, W], SENTINEL, "copy");
      b.copyRows(dst, xt, 4);
      const index = [6, 0, 6, 3, 1];
      const out = filledF32(b, [6, W], SENTINEL, "gathered");
      b.gatherRows(out, xt, i32Tensor(b, [6], [...index, 2], "row index"), index.length);
      const [copied, gathered] = await b.read([{ tensor: dst }, { tensor: out }]);
      assertSameNumbers(copied, [...x.subarray(0, 4 * W), ...new Array(3 * W).fill(SENTINEL)], "copyRows");
      assertSameNumbers(gathered, [...index.flatMap((r) => Array.from(x.subarray(r * W, (r + 1) * W))), ...new Array(W).fill(SENTINEL)], "gatherRows");
    });
  });
}

/** transformers' RMSNorm in f64: w * x / sqrt(mean(x^2) + eps). */
function referenceRmsNorm(x: Float32Array, w: Float32Array, rows: number, dim: number, eps: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = w[i] * x[r * dim + i] * inv;
  }
  return out;
}

/** Rotate-half RoPE in f64, angle = f32(pos * invFreq[i]) as transformers computes it. */
function referenceRope(x: Float32Array, positions: readonly number[], numHeads: number, table: RopeTable): Float64Array {
  const half = table.invFreq.length, d = 2 * half;
  const out = new Float64Array(positions.length * numHeads * d);
  positions.forEach((pos, r) => {
    for (let h = 0; h < numHeads; h++) {
      const base = (r * numHeads + h) * d;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos * table.invFreq[i]);
        const [a, c] = [x[base + i], x[base + half + i]];
        out[base + i] = a * Math.cos(angle) - c * Math.sin(angle);
        out[base + half + i] = c * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  });
  return out;
}
