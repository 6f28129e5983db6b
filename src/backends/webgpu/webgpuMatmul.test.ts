/**
 * Every matmul kernel variant of the WebGPU backend (kernels/matmul*.ts)
 * against an f64 reference, with tails in rows, N and K, bias, a column
 * offset (weights in row parts write into their columns of out), and bf16
 * and f32 weights: f32 paths within the conformance suite's 1e-6 of the
 * largest output; the f16 subgroup-matrix tiles within SG_MATRIX_TOLERANCE
 * (on tensor cores where the device has them, else emulated), and within
 * SG_MATRIX_SPLIT_TOLERANCE with their inputs split into two f16. The variants benchmarks compare are the ones
 * checked here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { weightData } from "../conformance/testData.js";
import { createNodeWebGpuBackend } from "../../platform/node/webgpu.js";
import { bf16BitsToF32, f32ToBf16Bits } from "../../util/halfFloat.js";
import { MATVEC_VARIANTS, SG_MATRIX_VARIANTS, TILED_VARIANTS } from "./kernelVariants.js";
import { SG_MATRIX_SPLIT_TOLERANCE, SG_MATRIX_TOLERANCE, type KernelChoice, type WebGpuBackend } from "./webgpuBackend.js";
import { TENSOR_CORE_SMALL_TILES, TENSOR_CORE_TILES } from "./kernelChoice.js";
import { sgMatrixSubgroups, type SgMatrixVariant } from "./kernels/matmulSgKernels.js";

const F32_TOLERANCE = 1e-6;

/**
 * Without tensor cores the subgroup-matrix tiles run emulated
 * (sgMatrixWgsl.ts), which lavapipe compiles slowly: small variants of
 * two subgroups, whose fragments tile along M and along N in turn, padded
 * and not, one and two buffers.
 */
const EMULATED_VARIANTS: readonly SgMatrixVariant[] = [
  { bm: 32, bn: 32, bk: 16, sgm: 1, sgn: 2, pad: 8 },
  { bm: 32, bn: 32, bk: 16, sgm: 2, sgn: 1 },
  { bm: 32, bn: 32, bk: 16, sgm: 2, sgn: 1, buffers: 2 },
];

function random(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

async function check(b: WebGpuBackend, rows: number, N: number, K: number, wDType: "F32" | "BF16", tolerance: number, what: string): Promise<void> {
  const r = random(rows * 1000 + N * 10 + K);
  const x = Float32Array.from({ length: rows * K }, r), w = Float32Array.from({ length: N * K }, r), bias = Float32Array.from({ length: N }, r);
  const wt = b.uploadWeight(weightData([N, K], w, wDType), "matrix");
  const bt = b.uploadWeight(weightData([N], bias), "vector");
  const xt = b.createTensor([rows, K], "f32", "x");
  b.write(xt, x);
  const out = b.createTensor([rows, N], "f32", "out");
  b.matmul(out, xt, wt, bt, rows);
  const [got] = (await b.read([{ tensor: out }])) as Float32Array[];
  const wUsed = wDType === "F32" ? w : w.map((v) => bf16BitsToF32(f32ToBf16Bits(v)));
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < rows; i++) {
    for (let n = 0; n < N; n++) {
      let acc = bias[n];
      for (let k = 0; k < K; k++) acc += x[i * K + k] * wUsed[n * K + k];
      maxErr = Math.max(maxErr, Math.abs(got[i * N + n] - acc));
      maxRef = Math.max(maxRef, Math.abs(acc));
    }
  }
  for (const t of [wt, bt, xt, out]) b.destroyTensor(t);
  assert.ok(maxErr <= tolerance * maxRef, `${what} rows=${rows} N=${N} K=${K} ${wDType}: max error ${maxErr} of ${maxRef}`);
}

