import { GOLDEN_FILE } from "../testing/fixtures.js";
import { createRandom } from "../util/random.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { loadGate } from "./gateFile.js";
import { createGateScratch, GATE_MIN_SCORE, scoreGate, scoreGateBatch } from "./gateMath.js";
import type { GateWeights } from "./gateWeights.js";
import { decodeEntry, parseSafetensors } from "../io/safetensors.js";

const MODEL_DIR = new URL("../../models/wgkv-tiny-chat/", import.meta.url);
const GOLDEN = GOLDEN_FILE;
const DEFAULT_MODEL = { numLayers: 8, numKvHeads: 2, headDim: 64 };

/** Deterministic uniform values in [-scale, scale), from the project's one seeded generator. */
function randoms(seed: number) {
  const random = createRandom(seed);
  return (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
}

/** A random gate: 2 layers, 2 KV heads, d = 8, e = 1.5 (as Qwen3-4B's). */
function randomGate(seed: number): GateWeights {
  const rand = randoms(seed);
  const H = 2, d = 8, E = 12;
  const layers = [0, 1].map(() => ({
    preKeyNorm: rand(d, 2), postKeyNorm: rand(d, 2),
    w1: rand(H * E * 2 * d, 0.6), b1: rand(H * E, 0.5), w2: rand(H * E, 0.8), b2: rand(H, 1),
  }));
  return { numLayers: 2, numKvHeads: H, headDim: d, hiddenPerHead: E, layers };
}

/** Phi(z) by composite Simpson integration of the normal density: independent of util/erf. */
function normalCdf(z: number): number {
  const n = 4000, h = z / n;
  let s = 0;
  for (let i = 0; i <= n; i++) s += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2) / 2);
  return 0.5 + (s * h) / 3 / Math.sqrt(2 * Math.PI);
}

/** docs/design.md §7 written out plainly in f64. */
function naiveScore(gate: GateWeights, layer: number, h: number, kPre: ArrayLike<number>, kPost: ArrayLike<number>): number {
  const w = gate.layers[layer]!, d = gate.headDim, E = gate.hiddenPerHead;
  const rmsNorm = (k: ArrayLike<number>, weight: Float32Array) => {
    const ms = Array.from(k).reduce((s, v) => s + v * v, 0) / d;
    return Array.from(k, (v, i) => (v / Math.sqrt(ms + 1e-6)) * weight[i]!);
  };
  const x = [...rmsNorm(kPre, w.preKeyNorm), ...rmsNorm(kPost, w.postKeyNorm)];
  let z = w.b2[h]!;
  for (let i = 0; i < E; i++) {
    let a = w.b1[h * E + i]!;
    for (let j = 0; j < 2 * d; j++) a += w.w1[(h * E + i) * 2 * d + j]! * x[j]!;
    z += w.w2[h * E + i]! * a * normalCdf(a);
  }
  return Math.max(1 / (1 + Math.exp(-z)), 1e-3);
}

test("scoreGate matches a naive f64 implementation within 1e-6", () => {
  const gate = randomGate(1);
  const rand = randoms(2);
  const scratch = createGateScratch(gate);
  let min = 1, max = 0;
  for (let trial = 0; trial < 40; trial++) {
    const kPre = rand(8, 3), kPost = rand(8, 3), layer = trial % 2, h = (trial >> 1) % 2;
    const want = naiveScore(gate, layer, h, kPre, kPost);
    const got = scoreGate(gate, layer, h, kPre, kPost, trial % 3 ? scratch : undefined);
    assert.ok(Math.abs(got - want) < 1e-6, `trial ${trial}: ${got} vs ${want}`);
    min = Math.min(min, got);
    max = Math.max(max, got);
  }
  assert.ok(min < 0.3 && max > 0.7, "random cases should span admitted and rejected scores");
});

test("scoreGateBatch equals scoreGate per token, laid out [numKvHeads, numTokens]", () => {
  const gate = randomGate(3);
  const rand = randoms(4);
  const T = 7, H = 2, d = 8;
  const kPre = rand(T * H * d, 2), kPost = rand(T * H * d, 2);
  const out = scoreGateBatch(gate, 1, kPre, kPost, T);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const at = (t * H + h) * d;
      const single = scoreGate(gate, 1, h, kPre.subarray(at, at + d), kPost.subarray(at, at + d));
      assert.equal(out[h * T + t], Math.fround(single));
    }
  }
});

