/**
 * @module train/samplePass
 *
 * One sample's pass through the frozen model on a {@link TrainOps} device,
 * written top to bottom as llama2.c writes its forward: the full-attention
 * teacher (forward only), the student with the soft write gate (forward,
 * keeping each layer's activations), and the student's backward down to the
 * gate's parameters (docs/design.md §8):
 *
 *   loss = MSE(student final hidden, teacher final hidden)         (after the final norm)
 *        + lambda * mean_{l,h,s} [o_s + (1 - o_s)(1 - (g - 1)^2)],  o_s = min(1, W / (T - s))
 *
 * The backbone is frozen: only input gradients flow through it, but they flow
 * all the way down, since a layer's gate reads keys that every gate below has
 * shaped (through attention, and through its own key inputs).
 */
import type { TBuf, TrainOps } from "./trainOps.js";
import type { GateParamLayout } from "./gateParams.js";
import { STAT_ADMITTED, STAT_MSE, STAT_SPARSITY, type SampleActivations } from "./sampleActivations.js";
import { matrix, vector, type TrainModel } from "./trainModel.js";

/** The gate being trained, on the device. */
export interface DeviceGate {
  readonly layout: GateParamLayout;
  readonly params: TBuf; //  [numParams]
  readonly dParams: TBuf; // [numParams] gradients accumulate here
}

export interface SampleSettings {
  /** Local window W. */
  readonly window: number;
  /** Sparsity weight lambda. */
  readonly lambda: number;
  /** Admission threshold for the admitted count. */
  readonly tau: number;
}

/**
 * The final hidden state after the final norm into `acts.scratch.y` [T, H]:
 * the teacher with `gate` null (full attention), else the student (its
 * activations kept for {@link backward}).
 */
export function forward(ops: TrainOps, m: TrainModel, acts: SampleActivations, ids: Int32Array, gate: DeviceGate | null, window: number): void {
  const c = m.config, w = m.weights, s = acts.scratch, T = acts.T;
  if (ids.length !== T) throw new RangeError(`forward: ${ids.length} ids for activations of length ${T}`);
  const { hiddenSize: H, numHeads: Hq, numKvHeads: Hkv, headDim: d } = c;
  const eps = c.rmsNormEps;
  const attnDims = { T, numHeads: Hq, numKvHeads: Hkv, headDim: d, window, scale: 1 / Math.sqrt(d) };
  const gateDims = gate ? { T, numKvHeads: Hkv, headDim: d, hidden: gate.layout.shape.hidden } : null;

  ops.embed(s.x, matrix(w.embedTokens), ids);
  for (let l = 0; l < c.numLayers; l++) {
    const lw = w.layers[l]!, a = acts.layers[l]!;
    ops.copy(a.x, s.x, T * H);
    // ---- attention block
    ops.rmsNorm(s.xb, s.x, vector(lw.inputNorm)!, T, H, eps);
    ops.matmul(a.q, s.xb, matrix(lw.wq), vector(lw.bq), T);
    ops.matmul(a.kPre, s.xb, matrix(lw.wk), vector(lw.bk), T);
    ops.matmul(a.v, s.xb, matrix(lw.wv), vector(lw.bv), T);
    if (a.qRaw && a.kRaw) {
      ops.copy(a.qRaw, a.q, T * Hq * d);
      ops.copy(a.kRaw, a.kPre, T * Hkv * d);
      ops.rmsNorm(a.q, a.q, vector(lw.qNorm)!, T * Hq, d, eps);
      ops.rmsNorm(a.kPre, a.kPre, vector(lw.kNorm)!, T * Hkv, d, eps);
    }
    ops.copy(a.k, a.kPre, T * Hkv * d);
    ops.rope(a.q, s.angles, T, Hq, d);
    ops.rope(a.k, s.angles, T, Hkv, d);
    if (gate) ops.gate(a.gate, a.kPre, a.k, gate.params, gate.layout.layers[l]!, gateDims!);
    ops.attention(a.attn, a.lse, a.q, a.k, a.v, gate ? a.gate.logG : null, attnDims);
    ops.matmul(s.proj, a.attn, matrix(lw.wo), vector(lw.bo), T);
    ops.add(s.x, s.proj, T * H);
    ops.copy(a.xMid, s.x, T * H);
    // ---- MLP block
    ops.rmsNorm(s.xb, s.x, vector(lw.postAttentionNorm)!, T, H, eps);
    ops.matmul(a.mlpGate, s.xb, matrix(lw.wGate), vector(lw.bGate), T);
    ops.matmul(a.mlpUp, s.xb, matrix(lw.wUp), vector(lw.bUp), T);
    ops.siluMul(s.h, a.mlpGate, a.mlpUp, T * c.intermediateSize);
    ops.matmul(s.proj, s.h, matrix(lw.wDown), vector(lw.bDown), T);
    ops.add(s.x, s.proj, T * H);
  }
  ops.rmsNorm(s.y, s.x, vector(w.finalNorm)!, T, H, eps);
}

