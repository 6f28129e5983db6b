/**
 * @module model/transformer
 *
 * The decoder-only transformer shared by Llama, Mistral, Qwen2 and Qwen3:
 * pre-norm attention with RoPE and grouped-query heads, then a SwiGLU MLP.
 * Reads top to bottom; every buffer is commented with its shape
 * (T = tokens in the chunk, H = hidden, I = intermediate, V = vocab,
 * Hq/Hkv = query/KV heads, d = head dim).
 */
import type { Backend, RopeTable, Tensor } from "../backends/backend.js";
import type { SequenceKv } from "../kv/sequenceKv.js";
import type { ModelConfig } from "./config.js";
import { createRopeTable, type RopeFrequencyDType } from "./rope.js";
import type { ModelWeights } from "./weights.js";

/** Activations, allocated once for chunks of up to `maxTokens` tokens. */
interface RunState {
  readonly maxTokens: number;
  readonly x: Tensor; //       [T, H]       residual stream
  readonly xb: Tensor; //      [T, H]       normed input of a sub-block
  readonly q: Tensor; //       [T, Hq * d]
  readonly k: Tensor; //       [T, Hkv * d]
  readonly kPre: Tensor; //    [T, Hkv * d]  keys before RoPE, for the write gate
  readonly v: Tensor; //       [T, Hkv * d]
  readonly attn: Tensor; //    [T, Hq * d]  attention output before o_proj
  readonly proj: Tensor; //    [T, H]       output of o_proj / down_proj
  readonly gate: Tensor; //    [T, I]
  readonly up: Tensor; //      [T, I]
  readonly last: Tensor; //    [1, H]       one row picked for logits
  readonly logits: Tensor; //  [T, V]       or [1, V] when only the last row is needed
}

/** Which logits a forward call returns. */
export type LogitsMode = "last" | "all" | "none";

export class Transformer {
  readonly rope: RopeTable;
  #states = new Map<string, RunState>();
  /** Settles when the forward called last has finished. */
  #lastForward: Promise<unknown> = Promise.resolve();

  constructor(
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    readonly backend: Backend,
    ropeFreqDType: RopeFrequencyDType = "f32",
  ) {
    this.rope = createRopeTable(config, ropeFreqDType);
  }

  /**
   * Runs `ids` (at most kv.maxChunk of them) at positions kv.numTokens.. and
   * appends their K/V. Returns logits [1, V] for "last", [T, V] for "all".
   * Calls run one at a time, in call order: they share the activation
   * buffers, and a forward yields to the event loop between ops, so two
   * sequences generating at once take turns chunk by chunk.
   */
  forward(ids: Int32Array, kv: SequenceKv, mode: LogitsMode): Promise<Float32Array | null> {
    const run = this.#lastForward.then(() => this.#forward(ids, kv, mode));
    this.#lastForward = run.catch(() => undefined);
    return run;
  }

  async #forward(ids: Int32Array, kv: SequenceKv, mode: LogitsMode): Promise<Float32Array | null> {
    const T = ids.length;
    const { config: c, weights: w, backend: b } = this;
    const s = this.#state(T, mode === "all");
    const startPos = kv.numTokens;
    const needsPreRopeKeys = kv.settings.admission.needsGateScores;

    b.embed(s.x, w.embedTokens, ids);
    for (let l = 0; l < c.numLayers; l++) {
      const lw = w.layers[l];
      // ---- attention block
      b.rmsNorm(s.xb, s.x, lw.inputNorm, T, c.rmsNormEps);
      b.matmul(s.q, s.xb, lw.wq, lw.bq, T);
      b.matmul(s.k, s.xb, lw.wk, lw.bk, T);
      b.matmul(s.v, s.xb, lw.wv, lw.bv, T);
      if (lw.qNorm && lw.kNorm) {
        b.rmsNorm(s.q, s.q, lw.qNorm, T * c.numHeads, c.rmsNormEps);
        b.rmsNorm(s.k, s.k, lw.kNorm, T * c.numKvHeads, c.rmsNormEps);
      }
      if (needsPreRopeKeys) b.copyRows(s.kPre, s.k, T);
      b.rope(s.q, this.rope, T, c.numHeads, startPos);
      b.rope(s.k, this.rope, T, c.numKvHeads, startPos);
      await kv.attend(l, s.attn, s.q, s.k, s.v, needsPreRopeKeys ? s.kPre : null, T, startPos);
      b.matmul(s.proj, s.attn, lw.wo, lw.bo, T);
      b.addInPlace(s.x, s.proj, T);
      // ---- MLP block
      b.rmsNorm(s.xb, s.x, lw.postAttentionNorm, T, c.rmsNormEps);
      b.matmul(s.gate, s.xb, lw.wGate, lw.bGate, T);
      b.matmul(s.up, s.xb, lw.wUp, lw.bUp, T);
      b.siluMul(s.gate, s.gate, s.up, T);
      b.matmul(s.proj, s.gate, lw.wDown, lw.bDown, T);
      b.addInPlace(s.x, s.proj, T);
    }
    await kv.endChunk();

    if (mode === "none") return null;
    if (mode === "all") {
      b.rmsNorm(s.xb, s.x, w.finalNorm, T, c.rmsNormEps);
      b.matmul(s.logits, s.xb, w.lmHead, null, T);
      return b.read(s.logits, T * c.vocabSize);
    }
    b.copyRow(s.last, s.x, T - 1);
    b.rmsNorm(s.last, s.last, w.finalNorm, 1, c.rmsNormEps);
    b.matmul(s.logits, s.last, w.lmHead, null, 1);
    return b.read(s.logits, c.vocabSize);
  }

  /** Run state for chunks of `numTokens`, reusing the smallest one that fits. */
  #state(numTokens: number, allLogits: boolean): RunState {
    const maxTokens = numTokens <= 1 ? 1 : Math.max(64, 2 ** Math.ceil(Math.log2(numTokens)));
    const key = `${maxTokens}:${allLogits}`;
    let s = this.#states.get(key);
    if (!s) {
      const { hiddenSize: H, intermediateSize: I, vocabSize: V, numHeads, numKvHeads, headDim: d } = this.config;
      const t = (...shape: number[]) => this.backend.createTensor(shape);
      s = {
        maxTokens,
        x: t(maxTokens, H),
        xb: t(maxTokens, H),
        q: t(maxTokens, numHeads * d),
        k: t(maxTokens, numKvHeads * d),
        kPre: t(maxTokens, numKvHeads * d),
        v: t(maxTokens, numKvHeads * d),
        attn: t(maxTokens, numHeads * d),
        proj: t(maxTokens, H),
        gate: t(maxTokens, I),
        up: t(maxTokens, I),
        last: t(1, H),
        logits: t(allLogits ? maxTokens : 1, V),
      };
      this.#states.set(key, s);
    }
    return s;
  }
}
