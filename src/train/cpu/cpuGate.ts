/**
 * @module train/cpu/cpuGate
 *
 * The write gate of one layer and its backward on the CPU (docs/design.md §7;
 * gate/gateMath.ts is the f64 reference of the forward). Per KV head h:
 *
 *   x = [RMSNorm(k_pre) * w_pre, RMSNorm(k_post) * w_post]   [T, 2d]   (eps 1e-6)
 *   a = x W1[h]^T + b1[h]                                   [T, E]    matmul kernel
 *   z = GELU(a) · w2[h] + b2[h]                             [T]       matmul kernel, N = 1
 *   g = max(sigmoid(z), 1e-3),  logG = log g
 *
 * The backward starts from dLogG: d log g / dz = 1 - sigmoid(z) where the
 * floor is not hit, else 0. The key norms run as TypeScript loops: their two
 * halves of x have different weights, and they cost O(T d), next to the
 * matmuls' O(T d E).
 */
import { GATE_MIN_SCORE, GATE_NORM_EPS } from "../../gate/gateMath.js";
import type { GateActivations, GateDims, GateLayerOffsets, TBuf } from "../trainOps.js";
import type { CpuBuf, CpuMemory } from "./cpuMemory.js";

const ptr = (b: TBuf) => (b as CpuBuf).ptr;
const MIN_SCORE_F32 = Math.fround(GATE_MIN_SCORE);

/** x[xAt + i] = k[kAt + i] * rstd * w[i] for i < d; returns rstd. */
function normInto(x: Float32Array, xAt: number, k: Float32Array, kAt: number, w: Float32Array, wAt: number, d: number): number {
  let ss = 0;
  for (let i = 0; i < d; i++) ss += k[kAt + i]! * k[kAt + i]!;
  const rstd = 1 / Math.sqrt(ss / d + GATE_NORM_EPS);
  for (let i = 0; i < d; i++) x[xAt + i] = k[kAt + i]! * rstd * w[wAt + i]!;
  return rstd;
}

/** The norm's backward for one row: dk[kAt..] += dx, dw[wAt..] += dy * n (n = k * rstd). */
function normBackward(dk: Float32Array, kAt: number, dy: Float32Array, yAt: number, k: Float32Array, w: Float32Array, dw: Float32Array, wAt: number, d: number): void {
  let ss = 0;
  for (let i = 0; i < d; i++) ss += k[kAt + i]! * k[kAt + i]!;
  const rstd = 1 / Math.sqrt(ss / d + GATE_NORM_EPS);
  let dot = 0;
  for (let i = 0; i < d; i++) dot += w[wAt + i]! * dy[yAt + i]! * k[kAt + i]! * rstd;
  const c = dot / d;
  for (let i = 0; i < d; i++) {
    const n = k[kAt + i]! * rstd;
    dw[wAt + i] += dy[yAt + i]! * n;
    dk[kAt + i] += rstd * (w[wAt + i]! * dy[yAt + i]! - n * c);
  }
}

export function gateForward(mem: CpuMemory, acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims): void {
  const { T, numKvHeads: H, headDim: d, hidden: E } = dims;
  const x = mem.kernels.exports;
  const u = mem.alloc(T * E, "gate u"); // [T, E]
  const z = mem.alloc(T, "gate z"); //    [T]
  try {
    for (let h = 0; h < H; h++) {
      {
        const xs = mem.f32(acts.x, T * 2 * d, h * T * 2 * d), kp = mem.f32(kPre), kq = mem.f32(kPost), p = mem.f32(params);
        for (let t = 0; t < T; t++) {
          normInto(xs, t * 2 * d, kp, (t * H + h) * d, p, at.preKeyNorm, d);
          normInto(xs, t * 2 * d + d, kq, (t * H + h) * d, p, at.postKeyNorm, d);
        }
      }
      const xh = ptr(acts.x) + h * T * 2 * d * 4, ah = ptr(acts.a) + h * T * E * 4;
      x.matmulF32(ah, xh, ptr(params) + (at.w1 + h * E * 2 * d) * 4, ptr(params) + (at.b1 + h * E) * 4, E, 2 * d, 0, T, 0, E);
      x.geluRange(ptr(u), ah, 0, T * E);
      x.matmulF32(ptr(z), ptr(u), ptr(params) + (at.w2 + h * E) * 4, ptr(params) + (at.b2 + h) * 4, 1, E, 0, T, 0, 1);
      const zs = mem.f32(z), g = mem.f32(acts.g, T, h * T), logG = mem.f32(acts.logG, T, h * T);
      for (let t = 0; t < T; t++) {
        const gt = Math.max(1 / (1 + Math.exp(-zs[t]!)), GATE_MIN_SCORE);
        g[t] = gt;
        logG[t] = Math.log(gt);
      }
    }
  } finally {
    mem.free(u);
    mem.free(z);
  }
}

