/**
 * The prefill matmul of bf16 weights on f16 operands (kernelChoice.ts
 * f16Matmul: x converted to f16 once by f16RowsKernel, then
 * matmulF16Kernels.ts's tiles): when it applies, the conversion's rounding
 * against util/halfFloat.ts, its answers against an f64 reference (tails in
 * rows, N and K, bias, weights in row parts) within SG_MATRIX_TOLERANCE, and
 * the copy of x shared by the matmuls of one x yet made again whenever x is
 * written (by the host or by an op). Which kernels ran is read from the
 * profiler's labels (lavapipe has timestamp queries). Without tensor cores
 * the tiles run emulated, which lavapipe compiles slowly: two small variants.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { weightData } from "../conformance/testData.js";
import { createNodeWebGpuBackend, createNodeWebGpuDevice, parseKernelChoice } from "../../platform/node/webgpu.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";
import type { Tensor } from "../backend.js";
import { GpuRuntime } from "./gpuRuntime.js";
import { defaultKernels, f16MatmulTiles, SG_MATRIX_TOLERANCE, TENSOR_CORE_F16_SMALL_TILES, TENSOR_CORE_F16_TILES } from "./kernelChoice.js";
import { f16RowsKernel, type F16MatmulVariant } from "./kernels/matmulF16Kernels.js";
import { H200_OPTIONS } from "../../testing/h200Options.js";
import type { WebGpuBackend } from "./webgpuBackend.js";

/** Fragments tiled along N, then along M with two tile buffers, then four subgroups storing edge tiles in turns. */
const EMULATED_F16: readonly F16MatmulVariant[] = [
  { bm: 32, bn: 32, bk: 16, sgm: 1, sgn: 2, pad: 8 },
  { bm: 32, bn: 32, bk: 16, sgm: 2, sgn: 1, pad: 8, buffers: 2 },
  { bm: 32, bn: 32, bk: 16, sgm: 2, sgn: 2, pad: 8, stageInTurns: true },
];

const H200 = H200_OPTIONS;

