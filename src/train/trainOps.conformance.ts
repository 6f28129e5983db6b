/**
 * @module train/trainOps.conformance
 *
 * The gate trainer's op suite: every forward op against its f64 reference
 * (testing/trainReference.ts), and every backward op against central finite
 * differences of that reference, on tiny random shapes. Any TrainOps
 * implementation runs it (cpu/cpuTrainOps.test.ts for the CPU).
 *
 * Tolerances (f32 ops against f64 references): forwards 2e-5 relative L2
 * (bf16 weights are rounded for the reference too, so it sees the same
 * weights); gradients 1e-4 relative error per checked direction or
 * coordinate (finite differences in f64 with eps 1e-5 are exact to ~1e-9;
 * what remains is the op's f32 arithmetic: the CPU's worst is ~7e-6).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { WeightData } from "../backends/backend.js";
import { encodeFloatsLE } from "../util/floats.js";
import {
  checkGradient, dot, randoms, refAttention, refGate, refMatmul, refRmsNorm, refRope, refSiluMul, refSparsitySum, type Vec,
} from "../testing/trainReference.js";
import { gateParamLayout } from "./gateParams.js";
import type { TBuf, TrainOps } from "./trainOps.js";

export const FORWARD_TOL = 2e-5;
export const GRAD_TOL = 1e-4;

export function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i]! - want[i]!) ** 2;
    den += want[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export function assertGrad(what: string, check: { worst: number; details: string[] }, tol = GRAD_TOL): void {
  // WGKV_GRAD_REPORT=1 prints each check's worst error (for docs and reports)
  if (process.env["WGKV_GRAD_REPORT"]) console.log(`# grad check ${what}: worst relative error ${check.worst.toExponential(2)} (tolerance ${tol})`);
  assert.ok(check.worst < tol, `${what}: worst relative error ${check.worst.toExponential(2)} >= ${tol}\n${check.details.join("\n")}`);
}

/** A device buffer holding `data`. */
export function upload(ops: TrainOps, data: Float32Array, label = "input"): TBuf {
  const b = ops.alloc(data.length, label);
  ops.write(b, data);
  return b;
}

export function weightData(values: Float32Array, shape: [number, number], dtype: "F32" | "BF16"): WeightData {
  return { dtype, shape, bytes: encodeFloatsLE(values, dtype === "F32" ? "f32" : "bf16") };
}

/** Values as bf16 would hold them (so a reference sees the same weights). */
export function roundBf16(values: Float32Array): Float32Array {
  const bits = new Uint32Array(values.slice().buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i]! + 0x7fff + ((bits[i]! >>> 16) & 1)) & 0xffff0000) >>> 0;
  return new Float32Array(bits.buffer);
}

