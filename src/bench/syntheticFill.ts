/**
 * @module bench/syntheticFill
 *
 * A long context for decode benchmarks without computing its prefill: the
 * engine runs the prompt as usual (its scheduler, planner, page pool and
 * device tables, step by step), but the backend skips the ops that compute
 * activations (matmuls, norms, RoPE, attention, sampling...) and runs only
 * the cache's own ops: table updates, admission by the sequence's policy,
 * promotions and KV writes. The cache so ends as a real prefill leaves it,
 * page for page and at the policy's admission rate (policies that decide
 * from data, the gate and SnapKV, have no data to decide from, and are
 * refused); the pages hold whatever k and v held (no model values), which
 * decode's cost does not depend on. Decode after the fill runs every op.
 */
import type { Backend } from "../backends/backend.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import { InvalidInputError } from "../errors.js";

/** Ops that compute activations: skipped while filling. */
const COMPUTE_OPS = ["embed", "rmsNorm", "matmul", "rope", "siluMul", "add", "copyRows", "gatherRows", "pagedAttention", "gateScores", "questSelect", "storeObservations", "snapKvScores", "sample"] as const;

/** Refuses policies whose cache depends on the data (nothing is computed while filling). */
export function checkSyntheticFill(policy: KvPolicy): void {
  if (policy.admission.kind === "gate") throw new InvalidInputError("--synthetic-fill: the gate admits by scores computed from the prompt; use full, local, sinks:N or random:RATE");
  if (policy.eviction.kind !== "none") throw new InvalidInputError("--synthetic-fill: SnapKV evicts by attention computed from the prompt; use no eviction");
}

/**
 * Skips the backend's compute ops until the returned function is called
 * (then every op runs again). The ops are shadowed on the instance, so the
 * engine, which holds the same object, sees the change.
 */
export function skipCompute(backend: Backend): () => void {
  const target = backend as unknown as Record<string, unknown>;
  for (const op of COMPUTE_OPS) target[op] = () => {};
  return () => {
    for (const op of COMPUTE_OPS) delete target[op];
  };
}
