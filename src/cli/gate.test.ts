/**
 * `wgkv gate convert` end to end on the embedded model's official gates, and
 * the gate-file errors a CLI command reaches: bad metadata flags (refused
 * before anything is written), metadata read from a file (named by file and
 * key, never by a flag), files that are neither format, hostile checkpoints.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadGate, saveGateSafetensors } from "../gate/gateFile.js";
import { readTorchCheckpoint } from "../gate/torchCheckpoint.js";
import { writeSafetensors } from "../io/safetensors.js";
import { gateTensors } from "../gate/gateWeights.js";
import { expectCliError, runCli } from "../testing/cli.js";
import { DEFAULT_MODEL_DIR } from "../testing/fixtures.js";
import { statePickle, torchFile } from "../testing/torchZip.js";

const GATES = ["0.004", "0.016n", "0.16"].map((l) => join(DEFAULT_MODEL_DIR, "gates", `wgkv-tiny-chat-gate-${l}.pt`));
let tmp = "";
before(() => (tmp = mkdtempSync(join(tmpdir(), "wgkv-gate-cli-"))));
after(() => tmp && rmSync(tmp, { recursive: true, force: true }));

/** A safetensors file read with nothing but JSON and DataView (independent of io/safetensors). */
function plainSafetensors(file: string): { meta: Record<string, string>; tensors: Map<string, { shape: number[]; data: number[] }> } {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors = new Map<string, { shape: number[]; data: number[] }>();
  let meta: Record<string, string> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") {
      meta = e as unknown as Record<string, string>;
      continue;
    }
    assert.equal(e.dtype, "F32", name);
    const data: number[] = [];
    for (let p = 8 + n + e.data_offsets[0]; p < 8 + n + e.data_offsets[1]; p += 4) data.push(bytes.readFloatLE(p));
    tensors.set(name, { shape: e.shape, data });
  }
  return { meta, tensors };
}

