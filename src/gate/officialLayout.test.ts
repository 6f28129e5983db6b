/**
 * A checkpoint in the official layout built here by hand, with an
 * independent writer (testing/torchZip: CPython's protocol-2 opcodes for a
 * state_dict of nn.Parameters, PyTorch's zip layout) and known values written
 * byte by byte: the reader must return exactly those values. Nothing here
 * goes through the project's own torchSave.ts or zip writer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadGate } from "./gateFile.js";
import { gateTensorName } from "./gateWeights.js";
import { readTorchCheckpoint } from "./torchCheckpoint.js";
import { statePickle, torchFile, type HandTensor } from "../testing/torchZip.js";

const f32 = (values: number[]) => {
  const b = new Uint8Array(4 * values.length);
  values.forEach((v, i) => new DataView(b.buffer).setFloat32(4 * i, v, true));
  return b;
};

// A one-layer gate for a model with one KV head of dim 2 and expand 1 (E = 2), in docs/design.md §7's layout.
const VALUES = {
  pre: [1.25, -0.5],
  post: [0.75, 2],
  conv1: [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8], // (2, 4, 1): row i = W1[0][i]
  bias1: [0.01, -0.02],
  conv2: [1.5, -2.5], // (1, 2, 1)
  bias2: [0.125],
};
const P = "model.layers.0.self_attn.g_predictors.";
const tensor = (name: string, key: string, size: number[], numel: number): HandTensor => ({
  name: P + name,
  storage: { key, type: "FloatStorage", numel },
  offset: 0,
  size,
  stride: size.map((_, i) => size.slice(i + 1).reduce((a, b) => a * b, 1)),
});
const TENSORS: HandTensor[] = [
  tensor("pre_key_norm.weight", "0", [2], 2),
  tensor("post_key_norm.weight", "1", [2], 2),
  tensor("conv1.weight", "2", [2, 4, 1], 8),
  tensor("conv1.bias", "3", [2], 2),
  tensor("conv2.weight", "4", [1, 2, 1], 2),
  tensor("conv2.bias", "5", [1], 1),
];
const STORAGES = new Map(Object.values(VALUES).map((v, i) => [String(i), f32(v)]));

test("a hand-built torch.save state_dict of nn.Parameters reads back exactly", () => {
  const pt = torchFile(statePickle(TENSORS), STORAGES, "wgkv-hand-gate");
  const got = readTorchCheckpoint(pt, "hand.pt");
  assert.deepEqual([...got.keys()], TENSORS.map((t) => t.name));
  const want = Object.values(VALUES);
  TENSORS.forEach((t, i) => {
    const read = got.get(t.name)!;
    assert.equal(read.dtype, "f32");
    assert.deepEqual(read.shape, t.size);
    assert.deepEqual(Array.from(read.data), want[i]!.map(Math.fround), t.name);
  });

  // and as a gate for that model
  const { gate, meta, format } = loadGate(pt, "hand.pt", { numLayers: 1, numKvHeads: 1, headDim: 2 });
  assert.equal(format, "pt");
  assert.deepEqual(meta, { expand: 1 });
  assert.equal(gate.hiddenPerHead, 2);
  assert.deepEqual(Array.from(gate.layers[0]!.w1), VALUES.conv1.map(Math.fround));
  assert.deepEqual(Array.from(gate.layers[0]!.b2), [0.125]);
});

test("a plain-dict root, bf16 and f16 storages, a storage offset, a transposed view and a plain tensor", () => {
  // bf16 storage of 6: bits for 1.5, -2.5, 0.25, 3, -0.125, 8 ; view [3, 2] transposed from offset 0 with stride (1, 3)
  const bf16 = new Uint8Array(12);
  [0x3fc0, 0xc020, 0x3e80, 0x4040, 0xbe00, 0x4100].forEach((bits, i) => new DataView(bf16.buffer).setUint16(2 * i, bits, true));
  // f16 storage of 4: bits for 0, 1, -2, 65504 ; view [2] from offset 2
  const f16 = new Uint8Array(8);
  [0x0000, 0x3c00, 0xc000, 0x7bff].forEach((bits, i) => new DataView(f16.buffer).setUint16(2 * i, bits, true));
  const tensors: HandTensor[] = [
    { name: "t", storage: { key: "0", type: "BFloat16Storage", numel: 6 }, offset: 0, size: [3, 2], stride: [1, 3] },
    { name: "h", storage: { key: "1", type: "HalfStorage", numel: 4 }, offset: 2, size: [2], stride: [1], parameter: false },
  ];
  const got = readTorchCheckpoint(torchFile(statePickle(tensors, { root: "dict" }), new Map([["0", bf16], ["1", f16]])), "views.pt");
  // t[i][j] = storage[i + 3j]
  assert.deepEqual(Array.from(got.get("t")!.data), [1.5, 3, -2.5, -0.125, 0.25, 8]);
  assert.equal(got.get("t")!.dtype, "bf16");
  assert.deepEqual(Array.from(got.get("h")!.data), [-2, 65504]);
  assert.equal(got.get("h")!.dtype, "f16");
});

test("the hand-built writer spells the official files' opcodes (a check on the test's own writer)", () => {
  const pkl = new TextDecoder("latin1").decode(statePickle(TENSORS.slice(0, 2)));
  // as in the official gates: GLOBAL lines, then BINGET of the memoized globals for the second tensor
  assert.ok(pkl.startsWith("\x80\x02ccollections\nOrderedDict\nq\x00)R"));
  assert.ok(pkl.includes("ctorch._utils\n_rebuild_parameter\nq"));
  assert.ok(pkl.includes("ctorch\nFloatStorage\nq"));
  assert.equal(pkl.split("ctorch._utils\n_rebuild_tensor_v2\n").length, 2, "the second tensor reuses the memoized global");
  assert.ok(pkl.endsWith("sssb."), "SETITEMs of _metadata, BUILD, STOP");
  assert.equal(gateTensorName(0, "w1"), TENSORS[2]!.name);
});
