/**
 * @module backends/cpu/lightOps.conformance
 *
 * Conformance of a CpuKernels implementation's light ops (RMSNorm, SiLU·up,
 * add, RoPE), its slot writes and its fused write gate against the
 * reference kernels, on seeded random inputs: tails of every vector width,
 * in-place calls, sizes that split across threads, and values large enough
 * to reach exp's edges (2e-6 relative, as matmul; measured up to 2e-7; add
 * is exact). writeSlots must write the same page bits as the reference, which
 * rounds with util/halfFloat.ts, and raise the same inf/NaN flag. The gate
 * reference is the f64 gate of gate/gateMath.ts, scores written at
 * h * stride + t and nowhere else (1e-6: f32 matmuls, erf and exp
 * approximations against f64; measured up to 3.3e-7).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { f32ToF16Bits } from "../../util/halfFloat.js";
import { randomGateLayer } from "../conformance/gateData.js";
import { assertClose, roundingFloats, TestRandom } from "../conformance/testData.js";
import { gateLayerFloats, packGateLayer } from "./gateLayout.js";
import { TOLERANCE, upload } from "./kernels.conformance.js";
import type { CpuKernels, GateShape } from "./kernels.js";
import { createReferenceKernels } from "./referenceKernels.js";

const GATE_TOLERANCE = 1e-6;
const SENTINEL = -4.25;

export function runLightOpConformance(name: string, create: () => Promise<CpuKernels>): void {
  describe(`${name}: light ops, slot writes and gate conformance`, () => {
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
      const random = new TestRandom(500);
      for (const [rows, dim, gain] of [[1, 384, 1], [7, 64, 1e-3], [33, 383, 30], [256, 384, 1], [3, 5, 1], [2, 1, 2]] as const) {
        const x = random.floats(rows * dim, gain), w = random.floats(dim);
        const out = new Float32Array(rows * dim);
        assertClose(...both([x, w, out], 2, (k, [px, pw, po]) => k.rmsNorm(po, px, pw, rows, dim, 1e-5)), TOLERANCE, `rmsNorm ${rows}x${dim}`);
        assertClose(...both([x, w], 0, (k, [px, pw]) => k.rmsNorm(px, px, pw, rows, dim, 1e-6)), TOLERANCE, `rmsNorm in place ${rows}x${dim}`);
      }
    });

    test("siluMul matches the reference (tails, in place, split, exp saturating both ways)", () => {
      const random = new TestRandom(600);
      for (const [n, gain] of [[1, 1], [5, 3], [1024, 1], [70001, 12], [4099, 120]] as const) {
        const g = random.floats(n, gain), u = random.floats(n), out = new Float32Array(n);
        assertClose(...both([g, u, out], 2, (k, [pg, pu, po]) => k.siluMul(po, pg, pu, n)), TOLERANCE, `siluMul n=${n}`);
        assertClose(...both([g, u], 0, (k, [pg, pu]) => k.siluMul(pg, pg, pu, n)), TOLERANCE, `siluMul in place n=${n}`);
      }
    });

    test("add matches the reference exactly", () => {
      const random = new TestRandom(700);
      for (const n of [1, 3, 4096, 65539]) {
        const [actual, expected] = both([random.floats(n), random.floats(n)], 0, (k, [px, py]) => k.add(px, py, n));
        assert.deepEqual(actual, expected, `add n=${n}`);
      }
    });

    test("rope matches the reference (half tails, many heads, split tokens)", () => {
      const random = new TestRandom(800);
      for (const [T, numHeads, half] of [[1, 6, 32], [7, 2, 32], [256, 6, 32], [5, 3, 3], [40, 1, 64]] as const) {
        const x = random.floats(T * numHeads * 2 * half);
        const angles = random.floats(T * half, 100);
        const cosSin = new Float32Array(T * 2 * half);
        for (let t = 0; t < T; t++) {
          for (let i = 0; i < half; i++) {
            cosSin[t * 2 * half + i] = Math.cos(angles[t * half + i]);
            cosSin[t * 2 * half + half + i] = Math.sin(angles[t * half + i]);
          }
        }
        assertClose(...both([x, cosSin], 0, (k, [px, pc]) => k.rope(px, pc, T, numHeads, half)), TOLERANCE, `rope T=${T} heads=${numHeads} half=${half}`);
      }
    });

    test("writeSlots writes the same page bits (f32, and f16 / bf16 rounding incl. ties, subnormals, overflow, inf, NaN) and flags inf/NaN stored", () => {
      const random = new TestRandom(1000);
      for (const kvDType of ["f32", "f16", "bf16"] as const) {
        for (const [T, H, d, finite] of [[1, 2, 64, false], [37, 2, 64, false], [256, 2, 64, false], [9, 3, 13, false], [5, 1, 4, false], [40, 2, 64, true], [7, 3, 13, true]] as const) {
          // finite: ordinary values and subnormals only, nothing an f16 page rounds to infinity
          const src = finite ? random.floats(T * H * d).map((v, i) => (i % 7 === 0 ? v * 1e-6 : v * 1000)) : roundingFloats(random, T * H * d);
          // each row to a distinct random slot of 2T·H, about a quarter skipped
          const shuffled = random.permutation(2 * T * H);
          const slots = Int32Array.from({ length: H * T }, (_, i) => (random.next() < 0.25 ? -1 : shuffled[i]));
          const elemBytes = kvDType === "f32" ? 4 : 2;
          const pagesFloats = Math.ceil((2 * T * H * d * elemBytes) / 4);
          const run = (k: CpuKernels) => {
            const pages = upload(k, new Float32Array(pagesFloats).fill(7), 0);
            const ps = upload(k, src, 0), pm = upload(k, slots, 0), specials = upload(k, new Int32Array(1), 0);
            k.writeSlots(pages, ps, pm, T, H, d, kvDType, specials);
            return { pages: new Uint8Array(k.buffer(), pages, pagesFloats * 4).slice(), specials: new Int32Array(k.buffer(), specials, 1)[0] };
          };
          const [actual, expected] = [run(kernels), run(reference)];
          const what = `writeSlots ${kvDType} T=${T} H=${H} d=${d}${finite ? " finite" : ""}`;
          assert.deepEqual(actual.pages, expected.pages, what);
          assert.equal(actual.specials, expected.specials, `${what}: the inf/NaN flag`);
          // the flag says whether a written row (slot >= 0) holds a value the page stores as inf or NaN
          const stored = (v: number) => (kvDType === "f16" ? (f32ToF16Bits(v) & 0x7c00) === 0x7c00 : !Number.isFinite(v));
          const writesSpecial = Array.from(slots).some((slot, i) => {
            if (slot < 0) return false;
            const [h, t] = [Math.floor(i / T), i % T];
            return Array.from(src.subarray((t * H + h) * d, (t * H + h + 1) * d)).some(stored);
          });
          assert.equal(expected.specials, writesSpecial ? 1 : 0, `${what}: the reference's inf/NaN flag`);
          if (T >= 37) assert.equal(expected.specials, finite ? 0 : 1, `${what}: the case should ${finite ? "not " : ""}write inf/NaN`);
        }
      }
    });

    test("gateScores matches the f64 gate at h * stride + t (head dims and hidden sizes with tails, one token to many), nothing else written", () => {
      const random = new TestRandom(900);
      const shapes = [
        { T: 1, H: 2, d: 64, E: 256 }, { T: 40, H: 2, d: 64, E: 256 }, { T: 300, H: 2, d: 64, E: 256 },
        { T: 5, H: 3, d: 12, E: 18 }, { T: 17, H: 1, d: 6, E: 9 }, { T: 33, H: 4, d: 128, E: 192 },
      ];
      for (const { T, H, d, E } of shapes) {
        const shape: GateShape = { T, H, d, E, stride: T + random.int(3) * 5 };
        const layer = new Float32Array(gateLayerFloats(H, d, E));
        packGateLayer(randomGateLayer(random, H, d, E), layer);
        const kPre = random.floats(T * H * d, 3), kPost = random.floats(T * H * d);
        const scores = new Float32Array((H - 1) * shape.stride + T + 3).fill(SENTINEL);
        const [actual, expected] = both([layer, kPre, kPost, scores], 3, (k, [pl, pa, pb, ps]) => k.gateScores(ps, pa, pb, pl, shape));
        const what = `gateScores ${JSON.stringify(shape)}`;
        const written = (i: number) => i % shape.stride < T && i < H * shape.stride;
        assertClose(actual.filter((_, i) => written(i)), expected.filter((_, i) => written(i)), GATE_TOLERANCE, what);
        assert.ok(actual.every((x, i) => written(i) || x === SENTINEL), `${what}: wrote between or after the heads' rows`);
        // NOTE: a suite whose scores all saturate at 1e-3 or 1 would check nothing.
        const spread = expected.filter((g, i) => written(i) && g > 0.05 && g < 0.95).length;
        assert.ok(spread >= (H * T) / 4, `${what}: only ${spread} of ${H * T} scores away from 0 and 1`);
      }
    });
  });
}