/**
 * The student's backward after {@link forward} with `gate`: adds the
 * gradient of this sample's loss, times `scale`, to gate.dParams. Writes the
 * sample's MSE, sparsity sum (over l, h, s) and admitted count to
 * acts.scratch.stats. `target` [T, H]: the teacher's final hidden state.
 */
export function backward(ops: TrainOps, m: TrainModel, acts: SampleActivations, target: TBuf, gate: DeviceGate, settings: SampleSettings, scale = 1): void {
  const c = m.config, w = m.weights, s = acts.scratch, T = acts.T;
  const { hiddenSize: H, intermediateSize: I, numHeads: Hq, numKvHeads: Hkv, headDim: d, numLayers: L } = c;
  const eps = c.rmsNormEps;
  const attnDims = { T, numHeads: Hq, numKvHeads: Hkv, headDim: d, window: settings.window, scale: 1 / Math.sqrt(d) };
  const gateDims = { T, numKvHeads: Hkv, headDim: d, hidden: gate.layout.shape.hidden };
  // d(lambda * mean over L * Hkv * T terms)/d(term), times the sample's share of the batch
  const sparsityWeight = (scale * settings.lambda) / (L * Hkv * T);

  ops.fill(s.stats, 0);
  // ---- loss at the final norm: s.x still holds the last residual stream
  ops.mse(s.y, s.y, target, T * H, scale, s.stats, STAT_MSE);
  ops.rmsNormBackward(s.dx, s.y, s.x, vector(w.finalNorm)!, T, H, eps, false, null);

  for (let l = L - 1; l >= 0; l--) {
    const lw = w.layers[l]!, a = acts.layers[l]!;
    // ---- MLP block: x += down(silu(gate(xb)) * up(xb)), xb = norm(xMid)
    ops.matmulInputGrad(s.h, s.dx, matrix(lw.wDown), T, false);
    ops.siluMulBackward(s.dGate, s.dUp, s.h, a.mlpGate, a.mlpUp, T * I);
    ops.matmulInputGrad(s.xb, s.dGate, matrix(lw.wGate), T, false);
    ops.matmulInputGrad(s.xb, s.dUp, matrix(lw.wUp), T, true);
    ops.rmsNormBackward(s.dx, s.xb, a.xMid, vector(lw.postAttentionNorm)!, T, H, eps, true, null);
    // ---- attention block: x += o(attention(rope(q), rope(k), v; gate(kPre, rope(k))))
    ops.matmulInputGrad(s.dAttn, s.dx, matrix(lw.wo), T, false);
    ops.attentionBackward(s.dq, s.dk, s.dv, s.dLogG, s.dAttn, a.q, a.k, a.v, a.attn, a.lse, a.gate.logG, attnDims);
    ops.sparsity(s.dLogG, a.gate.g, T, Hkv, settings.window, sparsityWeight, s.stats, STAT_SPARSITY);
    ops.countAbove(a.gate.g, Hkv * T, settings.tau, s.stats, STAT_ADMITTED);
    ops.fill(s.dKPre, 0);
    // the gate reads k after RoPE too: its key gradient joins attention's before RoPE is undone
    ops.gateBackward(s.dKPre, s.dk, gate.dParams, s.dLogG, a.gate, a.kPre, a.k, gate.params, gate.layout.layers[l]!, gateDims);
    ops.rope(s.dq, s.anglesInv, T, Hq, d);
    ops.rope(s.dk, s.anglesInv, T, Hkv, d);
    ops.add(s.dk, s.dKPre, T * Hkv * d);
    if (a.qRaw && a.kRaw) {
      ops.rmsNormBackward(s.dNorm, s.dq, a.qRaw, vector(lw.qNorm)!, T * Hq, d, eps, false, null);
      ops.copy(s.dq, s.dNorm, T * Hq * d);
      ops.rmsNormBackward(s.dNorm, s.dk, a.kRaw, vector(lw.kNorm)!, T * Hkv, d, eps, false, null);
      ops.copy(s.dk, s.dNorm, T * Hkv * d);
    }
    ops.matmulInputGrad(s.xb, s.dq, matrix(lw.wq), T, false);
    ops.matmulInputGrad(s.xb, s.dk, matrix(lw.wk), T, true);
    ops.matmulInputGrad(s.xb, s.dv, matrix(lw.wv), T, true);
    ops.rmsNormBackward(s.dx, s.xb, a.x, vector(lw.inputNorm)!, T, H, eps, true, null);
  }
}
