/**
 * @module testing/trainReference
 *
 * Plain f64 forwards of the gate trainer's ops (train/trainOps.ts) and of the
 * whole student loss, and the finite-difference checks that hold each
 * backward op to them. Written for clarity over speed: the conformance suite
 * runs them on tiny shapes.
 */
import { geluErf } from "../util/erf.js";
import type { AttentionDims, GateLayerOffsets } from "../train/trainOps.js";

export type Vec = Float64Array;

/** out [M, N] = x [M, K] · w [N, K]^T + bias. */
export function refMatmul(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null, M: number, N: number, K: number): Vec {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++) acc += x[m * K + k]! * w[n * K + k]!;
      out[m * N + n] = acc;
    }
  }
  return out;
}

export function refRmsNorm(x: ArrayLike<number>, weight: ArrayLike<number>, rows: number, dim: number, eps: number): Vec {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i]! ** 2;
    const rstd = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = weight[i]! * x[r * dim + i]! * rstd;
  }
  return out;
}

/** RoPE at positions 0..T-1 of x [T, heads, d] (halves rotated as transformers' rotate_half). */
export function refRope(x: ArrayLike<number>, invFreq: ArrayLike<number>, T: number, heads: number, d: number): Vec {
  const out = Float64Array.from(x as ArrayLike<number>);
  const half = d / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(t * invFreq[i]!);
        const c = Math.cos(angle), s = Math.sin(angle);
        const at = (t * heads + h) * d;
        const a = x[at + i]!, b = x[at + half + i]!;
        out[at + i] = a * c - b * s;
        out[at + half + i] = b * c + a * s;
      }
    }
  }
  return out;
}

export function refSiluMul(gate: ArrayLike<number>, up: ArrayLike<number>): Vec {
  return Float64Array.from({ length: gate.length }, (_, i) => (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!);
}

/** The attention's shape, as the trainer's ops take it. */
export type RefAttentionDims = AttentionDims;

/** The soft-gated causal attention (docs/design.md §8): q [T, Hq, d], k, v [T, Hkv, d], logG [Hkv, T] or null. */
export function refAttention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, logG: ArrayLike<number> | null, dims: RefAttentionDims): Vec {
  const { T, numHeads: Hq, numKvHeads: Hkv, headDim: d, window: W, scale } = dims;
  const G = Hq / Hkv;
  const out = new Float64Array(T * Hq * d);
  const p = new Float64Array(T);
  for (let hq = 0; hq < Hq; hq++) {
    const h = Math.floor(hq / G);
    for (let i = 0; i < T; i++) {
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let e = 0; e < d; e++) s += q[(i * Hq + hq) * d + e]! * k[(j * Hkv + h) * d + e]!;
        s *= scale;
        if (logG && i - j >= W) s += logG[h * T + j]!;
        p[j] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) sum += p[j] = Math.exp(p[j]! - max);
      for (let j = 0; j <= i; j++) {
        for (let e = 0; e < d; e++) out[(i * Hq + hq) * d + e] += (p[j]! / sum) * v[(j * Hkv + h) * d + e]!;
      }
    }
  }
  return out;
}

/** g [Hkv, T] of one layer's gate from the flat parameter vector (`at`: the layer's offsets). */
export function refGate(kPre: ArrayLike<number>, kPost: ArrayLike<number>, params: ArrayLike<number>, at: GateLayerOffsets, T: number, H: number, d: number, E: number): Vec {
  const g = new Float64Array(H * T);
  const x = new Float64Array(2 * d);
  const norm = (k: ArrayLike<number>, kAt: number, wAt: number, xAt: number) => {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += k[kAt + i]! ** 2;
    const rstd = 1 / Math.sqrt(ss / d + 1e-6);
    for (let i = 0; i < d; i++) x[xAt + i] = k[kAt + i]! * rstd * params[wAt + i]!;
  };
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      norm(kPre, (t * H + h) * d, at.preKeyNorm, 0);
      norm(kPost, (t * H + h) * d, at.postKeyNorm, d);
      let z = params[at.b2 + h]!;
      for (let e = 0; e < E; e++) {
        let a = params[at.b1 + h * E + e]!;
        for (let j = 0; j < 2 * d; j++) a += params[at.w1 + (h * E + e) * 2 * d + j]! * x[j]!;
        z += params[at.w2 + h * E + e]! * geluErf(a);
      }
      g[h * T + t] = Math.max(1 / (1 + Math.exp(-z)), 1e-3);
    }
  }
  return g;
}

