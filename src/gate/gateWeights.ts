/**
 * @module gate/gateWeights
 *
 * The write gate of a model as typed arrays (docs/design.md §7), built from
 * checkpoint tensors named in the official layout
 * `model.layers.{l}.self_attn.g_predictors.{pre_key_norm.weight, post_key_norm.weight,
 * conv1.weight, conv1.bias, conv2.weight, conv2.bias}` and checked, tensor by
 * tensor, against the model it is meant for. The 1x1 convolutions are stored
 * as (out, in, 1) and used as row-major (out, in) matrices; the kernel axis is
 * dropped.
 */
import { GateFormatError, GateShapeError, quoteName } from "./errors.js";

/** The dimensions of a model that its gate must match. */
export interface GateModelShape {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
}

/** One layer's gate; `d` = headDim, `E` = hiddenPerHead (= e*d), `H` = numKvHeads. */
export interface GateLayerWeights {
  /** RMSNorm weight applied to the pre-RoPE key: [d], shared by the layer's KV heads. */
  readonly preKeyNorm: Float32Array;
  /** RMSNorm weight applied to the post-RoPE key: [d]. */
  readonly postKeyNorm: Float32Array;
  /** W1 of every head: [H*E, 2d] row-major; row h*E + i is W1[h][i]. */
  readonly w1: Float32Array;
  /** [H*E] */
  readonly b1: Float32Array;
  /** W2 of every head: [H, E]; row h is W2[h]. */
  readonly w2: Float32Array;
  /** [H] */
  readonly b2: Float32Array;
}

/** A model's whole write gate. */
export interface GateWeights extends GateModelShape {
  /** Hidden units per KV head, e*d (e = "expand": 4 for the Llama checkpoints, 1.5 for Qwen3-4B). */
  readonly hiddenPerHead: number;
  readonly layers: readonly GateLayerWeights[];
}

/** A named tensor as a checkpoint reader returns it (row-major f32). */
export interface ShapedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A tensor whose values are read only once its name and shape have passed. */
export interface LazyTensor {
  readonly shape: readonly number[];
  load(): Float32Array;
}

/** What {@link buildGateWeights} takes: tensors read already or on demand. */
export type GateTensorInput = ShapedTensor | LazyTensor;

/** Checkpoint names of the six tensors of a layer's gate. */
export const GATE_TENSOR_PARTS = {
  preKeyNorm: "pre_key_norm.weight",
  postKeyNorm: "post_key_norm.weight",
  w1: "conv1.weight",
  b1: "conv1.bias",
  w2: "conv2.weight",
  b2: "conv2.bias",
} as const satisfies Record<keyof GateLayerWeights, string>;

type Part = keyof GateLayerWeights;
const PARTS = Object.keys(GATE_TENSOR_PARTS) as Part[];
// Layer numbers as Python prints them (no leading zeros), so one layer has one spelling.
const NAME_RE = /^model\.layers\.(0|[1-9]\d{0,5})\.self_attn\.g_predictors\.(.+)$/;

/** The checkpoint name of one gate tensor, e.g. `model.layers.3.self_attn.g_predictors.conv1.weight`. */
export function gateTensorName(layer: number, part: Part): string {
  return `model.layers.${layer}.self_attn.g_predictors.${GATE_TENSOR_PARTS[part]}`;
}

/** The expand factor e = hiddenPerHead / headDim. */
export function gateExpand(gate: GateWeights): number {
  return gate.hiddenPerHead / gate.headDim;
}

const fmt = (shape: readonly (number | string)[]): string => `[${shape.join(", ")}]`;

/**
 * Reads the model dimensions a gate was trained for from its tensors: layer
 * count from the names, head_dim from `pre_key_norm`, KV heads from `conv2`.
 */
export function inferGateModelShape(tensors: ReadonlyMap<string, { readonly shape: readonly number[] }>, fileName: string): GateModelShape {
  let numLayers = 0;
  for (const name of tensors.keys()) {
    const m = NAME_RE.exec(name);
    if (m) numLayers = Math.max(numLayers, Number(m[1]) + 1);
  }
  const get = (part: Part): { readonly shape: readonly number[] } => {
    const t = tensors.get(gateTensorName(0, part));
    if (numLayers === 0 || !t) {
      throw new GateFormatError(`gate file ${fileName}: no ${gateTensorName(0, part)}; not a write-gate checkpoint`);
    }
    return t;
  };
  return { numLayers, headDim: get("preKeyNorm").shape[0] ?? 0, numKvHeads: get("w2").shape[0] ?? 0 };
}

