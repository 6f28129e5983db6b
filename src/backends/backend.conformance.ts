/**
 * @module backends/backend.conformance
 *
 * The conformance suite every Backend passes: each op the transformer and the
 * KV cache call, on seeded random inputs, against a plain f64 reference.
 * Kernel-level suites (matmul, attention, paged attention) live beside each
 * backend's kernels; this one checks the ops as the engine sees them.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Backend, KvDType, Tensor } from "./backend.js";
import { createRopeTable } from "../model/rope.js";
import type { ModelConfig } from "../model/config.js";
import { scoreGateBatch } from "../gate/gateMath.js";
import type { GateWeights } from "../gate/gateWeights.js";
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../util/halfFloat.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randomArray(n: number, random: () => number, gain = 2): Float32Array {
  return Float32Array.from({ length: n }, () => random() * gain);
}

function f32Weight(shape: number[], data: Float32Array) {
  return { dtype: "F32" as const, shape, bytes: new Uint8Array(data.buffer.slice(0)) };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxErr = 0;
  let maxRef = 1e-30;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  assert.ok(maxErr / maxRef <= tol, `${what}: relative error ${maxErr / maxRef} > ${tol}`);
}

/** Rounds like a KV page of `dtype` stores. */
function stored(x: number, dtype: KvDType): number {
  if (dtype === "f32") return Math.fround(x);
  if (dtype === "f16") return f16BitsToF32(f32ToF16Bits(x));
  const f = new Float32Array(1);
  new Uint32Array(f.buffer)[0] = f32ToBf16Bits(x) << 16;
  return f[0];
}