export function trainOpsSuite(name: string, createOps: () => Promise<TrainOps>): void {
  const withOps = (title: string, body: (ops: TrainOps) => Promise<void>) => test(`${name}: ${title}`, async () => body(await createOps()));

  for (const dtype of ["F32", "BF16"] as const) {
    withOps(`matmul (${dtype} weights) and its input gradient`, async (ops) => {
      const rand = randoms(dtype === "F32" ? 1 : 2);
      const M = 9, N = 13, K = 22;
      const w = dtype === "BF16" ? roundBf16(rand(N * K)) : rand(N * K);
      const x = rand(M * K), bias = rand(N), r = rand(M * N);
      const mat = ops.uploadMatrix(weightData(w, [N, K], dtype), "w");
      const out = ops.alloc(M * N, "out");
      ops.matmul(out, upload(ops, x), mat, upload(ops, bias), M);
      assert.ok(relL2(await ops.read(out), refMatmul(x, w, bias, M, N, K)) < FORWARD_TOL);
      // dx = dy W, then accumulated once more: twice the gradient
      const dx = ops.alloc(M * K, "dx");
      ops.matmulInputGrad(dx, upload(ops, r), mat, M, false);
      const grad = await ops.read(dx);
      assertGrad("matmul dx", checkGradient((xx) => dot(r, refMatmul(xx, w, bias, M, N, K)), x, grad, { seed: 3 }));
      ops.matmulInputGrad(dx, upload(ops, r), mat, M, true);
      assert.ok(relL2(await ops.read(dx), grad.map((v) => 2 * v)) < FORWARD_TOL);
    });
  }

  withOps("rmsNorm and its backward (input and weight gradients)", async (ops) => {
    const rand = randoms(4);
    const rows = 7, dim = 24, eps = 1e-5;
    const x = rand(rows * dim, 2), weight = rand(dim, 1.5), r = rand(rows * dim);
    const out = ops.alloc(rows * dim, "out");
    const xb = upload(ops, x), wb = upload(ops, weight);
    ops.rmsNorm(out, xb, wb, rows, dim, eps);
    assert.ok(relL2(await ops.read(out), refRmsNorm(x, weight, rows, dim, eps)) < FORWARD_TOL);
    const dx = upload(ops, new Float32Array(rows * dim).fill(0.25)), dw = ops.alloc(dim, "dw");
    ops.rmsNormBackward(dx, upload(ops, r), xb, wb, rows, dim, eps, true, dw);
    const gx = (await ops.read(dx)).map((v) => v - 0.25);
    assertGrad("rmsNorm dx", checkGradient((xx) => dot(r, refRmsNorm(xx, weight, rows, dim, eps)), x, gx, { seed: 5 }));
    assertGrad("rmsNorm dweight", checkGradient((ww) => dot(r, refRmsNorm(x, ww, rows, dim, eps)), weight, await ops.read(dw), { seed: 6 }));
  });

  withOps("rope, and the inverse rotation as its backward", async (ops) => {
    const rand = randoms(7);
    const T = 11, heads = 3, d = 8;
    const invFreq = Float32Array.from({ length: d / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / d));
    const x = rand(T * heads * d), r = rand(T * heads * d);
    const xb = upload(ops, x);
    ops.rope(xb, ops.ropeAngles(T, { invFreq }, false), T, heads, d);
    assert.ok(relL2(await ops.read(xb), refRope(x, invFreq, T, heads, d)) < FORWARD_TOL);
    const dy = upload(ops, r);
    ops.rope(dy, ops.ropeAngles(T, { invFreq }, true), T, heads, d);
    assertGrad("rope dx", checkGradient((xx) => dot(r, refRope(xx, invFreq, T, heads, d)), x, await ops.read(dy), { seed: 8 }));
  });

  withOps("siluMul and its backward", async (ops) => {
    const rand = randoms(9);
    const n = 37;
    const g = rand(n, 4), u = rand(n, 2), r = rand(n);
    const out = ops.alloc(n, "out"), gb = upload(ops, g), ub = upload(ops, u);
    ops.siluMul(out, gb, ub, n);
    assert.ok(relL2(await ops.read(out), refSiluMul(g, u)) < FORWARD_TOL);
    const dg = ops.alloc(n, "dg"), du = ops.alloc(n, "du");
    ops.siluMulBackward(dg, du, upload(ops, r), gb, ub, n);
    assertGrad("siluMul dgate", checkGradient((gg) => dot(r, refSiluMul(gg, u)), g, await ops.read(dg), { seed: 10 }));
    assertGrad("siluMul dup", checkGradient((uu) => dot(r, refSiluMul(g, uu)), u, await ops.read(du), { seed: 11 }));
  });

  // Two blocks of queries (T > 64), GQA 2:1, a window that splits every long row; and full attention.
  for (const [label, gated, T, Hq, Hkv] of [["gated, GQA 2:1", true, 70, 4, 2], ["full attention, MHA", false, 67, 2, 2], ["gated, one KV head of 3", true, 40, 3, 1]] as const) {
    withOps(`attention (${label}) and its backward`, async (ops) => {
      const rand = randoms(12 + T);
      const d = 8, dims = { T, numHeads: Hq, numKvHeads: Hkv, headDim: d, window: 16, scale: 1 / Math.sqrt(d) };
      const q = rand(T * Hq * d, 1.5), k = rand(T * Hkv * d, 1.5), v = rand(T * Hkv * d);
      const logG = gated ? Float32Array.from(rand(Hkv * T), (x) => Math.log(0.001 + (x + 1) / 2)) : null;
      const r = rand(T * Hq * d);
      const [qb, kb, vb] = [upload(ops, q), upload(ops, k), upload(ops, v)];
      const gb = logG ? upload(ops, logG) : null;
      const out = ops.alloc(T * Hq * d, "out"), lse = ops.alloc(T * Hq, "lse");
      ops.attention(out, lse, qb, kb, vb, gb, dims);
      assert.ok(relL2(await ops.read(out), refAttention(q, k, v, logG, dims)) < FORWARD_TOL);
      const dq = ops.alloc(T * Hq * d, "dq"), dk = ops.alloc(T * Hkv * d, "dk"), dv = ops.alloc(T * Hkv * d, "dv");
      const dLogG = gated ? ops.alloc(Hkv * T, "dLogG") : null;
      ops.attentionBackward(dq, dk, dv, dLogG, upload(ops, r), qb, kb, vb, out, lse, gb, dims);
      const f = (qq: Vec | Float32Array, kk: Vec | Float32Array, vv: Vec | Float32Array, gg: Vec | Float32Array | null) => dot(r, refAttention(qq, kk, vv, gg, dims));
      assertGrad("attention dq", checkGradient((x) => f(x, k, v, logG), q, await ops.read(dq), { seed: 13 }));
      assertGrad("attention dk", checkGradient((x) => f(q, x, v, logG), k, await ops.read(dk), { seed: 14 }));
      assertGrad("attention dv", checkGradient((x) => f(q, k, x, logG), v, await ops.read(dv), { seed: 15 }));
      if (logG) assertGrad("attention dlogG", checkGradient((x) => f(q, k, v, x), logG, await ops.read(dLogG!), { seed: 16 }));
    });
  }

  withOps("write gate and its backward (parameters, key norms, both key inputs)", async (ops) => {
    const rand = randoms(20);
    const T = 21, H = 3, d = 8, E = 12;
    const layout = gateParamLayout({ numLayers: 2, numKvHeads: H, headDim: d, hidden: E });
    const at = layout.layers[1]!;
    const params = rand(layout.numParams, 0.5);
    for (let i = 0; i < d; i++) {
      params[at.preKeyNorm + i] = 1 + params[at.preKeyNorm + i]!;
      params[at.postKeyNorm + i] = 1 + params[at.postKeyNorm + i]!;
    }
    // head 0 near the top of the sigmoid, head 1 around the middle, head 2 below the floor (g = 1e-3: no gradient)
    params.set([2.5, 0, -10], at.b2);
    const kPre = rand(T * H * d, 2), kPost = rand(T * H * d, 2), r = rand(H * T);
    const pb = upload(ops, params), kpb = upload(ops, kPre), kqb = upload(ops, kPost);
    const dims = { T, numKvHeads: H, headDim: d, hidden: E };
    const acts = { x: ops.alloc(H * T * 2 * d, "x"), a: ops.alloc(H * T * E, "a"), g: ops.alloc(H * T, "g"), logG: ops.alloc(H * T, "logG") };
    ops.gate(acts, kpb, kqb, pb, at, dims);
    const want = refGate(kPre, kPost, params, at, T, H, d, E);
    assert.ok(relL2(await ops.read(acts.g), want) < 1e-5);
    assert.ok(relL2(await ops.read(acts.logG), want.map(Math.log)) < 1e-5);
    assert.ok(want.subarray(2 * T).every((g) => g === 1e-3), "head 2 sits at the floor");
    const dParams = ops.alloc(layout.numParams, "dParams"), dkp = ops.alloc(T * H * d, "dkPre"), dkq = ops.alloc(T * H * d, "dkPost");
    ops.gateBackward(dkp, dkq, dParams, upload(ops, r), acts, kpb, kqb, pb, at, dims);
    const f = (kp: ArrayLike<number>, kq: ArrayLike<number>, p: ArrayLike<number>) => dot(r, refGate(kp, kq, p, at, T, H, d, E).map(Math.log));
    const dp = await ops.read(dParams);
    assert.ok(dp.subarray(0, layout.layerSize).every((v) => v === 0), "another layer's gradients stay zero");
    const layer = (v: ArrayLike<number>) => Array.from(v).slice(at.preKeyNorm, at.preKeyNorm + layout.layerSize);
    const withLayer = (x: Vec) => {
      const p = Float64Array.from(params);
      p.set(x, at.preKeyNorm);
      return p;
    };
    assertGrad("gate dparams", checkGradient((x) => f(kPre, kPost, withLayer(x)), layer(params), layer(dp), { seed: 21, numDirections: 4, numCoords: 8 }));
    for (const [part, off, n] of [["pre norm", at.preKeyNorm, d], ["post norm", at.postKeyNorm, d], ["b2", at.b2, H]] as const) {
      const slice = (v: ArrayLike<number>) => Array.from(v).slice(off, off + n);
      const withPart = (x: Vec) => {
        const p = Float64Array.from(params);
        p.set(x, off);
        return p;
      };
      assertGrad(`gate d${part}`, checkGradient((x) => f(kPre, kPost, withPart(x)), slice(params), slice(dp), { seed: 22 }));
    }
    assertGrad("gate dkPre", checkGradient((x) => f(x, kPost, params), kPre, await ops.read(dkp), { seed: 23 }));
    assertGrad("gate dkPost", checkGradient((x) => f(kPre, x, params), kPost, await ops.read(dkq), { seed: 24 }));
  });

  withOps("losses: mse and the sparsity term with their gradients", async (ops) => {
    const rand = randoms(30);
    const n = 50, T = 24, H = 2, W = 8;
    const y = rand(n), t = rand(n), stats = ops.alloc(4, "stats");
    const dy = ops.alloc(n, "dy");
    ops.mse(dy, upload(ops, y), upload(ops, t), n, 0.5, stats, 0);
    const mse = (yy: ArrayLike<number>) => Array.from(yy).reduce((s, v, i) => s + (v - t[i]!) ** 2, 0) / n;
    assert.ok(Math.abs((await ops.read(stats))[0]! - mse(y)) < 1e-6);
    assertGrad("mse dy", checkGradient((yy) => 0.5 * mse(yy), y, await ops.read(dy), { seed: 31 }));
    // sparsity: dLogG gets weight * d(sum)/d(log g), added to what it held
    const g = Float32Array.from(rand(H * T), (x) => 0.001 + (x + 1) / 2.01);
    const logG = g.map(Math.log);
    const dLogG = upload(ops, new Float32Array(H * T).fill(0.5));
    ops.sparsity(dLogG, upload(ops, g), T, H, W, 0.3, stats, 1);
    ops.sparsity(dLogG, upload(ops, g), T, H, W, 0, stats, 1);
    const s = await ops.read(stats);
    assert.ok(Math.abs(s[1]! - 2 * refSparsitySum(g, T, H, W)) < 1e-3, `${s[1]} vs 2 * ${refSparsitySum(g, T, H, W)}`);
    const grad = (await ops.read(dLogG)).map((v) => v - 0.5);
    assertGrad("sparsity dlogG", checkGradient((lg) => 0.3 * refSparsitySum(lg.map(Math.exp), T, H, W), logG, grad, { seed: 32 }));
    ops.countAbove(upload(ops, Float32Array.of(0.1, Math.fround(0.1), 0.10001, 0.9, 0.05)), 5, 0.1, stats, 2);
    assert.equal((await ops.read(stats))[2], 2);
  });
}
