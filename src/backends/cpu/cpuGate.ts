/**
 * @module backends/cpu/cpuGate
 *
 * The write gate on the CPU: the two RMSNorms and GELU in TypeScript, the
 * W1 projection (the only sizable part) through the matmul kernel.
 */
import type { GateWeights } from "../../gate/gateWeights.js";
import { GATE_MIN_SCORE, GATE_NORM_EPS } from "../../gate/gateMath.js";
import { geluErf } from "../../util/erf.js";
import type { GateHandle } from "../backend.js";
import type { CpuKernels } from "./kernels.js";

export interface CpuGate extends GateHandle {
  /** Per layer and KV head: W1[h] f32 [E, 2d] and b1[h] f32 [E] in kernel memory. */
  readonly w1Ptr: number[][];
  readonly b1Ptr: number[][];
  scratch: { ptr: number; capacity: number };
}

export function createCpuGate(kernels: CpuKernels, gate: GateWeights): CpuGate {
  const { numLayers, numKvHeads: H, headDim: d, hiddenPerHead: E } = gate;
  const w1Ptr: number[][] = [];
  const b1Ptr: number[][] = [];
  for (let l = 0; l < numLayers; l++) {
    w1Ptr.push([]);
    b1Ptr.push([]);
    for (let h = 0; h < H; h++) {
      const w = kernels.alloc(E * 2 * d * 4);
      new Float32Array(kernels.buffer(), w, E * 2 * d).set(gate.layers[l].w1.subarray(h * E * 2 * d, (h + 1) * E * 2 * d));
      const b = kernels.alloc(E * 4);
      new Float32Array(kernels.buffer(), b, E).set(gate.layers[l].b1.subarray(h * E, (h + 1) * E));
      w1Ptr[l].push(w);
      b1Ptr[l].push(b);
    }
  }
  return { gate, w1Ptr, b1Ptr, scratch: { ptr: 0, capacity: 0 } };
}

/** Scores g of one layer: kPre, kPost f32 [T, H, d] at the given pointers -> [H, T]. */
export function cpuGateScores(kernels: CpuKernels, g: CpuGate, layer: number, kPrePtr: number, kPostPtr: number, T: number): Float32Array {
  const { numKvHeads: H, headDim: d, hiddenPerHead: E } = g.gate;
  const w = g.gate.layers[layer];
  const need = T * 2 * d + T * E;
  if (g.scratch.capacity < need) g.scratch = { ptr: kernels.alloc(need * 4 * 2), capacity: need * 2 };
  const xPtr = g.scratch.ptr; //            x: f32 [T, 2d]  normed (pre, post) keys of one head
  const uPtr = xPtr + T * 2 * d * 4; //     u: f32 [T, E]   hidden units
  const scores = new Float32Array(H * T);
  for (let h = 0; h < H; h++) {
    const buffer = kernels.buffer();
    const kPre = new Float32Array(buffer, kPrePtr, T * H * d);
    const kPost = new Float32Array(buffer, kPostPtr, T * H * d);
    const x = new Float32Array(buffer, xPtr, T * 2 * d);
    for (let t = 0; t < T; t++) {
      rmsNorm(kPre, (t * H + h) * d, w.preKeyNorm, x, t * 2 * d, d);
      rmsNorm(kPost, (t * H + h) * d, w.postKeyNorm, x, t * 2 * d + d, d);
    }
    kernels.matmul(uPtr, xPtr, g.w1Ptr[layer][h], "f32", g.b1Ptr[layer][h], T, E, 2 * d);
    const u = new Float32Array(kernels.buffer(), uPtr, T * E);
    for (let t = 0; t < T; t++) {
      let z = w.b2[h];
      for (let i = 0; i < E; i++) {
        const a = u[t * E + i];
        z += w.w2[h * E + i] * geluErf(a);
      }
      scores[h * T + t] = Math.max(1 / (1 + Math.exp(-z)), GATE_MIN_SCORE);
    }
  }
  return scores;
}

function rmsNorm(src: Float32Array, at: number, weight: Float32Array, dst: Float32Array, to: number, d: number): void {
  let sumSq = 0;
  for (let i = 0; i < d; i++) sumSq += src[at + i] * src[at + i];
  const inv = 1 / Math.sqrt(sumSq / d + GATE_NORM_EPS);
  for (let i = 0; i < d; i++) dst[to + i] = weight[i] * (src[at + i] * inv);
}