function random(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

test("f16 tiles take bf16 weights with K of whole steps, unsplit; small grids take the small ones; WGKV_KERNELS sets them", () => {
  const c = defaultKernels(H200);
  assert.deepEqual([c.f16Matmul, c.f16MatmulSmall], [TENSOR_CORE_F16_TILES, TENSOR_CORE_F16_SMALL_TILES]);
  assert.deepEqual([defaultKernels({ ...H200, software: true, features: new Set(["shader-f16"]) }).f16Matmul, defaultKernels({ ...H200, subgroupMatrix: { syntax: "new", nonUniform: "" } }).f16Matmul], [null, null]);
  // NOTE: 8B shapes: gate/up (N 14336) at 2048 rows is 1792 workgroups of 128 x 128; k/v (N 1024) at 512 rows 32
  assert.equal(f16MatmulTiles(c, "bf16", 2048, 14336, 4096), TENSOR_CORE_F16_TILES);
  assert.equal(f16MatmulTiles(c, "bf16", 512, 1024, 4096), TENSOR_CORE_F16_SMALL_TILES);
  assert.equal(f16MatmulTiles({ ...c, f16MatmulSmall: null }, "bf16", 512, 1024, 4096), TENSOR_CORE_F16_TILES);
  // NOTE: these keep the per-tile-converting tiles: f32 weights, split inputs, K not a multiple of the K step (32)
  assert.equal(f16MatmulTiles(c, "f32", 2048, 14336, 4096), null);
  assert.equal(f16MatmulTiles({ ...c, sgMatrixSplit: true }, "bf16", 2048, 14336, 4096), null);
  assert.equal(f16MatmulTiles(c, "bf16", 2048, 14336, 4104), null);
  assert.equal(f16MatmulTiles({ ...c, f16Matmul: null }, "bf16", 2048, 14336, 4096), null);
  const lavapipe = defaultKernels({ ...H200, software: true, features: new Set(["shader-f16"]) });
  assert.deepEqual(parseKernelChoice(JSON.stringify({ f16Matmul: EMULATED_F16[0], f16MatmulSmall: null }), lavapipe), { f16Matmul: EMULATED_F16[0], f16MatmulSmall: null });
  assert.deepEqual(parseKernelChoice(JSON.stringify({ f16Matmul: null }), c), { f16Matmul: null });
  assert.throws(() => parseKernelChoice(JSON.stringify({ f16Matmul: 1 }), c), /"f16Matmul" must be/);
});

test("f16RowsKernel rounds f32 to the nearest f16 (ties to even) as util/halfFloat.ts does, clamped to +-65504", async () => {
  const { device, release } = await createNodeWebGpuDevice();
  try {
    if (!device.features.has("shader-f16")) return;
    const fixed = [0, -0, 1, -1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, -65504, 65519, 65520, -1e6, 1e30, Infinity, -Infinity, 2 ** -14, -(2 ** -14), 1e-3, -3.3e-4, 6.2e-5, 0.1, 1 / 3];
    // NOTE: random values of f16's normal range, 2^-14 to 2^15
    const r = random(7);
    const values = Float32Array.from([...fixed, ...Array.from({ length: 1002 - fixed.length }, () => Math.sign(r()) * (1 + Math.abs(r())) * 2 ** Math.round(14 * r()))]);
    const subnormal = [3e-6, -5.9e-8, 2 ** -20 + 2 ** -25];
    const all = Float32Array.from([...values, ...subnormal, 0]);
    const words = all.length / 2;
    const rt = new GpuRuntime(device);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const [src, out] = [device.createBuffer({ size: all.byteLength, usage }), device.createBuffer({ size: words * 4, usage })];
    device.queue.writeBuffer(src, 0, all);
    rt.dispatch(f16RowsKernel(), [out, src], Math.ceil(words / 256), [words]);
    const { data } = await rt.readBack([{ buffer: out, bytes: words * 4 }]);
    const got = new Uint16Array(data[0]);
    for (let i = 0; i < values.length; i++) {
      const want = f32ToF16Bits(Math.min(65504, Math.max(-65504, values[i])));
      assert.equal(got[i], want, `${values[i]}: 0x${got[i].toString(16)}, want 0x${want.toString(16)}`);
    }
    // NOTE: below f16's normal range WGSL's f16() may round either way or flush to zero
    for (let i = values.length; i < values.length + subnormal.length; i++) {
      const v = f16BitsToF32(got[i]);
      assert.ok(v === 0 || Math.abs(v - all[i]) <= 2 ** -24, `${all[i]}: got ${v}`);
    }
    src.destroy();
    out.destroy();
  } finally {
    device.destroy();
    release();
  }
});

/** A matmul of x [rows, K] by bf16 w [N, K] (and bias), with the values its f64 reference takes. */
interface Case {
  readonly x: Tensor;
  readonly xs: Float32Array;
  readonly w: Tensor;
  readonly ws: Float32Array;
  readonly bias: Tensor | null;
  readonly bs: Float32Array | null;
}

function makeCase(b: WebGpuBackend, rows: number, N: number, K: number, withBias: boolean, x?: { t: Tensor; xs: Float32Array }): Case {
  const r = random(rows * 1000 + N * 10 + K);
  const xs = x?.xs ?? Float32Array.from({ length: rows * K }, r);
  const values = Float32Array.from({ length: N * K }, r);
  const ws = values.map((v) => bf16BitsToF32(f32ToBf16Bits(v)));
  const bs = withBias ? Float32Array.from({ length: N }, r) : null;
  const xt = x?.t ?? b.createTensor([rows, K], "f32", "x");
  if (!x) b.write(xt, xs);
  return { x: xt, xs, w: b.uploadWeight(weightData([N, K], values, "BF16"), "matrix"), ws, bias: bs ? b.uploadWeight(weightData([N], bs), "vector") : null, bs };
}

/** Runs the case's matmul into a new tensor; returns its check (max error against the f64 reference, within SG_MATRIX_TOLERANCE). */
function runCase(b: WebGpuBackend, c: Case, rows: number, what: string): () => Promise<void> {
  const [N, K] = c.w.shape as [number, number];
  const out = b.createTensor([rows, N], "f32", "out");
  b.matmul(out, c.x, c.w, c.bias, rows);
  const xs = c.xs.slice();
  return async () => {
    const [got] = (await b.read([{ tensor: out }])) as Float32Array[];
    let maxErr = 0, maxRef = 0;
    for (let i = 0; i < rows; i++) {
      for (let n = 0; n < N; n++) {
        let acc = c.bs ? c.bs[n] : 0;
        for (let k = 0; k < K; k++) acc += xs[i * K + k] * c.ws[n * K + k];
        maxErr = Math.max(maxErr, Math.abs(got[i * N + n] - acc));
        maxRef = Math.max(maxRef, Math.abs(acc));
      }
    }
    b.destroyTensor(out);
    assert.ok(maxErr <= SG_MATRIX_TOLERANCE * maxRef, `${what} rows=${rows} N=${N} K=${K}: max error ${maxErr} of ${maxRef}`);
  };
}

/** Dispatches per kernel since the last call: conversions of x, f16 matmuls, any other matmul. */
async function kernelCounts(b: WebGpuBackend): Promise<{ convert: number; f16: number; other: number }> {
  const p = await b.takeProfile();
  assert.ok(p, "the backend was made with profile");
  const count = (f: (label: string) => boolean) => p.kernels.filter((k) => f(k.label)).reduce((n, k) => n + k.count, 0);
  return { convert: count((l) => l === "f16 of f32"), f16: count((l) => l.startsWith("matmul f16 ")), other: count((l) => l.startsWith("matmul") && !l.startsWith("matmul f16 ")) };
}

/** A backend with the f16 tiles on (emulated without tensor cores); null where f16 is missing. Weights of 8 KiB and more come in row parts. */
async function f16Backend(): Promise<WebGpuBackend | null> {
  const b = await createNodeWebGpuBackend({ profile: true, maxBindingBytes: 8192 });
  // NOTE: real subgroup matrices without per-subgroup operands (sgMatrix off) cannot run tiles of several subgroups
  if (!b.subgroupMatrixDialect || (!b.kernels.sgMatrix && !b.subgroupMatrixEmulated)) {
    b.dispose();
    return null;
  }
  b.kernels.sgMatrix ??= { bm: 32, bn: 32, bk: 16, sgm: 1, sgn: 2, pad: 8 };
  Object.assign(b.kernels, { sgMatrixSmall: null, sgMatrixMinRows: 9, sgMatrixSplit: false, f16MatmulSmall: null });
  return b;
}

test("f16 matmul tiles match f64 with tails in rows, N and K, bias or none, and weights in row parts (x converted once for all parts)", async () => {
  const b = await f16Backend();
  if (!b) return;
  try {
    // NOTE: on tensor cores the default tiles (K 64, 96 are whole 32-deep steps)
    const variants = b.subgroupMatrixEmulated ? EMULATED_F16 : [TENSOR_CORE_F16_TILES, TENSOR_CORE_F16_SMALL_TILES];
    for (const v of variants) {
      b.kernels.f16Matmul = v;
      await kernelCounts(b);
      // NOTE: [64, 64, 96] has whole tiles without bias (stored straight to out); N 48 x K 96 bf16 is 9 KiB: parts of 42 and 6 rows
      for (const [rows, N, K, withBias] of [[70, 48, 64, true], [70, 48, 96, false], [64, 64, 96, false], [33, 48, 96, true]] as const) {
        const c = makeCase(b, rows, N, K, withBias);
        await runCase(b, c, rows, `f16 ${JSON.stringify(v)}`)();
        const parts = N * K * 2 > 8192 ? 2 : 1;
        assert.deepEqual(await kernelCounts(b), { convert: 1, f16: parts, other: 0 }, `f16 ${JSON.stringify(v)} ${rows} x ${N} x ${K}`);
        for (const t of [c.x, c.w, c.bias]) if (t) b.destroyTensor(t);
      }
    }
  } finally {
    b.dispose();
  }
});

test("the f16 copy of x serves the matmuls of one x, and is made again after the host or an op writes x", async () => {
  const b = await f16Backend();
  if (!b) return;
  try {
    b.kernels.f16Matmul = b.subgroupMatrixEmulated ? EMULATED_F16[0] : TENSOR_CORE_F16_TILES;
    const [rows, K] = [70, 64];
    const q = makeCase(b, rows, 48, K, true);
    const k = makeCase(b, rows, 32, K, false, { t: q.x, xs: q.xs });
    await kernelCounts(b);
    const checks = [runCase(b, q, rows, "q"), runCase(b, k, rows, "k")];
    for (const check of checks) await check();
    assert.deepEqual(await kernelCounts(b), { convert: 1, f16: 2, other: 0 }, "q and k share one copy");
    // the host writes x
    q.xs.set(Float32Array.from({ length: rows * K }, random(99)));
    b.write(q.x, q.xs);
    await runCase(b, q, rows, "q after a host write")();
    await runCase(b, k, rows, "k after it")();
    assert.deepEqual(await kernelCounts(b), { convert: 1, f16: 2, other: 0 }, "one copy of the new x");
    // an op writes x (x += y), between two matmuls recorded in one stream
    const y = b.createTensor([rows, K], "f32", "y");
    const ys = Float32Array.from({ length: rows * K }, random(5));
    b.write(y, ys);
    const before = runCase(b, q, rows, "q before the add");
    b.add(q.x, y, rows);
    q.xs.set(q.xs.map((v, i) => Math.fround(v + ys[i])));
    const after = runCase(b, k, rows, "k after the add");
    await before();
    await after();
    assert.deepEqual(await kernelCounts(b), { convert: 1, f16: 2, other: 0 }, "the matmul before the add reuses the copy, the one after makes it again");
    for (const t of [q.x, q.w, q.bias, k.w, y]) if (t) b.destroyTensor(t);
  } finally {
    b.dispose();
  }
});
