/**
 * @module engine/modelRunner
 *
 * Runs a planned step: uploads the plan (once), queues the forward, and reads
 * back in one round trip what the host needs: the sampled ids, the admission
 * flags of the new tokens (for later steps' plans), and, when asked for,
 * logits, gate scores and SnapKV scores.
 */
import type { Backend, HostArray } from "../backends/backend.js";
import type { KvManager } from "../kvcache/kvManager.js";
import type { StepPlan } from "../kvcache/stepPlan.js";
import { createActivations, destroyActivations, forwardStep, type Activations, type ModelParts } from "../model/forward.js";
import { StepInputs, type StepLimits } from "./stepInputs.js";

/** What a step returns to the host. */
export interface StepResult {
  /** [n] sampled ids in plan order (-1: the row's logits held a NaN). */
  readonly sampled: Int32Array;
  /** [L, Hkv, T] admission of every new token. */
  readonly flags: Uint8Array;
  /** [R, V] logits of the plan's logit rows, when some entry asked for them. */
  readonly logits: Float32Array | null;
  /** [L, Hkv, T] write-gate scores, when traced. */
  readonly gateScores: Float32Array | null;
  /** SnapKV scores of the heads the plan named. */
  readonly snapScores: Float32Array | null;
}

export class ModelRunner {
  readonly #inputs: StepInputs;
  readonly #activations: Activations;

  constructor(
    readonly backend: Backend,
    readonly model: ModelParts,
    readonly kv: KvManager,
    readonly limits: StepLimits,
  ) {
    this.#inputs = new StepInputs(backend, model.dims, kv.tables, limits);
    this.#activations = createActivations(backend, model.config, limits.maxRows, limits.maxLogitRows);
  }

  /**
   * Records the step and its read (on a backend that queues reads, before the promise returns: stepChain.ts).
   * idsFromSampled: the first rows' ids are the previous step's first sampled ids, copied on the device (a chained step).
   */
  async run(plan: StepPlan, traceGateScores = false, idsFromSampled = 0): Promise<StepResult> {
    const b = this.backend;
    const { tensors, counts } = this.#inputs.upload(plan);
    if (idsFromSampled > 0) b.copyRows(tensors.ids, tensors.sampled, idsFromSampled);
    forwardStep(b, this.model, this.kv.storage, this.#activations, tensors, counts);
    const { numLayers: L, numKvHeads: H } = this.model.dims;
    const numFlags = L * H * plan.numRows;
    const returnsLogits = plan.entries.some((e) => e.logitsFrom !== null) && counts.numLogitRows > 0;
    const traced = traceGateScores && counts.gateRuns.length > 0;
    const reads = [
      { tensor: tensors.sampled, numElements: counts.numSamples },
      { tensor: tensors.flags, numElements: numFlags },
      ...(returnsLogits ? [{ tensor: this.#activations.logits, numElements: counts.numLogitRows * this.model.config.vocabSize }] : []),
      ...(traced ? [{ tensor: tensors.gateScores, numElements: numFlags }] : []),
      ...(plan.numSnapScores > 0 ? [{ tensor: tensors.snapScores, numElements: plan.numSnapScores }] : []),
    ];
    const out: HostArray[] = await b.read(reads);
    let at = 2;
    return {
      sampled: out[0] as Int32Array,
      flags: out[1] as Uint8Array,
      logits: returnsLogits ? (out[at++] as Float32Array) : null,
      gateScores: traced ? (out[at++] as Float32Array) : null,
      snapScores: plan.numSnapScores > 0 ? (out[at++] as Float32Array) : null,
    };
  }

  dispose(): void {
    this.#inputs.destroy();
    destroyActivations(this.backend, this.#activations);
  }
}