export function runBackendConformance(name: string, create: () => Promise<Backend>): void {
  describe(`backend conformance: ${name}`, () => {
    let b: Backend;
    before(async () => {
      b = await create();
    });
    after(() => b.dispose());
    const upload = (shape: number[], data: Float32Array): Tensor => {
      const t = b.createTensor(shape);
      const w = b.uploadWeight(f32Weight(shape, data), "vector");
      b.copyRows(t, w, shape[0]);
      return t;
    };

    test("rmsNorm", async () => {
      const random = rng(1);
      const [rows, dim] = [5, 48];
      const x = randomArray(rows * dim, random);
      const w = randomArray(dim, random);
      const out = b.createTensor([rows, dim]);
      b.rmsNorm(out, upload([rows, dim], x), b.uploadWeight(f32Weight([dim], w), "vector"), rows, 1e-5);
      const ref = new Float64Array(rows * dim);
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
        for (let i = 0; i < dim; i++) ref[r * dim + i] = (w[i] * x[r * dim + i]) / Math.sqrt(ss / dim + 1e-5);
      }
      assertClose(await b.read(out), ref, 1e-6, "rmsNorm");
    });

    test("rope matches rotate-half on f64 angles", async () => {
      const random = rng(2);
      const [T, H, d, startPos] = [4, 3, 16, 1000];
      const config = { headDim: d, ropeTheta: 10000, ropeScaling: { type: "default" } } as unknown as ModelConfig;
      const table = createRopeTable(config);
      const x = randomArray(T * H * d, random);
      const t = upload([T, H * d], x);
      b.rope(t, table, T, H, startPos);
      const ref = new Float64Array(T * H * d);
      for (let tok = 0; tok < T; tok++) {
        for (let h = 0; h < H; h++) {
          const base = (tok * H + h) * d;
          for (let i = 0; i < d / 2; i++) {
            const angle = (startPos + tok) * table.invFreq[i];
            const [a, c] = [x[base + i], x[base + i + d / 2]];
            ref[base + i] = a * Math.cos(angle) - c * Math.sin(angle);
            ref[base + i + d / 2] = c * Math.cos(angle) + a * Math.sin(angle);
          }
        }
      }
      // NOTE: the backend rounds each angle to f32 as transformers does: ~1e-4 rad at position 1000.
      assertClose(await b.read(t), ref, 5e-4, "rope");
    });

    test("siluMul, addInPlace, copyRow, embed and matmul with bias", async () => {
      const random = rng(3);
      const [T, I] = [3, 20];
      const g = randomArray(T * I, random, 8);
      const u = randomArray(T * I, random);
      const out = b.createTensor([T, I]);
      b.siluMul(out, upload([T, I], g), upload([T, I], u), T);
      assertClose(await b.read(out), Array.from(g, (gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]), 1e-6, "siluMul");
      const x = upload([T, I], u);
      b.addInPlace(x, upload([T, I], g), T);
      assertClose(await b.read(x), Array.from(u, (ui, i) => ui + g[i]), 1e-6, "addInPlace");
      const row = b.createTensor([1, I]);
      b.copyRow(row, x, 2);
      assertClose(await b.read(row), (await b.read(x)).subarray(2 * I, 3 * I), 0, "copyRow");
      const table = randomArray(7 * I, random);
      const emb = b.createTensor([2, I]);
      b.embed(emb, b.uploadWeight(f32Weight([7, I], table), "matrix"), Int32Array.of(6, 1));
      assertClose(await b.read(emb), [...table.subarray(6 * I, 7 * I), ...table.subarray(I, 2 * I)], 0, "embed");
      const [N, K] = [5, I];
      const w = randomArray(N * K, random);
      const bias = randomArray(N, random);
      const mm = b.createTensor([T, N]);
      b.matmul(mm, upload([T, K], u), b.uploadWeight(f32Weight([N, K], w), "matrix"), b.uploadWeight(f32Weight([N], bias), "vector"), T);
      const ref = Array.from({ length: T * N }, (_, i) => {
        const [t, n] = [Math.floor(i / N), i % N];
        let acc = bias[n];
        for (let k = 0; k < K; k++) acc += u[t * K + k] * w[n * K + k];
        return acc;
      });
      assertClose(await b.read(mm), ref, 1e-5, "matmul");
    });

    for (const dtype of ["f32", "f16", "bf16"] as const) {
      test(`KV pages (${dtype}): writeSlots, copySlots and readKeys round trip with ${dtype} rounding`, async () => {
        const random = rng(4);
        const [T, H, d] = [3, 2, 16];
        const pool = b.createKvPool(4, d, dtype);
        const k = randomArray(T * H * d, random);
        const v = randomArray(T * H * d, random);
        const slotMapping = Int32Array.of(17, -1, 40, 5, 6, 63); // [H, T]
        b.writeSlots(pool, upload([T, H * d], k), upload([T, H * d], v), slotMapping, T);
        b.copySlots(pool, Int32Array.of(40), Int32Array.of(33));
        const keys = await b.readKeys(pool, Int32Array.of(17, 40, 33, 5, 63));
        const expect = (t: number, h: number) => Array.from(k.subarray((t * H + h) * d, (t * H + h + 1) * d), (x) => stored(x, dtype));
        assertClose(keys, [...expect(0, 0), ...expect(2, 0), ...expect(2, 0), ...expect(0, 1), ...expect(2, 1)], 0, "keys");
      });
    }

    test("f16 pages: a value past f16's range is stored as infinity and attention reads it as infinity", async () => {
      const [d, W] = [16, 16];
      const pool = b.createKvPool(4, d, "f16");
      const v = new Float32Array(d).fill(0.5);
      v[3] = -1e6; // rounds to -inf in f16
      b.writeSlots(pool, upload([1, d], new Float32Array(d).fill(0.1)), upload([1, d], v), Int32Array.of(16), 1); // ring page 1, offset 0
      const tables = {
        rowStride: 1, blockTables: Int32Array.of(1), numRing: Int32Array.of(1), numGlobal: Int32Array.of(0),
        ringPositions: Int32Array.from({ length: W }, (_, i) => (i === 0 ? 0 : -1)), ringAdmitted: new Uint8Array(W).fill(1),
      };
      const out = b.createTensor([1, d]);
      // one query at position 1: it sees the ring token and its own (fresh) key
      b.pagedAttention(out, upload([1, d], new Float32Array(d).fill(0.2)), upload([1, d], new Float32Array(d).fill(0.1)), upload([1, d], new Float32Array(d).fill(1)), pool, tables, 1, 1, 1, W);
      const o = await b.read(out);
      assert.equal(o[3], -Infinity);
      assert.ok(Math.abs(o[0] - 0.75) < 1e-4, `out[0] = ${o[0]}: the two tokens weigh (about) equally`);
    });

    test("gateScores match the gate math of DESIGN.md §2", async () => {
      const random = rng(5);
      const [L, H, d, E, T] = [2, 2, 8, 12, 5];
      const layer = () => ({
        preKeyNorm: randomArray(d, random),
        postKeyNorm: randomArray(d, random),
        w1: randomArray(H * E * 2 * d, random),
        b1: randomArray(H * E, random),
        w2: randomArray(H * E, random),
        b2: randomArray(H, random),
      });
      const gate: GateWeights = { numLayers: L, numKvHeads: H, headDim: d, hiddenPerHead: E, layers: [layer(), layer()] };
      const kPre = randomArray(T * H * d, random);
      const kPost = randomArray(T * H * d, random);
      const handle = b.uploadGate(gate);
      const scores = await b.gateScores(handle, 1, upload([T, H * d], kPre), upload([T, H * d], kPost), T);
      assertClose(scores, scoreGateBatch(gate, 1, kPre, kPost, T), 1e-5, "gate scores");
    });
  });
}
