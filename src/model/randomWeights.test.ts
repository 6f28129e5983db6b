/**
 * The random-weights model source (benchmarks of real shapes without their
 * files): a safetensors header naming every tensor of the config with its
 * shape, values with the stated statistics (std 0.02, norms 1), the same
 * bytes for the same seed and others for another, the period after which a
 * long tensor repeats, and one-tensor reads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createFolderSource } from "../platform/node/fileSource.js";
import { DEFAULT_MODEL_DIR } from "../testing/fixtures.js";
import { bf16BitsToF32 } from "../util/halfFloat.js";
import { ModelTooLargeError } from "../errors.js";
import { randomWeightsSource } from "./randomWeights.js";

async function header(seed: number) {
  const source = await randomWeightsSource(createFolderSource(DEFAULT_MODEL_DIR), seed);
  const head = await source.readRange("model.safetensors", 0, 8);
  const n = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(await source.readRange("model.safetensors", 8, n))) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
  const tensor = async (name: string) => {
    const [a, b] = json[name].data_offsets;
    const bytes = await source.readRange("model.safetensors", 8 + n + a, b - a);
    return Float32Array.from(new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), bf16BitsToF32);
  };
  return { source, json, tensor, dataStart: 8 + n };
}

test("random weights: every tensor of the config, std 0.02 around 0, norms 1, seeded, repeating after 2^20 values", async () => {
  const { source, json, tensor, dataStart } = await header(3);
  // the default model: 8 layers, hidden 384, intermediate 1024, 6 heads / 2 KV heads of 64, vocabulary 8192
  assert.deepEqual(json["model.layers.7.mlp.down_proj.weight"].shape, [384, 1024]);
  assert.deepEqual(json["model.layers.0.self_attn.k_proj.weight"].shape, [128, 384]);
  assert.deepEqual(json["model.embed_tokens.weight"].shape, [8192, 384]);
  assert.equal(Object.keys(json).filter((k) => k.startsWith("model.layers.")).length, 8 * 9);
  assert.equal(await source.size("model.safetensors"), dataStart + Math.max(...Object.values(json).map((t) => t.data_offsets[1])));

  const w = await tensor("model.layers.2.mlp.up_proj.weight");
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
  assert.ok(Math.abs(mean) < 1e-3 && Math.abs(std - 0.02) < 1e-3, `mean ${mean}, std ${std}`);
  assert.ok((await tensor("model.layers.2.input_layernorm.weight")).every((v) => v === 1));

  const embed = await tensor("model.embed_tokens.weight"); // 3 M values: past one period
  assert.deepEqual(embed.subarray(1 << 20, (1 << 20) + 64), embed.subarray(0, 64));
  assert.notDeepEqual(embed.subarray(1, 65), embed.subarray(0, 64));

  const again = await (await header(3)).tensor("model.layers.2.mlp.up_proj.weight");
  const other = await (await header(4)).tensor("model.layers.2.mlp.up_proj.weight");
  assert.deepEqual(again, w);
  assert.notDeepEqual(other, w);
  await assert.rejects(source.readRange("model.safetensors", dataStart + 2, 8), /reads must cover one tensor/);
});

test("random weights of shapes no device holds are refused from config.json, before any header is made", async () => {
  const config = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "config.json"), "utf8")) as Record<string, unknown>;
  const folder = (fields: Record<string, unknown>) => {
    const text = JSON.stringify({ ...config, ...fields });
    return { label: "/m", exists: async () => true, size: async () => text.length, readText: async () => text, readRange: async () => new Uint8Array(0) };
  };
  await assert.rejects(randomWeightsSource(folder({ hidden_size: 2 ** 30, num_attention_heads: 1, num_key_value_heads: 1, head_dim: 2 ** 30 }), 1), (e: unknown) => e instanceof ModelTooLargeError && /^\/m\/config\.json: random bf16 weights of these shapes take [\d.e+]+ TiB, more than any device holds$/.test((e as Error).message));
  const fits = await randomWeightsSource(folder({ num_hidden_layers: 1024 }), 1);
  assert.ok((await fits.size("model.safetensors")) > 1024 * 2 * 384 * 1024 * 3);
});
