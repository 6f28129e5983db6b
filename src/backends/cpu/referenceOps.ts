/**
 * @module backends/cpu/referenceOps
 *
 * The reference kernels' light ops (kernels.ts has the contract): plain loops
 * over views of the kernel memory, written for clarity. The wasm kernels
 * (wasm/assembly/elementwise.ts, wasm/assembly/gate.ts) are checked against these.
 */
import { createGateScratch, scoreGate } from "../../gate/gateMath.js";
import type { GateWeights } from "../../gate/gateWeights.js";
import { f32ToBf16Bits, f32ToF16Bits } from "../../util/halfFloat.js";
import type { KvDType } from "../backend.js";
import { gateLayerFloats, unpackGateLayer } from "./gateLayout.js";
import type { GateShape } from "./kernels.js";

type Buffer = ArrayBufferLike;
const f32 = (buf: Buffer, ptr: number, n: number) => new Float32Array(buf, ptr, n);

export function referenceRmsNorm(buf: Buffer, out: number, x: number, weight: number, rows: number, dim: number, eps: number): void {
  const w = f32(buf, weight, dim), xs = f32(buf, x, rows * dim), os = f32(buf, out, rows * dim);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let sumSq = 0;
    for (let i = 0; i < dim; i++) sumSq += xs[base + i] * xs[base + i];
    // NOTE: transformers takes mean(x^2) in f32 and multiplies by its rsqrt; fround keeps us on that side.
    const inv = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(sumSq) / dim) + eps));
    for (let i = 0; i < dim; i++) os[base + i] = w[i] * Math.fround(xs[base + i] * inv);
  }
}

export function referenceSiluMul(buf: Buffer, out: number, gate: number, up: number, n: number): void {
  const os = f32(buf, out, n), gs = f32(buf, gate, n), us = f32(buf, up, n);
  for (let i = 0; i < n; i++) os[i] = (gs[i] / (1 + Math.exp(-gs[i]))) * us[i];
}

export function referenceAdd(buf: Buffer, x: number, y: number, n: number): void {
  const xs = f32(buf, x, n), ys = f32(buf, y, n);
  for (let i = 0; i < n; i++) xs[i] += ys[i];
}

export function referenceRope(buf: Buffer, x: number, cosSin: number, T: number, numHeads: number, half: number): void {
  const xs = f32(buf, x, T * numHeads * 2 * half), cs = f32(buf, cosSin, T * 2 * half);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < numHeads; h++) {
      const base = (t * numHeads + h) * 2 * half;
      for (let i = 0; i < half; i++) {
        const a = xs[base + i], b = xs[base + half + i], cos = cs[t * 2 * half + i], sin = cs[t * 2 * half + half + i];
        xs[base + i] = a * cos - b * sin;
        xs[base + half + i] = b * cos + a * sin;
      }
    }
  }
}

/** The f64 gate (gate/gateMath.ts) over every (head, token), rounded to f32 on store. */
export function referenceGateScores(buf: Buffer, scores: number, kPre: number, kPost: number, layer: number, { T, stride, H, d, E }: GateShape): void {
  const weights = unpackGateLayer(f32(buf, layer, gateLayerFloats(H, d, E)), H, d, E);
  const gate: GateWeights = { numLayers: 1, numKvHeads: H, headDim: d, hiddenPerHead: E, layers: [weights] };
  const pre = f32(buf, kPre, T * H * d), post = f32(buf, kPost, T * H * d), out = f32(buf, scores, (H - 1) * stride + T);
  const scratch = createGateScratch(gate);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      const at = (t * H + h) * d;
      out[h * stride + t] = scoreGate(gate, 0, h, pre.subarray(at, at + d), post.subarray(at, at + d), scratch);
    }
  }
}

export function referenceWriteSlots(buf: Buffer, pages: number, src: number, slots: number, T: number, H: number, d: number, kvDType: KvDType, specials: number): void {
  const from = f32(buf, src, T * H * d), mapping = new Int32Array(buf, slots, H * T);
  const encode = kvDType === "f16" ? f32ToF16Bits : kvDType === "bf16" ? f32ToBf16Bits : null;
  let numSlots = 0;
  for (const slot of mapping) numSlots = Math.max(numSlots, slot + 1);
  const to = encode ? new Uint16Array(buf, pages, numSlots * d) : f32(buf, pages, numSlots * d);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      const slot = mapping[h * T + t];
      if (slot < 0) continue;
      const a = (t * H + h) * d, b = slot * d;
      const special = (x: number) => !Number.isFinite(x);
      if (!encode) {
        to.set(from.subarray(a, a + d), b);
        if (from.subarray(a, a + d).some(special)) new Int32Array(buf, specials, 1)[0] = 1;
        continue;
      }
      for (let i = 0; i < d; i++) {
        to[b + i] = encode(from[a + i]);
        if (special(from[a + i]) || (kvDType === "f16" && (to[b + i] & 0x7c00) === 0x7c00)) new Int32Array(buf, specials, 1)[0] = 1;
      }
    }
  }
}
