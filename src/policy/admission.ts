/**
 * @module policy/admission
 *
 * Admission: at write time, does token t's K/V enter the global cache of a
 * (layer, KV head)? WG-KV's learned gate and the baselines of DESIGN.md §1.
 * Every policy decides from the token's position (and the gate's score) only,
 * so a prompt prefilled whole or in pieces gets the same decisions.
 */

export interface AdmissionRequest {
  readonly layer: number;
  readonly numKvHeads: number;
  /** Tokens in this chunk. */
  readonly numTokens: number;
  /** Position of the chunk's first token. */
  readonly startPos: number;
  /** Gate scores g, f32 [numKvHeads, numTokens]; present when the policy needs them. */
  readonly gateScores: Float32Array | null;
}

export interface AdmissionPolicy {
  /** Canonical spec string, e.g. "sinks:4". */
  readonly name: string;
  /** True when the caller must compute the write gate's scores first. */
  readonly needsGateScores: boolean;
  /** Writes flags [numKvHeads, numTokens]: 1 = admitted to the global cache. */
  decide(request: AdmissionRequest, flags: Uint8Array): void;
}

/** Admit everything: full attention. */
export const admitAll: AdmissionPolicy = {
  name: "full",
  needsGateScores: false,
  decide: (r, flags) => flags.fill(1, 0, r.numKvHeads * r.numTokens),
};

/** Admit nothing: attention to the local window only. */
export const localOnly: AdmissionPolicy = {
  name: "local",
  needsGateScores: false,
  decide: (r, flags) => flags.fill(0, 0, r.numKvHeads * r.numTokens),
};

/** StreamingLLM: the first `numSinks` tokens stay forever, then the local window. */
export function sinksAndLocal(numSinks: number): AdmissionPolicy {
  return {
    name: `sinks:${numSinks}`,
    needsGateScores: false,
    decide(r, flags) {
      for (let h = 0; h < r.numKvHeads; h++) {
        for (let t = 0; t < r.numTokens; t++) flags[h * r.numTokens + t] = r.startPos + t < numSinks ? 1 : 0;
      }
    },
  };
}

/**
 * Admits each (layer, head, position) with probability `rate`, decided by a
 * hash of the three and the seed, so decisions do not depend on chunking.
 */
export function randomAdmission(rate: number, seed = 0): AdmissionPolicy {
  const threshold = Math.floor(rate * 2 ** 32);
  return {
    name: `random:${rate}`,
    needsGateScores: false,
    decide(r, flags) {
      for (let h = 0; h < r.numKvHeads; h++) {
        for (let t = 0; t < r.numTokens; t++) {
          flags[h * r.numTokens + t] = hash32(seed, r.layer, h, r.startPos + t) < threshold ? 1 : 0;
        }
      }
    },
  };
}

/** WG-KV: admitted iff the write gate's score exceeds tau. */
export function gateAdmission(tau: number): AdmissionPolicy {
  return {
    name: "gate",
    needsGateScores: true,
    decide(r, flags) {
      const scores = r.gateScores;
      if (!scores) throw new Error("gate admission needs gate scores");
      const n = r.numKvHeads * r.numTokens;
      // NOTE: compared in f32, as torch compares an f32 tensor with a Python float:
      // a score equal to f32(tau) is not admitted (in f64 it would exceed 0.1).
      const threshold = Math.fround(tau);
      for (let i = 0; i < n; i++) flags[i] = scores[i] > threshold ? 1 : 0;
    },
  };
}

/** A well-mixed 32-bit hash of four integers (murmur3 finalizer over a combined key). */
export function hash32(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (b + 0x7f4a7c15) ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ (c + 0x165667b1) ^ (h >>> 13), 0x27d4eb2f);
  h = Math.imul(h ^ (d + 0x61c88647) ^ (h >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
