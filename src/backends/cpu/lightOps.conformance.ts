/**
 * @module backends/cpu/lightOps.conformance
 *
 * Conformance of a CpuKernels implementation's light ops (RMSNorm, SiLU·up,
 * add, RoPE) and its fused write gate against the reference kernels, on
 * seeded random inputs: tails of every vector width, in-place calls, sizes
 * that split across threads, and values large enough to reach exp's edges.
 * The gate reference is the f64 gate of gate/gateMath.ts.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { f32ToF16Bits } from "../../util/halfFloat.js";
import { gateLayerFloats } from "./gateLayout.js";
import { assertClose, randomF32, upload } from "./kernels.conformance.js";
import type { CpuKernels, GateShape } from "./kernels.js";
import { createReferenceKernels } from "./referenceKernels.js";

/** The gate goes through erf and exp approximations in f32; scores are probabilities. */
const GATE_TOLERANCE = 2e-6;

export function runLightOpConformance(name: string, create: () => Promise<CpuKernels>): void {
  describe(`${name}: light ops and gate conformance`, () => {
    let kernels: CpuKernels;
    let reference: CpuKernels;
    before(async () => {
      kernels = await create();
      reference = createReferenceKernels();
    });
    after(() => {
      kernels.dispose();
      reference.dispose();
    });

    /** Runs `op` on both kernels over the same inputs; returns [actual, expected] of `outIndex`'s buffer. */
    const both = (inputs: Float32Array[], outIndex: number, op: (k: CpuKernels, ptrs: number[]) => void): [Float32Array, Float32Array] => {
      const run = (k: CpuKernels) => {
        const ptrs = inputs.map((x) => upload(k, x, 0));
        op(k, ptrs);
        return new Float32Array(k.buffer(), ptrs[outIndex], inputs[outIndex].length).slice();
      };
      return [run(kernels), run(reference)];
    };

    test("rmsNorm matches the reference (dim tails, in place, split rows, tiny and large rows)", () => {
      let seed = 500;
      for (const [rows, dim, gain] of [[1, 384, 1], [7, 64, 1e-3], [33, 383, 30], [256, 384, 1], [3, 5, 1], [2, 1, 2]] as const) {
        const x = randomF32(rows * dim, seed++).map((v) => v * gain), w = randomF32(dim, seed++);
        const out = new Float32Array(rows * dim);
        assertClose(...both([x, w, out], 2, (k, [px, pw, po]) => k.rmsNorm(po, px, pw, rows, dim, 1e-5)), `rmsNorm ${rows}x${dim}`);
        assertClose(...both([x, w], 0, (k, [px, pw]) => k.rmsNorm(px, px, pw, rows, dim, 1e-6)), `rmsNorm in place ${rows}x${dim}`);
      }
    });

    test("siluMul matches the reference (tails, in place, split, exp saturating both ways)", () => {
      let seed = 600;
      for (const [n, gain] of [[1, 1], [5, 3], [1024, 1], [70001, 12], [4099, 120]] as const) {
        const g = randomF32(n, seed++).map((v) => v * gain), u = randomF32(n, seed++), out = new Float32Array(n);
        assertClose(...both([g, u, out], 2, (k, [pg, pu, po]) => k.siluMul(po, pg, pu, n)), `siluMul n=${n}`);
        assertClose(...both([g, u], 0, (k, [pg, pu]) => k.siluMul(pg, pg, pu, n)), `siluMul in place n=${n}`);
      }
    });

    test("add matches the reference exactly", () => {
      let seed = 700;
      for (const n of [1, 3, 4096, 65539]) {
        const [actual, expected] = both([randomF32(n, seed++), randomF32(n, seed++)], 0, (k, [px, py]) => k.add(px, py, n));
        assert.deepEqual(actual, expected, `add n=${n}`);
      }
    });

    test("rope matches the reference (half tails, many heads, split tokens)", () => {
      let seed = 800;
      for (const [T, numHeads, half] of [[1, 6, 32], [7, 2, 32], [256, 6, 32], [5, 3, 3], [40, 1, 64]] as const) {
        const x = randomF32(T * numHeads * 2 * half, seed++);
        const angles = randomF32(T * half, seed++).map((v) => v * 100);
        const cosSin = new Float32Array(T * 2 * half);
        for (let t = 0; t < T; t++) {
          for (let i = 0; i < half; i++) {
            cosSin[t * 2 * half + i] = Math.cos(angles[t * half + i]);
            cosSin[t * 2 * half + half + i] = Math.sin(angles[t * half + i]);
          }
        }
        assertClose(...both([x, cosSin], 0, (k, [px, pc]) => k.rope(px, pc, T, numHeads, half)), `rope T=${T} heads=${numHeads} half=${half}`);
      }
    });

    test("writeSlots writes the same page bits (f32, and f16 / bf16 rounding incl. ties, subnormals, overflow, inf, NaN) and flags f16 inf/NaN", () => {
      let seed = 1000;
      for (const kvDType of ["f32", "f16", "bf16"] as const) {
        for (const [T, H, d, finite] of [[1, 2, 64, false], [37, 2, 64, false], [256, 2, 64, false], [9, 3, 13, false], [5, 1, 4, false], [40, 2, 64, true], [7, 3, 13, true]] as const) {
          // finite: ordinary values and subnormals only, nothing an f16 page rounds to infinity
          const src = finite ? randomF32(T * H * d, seed++).map((v, i) => (i % 7 === 0 ? v * 1e-6 : v * 1000)) : specialFloats(T * H * d, seed++);
          // each row to a distinct random slot of 2T·H, about a quarter skipped
          const keys = randomF32(2 * T * H, seed++);
          const shuffled = Array.from(keys, (_, i) => i).sort((a, b) => keys[a] - keys[b]);
          const skip = randomF32(T * H, seed++);
          const slots = new Int32Array(H * T).map((_, i) => (skip[i] < -0.5 ? -1 : shuffled[i]));
          const elemBytes = kvDType === "f32" ? 4 : 2;
          const pagesFloats = Math.ceil((2 * T * H * d * elemBytes) / 4);
          const run = (k: CpuKernels) => {
            const pages = upload(k, new Float32Array(pagesFloats).fill(7), 0);
            const ps = upload(k, src, 0), pm = upload(k, new Float32Array(slots.buffer), 0), specials = upload(k, new Float32Array(1), 0);
            k.writeSlots(pages, ps, pm, T, H, d, kvDType, specials);
            return { pages: new Uint8Array(k.buffer(), pages, pagesFloats * 4).slice(), specials: new Int32Array(k.buffer(), specials, 1)[0] };
          };
          const [actual, expected] = [run(kernels), run(reference)];
          const what = `writeSlots ${kvDType} T=${T} H=${H} d=${d}${finite ? " finite" : ""}`;
          assert.deepEqual(actual.pages, expected.pages, what);
          assert.equal(actual.specials, expected.specials, `${what}: the inf/NaN flag`);
          // the flag says whether a written row (slot >= 0) holds a value f16 stores as inf or NaN
          const writesSpecial = kvDType === "f16" && Array.from(slots).some((slot, i) => {
            if (slot < 0) return false;
            const [h, t] = [Math.floor(i / T), i % T];
            return Array.from(src.subarray((t * H + h) * d, (t * H + h + 1) * d)).some((v) => (f32ToF16Bits(v) & 0x7c00) === 0x7c00);
          });
          assert.equal(expected.specials, writesSpecial ? 1 : 0, `${what}: the reference's inf/NaN flag`);
          if (kvDType === "f16" && T >= 37) assert.equal(expected.specials, finite ? 0 : 1, `${what}: the case should ${finite ? "not " : ""}write inf/NaN`);
        }
      }
    });

    test("gateScores matches the f64 gate (head dims and hidden sizes with tails, one token to many)", () => {
      let seed = 900;
      const shapes: GateShape[] = [
        { T: 1, H: 2, d: 64, E: 256 }, { T: 40, H: 2, d: 64, E: 256 }, { T: 300, H: 2, d: 64, E: 256 },
        { T: 5, H: 3, d: 12, E: 18 }, { T: 17, H: 1, d: 6, E: 9 }, { T: 33, H: 4, d: 128, E: 192 },
      ];
      for (const shape of shapes) {
        const { T, H, d, E } = shape;
        const layer = randomGateLayer(H, d, E, seed++);
        const kPre = randomF32(T * H * d, seed++).map((v) => v * 3), kPost = randomF32(T * H * d, seed++);
        const scores = new Float32Array(H * T);
        const [actual, expected] = both([layer, kPre, kPost, scores], 3, (k, [pl, pa, pb, ps]) => k.gateScores(ps, pa, pb, pl, shape));
        assertClose(actual, expected, `gateScores ${JSON.stringify(shape)}`, GATE_TOLERANCE);
        // NOTE: a suite whose scores all saturate at 1e-3 or 1 would check nothing.
        const spread = expected.filter((g) => g > 0.05 && g < 0.95).length;
        assert.ok(spread >= expected.length / 4, `gateScores ${JSON.stringify(shape)}: only ${spread} of ${expected.length} scores away from 0 and 1`);
      }
    });
  });
}

