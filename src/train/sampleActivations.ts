/**
 * @module train/sampleActivations
 *
 * The buffers of one sample's training pass at length T: what each layer's
 * forward keeps for the backward (llm.c's activations, one set per layer),
 * and the scratch the passes share. Allocated once per length and reused
 * step after step. Shapes: T tokens, H hidden, I intermediate, Hq / Hkv
 * query / KV heads, G = Hq / Hkv, d head dim, E gate hidden units per KV head.
 */
import type { ModelConfig } from "../model/config.js";
import type { GateActivations, TBuf, TrainOps } from "./trainOps.js";

/** What the backward of one layer reads. */
export interface LayerActivations {
  readonly x: TBuf; //      [T, H]        the layer's input (residual stream)
  readonly qRaw: TBuf | null; // [T, Hq * d] q before its norm (Qwen3's q_norm), else null
  readonly kRaw: TBuf | null; // [T, Hkv * d] k before k_norm (Qwen3), else null
  readonly q: TBuf; //      [T, Hq * d]   after RoPE
  readonly kPre: TBuf; //   [T, Hkv * d]  before RoPE (the gate's k_pre)
  readonly k: TBuf; //      [T, Hkv * d]  after RoPE (the gate's k_post)
  readonly v: TBuf; //      [T, Hkv * d]
  readonly attn: TBuf; //   [T, Hq * d]   attention output, before o_proj
  readonly lse: TBuf; //    [Hkv, T, G]   attention's log-normalizers
  readonly gate: GateActivations; //      x [Hkv, T, 2d], a [Hkv, T, E], g, logG [Hkv, T]
  readonly xMid: TBuf; //   [T, H]        residual after attention (the MLP's input)
  readonly mlpGate: TBuf; // [T, I]       gate_proj output
  readonly mlpUp: TBuf; //  [T, I]        up_proj output
}

/** Scratch shared by the forward and backward passes. */
export interface PassScratch {
  readonly x: TBuf; //      [T, H]   the residual stream
  readonly xb: TBuf; //     [T, H]   a normed sub-block input / its gradient
  readonly proj: TBuf; //   [T, H]   o_proj / down_proj output
  readonly h: TBuf; //      [T, I]   silu(gate) * up / its gradient
  readonly y: TBuf; //      [T, H]   the final normed hidden state
  readonly dx: TBuf; //     [T, H]   gradient of the residual stream
  readonly dGate: TBuf; //  [T, I]
  readonly dUp: TBuf; //    [T, I]
  readonly dq: TBuf; //     [T, Hq * d]
  readonly dk: TBuf; //     [T, Hkv * d]
  readonly dv: TBuf; //     [T, Hkv * d]
  readonly dAttn: TBuf; //  [T, Hq * d]
  readonly dKPre: TBuf; //  [T, Hkv * d]
  readonly dNorm: TBuf; //  [T, Hq * d]  a q/k norm's input gradient (Qwen3)
  readonly dLogG: TBuf; //  [Hkv, T]
  readonly stats: TBuf; //  [4]      mse, sparsity sum, admitted count, -
  readonly angles: TBuf; // [T, 2, d/2]  RoPE cos/sin
  readonly anglesInv: TBuf; // [T, 2, d/2] the inverse rotation (RoPE's backward)
}

export interface SampleActivations {
  readonly T: number;
  readonly layers: readonly LayerActivations[];
  readonly scratch: PassScratch;
  /** Frees every buffer. */
  dispose(): void;
}

/** Stats slots. */
export const STAT_MSE = 0;
export const STAT_SPARSITY = 1;
export const STAT_ADMITTED = 2;

export function createSampleActivations(ops: TrainOps, c: ModelConfig, T: number, gateHidden: number, ropeAngles: (inverse: boolean) => TBuf): SampleActivations {
  const { hiddenSize: H, intermediateSize: I, numHeads: Hq, numKvHeads: Hkv, headDim: d } = c;
  const E = gateHidden;
  const all: TBuf[] = [];
  const t = (label: string, ...shape: number[]) => {
    const b = ops.alloc(shape.reduce((a, n) => a * n, 1), label);
    all.push(b);
    return b;
  };
  const layers: LayerActivations[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `layer ${l} `;
    layers.push({
      x: t(p + "x", T, H),
      qRaw: c.qkNorm ? t(p + "qRaw", T, Hq * d) : null,
      kRaw: c.qkNorm ? t(p + "kRaw", T, Hkv * d) : null,
      q: t(p + "q", T, Hq * d),
      kPre: t(p + "kPre", T, Hkv * d),
      k: t(p + "k", T, Hkv * d),
      v: t(p + "v", T, Hkv * d),
      attn: t(p + "attn", T, Hq * d),
      lse: t(p + "lse", T, Hq),
      gate: { x: t(p + "gate x", Hkv, T, 2 * d), a: t(p + "gate a", Hkv, T, E), g: t(p + "g", Hkv, T), logG: t(p + "logG", Hkv, T) },
      xMid: t(p + "xMid", T, H),
      mlpGate: t(p + "mlpGate", T, I),
      mlpUp: t(p + "mlpUp", T, I),
    });
  }
  const angles = ropeAngles(false), anglesInv = ropeAngles(true);
  all.push(angles, anglesInv);
  const scratch: PassScratch = {
    x: t("x", T, H), xb: t("xb", T, H), proj: t("proj", T, H), h: t("h", T, I), y: t("y", T, H), dx: t("dx", T, H),
    dGate: t("dGate", T, I), dUp: t("dUp", T, I), dq: t("dq", T, Hq * d), dk: t("dk", T, Hkv * d), dv: t("dv", T, Hkv * d),
    dAttn: t("dAttn", T, Hq * d), dKPre: t("dKPre", T, Hkv * d), dNorm: t("dNorm", T, Hq * d), dLogG: t("dLogG", Hkv, T),
    stats: t("stats", 4), angles, anglesInv,
  };
  return { T, layers, scratch, dispose: () => all.forEach((b) => ops.free(b)) };
}