describe("wgkv gate convert end to end", () => {
  test("every official gate: .pt -> safetensors with metadata -> .pt, every tensor identical", () => {
    for (const [i, input] of GATES.entries()) {
      const original = readTorchCheckpoint(new Uint8Array(readFileSync(input)), input);
      const st = join(tmp, `gate-${i}.safetensors`);
      const r = runCli(["gate", "convert", input, st, "--window", "256", "--tau", "0.1", "--lambda", "0.016", "--model", "wgkv-tiny-chat"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /^wrote .*gate-\d\.safetensors: 8 layers x 2 KV heads, head dim 64, expand 4, metadata /);

      const out = plainSafetensors(st);
      assert.deepEqual(out.meta, { format: "wgkv-gate", window: "256", tau: "0.1", lambda: "0.016", model: "wgkv-tiny-chat", expand: "4" });
      assert.deepEqual([...out.tensors.keys()], [...original.keys()]);
      for (const [name, t] of original) {
        assert.deepEqual(out.tensors.get(name)!.shape, t.shape, name);
        assert.deepEqual(out.tensors.get(name)!.data, Array.from(t.data), name);
      }
      const loaded = loadGate(new Uint8Array(readFileSync(st)), st, { numLayers: 8, numKvHeads: 2, headDim: 64 });
      assert.deepEqual(loaded.meta, { window: 256, tau: 0.1, lambda: 0.016, model: "wgkv-tiny-chat", expand: 4 });

      const back = join(tmp, `gate-${i}-back.pt`);
      const r2 = runCli(["gate", "convert", st, back, "--to", "pt"]);
      assert.equal(r2.status, 0, r2.stderr);
      const again = readTorchCheckpoint(new Uint8Array(readFileSync(back)), back);
      assert.deepEqual([...again.keys()], [...original.keys()]);
      for (const [name, t] of original) {
        assert.deepEqual(again.get(name)!.shape, t.shape, name);
        assert.deepEqual(again.get(name)!.data, t.data, name);
      }
    }
  });
});

describe("wgkv gate convert refuses bad metadata flags before writing anything", () => {
  const cases: Array<[string[], string[]]> = [
    [["--window", "100"], ["--window", "multiple of 16", '"100"']],
    [["--window", "0"], ["--window", '"0"']],
    [["--window", "-16"], ["--window", '"-16"']],
    [["--window", "wide"], ["--window", '"wide"']],
    [["--tau", "1"], ["--tau", "(0, 1)", '"1"']],
    [["--tau", "0"], ["--tau", "(0, 1)"]],
    [["--tau", "1.5"], ["--tau", '"1.5"']],
    [["--lambda", "0"], ["--lambda", '"0"']],
    [["--lambda", "-1"], ["--lambda", '"-1"']],
    [["--lambda", "Infinity"], ["--lambda", '"Infinity"']],
    [["--to", "pt", "--window", "256"], ["--window", "no place for metadata"]],
    [["--to", "onnx"], ["--to", '"onnx"']],
  ];
  for (const [flags, names] of cases) {
    test(flags.join(" "), () => {
      const out = join(tmp, `never-${flags.join("_")}.safetensors`);
      expectCliError(["gate", "convert", GATES[0]!, out, ...flags], names);
      assert.ok(!existsSync(out), "the output was written");
    });
  }

  test("an existing output is not overwritten without --force", () => {
    const out = join(tmp, "exists.safetensors");
    writeFileSync(out, "keep me");
    expectCliError(["gate", "convert", GATES[0]!, out], [out, "already exists", "--force"]);
    assert.equal(readFileSync(out, "utf8"), "keep me");
  });
});

describe("gate files that are bad, reached through the CLI", () => {
  const gate = () => loadGate(new Uint8Array(readFileSync(GATES[0]!)), GATES[0]!).gate;

  test("metadata read from a file names the file and the key, never a flag", () => {
    for (const [key, value, why] of [["tau", "1.5", "(0, 1)"], ["window", "100", "multiple of 16"], ["lambda", "0", "positive"]] as const) {
      const file = join(tmp, `bad-${key}.safetensors`);
      writeFileSync(file, writeSafetensors(gateTensors(gate()), { format: "wgkv-gate", [key]: value }));
      const forward = ["forward", "--backend", "cpu-reference", "--ids", "1,2", "--gate", file];
      for (const args of key === "tau" ? [["gate", "convert", file, join(tmp, `never-${key}.safetensors`)], forward] : [forward]) {
        const { line } = expectCliError(args, [file, `metadata ${key}='${value}'`, why]);
        assert.doesNotMatch(line, new RegExp(`--${key}`), line);
      }
    }
  });

  test("a .pt that is not a zip, and a .safetensors that is not one", () => {
    const html = join(tmp, "download.pt");
    writeFileSync(html, "<!DOCTYPE html><html>404 Not Found</html>");
    expectCliError(["gate", "convert", html, join(tmp, "never.safetensors")], [html, "neither a PyTorch checkpoint", "nor a safetensors file"]);
    expectCliError(["forward", "--backend", "cpu-reference", "--ids", "1", "--gate", html], [html, "neither"]);
    const cut = join(tmp, "cut.safetensors");
    writeFileSync(cut, saveGateSafetensors(gate()).subarray(0, 64));
    expectCliError(["gate", "convert", cut, join(tmp, "never2.pt"), "--to", "pt"], [cut, "truncated"]);
  });

  test("a 2^30-element stride-0 view is refused at once, by gate convert and by forward --gate", () => {
    const evil = join(tmp, "evil.pt");
    const pickle = statePickle([{ name: "model.layers.0.self_attn.g_predictors.pre_key_norm.weight", storage: { key: "0", type: "FloatStorage", numel: 1 }, offset: 0, size: [2 ** 30], stride: [0] }]);
    writeFileSync(evil, torchFile(pickle, new Map([["0", new Uint8Array(4)]])));
    for (const args of [["gate", "convert", evil, join(tmp, "never3.safetensors")], ["forward", "--backend", "cpu-reference", "--ids", "1", "--gate", evil]]) {
      const { elapsedMs } = expectCliError(args, [evil, "stride 0"]);
      assert.ok(elapsedMs < 10_000, `took ${elapsedMs} ms`); // the whole command, start-up included
    }
  });

  test("views that overlap, a name given twice, a global under another module", () => {
    const P = "model.layers.0.self_attn.g_predictors.";
    const f32 = { key: "0", type: "FloatStorage", numel: 4096 };
    const files: Array<[string, Uint8Array, string[]]> = [
      ["overlap.pt", torchFile(statePickle([{ name: P + "conv1.weight", storage: f32, offset: 0, size: [4096, 4096], stride: [0, 1] }]), new Map([["0", new Uint8Array(4 * 4096)]])), ["stride 0"]],
      ["windows.pt", torchFile(statePickle([{ name: P + "conv1.weight", storage: f32, offset: 0, size: [2048, 2048], stride: [1, 1] }]), new Map([["0", new Uint8Array(4 * 4096)]])), ["views overlap or repeat storage"]],
      ["twice.pt", torchFile(statePickle([1, 2].map(() => ({ name: P + "conv1.bias", storage: f32, offset: 0, size: [4], stride: [1] }))), new Map([["0", new Uint8Array(4 * 4096)]])), ["is set twice"]],
      ["evil.pt", torchFile(statePickle([{ name: P + "conv1.bias", storage: f32, offset: 0, size: [4], stride: [1] }], { renameGlobal: (m, n) => (n === "_rebuild_tensor_v2" ? ["evil._utils", n] : [m, n]) }), new Map([["0", new Uint8Array(4 * 4096)]])), ["'evil._utils._rebuild_tensor_v2'", "not allowed"]],
    ];
    for (const [i, [name, bytes, why]] of files.entries()) {
      const file = join(tmp, name);
      writeFileSync(file, bytes);
      expectCliError(["gate", "convert", file, join(tmp, `never-${name}.safetensors`)], [file, ...why]);
      // --gate reads through the same loader: once is enough to show it reaches it
      if (i === 0) expectCliError(["forward", "--backend", "cpu-reference", "--ids", "1", "--gate", file], [file, ...why]);
    }
  });

  test("a gate for another model names the file and the tensor", () => {
    const other = join(tmp, "other.safetensors");
    const g = gate();
    writeFileSync(other, saveGateSafetensors({ ...g, numLayers: 2, layers: g.layers.slice(0, 2) }));
    expectCliError(["forward", "--backend", "cpu-reference", "--ids", "1", "--gate", other], [other, "has no gate for layer 2", "8 layers"]);
  });
});
