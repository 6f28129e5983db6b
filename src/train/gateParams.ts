/**
 * @module train/gateParams
 *
 * The trained gate as one flat f32 vector (what the optimizer, checkpoints
 * and gradients work on), its layout per layer, the conversion to and from
 * {@link GateWeights} (which views the vector: no copies), and the initial
 * values.
 *
 * Initialization follows the official WG-KV code (`GatingPredictor.reset_parameters`):
 * key-norm weights 1, and PyTorch's default Conv1d init for both 1x1
 * convolutions, weight and bias uniform in +-1/sqrt(fan_in) with fan_in = 2d
 * for conv1 (grouped per KV head) and E for conv2. z starts near 0, so g
 * starts near 0.5: every token admitted (above tau 0.1), and training learns
 * what to drop.
 */
import type { GateLayerWeights, GateWeights } from "../gate/gateWeights.js";
import { createRandom } from "../util/random.js";
import type { GateLayerOffsets } from "./trainOps.js";

/** The shape of a gate: the model's layers, KV heads and head dim, and E = e * d hidden units per head. */
export interface GateShape {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly hidden: number;
}

export interface GateParamLayout {
  readonly shape: GateShape;
  /** Floats per layer. */
  readonly layerSize: number;
  readonly numParams: number;
  readonly layers: readonly GateLayerOffsets[];
}

/** Per layer, in this order: pre_key_norm [d], post_key_norm [d], W1 [H*E, 2d], b1 [H*E], w2 [H*E], b2 [H]. */
export function gateParamLayout(shape: GateShape): GateParamLayout {
  const { numLayers: L, numKvHeads: H, headDim: d, hidden: E } = shape;
  if (![L, H, d, E].every((n) => Number.isInteger(n) && n > 0)) throw new RangeError(`bad gate shape ${JSON.stringify(shape)}`);
  const layerSize = 2 * d + H * E * 2 * d + 2 * H * E + H;
  const layers = Array.from({ length: L }, (_, l) => {
    const base = l * layerSize;
    const w1 = base + 2 * d;
    const b1 = w1 + H * E * 2 * d;
    const w2 = b1 + H * E;
    return { preKeyNorm: base, postKeyNorm: base + d, w1, b1, w2, b2: w2 + H * E };
  });
  return { shape, layerSize, numParams: L * layerSize, layers };
}

/** The layout of the gate held in `gate`. */
export function layoutOf(gate: GateWeights): GateParamLayout {
  return gateParamLayout({ numLayers: gate.numLayers, numKvHeads: gate.numKvHeads, headDim: gate.headDim, hidden: gate.hiddenPerHead });
}

/** GateWeights whose tensors are views of `params` (changes to either show in both). */
export function gateWeightsView(layout: GateParamLayout, params: Float32Array): GateWeights {
  if (params.length !== layout.numParams) throw new RangeError(`gate parameters: ${params.length} floats, the layout has ${layout.numParams}`);
  const { numLayers, numKvHeads: H, headDim: d, hidden: E } = layout.shape;
  const view = (at: number, n: number) => params.subarray(at, at + n);
  const layers: GateLayerWeights[] = layout.layers.map((o) => ({
    preKeyNorm: view(o.preKeyNorm, d),
    postKeyNorm: view(o.postKeyNorm, d),
    w1: view(o.w1, H * E * 2 * d),
    b1: view(o.b1, H * E),
    w2: view(o.w2, H * E),
    b2: view(o.b2, H),
  }));
  return { numLayers, numKvHeads: H, headDim: d, hiddenPerHead: E, layers };
}

/** The flat vector of an existing gate (e.g. one read from a file). */
export function packGateParams(gate: GateWeights): Float32Array {
  const layout = layoutOf(gate);
  const params = new Float32Array(layout.numParams);
  const view = gateWeightsView(layout, params);
  gate.layers.forEach((layer, l) => {
    const dst = view.layers[l]!;
    for (const part of ["preKeyNorm", "postKeyNorm", "w1", "b1", "w2", "b2"] as const) dst[part].set(layer[part]);
  });
  return params;
}

/** Initial parameters (see the module comment), reproducible from `seed`. */
export function initGateParams(layout: GateParamLayout, seed: number): Float32Array {
  const { headDim: d, hidden: E } = layout.shape;
  const params = new Float32Array(layout.numParams);
  const random = createRandom(seed);
  const uniform = (at: number, n: number, bound: number) => {
    for (let i = at; i < at + n; i++) params[i] = (random() * 2 - 1) * bound;
  };
  const view = gateWeightsView(layout, params);
  for (const [l, o] of layout.layers.entries()) {
    view.layers[l]!.preKeyNorm.fill(1);
    view.layers[l]!.postKeyNorm.fill(1);
    const b1 = 1 / Math.sqrt(2 * d), b2 = 1 / Math.sqrt(E);
    uniform(o.w1, view.layers[l]!.w1.length, b1);
    uniform(o.b1, view.layers[l]!.b1.length, b1);
    uniform(o.w2, view.layers[l]!.w2.length, b2);
    uniform(o.b2, view.layers[l]!.b2.length, b2);
  }
  return params;
}
