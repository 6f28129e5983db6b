import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { writeStoredZip } from "../util/zip.js";
import { GateFormatError, UnsafePickleError } from "./errors.js";
import { readTorchCheckpoint } from "./torchCheckpoint.js";
import { saveTorchCheckpoint } from "./torchSave.js";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
const GATE_016 = new URL("../../models/wgkv-tiny-chat/gates/wgkv-tiny-chat-gate-0.16.pt", import.meta.url);
const P = "model.layers.3.self_attn.g_predictors.";

test("reads the official 0.16 gate checkpoint: 48 f32 parameters, values as Python reads them", () => {
  const tensors = readTorchCheckpoint(new Uint8Array(readFileSync(GATE_016)), "gate-0.16.pt");
  assert.equal(tensors.size, 48);
  assert.deepEqual([...tensors.keys()].slice(0, 6), [
    "pre_key_norm.weight", "post_key_norm.weight", "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
  ].map((s) => "model.layers.0.self_attn.g_predictors." + s));
  const shapes = Object.fromEntries([...tensors].slice(18, 24).map(([k, t]) => [k.slice(P.length), t.shape]));
  assert.deepEqual(shapes, {
    "pre_key_norm.weight": [64], "post_key_norm.weight": [64], "conv1.weight": [512, 128, 1],
    "conv1.bias": [512], "conv2.weight": [2, 256, 1], "conv2.bias": [2],
  });
  assert.ok([...tensors.values()].every((t) => t.dtype === "f32" && t.data.length === t.shape.reduce((a, b) => a * b, 1)));
  // struct.unpack('<f', ...) on the raw storages:
  const pre0 = tensors.get("model.layers.0.self_attn.g_predictors.pre_key_norm.weight")!.data;
  assert.deepEqual(Array.from(pre0.subarray(0, 3)), [1.0324991941452026, 1.0439155101776123, 1.101601243019104]);
  assert.equal(tensors.get(P + "conv1.weight")!.data[5 * 128 + 7], 0.08798569440841675);
  assert.deepEqual(Array.from(tensors.get("model.layers.7.self_attn.g_predictors.conv2.bias")!.data), [-0.030297962948679924, -0.008099615573883057]);
});

test("rebuilds bf16/f16/f64 storages, storage offsets, strided views and empty tensors", () => {
  const bytes = saveTorchCheckpoint(
    [
      ["bf16", { dtype: "bf16", shape: [2, 2], data: [1, -2, 0.5, 3] }],
      ["f16", { dtype: "f16", shape: [3], data: [0.25, -65504, 1 / 1024] }],
      ["f64", { dtype: "f64", shape: [1, 2, 1], data: [0.1, 1e-30] }],
      // a view of storage [0..9] at offset 2 with shape [2, 3] transposed: t[i][j] = s[2 + i + 2*j]
      ["view", { shape: [2, 3], stride: [1, 2], storageOffset: 2, data: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }],
      ["empty", { shape: [0, 4], data: [] }],
    ],
    { asParameters: false },
  );
  const t = readTorchCheckpoint(bytes, "t.pt");
  assert.deepEqual(Array.from(t.get("bf16")!.data), [1, -2, 0.5, 3]);
  assert.equal(t.get("bf16")!.dtype, "bf16");
  assert.deepEqual(Array.from(t.get("f16")!.data), [0.25, -65504, 1 / 1024]);
  assert.deepEqual(Array.from(t.get("f64")!.data), [Math.fround(0.1), Math.fround(1e-30)]);
  assert.deepEqual(t.get("f64")!.shape, [1, 2, 1]);
  assert.deepEqual(Array.from(t.get("view")!.data), [2, 4, 6, 3, 5, 7]);
  assert.deepEqual(t.get("empty")!.shape, [0, 4]);
  assert.equal(t.get("empty")!.data.length, 0);
});

test("saveTorchCheckpoint round-trips the official file exactly", () => {
  const original = readTorchCheckpoint(new Uint8Array(readFileSync(GATE_016)), "gate-0.16.pt");
  const again = readTorchCheckpoint(saveTorchCheckpoint(original, { archiveName: "gate" }), "copy.pt");
  assert.deepEqual([...again.keys()], [...original.keys()]);
  for (const [name, t] of original) {
    assert.deepEqual(again.get(name)!.shape, t.shape);
    assert.deepEqual(again.get(name)!.data, t.data);
  }
});

test("refuses non-checkpoints, unsafe pickles and inconsistent tensors with one-line messages", () => {
  const zip = (pickleHex: string, extra: Array<{ name: string; data: Uint8Array }> = []) =>
    writeStoredZip([{ name: "a/data.pkl", data: hex(pickleHex) }, ...extra]);
  const expect = (bytes: Uint8Array, re: RegExp, type: typeof GateFormatError = GateFormatError) =>
    assert.throws(() => readTorchCheckpoint(bytes, "x.pt"), (e: unknown) => e instanceof type && re.test((e as Error).message) && !(e as Error).message.includes("\n"));

  expect(new TextEncoder().encode("{\"not\": \"a checkpoint\"}"), /^x\.pt: not a PyTorch checkpoint/);
  expect(hex("8002 8a0a 6cfc9c46f9206aa85019".replace(/ /g, "")), /^x\.pt: legacy \(pre-1\.6/);
  expect(writeStoredZip([{ name: "a/other", data: new Uint8Array(1) }]), /^x\.pt: no data\.pkl/);
  expect(zip("80027d710058040000007374657071014b01732e"), /^x\.pt: entry 'step' is not a tensor/); // {'step': 1}
  expect(zip("800263706f7369780a73797374656d0a710058070000006563686f20686971018571025271032e"), /^x\.pt \(data\.pkl\): pickle global 'posix\.system'/, UnsafePickleError);

  const good = saveTorchCheckpoint([["w", { shape: [4], data: [1, 2, 3, 4] }]]);
  const compressed = good.slice(); // every central-directory method field := deflate
  const view = new DataView(compressed.buffer);
  for (let p = 0; p + 4 <= compressed.length; p++) if (view.getUint32(p, true) === 0x02014b50) view.setUint16(p + 10, 8, true);
  expect(compressed, /^x\.pt: zip entry archive\/\S+ is compressed \(method 8\)/);

  expect(saveTorchCheckpoint([["w", { shape: [4], stride: [2], data: [1, 2, 3, 4] }]]), /^x\.pt: 'w' reaches element 6 of a storage of 4 elements \(data\/0\)$/);
  const truncated = good.slice(0, good.length - 30);
  expect(truncated, /^x\.pt: not a readable zip archive/);
});
