import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { GateFormatError, GateShapeError } from "./errors.js";
import { buildGateWeights, gateTensorName, gateTensors, inferGateModelShape, type ShapedTensor } from "./gateWeights.js";
import { readTorchCheckpoint } from "./torchCheckpoint.js";

const tensors = readTorchCheckpoint(
  new Uint8Array(readFileSync(new URL("../../models/wgkv-tiny-chat/gates/wgkv-tiny-chat-gate-0.016n.pt", import.meta.url))),
  "g.pt",
);
const MODEL = { numLayers: 8, numKvHeads: 2, headDim: 64 };

function expectError(t: ReadonlyMap<string, ShapedTensor>, model: typeof MODEL | undefined, type: new (message: string) => Error, message: string) {
  assert.throws(() => buildGateWeights(t, "g.pt", model), (e: unknown) => e instanceof type && (e as Error).message === message);
}

test("infers the model a gate was trained for and lays out its weights", () => {
  assert.deepEqual(inferGateModelShape(tensors, "g.pt"), MODEL);
  const gate = buildGateWeights(tensors, "g.pt", MODEL);
  assert.equal(gate.hiddenPerHead, 256);
  // conv1.weight (512, 128, 1) is used as-is as W1 [H*E, 2d]: row h*E + i = W1[h][i].
  assert.equal(gate.layers[3]!.w1, tensors.get(gateTensorName(3, "w1"))!.data);
  assert.equal(gate.layers[3]!.w2.length, 2 * 256);
  const back = gateTensors(gate);
  assert.deepEqual([...back.keys()], [...tensors.keys()]);
  for (const [name, t] of tensors) assert.deepEqual(back.get(name)!.shape, t.shape);
});

test("a gate for another model fails with a one-line message naming tensor, shapes and model", () => {
  const forModel = (H: number, d: number) => `for a model with ${H} KV heads of dim ${d} (gate trained for another model?)`;
  expectError(tensors, { ...MODEL, numKvHeads: 4 }, GateShapeError,
    `gate file g.pt: model.layers.0.self_attn.g_predictors.conv2.weight has shape [2, 256, 1], expected [4, 128, 1] ${forModel(4, 64)}`);
  expectError(tensors, { ...MODEL, headDim: 128 }, GateShapeError,
    `gate file g.pt: model.layers.0.self_attn.g_predictors.conv1.weight has shape [512, 128, 1], expected [2*e*128, 256, 1] ${forModel(2, 128)}`);
  expectError(tensors, { ...MODEL, numKvHeads: 3 }, GateShapeError,
    `gate file g.pt: model.layers.0.self_attn.g_predictors.conv1.weight has shape [512, 128, 1], expected [3*e*64, 128, 1] ${forModel(3, 64)}`);
  expectError(tensors, { ...MODEL, numLayers: 12 }, GateShapeError,
    "gate file g.pt: has no gate for layer 8; the model has 12 layers (gate trained for another model?)");
  expectError(tensors, { ...MODEL, numLayers: 4 }, GateShapeError,
    "gate file g.pt: has a gate for layer 4 but the model has 4 layers (gate trained for another model?)");
});

test("incomplete, foreign or non-finite tensors are format errors", () => {
  const without = new Map<string, ShapedTensor>(tensors);
  without.delete(gateTensorName(5, "b1"));
  expectError(without, MODEL, GateFormatError, "gate file g.pt: tensor model.layers.5.self_attn.g_predictors.conv1.bias is missing");

  const extra = new Map<string, ShapedTensor>(tensors).set("lm_head.weight", { shape: [1], data: new Float32Array(1) });
  expectError(extra, MODEL, GateFormatError,
    "gate file g.pt: unexpected tensor 'lm_head.weight'; a gate holds only model.layers.N.self_attn.g_predictors.* tensors");

  const nan = new Map<string, ShapedTensor>(tensors).set(gateTensorName(2, "b2"), { shape: [2], data: new Float32Array([0, NaN]) });
  expectError(nan, MODEL, GateFormatError, "gate file g.pt: model.layers.2.self_attn.g_predictors.conv2.bias contains NaN or infinite values");

  assert.throws(() => inferGateModelShape(new Map(), "empty.pt"), /^GateFormatError: gate file empty\.pt: no model\.layers\.0\.self_attn\.g_predictors\.pre_key_norm\.weight; not a write-gate checkpoint$/);
});

test("accepts conv weights without the kernel axis (as a Linear stores them)", () => {
  const flat = new Map<string, ShapedTensor>(tensors);
  for (let l = 0; l < 8; l++) {
    for (const part of ["w1", "w2"] as const) {
      const t = tensors.get(gateTensorName(l, part))!;
      flat.set(gateTensorName(l, part), { shape: t.shape.slice(0, 2), data: t.data });
    }
  }
  assert.equal(buildGateWeights(flat, "g.pt", MODEL).hiddenPerHead, 256);
});
