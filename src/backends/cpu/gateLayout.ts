/**
 * @module backends/cpu/gateLayout
 *
 * How one layer's write gate sits in kernel memory: one packed block of f32,
 * so a kernel needs a single pointer per layer (wasm/assembly/gate.ts reads it).
 *
 *   preNorm[d], postNorm[d], w1[H, E, 2d], b1[H, E], w2[H, E], b2[H]
 */
import type { GateLayerWeights } from "../../gate/gateWeights.js";

/** Floats of one packed layer. */
export function gateLayerFloats(H: number, d: number, E: number): number {
  return 2 * d + H * E * 2 * d + 2 * H * E + H;
}

/** Writes a layer's weights into `dst` (gateLayerFloats of them) in the packed order. */
export function packGateLayer(w: GateLayerWeights, dst: Float32Array): void {
  let at = 0;
  for (const part of [w.preKeyNorm, w.postKeyNorm, w.w1, w.b1, w.w2, w.b2]) {
    dst.set(part, at);
    at += part.length;
  }
  if (at !== dst.length) throw new RangeError(`packed gate layer holds ${at} floats, expected ${dst.length}`);
}

/** Views of a packed layer (no copy). */
export function unpackGateLayer(src: Float32Array, H: number, d: number, E: number): GateLayerWeights {
  let at = 0;
  const take = (n: number) => src.subarray(at, (at += n));
  return { preKeyNorm: take(d), postKeyNorm: take(d), w1: take(H * E * 2 * d), b1: take(H * E), w2: take(H * E), b2: take(H) };
}
