import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { GateFormatError, GateShapeError } from "./errors.js";
import { convertGate, loadGate, saveGateSafetensors, sniffGateFormat } from "./gateFile.js";
import { gateTensors } from "./gateWeights.js";
import { writeSafetensors } from "../io/safetensors.js";
import { readTorchCheckpoint } from "./torchCheckpoint.js";

const GATES = ["0.004", "0.016n", "0.16"].map((lambda) => ({
  name: `wgkv-tiny-chat-gate-${lambda}.pt`,
  bytes: new Uint8Array(readFileSync(new URL(`../../models/wgkv-tiny-chat/gates/wgkv-tiny-chat-gate-${lambda}.pt`, import.meta.url))),
}));
const MODEL = { numLayers: 8, numKvHeads: 2, headDim: 64 };

test("torch -> safetensors -> read gives identical arrays for every official gate", () => {
  for (const { name, bytes } of GATES) {
    const st = convertGate(bytes, name, "safetensors", { window: 256, tau: 0.1, lambda: 0.016, model: "wgkv-tiny-chat" });
    assert.equal(sniffGateFormat(bytes), "pt");
    assert.equal(sniffGateFormat(st), "safetensors");
    const loaded = loadGate(st, "gate.safetensors", MODEL);
    assert.equal(loaded.format, "safetensors");
    assert.deepEqual(loaded.meta, { window: 256, tau: 0.1, lambda: 0.016, model: "wgkv-tiny-chat", expand: 4 });
    const original = readTorchCheckpoint(bytes, name);
    const again = gateTensors(loaded.gate);
    assert.deepEqual([...again.keys()], [...original.keys()]);
    for (const [key, t] of original) {
      assert.deepEqual(again.get(key)!.shape, t.shape, key);
      assert.deepEqual(again.get(key)!.data, t.data, key);
    }
  }
});

test("safetensors output is valid: aligned data, f32 entries, string metadata", () => {
  const st = convertGate(GATES[2]!.bytes, GATES[2]!.name);
  const headerLength = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  assert.equal(headerLength % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + headerLength)));
  assert.deepEqual(header.__metadata__, { format: "wgkv-gate", expand: "4" });
  assert.deepEqual(header["model.layers.0.self_attn.g_predictors.conv1.weight"], { dtype: "F32", shape: [512, 128, 1], data_offsets: [512, 262656] });
  const dataEnd = header["model.layers.7.self_attn.g_predictors.conv2.bias"].data_offsets[1];
  assert.equal(st.length, 8 + headerLength + dataEnd);
});

test("convert to .pt keeps the official layout and values", () => {
  const pt = convertGate(GATES[1]!.bytes, GATES[1]!.name, "pt");
  const a = loadGate(pt, "copy.pt", MODEL).gate;
  const b = loadGate(GATES[1]!.bytes, GATES[1]!.name, MODEL).gate;
  assert.deepEqual(a, b);
});

test("saveGateSafetensors omits absent metadata; loadGate checks it", () => {
  const { gate } = loadGate(GATES[0]!.bytes, GATES[0]!.name);
  assert.deepEqual(loadGate(saveGateSafetensors(gate), "g.safetensors").meta, { expand: 4 });
  const withMeta = (metadata: Record<string, string>) => writeSafetensors(gateTensors(gate), metadata);
  assert.throws(() => loadGate(withMeta({ window: "wide" }), "g.safetensors"), /^GateFormatError: gate file g\.safetensors: metadata window='wide' is not a valid number$/);
  assert.throws(() => loadGate(withMeta({ tau: "" }), "g.safetensors"), GateFormatError);
  assert.throws(() => loadGate(withMeta({ expand: "1.5" }), "g.safetensors"), /metadata expand=1.5 but conv1 implies 4/);
  assert.throws(() => loadGate(saveGateSafetensors(gate), "g.safetensors", { ...MODEL, numLayers: 2 }), GateShapeError);
});
