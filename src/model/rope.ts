/**
 * @module model/rope
 *
 * RoPE inverse frequencies, including Llama 3.1 frequency scaling, computed in
 * f32 the way transformers computes them so rotated keys match bit for bit
 * as far as f32 allows.
 */
import type { RopeTable } from "../backends/backend.js";
import type { ModelConfig } from "./config.js";

const f = Math.fround;

/**
 * Precision of the stored inverse frequencies. transformers computes them in
 * f32, but a model cast with `.to(torch.bfloat16)` rounds the buffer to bf16
 * and a later `.float()` cannot restore it; "bf16" reproduces such a model.
 */
export type RopeFrequencyDType = "f32" | "bf16";

export function createRopeTable(config: ModelConfig, freqDType: RopeFrequencyDType = "f32"): RopeTable {
  const half = config.headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    invFreq[i] = f(1 / f(config.ropeTheta ** f((2 * i) / config.headDim)));
  }
  const scaling = config.ropeScaling;
  if (scaling.type === "linear") {
    for (let i = 0; i < half; i++) invFreq[i] = f(invFreq[i] / scaling.factor);
  } else if (scaling.type === "llama3") {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
    const lowFreqWavelen = originalMaxPositions / lowFreqFactor;
    const highFreqWavelen = originalMaxPositions / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const freq = invFreq[i];
      const wavelen = (2 * Math.PI) / freq;
      if (wavelen < highFreqWavelen) continue; // high frequencies are kept
      if (wavelen > lowFreqWavelen) {
        invFreq[i] = f(freq / factor); // low frequencies are stretched
      } else {
        // the band between is interpolated smoothly
        const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        invFreq[i] = f((1 - smooth) * (freq / factor) + smooth * freq);
      }
    }
  }
  if (freqDType === "bf16") roundToBf16(invFreq);
  return { invFreq };
}

/** Rounds f32 values to the nearest bf16 (ties to even), in place. */
export function roundToBf16(values: Float32Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
}
