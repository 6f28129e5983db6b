/**
 * @module testing/trainModelReference
 *
 * Tiny random models for the gate trainer's tests: weights drawn on the host,
 * uploaded to a TrainOps device, and an f64 reference of the whole training
 * loss (teacher-free: the target is given) for finite-difference checks of
 * the full backward pass.
 */
import type { ModelConfig } from "../model/config.js";
import { createRopeTable } from "../model/rope.js";
import type { GateParamLayout } from "../train/gateParams.js";
import type { TrainModel, TrainWeight } from "../train/trainModel.js";
import type { TrainOps } from "../train/trainOps.js";
import type { LayerWeights } from "../model/weights.js";
import { encodeFloatsLE } from "../util/floats.js";
import { randoms, refAttention, refGate, refMatmul, refRmsNorm, refRope, refSiluMul, refSparsitySum, type Vec } from "./trainReference.js";

/** A tiny config of `architecture` (llama: no biases; qwen2: q/k/v biases; qwen3: q/k norms). */
export function tinyConfig(architecture: "llama" | "qwen2" | "qwen3", over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    architecture, vocabSize: 40, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: { type: "default" }, maxPositions: 512, tieWordEmbeddings: true,
    attentionBias: architecture === "qwen2", outputBias: false, mlpBias: false, qkNorm: architecture === "qwen3",
    slidingWindow: null, bosTokenId: 0, eosTokenIds: [1], dtype: "float32", ...over,
  };
}

type HostLayer = LayerWeights<Float32Array>;
export interface HostModel {
  readonly embed: Float32Array; // [V, H]
  readonly layers: readonly HostLayer[];
  readonly finalNorm: Float32Array;
}

/** Random weights, scaled so activations stay O(1) through the layers. */
export function randomHostModel(c: ModelConfig, seed: number): HostModel {
  const rand = randoms(seed);
  const { hiddenSize: H, intermediateSize: I, numHeads: Hq, numKvHeads: Hkv, headDim: d } = c;
  const mat = (rows: number, cols: number) => rand(rows * cols, 1 / Math.sqrt(cols));
  const norm = (n: number) => rand(n, 0.3).map((v) => 1 + v);
  const maybe = (on: boolean, n: number) => (on ? rand(n, 0.2) : null);
  const layers = Array.from({ length: c.numLayers }, () => ({
    inputNorm: norm(H), wq: mat(Hq * d, H), wk: mat(Hkv * d, H), wv: mat(Hkv * d, H), wo: mat(H, Hq * d),
    bq: maybe(c.attentionBias, Hq * d), bk: maybe(c.attentionBias, Hkv * d), bv: maybe(c.attentionBias, Hkv * d), bo: null,
    qNorm: c.qkNorm ? norm(d) : null, kNorm: c.qkNorm ? norm(d) : null,
    postAttentionNorm: norm(H), wGate: mat(I, H), wUp: mat(I, H), wDown: mat(H, I), bGate: null, bUp: null, bDown: null,
  }));
  return { embed: rand(c.vocabSize * H), layers, finalNorm: norm(H) };
}

/** The host model on a device (matrices as f32). */
export function uploadHostModel(ops: TrainOps, c: ModelConfig, host: HostModel): TrainModel {
  const m = (v: Float32Array, rows: number, cols: number) => ops.uploadMatrix({ dtype: "F32", shape: [rows, cols], bytes: encodeFloatsLE(v, "f32") }, "w");
  const vec = (v: Float32Array | null) => {
    if (!v) return null;
    const b = ops.alloc(v.length, "v");
    ops.write(b, v);
    return b;
  };
  const { hiddenSize: H, intermediateSize: I, numHeads: Hq, numKvHeads: Hkv, headDim: d } = c;
  const layers: LayerWeights<TrainWeight>[] = host.layers.map((l) => ({
    inputNorm: vec(l.inputNorm)!, wq: m(l.wq, Hq * d, H), wk: m(l.wk, Hkv * d, H), wv: m(l.wv, Hkv * d, H), wo: m(l.wo, H, Hq * d),
    bq: vec(l.bq), bk: vec(l.bk), bv: vec(l.bv), bo: null, qNorm: vec(l.qNorm), kNorm: vec(l.kNorm),
    postAttentionNorm: vec(l.postAttentionNorm)!, wGate: m(l.wGate, I, H), wUp: m(l.wUp, I, H), wDown: m(l.wDown, H, I), bGate: null, bUp: null, bDown: null,
  }));
  const embed = m(host.embed, c.vocabSize, H);
  return { config: c, weights: { embedTokens: embed, layers, finalNorm: vec(host.finalNorm)!, lmHead: embed }, rope: createRopeTable(c) };
}