export function gateBackward(
  mem: CpuMemory, dKPre: TBuf, dKPost: TBuf, dParams: TBuf, dLogG: TBuf,
  acts: GateActivations, kPre: TBuf, kPost: TBuf, params: TBuf, at: GateLayerOffsets, dims: GateDims,
): void {
  const { T, numKvHeads: H, headDim: d, hidden: E } = dims;
  const x = mem.kernels.exports;
  const u = mem.alloc(T * E, "gate u"); //       [T, E]  GELU(a), then du, then da
  const uT = mem.alloc(E * T, "gate daT"); //    [E, T]
  const xT = mem.alloc(2 * d * T, "gate xT"); // [2d, T]
  const w1T = mem.alloc(2 * d * E, "w1T"); //    [2d, E]
  const dW1 = mem.alloc(E * 2 * d, "dW1"); //    [E, 2d]
  const dx = mem.alloc(T * 2 * d, "dx"); //      [T, 2d]
  try {
    for (let h = 0; h < H; h++) {
      const ah = ptr(acts.a) + h * T * E * 4, xh = ptr(acts.x) + h * T * 2 * d * 4, w1 = ptr(params) + (at.w1 + h * E * 2 * d) * 4;
      x.geluRange(ptr(u), ah, 0, T * E);
      {
        // dz, then w2's and b2's gradients, then du = dz w2. NOTE: g is stored in f32, where the
        // floor reads as fround(1e-3) > 1e-3: compare with that, or clamped tokens would get gradients.
        const g = mem.f32(acts.g, T, h * T), dl = mem.f32(dLogG, T, h * T), us = mem.f32(u), p = mem.f32(params), dp = mem.f32(dParams);
        let db2 = 0;
        for (let t = 0; t < T; t++) {
          const gt = g[t]!;
          const dz = gt > MIN_SCORE_F32 ? dl[t]! * (1 - gt) : 0;
          db2 += dz;
          for (let e = 0, row = t * E; e < E; e++) {
            dp[at.w2 + h * E + e] += dz * us[row + e]!;
            us[row + e] = dz * p[at.w2 + h * E + e]!;
          }
        }
        dp[at.b2 + h] += db2;
      }
      x.geluBackwardRange(ptr(u), ptr(u), ah, 0, T * E);
      {
        const da = mem.f32(u), dp = mem.f32(dParams);
        for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) dp[at.b1 + h * E + e] += da[t * E + e]!;
      }
      // dW1 += da^T x, dx = da W1
      x.transpose(ptr(uT), ptr(u), T, E, E, T);
      x.transpose(ptr(xT), xh, T, 2 * d, 2 * d, T);
      x.matmulF32(ptr(dW1), ptr(uT), ptr(xT), 0, 2 * d, T, 0, E, 0, 2 * d);
      x.addRange(ptr(dParams) + (at.w1 + h * E * 2 * d) * 4, ptr(dW1), 0, E * 2 * d);
      x.transpose(ptr(w1T), w1, E, 2 * d, 2 * d, E);
      x.matmulF32(ptr(dx), ptr(u), ptr(w1T), 0, 2 * d, E, 0, T, 0, 2 * d);
      {
        const dxs = mem.f32(dx), p = mem.f32(params), dp = mem.f32(dParams);
        const kp = mem.f32(kPre), kq = mem.f32(kPost), dkp = mem.f32(dKPre), dkq = mem.f32(dKPost);
        for (let t = 0; t < T; t++) {
          const kAt = (t * H + h) * d;
          normBackward(dkp, kAt, dxs, t * 2 * d, kp, p, dp, at.preKeyNorm, d);
          normBackward(dkq, kAt, dxs, t * 2 * d + d, kq, p, dp, at.postKeyNorm, d);
        }
      }
    }
  } finally {
    for (const b of [u, uT, xT, w1T, dW1, dx]) mem.free(b);
  }
}