// NOTE: lavapipe takes seconds to compile each matvec of many rows: 8 rows for the default variant only
test("matvec variants (threads per row, unrolled loads, subgroup sums) match f64 for 1..8 rows", async () => {
  const b = await createNodeWebGpuBackend();
  try {
    const base: KernelChoice = { ...b.kernels };
    for (const v of MATVEC_VARIANTS) {
      if (v.subgroups && !base.matvec.subgroups) continue;
      b.kernels.matvec = v;
      const shapes = [[1, 37, 64], [3, 70, 200], [2, 5, 13], ...(JSON.stringify(v) === JSON.stringify(base.matvec) ? [[8, 9, 24]] : [])] as const;
      for (const [rows, N, K] of shapes) {
        for (const dt of ["BF16", "F32"] as const) await check(b, rows, N, K, dt, F32_TOLERANCE, `matvec ${JSON.stringify(v)}`);
      }
    }
    Object.assign(b.kernels, base);
  } finally {
    b.dispose();
  }
});

test("tiled matmul variants, and the f16 subgroup-matrix tiles (emulated without tensor cores), match f64", async () => {
  const b = await createNodeWebGpuBackend();
  try {
    const base: KernelChoice = { ...b.kernels };
    b.kernels.sgMatrix = null;
    for (const v of TILED_VARIANTS) {
      b.kernels.tiled = v;
      for (const [rows, N, K] of [[9, 130, 37], [70, 65, 100]] as const) {
        for (const dt of ["BF16", "F32"] as const) await check(b, rows, N, K, dt, F32_TOLERANCE, `tiled ${JSON.stringify(v)}`);
      }
    }
    // NOTE: several subgroups per workgroup need a compiler that takes per-subgroup operands (gpuFeatures.ts)
    const real = SG_MATRIX_VARIANTS.filter((v) => sgMatrixSubgroups(v) === 1 || b.subgroupMatrixDialect?.nonUniform);
    const sgVariants = b.subgroupMatrixUsable ? real : b.subgroupMatrixEmulated ? EMULATED_VARIANTS : [];
    for (const v of sgVariants) {
      Object.assign(b.kernels, { sgMatrix: v, sgMatrixSmall: null, sgMatrixMinRows: 9 });
      // NOTE: K 37 and 100 (bf16) take the element-wise tile fill, 104 and 100 (f32) the vec4 one; 150 x 300 has whole 64 x 64 tiles (stored straight to out)
      for (const [rows, N, K] of [[9, 130, 37], [150, 300, 100], [70, 130, 104]] as const) {
        for (const dt of ["BF16", "F32"] as const) await check(b, rows, N, K, dt, SG_MATRIX_TOLERANCE, `subgroup matrix ${JSON.stringify(v)}`);
      }
    }
    Object.assign(b.kernels, base);
  } finally {
    b.dispose();
  }
});

test("the subgroup-matrix tiles with inputs split into two f16 (emulated without tensor cores) match f64 within f32's reach", async () => {
  const b = await createNodeWebGpuBackend();
  try {
    const base: KernelChoice = { ...b.kernels };
    // NOTE: one emulated variant (lavapipe compiles each for seconds); the default tiles on tensor cores
    const variants = b.subgroupMatrixUsable && b.subgroupMatrixDialect?.nonUniform ? [TENSOR_CORE_TILES, TENSOR_CORE_SMALL_TILES] : b.subgroupMatrixEmulated ? EMULATED_VARIANTS.slice(0, 1) : [];
    for (const v of variants) {
      Object.assign(b.kernels, { sgMatrix: v, sgMatrixSmall: null, sgMatrixMinRows: 9, sgMatrixSplit: true });
      for (const [rows, N, K] of [[9, 130, 37], [70, 130, 104]] as const) {
        for (const dt of ["BF16", "F32"] as const) await check(b, rows, N, K, dt, SG_MATRIX_SPLIT_TOLERANCE, `subgroup matrix split ${JSON.stringify(v)}`);
      }
    }
    Object.assign(b.kernels, base);
  } finally {
    b.dispose();
  }
});