export interface RefGate {
  readonly layout: GateParamLayout;
  readonly params: ArrayLike<number>;
  readonly window: number;
}

/** The final hidden state after the final norm [T, H], in f64; with `gate`, the student, and the g of each layer. */
export function refForward(c: ModelConfig, host: HostModel, ids: readonly number[], gate: RefGate | null): { y: Vec; g: Vec[] } {
  const T = ids.length;
  const { hiddenSize: H, intermediateSize: I, numHeads: Hq, numKvHeads: Hkv, headDim: d } = c;
  const invFreq = createRopeTable(c).invFreq;
  let x = new Float64Array(T * H);
  ids.forEach((id, t) => x.set(host.embed.subarray(id * H, (id + 1) * H), t * H));
  const gs: Vec[] = [];
  host.layers.forEach((lw, l) => {
    const xb = refRmsNorm(x, lw.inputNorm, T, H, c.rmsNormEps);
    let q = refMatmul(xb, lw.wq, lw.bq, T, Hq * d, H);
    let kPre = refMatmul(xb, lw.wk, lw.bk, T, Hkv * d, H);
    const v = refMatmul(xb, lw.wv, lw.bv, T, Hkv * d, H);
    if (lw.qNorm && lw.kNorm) {
      q = refRmsNorm(q, lw.qNorm, T * Hq, d, c.rmsNormEps);
      kPre = refRmsNorm(kPre, lw.kNorm, T * Hkv, d, c.rmsNormEps);
    }
    q = refRope(q, invFreq, T, Hq, d);
    const k = refRope(kPre, invFreq, T, Hkv, d);
    let logG: Vec | null = null;
    if (gate) {
      const g = refGate(kPre, k, gate.params, gate.layout.layers[l]!, T, Hkv, d, gate.layout.shape.hidden);
      gs.push(g);
      logG = g.map(Math.log);
    }
    const attn = refAttention(q, k, v, logG, { T, numHeads: Hq, numKvHeads: Hkv, headDim: d, window: gate?.window ?? T, scale: 1 / Math.sqrt(d) });
    const o = refMatmul(attn, lw.wo, null, T, H, Hq * d);
    x = x.map((val, i) => val + o[i]!);
    const xb2 = refRmsNorm(x, lw.postAttentionNorm, T, H, c.rmsNormEps);
    const h = refSiluMul(refMatmul(xb2, lw.wGate, null, T, I, H), refMatmul(xb2, lw.wUp, null, T, I, H));
    const down = refMatmul(h, lw.wDown, null, T, H, I);
    x = x.map((val, i) => val + down[i]!);
  });
  return { y: refRmsNorm(x, host.finalNorm, T, H, c.rmsNormEps), g: gs };
}

/** The training loss of one sample: MSE(student, target) + lambda * mean sparsity term. */
export function refLoss(c: ModelConfig, host: HostModel, ids: readonly number[], gate: RefGate, target: ArrayLike<number>, lambda: number): number {
  const { y, g } = refForward(c, host, ids, gate);
  let mse = 0;
  for (let i = 0; i < y.length; i++) mse += (y[i]! - target[i]!) ** 2;
  mse /= y.length;
  const T = ids.length;
  const sparsity = g.reduce((s, gl) => s + refSparsitySum(gl, T, c.numKvHeads, gate.window), 0) / (c.numLayers * c.numKvHeads * T);
  return mse + lambda * sparsity;
}
