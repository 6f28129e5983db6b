import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { InvalidInputError } from "../errors.js";
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

test("bytes that are neither a torch zip nor safetensors are refused as such, naming the file", () => {
  const st = saveGateSafetensors(loadGate(GATES[0]!.bytes, GATES[0]!.name).gate);
  assert.equal(sniffGateFormat(GATES[0]!.bytes), "pt");
  assert.equal(sniffGateFormat(st), "safetensors");
  const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]); // torch.save's legacy magic
  const html = new TextEncoder().encode("<!DOCTYPE html><html>Not Found</html>");
  for (const bytes of [legacy, html, new Uint8Array(0), new Uint8Array(5)]) assert.equal(sniffGateFormat(bytes), null);
  const refused = (bytes: Uint8Array, name: string, re: RegExp) =>
    assert.throws(() => loadGate(bytes, name, MODEL), (e: unknown) => e instanceof GateFormatError && re.test((e as Error).message) && !(e as Error).message.includes("\n"), name);
  refused(html, "gate.pt", /^gate file gate\.pt: neither a PyTorch checkpoint \(torch\.save zip\) nor a safetensors file$/);
  refused(legacy, "old.pt", /^gate file old\.pt: neither a PyTorch checkpoint .* legacy \(pre-1\.6\) torch\.save format/);
  refused(new Uint8Array(0), "empty.pt", /^gate file empty\.pt: neither .*\(it is empty\)$/);
  refused(html, "gate.bin", /^gate file gate\.bin: neither/);
  // a file named .safetensors gets the safetensors reader's own diagnosis
  refused(st.subarray(0, 100), "cut.safetensors", /^cut\.safetensors: malformed safetensors header \(declares a \d+-byte header but the file has only 100 bytes; truncated file\?\)$/);
  refused(html, "page.safetensors", /^page\.safetensors: malformed safetensors header \(declares a \d+-byte header, more than the 104857600-byte limit/);
  // a zip that is not a whole archive stays a torch problem
  refused(GATES[0]!.bytes.subarray(0, 1000), "cut.pt", /^cut\.pt: not a readable zip archive/);
});

test("metadata the loader cannot use is refused naming the file and the key", () => {
  const { gate } = loadGate(GATES[0]!.bytes, GATES[0]!.name);
  const withMeta = (metadata: Record<string, string>) => writeSafetensors(gateTensors(gate), metadata);
  const cases: Array<[Record<string, string>, string]> = [
    [{ window: "100" }, "metadata window='100' must be a positive multiple of 16"],
    [{ window: "0" }, "metadata window='0' must be a positive multiple of 16"],
    [{ window: "-256" }, "metadata window='-256' must be a positive multiple of 16"],
    [{ tau: "1.5" }, "metadata tau='1.5' must be in (0, 1)"],
    [{ tau: "0" }, "metadata tau='0' must be in (0, 1)"],
    [{ tau: "1" }, "metadata tau='1' must be in (0, 1)"],
    [{ lambda: "0" }, "metadata lambda='0' must be a positive finite number"],
    [{ lambda: "-0.1" }, "metadata lambda='-0.1' must be a positive finite number"],
    [{ lambda: "Infinity" }, "metadata lambda='Infinity' is not a valid number"],
    [{ expand: "0" }, "metadata expand='0' must be a positive finite number"],
    [{ tau: "0.1\nx" }, "metadata tau='0.1\\nx' is not a valid number"],
  ];
  for (const [metadata, message] of cases) {
    assert.throws(() => loadGate(withMeta(metadata), "g.safetensors"), (e: unknown) => e instanceof GateFormatError && (e as Error).message === `gate file g.safetensors: ${message}`, message);
  }
  assert.deepEqual(loadGate(withMeta({ window: "64", tau: "0.5", lambda: "1e-3" }), "g.safetensors").meta, { window: 64, tau: 0.5, lambda: 0.001, expand: 4 });
});

test("convertGate never writes metadata the loader would refuse", () => {
  const bad: Array<Record<string, number>> = [{ window: 100 }, { window: 0 }, { tau: 1 }, { tau: -0.1 }, { lambda: 0 }, { lambda: Infinity }, { lambda: NaN }];
  for (const meta of bad) {
    assert.throws(() => convertGate(GATES[0]!.bytes, GATES[0]!.name, "safetensors", meta), (e: unknown) => e instanceof InvalidInputError && /^gate metadata (window|tau|lambda) must be/.test((e as Error).message), JSON.stringify(meta));
  }
});
