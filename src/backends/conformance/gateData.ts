/**
 * @module backends/conformance/gateData
 *
 * Random write gates (DESIGN.md §2 shapes) whose scores spread over (0, 1):
 * a gate whose scores all saturate at 1e-3 or 1 would check nothing.
 */
import type { GateLayerWeights, GateWeights } from "../../gate/gateWeights.js";
import type { TestRandom } from "./testData.js";

/** One layer: norm weights near 1, W1 and W2 scaled so that the logits land around ±2. */
export function randomGateLayer(random: TestRandom, H: number, d: number, E: number): GateLayerWeights {
  const near1 = (n: number) => Float32Array.from({ length: n }, () => 1 + 0.5 * random.uniform());
  return {
    preKeyNorm: near1(d),
    postKeyNorm: near1(d),
    w1: random.floats(H * E * 2 * d, 2 / Math.sqrt(2 * d)),
    b1: random.floats(H * E, 0.5),
    w2: random.floats(H * E, 4 / Math.sqrt(E)),
    b2: random.floats(H, 0.5),
  };
}

export function randomGate(random: TestRandom, numLayers: number, numKvHeads: number, headDim: number, hiddenPerHead: number): GateWeights {
  return {
    numLayers, numKvHeads, headDim, hiddenPerHead,
    layers: Array.from({ length: numLayers }, () => randomGateLayer(random, numKvHeads, headDim, hiddenPerHead)),
  };
}
