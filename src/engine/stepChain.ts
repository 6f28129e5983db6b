/**
 * @module engine/stepChain
 *
 * The next decode step, recorded while the current one runs (docs/design.md
 * §2): on a backend whose read queues its copies when it is called
 * (`Backend.queuesReads`), the engine plans and records step N+1 before it
 * awaits step N's read, so the device goes from one step to the next without
 * waiting for the host to apply N and record N+1. Step N+1's input ids are
 * N's sampled ids, copied on the device; its plan needs nothing else from
 * N's read (positions, slots and pages follow from the counts; promotions
 * from flags learned steps before, headCache.ts).
 *
 * Only a plain decode step chains: every sequence of the step fed one token
 * and sampled one, in row order, with room for another token, no logits or
 * gate scores returned, no SnapKV or Quest, nobody waiting to be admitted, and
 * pages for every sequence's next token. What N's read then ends (EOS, a stop
 * string, an abort) drops N+1's token for that sequence: its cache is
 * released, and the device's later writes to its pages come before any
 * later step's (one queue).
 */
import type { Backend } from "../backends/backend.js";
import type { BlockPool } from "../kvcache/blockPool.js";
import type { StepEntry, StepPlan } from "../kvcache/stepPlan.js";
import type { StepResult } from "./modelRunner.js";
import type { Sequence } from "./sequence.js";

/** A step recorded on the device whose read the engine has not applied yet. */
export interface InFlight {
  readonly plan: StepPlan;
  readonly seqs: readonly Sequence[]; // [entries] in plan order
  readonly result: Promise<StepResult>;
}

/** Whether the step after `step` can be recorded before its read (the module's rules). */
export function chainsNext(backend: Backend, step: InFlight, running: readonly Sequence[], numWaiting: number, pool: BlockPool): boolean {
  if (!backend.queuesReads || numWaiting > 0 || running.length !== step.seqs.length) return false;
  const { plan } = step;
  let numPages = 0;
  for (let i = 0; i < plan.entries.length; i++) {
    const entry = plan.entries[i], out = plan.outputs[i], seq = step.seqs[i];
    const p = entry.policy;
    const plain = out.numRows === 1 && out.rowStart === i && out.sampleIndex === i && entry.sample !== null && entry.logitsFrom === null && out.snapHeads.length === 0;
    if (!plain || p.eviction.kind !== "none" || p.selection.kind !== "all" || seq.options.traceGateScores) return false;
    // NOTE: N samples a token and N+1 another: both within maxNewTokens
    if (seq.status !== "running" || seq.abortRequested || !running.includes(seq) || seq.numGenerated + 2 > seq.options.maxNewTokens || seq.pendingDrops.length > 0) return false;
    if (!seq.cache || !seq.cache.canAppendBeforeFlags(1)) return false;
    numPages += seq.cache.numPagesNeeded(1);
  }
  return numPages <= pool.numFreePages;
}

/** The entries of the step after `step`: one token each, whose id the device copies from `step`'s sampled ids. */
export function chainedEntries(step: InFlight): StepEntry[] {
  return step.seqs.map((seq) => {
    const s = seq.options.sampling;
    return {
      cache: seq.cache!,
      slot: seq.slot,
      policy: seq.options.policy,
      // NOTE: a placeholder: the runner copies the id sampled by `step` over it on the device
      ids: [0],
      sample: { temperature: s.temperature, topK: s.topK, topP: s.topP, minP: s.minP, u: s.temperature > 0 ? seq.random() : 0 },
      logitsFrom: null,
      drops: [],
    };
  });
}
