/**
 * `wgkv forward` and `wgkv generate` against expectations that do not come
 * from wgkv itself: the dense reference's admitted counts and the memory they
 * imply, the gate file's tau metadata, --kv-dtype and --prefill each doing
 * what they say, and a model whose weights hold NaN refused with one line.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_MODEL_DIR, PROJECT_ROOT, readGolden } from "../testing/fixtures.js";

const CLI = join(PROJECT_ROOT, "dist/cli.js");
const GATE_016 = join(DEFAULT_MODEL_DIR, "gates/wgkv-tiny-chat-gate-0.16.pt");
const golden = readGolden();

interface ForwardJson {
  argmax: number[];
  last_logits: number[];
  admitted: number[][];
  kv_bytes: { resident: number; peak: number; full_attention: number };
}

let tmp = "";
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-known-"));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function cli(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 180_000, maxBuffer: 1 << 28 });
}

function forward(ids: readonly number[], ...flags: string[]): ForwardJson {
  const r = cli(["forward", "--ids", ids.join(","), "--json", ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ForwardJson;
}

test("admitted counts and KV bytes follow the dense reference's gate scores", () => {
  const entry = golden["niah1500_wgkv0.16_w256"];
  const W = 256;
  const out = forward(entry.prompt_ids, "--gate", GATE_016, "--window", String(W));
  assert.deepEqual(out.admitted, entry.admitted);
  // bytes, from the reference alone: each head holds its ring (W/16 pages) and the pages of the
  // admitted tokens that left the window; a page is 16 tokens of K and V, 64 dims of f32
  const N = entry.prompt_ids.length;
  const bytesPerToken = 2 * 64 * 4;
  let pages = 0;
  for (const layer of entry.gate_scores!) {
    for (const head of layer) {
      const global = head.slice(0, N - W).filter((g) => g > Math.fround(0.1)).length;
      pages += W / 16 + Math.ceil(global / 16);
    }
  }
  assert.equal(out.kv_bytes.resident, pages * 16 * bytesPerToken);
  assert.equal(out.kv_bytes.full_attention, N * 8 * 2 * bytesPerToken);
  assert.ok(out.kv_bytes.peak >= out.kv_bytes.resident && out.kv_bytes.peak <= out.kv_bytes.resident + 8 * 2 * 16 * bytesPerToken);
});

test("the gate file's tau metadata is the threshold unless --tau overrides it", () => {
  const converted = join(tmp, "gate-tau.safetensors");
  const c = cli(["gate", "convert", GATE_016, converted, "--tau", "0.05"]);
  assert.equal(c.status, 0, c.stderr);
  const ids = golden["niah1500_wgkv0.16_w256"].prompt_ids.slice(0, 600);
  const total = (a: number[][]) => a.flat().reduce((x, y) => x + y, 0);
  const byMetadata = forward(ids, "--gate", converted).admitted;
  const byFlag = forward(ids, "--gate", GATE_016, "--tau", "0.05").admitted;
  const byDefault = forward(ids, "--gate", GATE_016).admitted;
  assert.deepEqual(byMetadata, byFlag);
  assert.ok(total(byMetadata) > total(byDefault), "a lower threshold admits more");
  assert.deepEqual(forward(ids, "--gate", converted, "--tau", "0.1").admitted, byDefault);
});

test("--kv-dtype f16 halves the bytes and rounds the keys a little", () => {
  const ids = golden.chat_short_full.prompt_ids;
  const f32 = forward(ids, "--window", "16", "--prefill", "1");
  const f16 = forward(ids, "--window", "16", "--prefill", "1", "--kv-dtype", "f16");
  assert.equal(f16.kv_bytes.resident * 2, f32.kv_bytes.resident);
  assert.equal(f16.kv_bytes.full_attention * 2, f32.kv_bytes.full_attention);
  assert.notDeepEqual(f16.last_logits, f32.last_logits, "f16 pages were read");
  assert.deepEqual(f16.argmax.slice(-1), f32.argmax.slice(-1));
});

test("--prefill P feeds the rest one token per step: the same under full attention, not under Quest", () => {
  const ids = golden.niah1500_full.prompt_ids.slice(0, 400);
  const whole = forward(ids);
  const split = forward(ids, "--prefill", "300");
  assert.deepEqual(split.argmax, whole.argmax);
  // Quest selects pages for decode rows only: with a small budget, feeding one at a time changes the logits
  const questWhole = forward(ids, "--window", "32", "--selection", "quest:32");
  const questSplit = forward(ids, "--window", "32", "--selection", "quest:32", "--prefill", "300");
  assert.deepEqual(questWhole.argmax.slice(0, 300), questSplit.argmax.slice(0, 300));
  assert.notDeepEqual(questSplit.last_logits, questWhole.last_logits);
});

test("NaN in the weights: one line about non-finite logits, exit 1", () => {
  const model = join(tmp, "nan-model");
  cpSync(DEFAULT_MODEL_DIR, model, { recursive: true, dereference: true });
  const file = join(model, "model.safetensors");
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { data_offsets: [number, number] }>;
  // a NaN in every row of layer 0's down projection (bf16 0x7fc0): every token's hidden state becomes NaN
  const [begin, end] = header["model.layers.0.mlp.down_proj.weight"].data_offsets;
  for (let at = 8 + headerLength + begin; at < 8 + headerLength + end; at += 2 * 1024) bytes.writeUInt16LE(0x7fc0, at);
  writeFileSync(file, bytes);
  const r = cli(["generate", "--model", model, "--max-tokens", "4", "hello"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^wgkv: error: the model produced non-finite logits \(NaN\) at position \d+: its weights or config hold invalid values\n$/);
});