/**
 * Floats that exercise 16-bit rounding: ordinary values, exact ties between
 * two halves, f16 subnormals and underflow, values past f16's range, ±0,
 * infinities and NaN.
 */
function specialFloats(n: number, seed: number): Float32Array {
  const special = [0, -0, Infinity, -Infinity, NaN, 65504, 65519.99, 65520, 1e6, -1e-40, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 2 ** -14 * (1 - 2 ** -11)];
  const r = randomF32(2 * n, seed);
  return Float32Array.from({ length: n }, (_, i) => (r[2 * i] < -0.6 ? special[Math.floor((r[2 * i + 1] + 1) * 8.5) % special.length] : r[2 * i + 1] * 10 ** Math.round(r[2 * i] * 6)));
}

/** A packed gate layer (gateLayout.ts) whose logits z land around ±2: scores spread over (0, 1). */
function randomGateLayer(H: number, d: number, E: number, seed: number): Float32Array {
  const w1Scale = 1 / Math.sqrt(2 * d), w2Scale = 4 / Math.sqrt(E);
  const parts = [
    randomF32(d, seed).map((v) => 1 + 0.5 * v),
    randomF32(d, seed + 1).map((v) => 1 + 0.5 * v),
    randomF32(H * E * 2 * d, seed + 2).map((v) => v * w1Scale * 2),
    randomF32(H * E, seed + 3).map((v) => v * 0.5),
    randomF32(H * E, seed + 4).map((v) => v * w2Scale),
    randomF32(H, seed + 5).map((v) => v * 0.5),
  ];
  const out = new Float32Array(gateLayerFloats(H, d, E));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