/** Sum over (h, s) of o_s + (1 - o_s)(1 - (g - 1)^2), o_s = min(1, W / (T - s)); g [H, T]. */
export function refSparsitySum(g: ArrayLike<number>, T: number, H: number, W: number): number {
  let sum = 0;
  for (let h = 0; h < H; h++) {
    for (let s = 0; s < T; s++) {
      const o = Math.min(1, W / (T - s));
      sum += o + (1 - o) * (1 - (g[h * T + s]! - 1) ** 2);
    }
  }
  return sum;
}

// ---- finite differences

/** Deterministic uniform values in [-scale, scale) (mulberry32). */
export function randoms(seed: number): (n: number, scale?: number) => Float32Array {
  let s = seed >>> 0;
  return (n, scale = 1) =>
    Float32Array.from({ length: n }, () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = Math.imul(s ^ (s >>> 15), 1 | s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1) * scale;
    });
}

export interface GradCheck {
  /** The largest relative error over the directions and coordinates checked. */
  readonly worst: number;
  readonly details: string[];
}

/**
 * Checks `grad` (the analytic gradient of `loss` at `x`) against central
 * differences of `loss` (an f64 function): along `numDirections` random unit
 * directions and at `numCoords` coordinates (the largest-gradient one and
 * random ones). The error of a pair is |fd - an| / max(|fd|, |an|, floor),
 * with floor a fraction of the gradient's norm so near-zero entries do not
 * divide by noise.
 */
export function checkGradient(loss: (x: Vec) => number, x: ArrayLike<number>, grad: ArrayLike<number>, options: { seed: number; numDirections?: number; numCoords?: number; eps?: number }): GradCheck {
  const n = x.length;
  const base = Float64Array.from(x as ArrayLike<number>);
  const eps = options.eps ?? 1e-5;
  const rand = randoms(options.seed);
  const gnorm = Math.sqrt(Array.from(grad).reduce((s, v) => s + v * v, 0));
  const floor = 1e-3 * gnorm + 1e-12;
  const details: string[] = [];
  let worst = 0;
  const dirDeriv = (dir: Vec) => {
    const plus = base.map((v, i) => v + eps * dir[i]!), minus = base.map((v, i) => v - eps * dir[i]!);
    return (loss(plus) - loss(minus)) / (2 * eps);
  };
  const compare = (what: string, fd: number, an: number) => {
    const err = Math.abs(fd - an) / Math.max(Math.abs(fd), Math.abs(an), floor);
    worst = Math.max(worst, err);
    details.push(`${what}: fd ${fd.toExponential(6)} analytic ${an.toExponential(6)} rel.err ${err.toExponential(2)}`);
  };
  for (let k = 0; k < (options.numDirections ?? 3); k++) {
    const r = rand(n);
    const norm = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
    const dir = Float64Array.from(r, (v) => v / norm);
    compare(`direction ${k}`, dirDeriv(dir), dir.reduce((s, v, i) => s + v * grad[i]!, 0));
  }
  let top = 0;
  for (let i = 1; i < n; i++) if (Math.abs(grad[i]!) > Math.abs(grad[top]!)) top = i;
  const coords = [top, ...Array.from(rand(options.numCoords ?? 4), (v) => Math.floor(((v + 1) / 2) * n) % n)];
  for (const i of coords) {
    const dir = new Float64Array(n);
    dir[i] = 1;
    compare(`coordinate ${i}`, dirDeriv(dir), grad[i]!);
  }
  return { worst, details };
}

/** sum_i r_i y_i: the scalar a backward op's dy = r differentiates. */
export function dot(r: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += r[i]! * y[i]!;
  return s;
}
