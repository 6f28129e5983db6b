/**
 * @module kvcache/kvPolicy
 *
 * How one sequence's KV cache behaves: its local window and the three
 * policies (admission, selection, eviction), validated once. Sequences of one
 * batch may each have their own.
 */
import type { GateHandle } from "../backends/backend.js";
import { InvalidInputError } from "../errors.js";
import { admitAll, type AdmissionPolicy } from "./admission.js";
import { validateWindow } from "./blockTable.js";
import { noEviction, type EvictionPolicy } from "./eviction.js";
import { selectAll, type SelectionPolicy } from "./selection.js";

export interface KvPolicy {
  /** Local window W in tokens: a multiple of 16 (default 256). */
  readonly window: number;
  readonly admission: AdmissionPolicy;
  readonly selection: SelectionPolicy;
  readonly eviction: EvictionPolicy;
  /** The write gate on the backend, when admission uses it. */
  readonly gate: GateHandle | null;
}

export const DEFAULT_WINDOW = 256;

/** Fills defaults (full attention, W = 256) and checks the combination. */
export function resolveKvPolicy(partial: Partial<KvPolicy> = {}): KvPolicy {
  const policy: KvPolicy = {
    window: partial.window ?? DEFAULT_WINDOW,
    admission: partial.admission ?? admitAll,
    selection: partial.selection ?? selectAll,
    eviction: partial.eviction ?? noEviction,
    gate: partial.gate ?? null,
  };
  validateWindow(policy.window);
  if (policy.admission.kind === "gate" && !policy.gate) throw new InvalidInputError("gate admission needs a gate (pass --gate FILE, or kv.gate)");
  return Object.freeze(policy);
}

/**
 * Most tokens one engine step may feed a sequence: any number when the
 * policy takes long steps, else W (each new token then lands in the ring).
 */
export function maxStepTokens(p: KvPolicy): number {
  return takesLongSteps(p) ? Infinity : p.window;
}

/**
 * Whether steps may be longer than W: whenever nothing is selected or
 * evicted, whatever the admission. The tokens that leave the window within
 * the step go to global slots as if admitted, and those their flags reject
 * are dropped before the next step (kvcache/headCache.ts); the attention
 * reads the chunk's older keys by their flags. Quest and SnapKV keep W:
 * their page bounds and scores follow promotions only.
 */
export function takesLongSteps(p: KvPolicy): boolean {
  return p.selection.kind === "all" && p.eviction.kind === "none";
}

/** "admission/selection/eviction/wW", for reports. */
export function describeKvPolicy(p: KvPolicy): string {
  return [p.admission.name, p.selection.name, p.eviction.name, `w${p.window}`].join("/");
}