/**
 * Builds the typed gate from checkpoint tensors, checking every tensor's
 * name and shape against `model` (default: what the tensors imply) before
 * any {@link LazyTensor} is loaded, then every value for NaN and infinity.
 * Throws {@link GateShapeError} when the gate was trained for another model,
 * {@link GateFormatError} when the tensors are incomplete, unexpected or not finite.
 */
export function buildGateWeights(tensors: ReadonlyMap<string, GateTensorInput>, fileName: string, model?: GateModelShape): GateWeights {
  const { numLayers: L, numKvHeads: H, headDim: d } = model ?? inferGateModelShape(tensors, fileName);
  const forModel = `for a model with ${H} KV heads of dim ${d} (gate trained for another model?)`;
  const layersSeen = new Set<number>();
  for (const name of tensors.keys()) {
    const m = NAME_RE.exec(name);
    const layer = m ? Number(m[1]) : -1;
    if (!m || !Object.values(GATE_TENSOR_PARTS).includes(m[2] as never)) {
      throw new GateFormatError(`gate file ${fileName}: unexpected tensor ${quoteName(name)}; a gate holds only model.layers.N.self_attn.g_predictors.* tensors`);
    }
    if (layer >= L) throw new GateShapeError(`gate file ${fileName}: has a gate for layer ${layer} but the model has ${L} layers (gate trained for another model?)`);
    layersSeen.add(layer);
  }

  // Infer E from layer 0's conv1 (H*E, 2d, 1); every other shape follows from it.
  const conv1 = tensors.get(gateTensorName(0, "w1"));
  const rows = conv1?.shape[0] ?? 0;
  if (conv1 && (conv1.shape[1] !== 2 * d || rows % H !== 0 || rows === 0 || !isConvKernel(conv1.shape))) {
    throw new GateShapeError(`gate file ${fileName}: ${gateTensorName(0, "w1")} has shape ${fmt(conv1.shape)}, expected ${fmt([`${H}*e*${d}`, 2 * d, 1])} ${forModel}`);
  }
  const E = rows / H;
  const expected: Record<Part, number[]> = { preKeyNorm: [d], postKeyNorm: [d], w1: [H * E, 2 * d, 1], b1: [H * E], w2: [H, E, 1], b2: [H] };

  // Every name and shape first: nothing is read until the whole gate fits the model.
  for (let l = 0; l < L; l++) {
    if (!layersSeen.has(l)) {
      throw new GateShapeError(`gate file ${fileName}: has no gate for layer ${l}; the model has ${L} layers (gate trained for another model?)`);
    }
    for (const part of PARTS) {
      const name = gateTensorName(l, part);
      const t = tensors.get(name);
      if (!t) throw new GateFormatError(`gate file ${fileName}: tensor ${name} is missing`);
      if (!sameShape(t.shape, expected[part])) {
        throw new GateShapeError(`gate file ${fileName}: ${name} has shape ${fmt(t.shape)}, expected ${fmt(expected[part])} ${forModel}`);
      }
    }
  }
  const layers: GateLayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const layer = {} as Record<Part, Float32Array>;
    for (const part of PARTS) {
      const name = gateTensorName(l, part);
      const t = tensors.get(name)!;
      const data = "data" in t ? t.data : t.load();
      if (!data.every(Number.isFinite)) throw new GateFormatError(`gate file ${fileName}: ${name} contains NaN or infinite values`);
      layer[part] = data;
    }
    layers.push(layer);
  }
  return { numLayers: L, numKvHeads: H, headDim: d, hiddenPerHead: E, layers };
}

/** Conv weights may also come without their kernel axis (as a Linear would store them). */
function isConvKernel(shape: readonly number[]): boolean {
  return shape.length === 2 || (shape.length === 3 && shape[2] === 1);
}

function sameShape(got: readonly number[], want: readonly number[]): boolean {
  const g = want.length === 3 && got.length === 2 ? [...got, 1] : got;
  return g.length === want.length && g.every((n, i) => n === want[i]);
}

/** The gate's tensors under their checkpoint names and official shapes, layer by layer. */
export function gateTensors(gate: GateWeights): Map<string, ShapedTensor> {
  const { numKvHeads: H, headDim: d, hiddenPerHead: E } = gate;
  const shapes: Record<Part, number[]> = { preKeyNorm: [d], postKeyNorm: [d], w1: [H * E, 2 * d, 1], b1: [H * E], w2: [H, E, 1], b2: [H] };
  const out = new Map<string, ShapedTensor>();
  gate.layers.forEach((layer, l) => {
    for (const part of PARTS) out.set(gateTensorName(l, part), { shape: shapes[part], data: layer[part] });
  });
  return out;
}