test("scores are clamped at 1e-3", () => {
  const gate = randomGate(5);
  gate.layers[0]!.b2.fill(-60);
  const k = new Float32Array(8).fill(1);
  assert.equal(scoreGate(gate, 0, 1, k, k), GATE_MIN_SCORE);
  assert.deepEqual(Array.from(scoreGateBatch(gate, 0, new Float32Array(32), new Float32Array(32), 2)), Array(4).fill(Math.fround(1e-3)));
});

test("rejects out-of-range layers, heads and short buffers", () => {
  const gate = randomGate(6);
  const k = new Float32Array(8);
  assert.throws(() => scoreGate(gate, 2, 0, k, k), RangeError);
  assert.throws(() => scoreGate(gate, 0, 2, k, k), RangeError);
  assert.throws(() => scoreGate(gate, 0, 0, k.subarray(1), k), RangeError);
  assert.throws(() => scoreGateBatch(gate, 0, k, k, 1), RangeError); // needs 2 heads * 8
  assert.throws(() => scoreGateBatch(gate, 0, new Float32Array(16), new Float32Array(16), 1, new Float32Array(1)), RangeError);
});

test("the official 0.16 gate loads with the default model's shapes", () => {
  const bytes = new Uint8Array(readFileSync(new URL("gates/wgkv-tiny-chat-gate-0.16.pt", MODEL_DIR)));
  const { gate, meta } = loadGate(bytes, "wgkv-tiny-chat-gate-0.16.pt", DEFAULT_MODEL);
  assert.deepEqual([gate.numLayers, gate.numKvHeads, gate.headDim, gate.hiddenPerHead, meta.expand], [8, 2, 64, 256, 4]);
  assert.equal(gate.layers[7]!.w1.length, 2 * 256 * 128);
});

test("layer-0 gate scores of the 0.16 gate reproduce the golden fixture", () => {
  // Layer 0's keys need only embedding -> input RMSNorm (eps 1e-5) -> k_proj -> RoPE (theta 5e5, rotate-half).
  const entry = JSON.parse(readFileSync(GOLDEN, "utf8"))["niah1500_wgkv0.16_w256"] as { prompt_ids: number[]; gate_scores: number[][][]; admitted: number[][] };
  const modelBytes = new Uint8Array(readFileSync(new URL("model.safetensors", MODEL_DIR)));
  const model = new Map(parseSafetensors(modelBytes, "model.safetensors").entries.map((e) => [e.name, { data: decodeEntry(modelBytes, e) }]));
  const { gate } = loadGate(new Uint8Array(readFileSync(new URL("gates/wgkv-tiny-chat-gate-0.16.pt", MODEL_DIR))), "gate", DEFAULT_MODEL);
  const ids = entry.prompt_ids, N = ids.length, D = 384, H = 2, d = 64;
  const emb = model.get("model.embed_tokens.weight")!.data;
  const norm = model.get("model.layers.0.input_layernorm.weight")!.data;
  const wk = model.get("model.layers.0.self_attn.k_proj.weight")!.data;
  const kPre = new Float64Array(N * H * d), kPost = new Float64Array(N * H * d);
  for (let t = 0; t < N; t++) {
    const e = emb.subarray(ids[t]! * D, (ids[t]! + 1) * D);
    const inv = 1 / Math.sqrt(e.reduce((s, v) => s + v * v, 0) / D + 1e-5);
    for (let r = 0; r < H * d; r++) {
      let a = 0;
      for (let i = 0; i < D; i++) a += wk[r * D + i]! * e[i]! * inv * norm[i]!;
      kPre[t * H * d + r] = a;
    }
    for (let b = t * H * d; b < (t + 1) * H * d; b += d) {
      for (let i = 0; i < d / 2; i++) {
        const angle = t / 500000 ** ((2 * i) / d), [x1, x2] = [kPre[b + i]!, kPre[b + i + d / 2]!];
        kPost[b + i] = x1 * Math.cos(angle) - x2 * Math.sin(angle);
        kPost[b + i + d / 2] = x2 * Math.cos(angle) + x1 * Math.sin(angle);
      }
    }
  }
  const out = scoreGateBatch(gate, 0, kPre, kPost, N);
  for (let h = 0; h < H; h++) {
    const want = entry.gate_scores[0]![h]!;
    let maxDiff = 0, admitted = 0;
    for (let t = 0; t < N; t++) {
      maxDiff = Math.max(maxDiff, Math.abs(out[h * N + t]! - want[t]!));
      if (out[h * N + t]! > 0.1) admitted++;
    }
    assert.ok(maxDiff < 2e-6, `head ${h}: max |g - golden| = ${maxDiff}`); // golden has 6 decimals
    assert.equal(admitted, entry.admitted[0]![h]);
  }
});
