/**
 * @module kvcache/admission
 *
 * Admission: at write time, does token t's K/V enter the global cache of a
 * (layer, KV head)? WG-KV's learned gate and the baselines of docs/design.md §3.
 * A policy is a description the device decides by (backends' `admit` op, the
 * step's sequence fields of stepLayout.ts); every policy decides from the
 * token's position (and the gate's score) only, so a prompt prefilled whole or
 * in pieces gets the same decisions.
 */
import { ADMIT_FULL, ADMIT_GATE, ADMIT_LOCAL, ADMIT_RANDOM, ADMIT_SINKS, bitsOfF32, randomAdmissionThreshold } from "../backends/stepLayout.js";

export type AdmissionKind = "full" | "local" | "sinks" | "random" | "gate";

export interface AdmissionPolicy {
  /** Canonical spec string, e.g. "sinks:4". */
  readonly name: string;
  readonly kind: AdmissionKind;
  /** sinks: tokens kept forever. */
  readonly numSinks?: number;
  /** random: the admitted share, and the hash seed. */
  readonly rate?: number;
  readonly seed?: number;
  /** gate: admitted iff g > tau. */
  readonly tau?: number;
}

/** Admit everything: full attention. */
export const admitAll: AdmissionPolicy = Object.freeze({ name: "full", kind: "full" });

/** Admit nothing: attention to the local window only. */
export const localOnly: AdmissionPolicy = Object.freeze({ name: "local", kind: "local" });

/** StreamingLLM: the first `numSinks` tokens stay forever, then the local window. */
export function sinksAndLocal(numSinks: number): AdmissionPolicy {
  return Object.freeze({ name: `sinks:${numSinks}`, kind: "sinks", numSinks });
}

/** Admits each (layer, head, position) with probability `rate`, by a hash of the three and the seed. */
export function randomAdmission(rate: number, seed = 0): AdmissionPolicy {
  return Object.freeze({ name: `random:${rate}`, kind: "random", rate, seed });
}

/** WG-KV: admitted iff the write gate's score exceeds tau. */
export function gateAdmission(tau: number): AdmissionPolicy {
  return Object.freeze({ name: "gate", kind: "gate", tau });
}

/** The policy as the step's sequence fields SEQ_ADMISSION, SEQ_ADMISSION_ARG, SEQ_ADMISSION_SEED. */
export function admissionFields(p: AdmissionPolicy): { kind: number; arg: number; seed: number } {
  switch (p.kind) {
    case "full":
      return { kind: ADMIT_FULL, arg: 0, seed: 0 };
    case "local":
      return { kind: ADMIT_LOCAL, arg: 0, seed: 0 };
    case "sinks":
      return { kind: ADMIT_SINKS, arg: p.numSinks!, seed: 0 };
    case "random":
      // NOTE: a threshold of 2^32 does not fit u32; at rate 1 every hash passes, which is full admission
      if (p.rate! >= 1) return { kind: ADMIT_FULL, arg: 0, seed: 0 };
      return { kind: ADMIT_RANDOM, arg: randomAdmissionThreshold(p.rate!) | 0, seed: p.seed ?? 0 };
    case "gate":
      return { kind: ADMIT_GATE, arg: bitsOfF32(p.tau!), seed: 0 };
  }
}
