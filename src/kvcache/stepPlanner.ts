/**
 * @module kvcache/stepPlanner
 *
 * Plans one engine step on the host before any kernel runs (docs/design.md
 * §2): for every sequence the scheduler chose, and every layer, where its new
 * tokens go (slot mapping), what leaves the window for a global page
 * (promotions), which block table entries change, which pages' Quest bounds
 * to recompute, which heads SnapKV scores, and which rows are sampled. The
 * plan never waits for the new tokens' admission: they land in rings (a
 * long step, kvPolicy.ts takesLongSteps, puts its leaving tokens straight
 * into global slots as if admitted, and the next plan drops those their
 * flags rejected), and promotions follow flags learned in earlier steps. The
 * result is a set of flat arrays the model runner uploads once.
 *
 * Rows of the batch are the sequences' tokens back to back, sequences using
 * the same gate next to each other (so each gate scores one range of rows).
 */
import type { GateHandle } from "../backends/backend.js";
import {
  PAGE_SIZE, SAMPLE_FIELDS, SAMPLE_ROW, SAMPLE_TEMPERATURE, SAMPLE_TOP_K, SAMPLE_TOP_P, SAMPLE_UNIFORM, SAMPLE_MIN_P, SEQ_ADMISSION, SEQ_ADMISSION_ARG,
  SEQ_ADMISSION_SEED, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_OBSERVE, SEQ_QUEST_BUDGET, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW,
  SNAP_FIELDS, SNAP_HEAD, SNAP_LAYER, SNAP_NUM_GLOBAL, SNAP_NUM_OBS, SNAP_NUM_RING, SNAP_OFFSET, SNAP_SLOT, SNAP_WINDOW,
} from "../backends/stepLayout.js";
import { admissionFields } from "./admission.js";
import type { SlotCopies } from "./blockTable.js";
import type { SequenceCache } from "./sequenceCache.js";
import type { EntryOutputs, PlannerDims, StepEntry, StepPlan } from "./stepPlan.js";

/**
 * Commits the step to the entries' caches (evictions, then the append) and
 * returns its plan. The scheduler has checked the pool can hold it.
 */
export function planStep(entries: readonly StepEntry[], dims: PlannerDims): StepPlan {
  const { numLayers: L, numKvHeads: H } = dims;
  // sequences with one gate next to each other; the rest first, order otherwise kept
  const gateIds = new Map<GateHandle, number>();
  const gateRank = (e: StepEntry): number => {
    if (e.policy.admission.kind !== "gate" || !e.policy.gate) return -1;
    if (!gateIds.has(e.policy.gate)) gateIds.set(e.policy.gate, gateIds.size);
    return gateIds.get(e.policy.gate)!;
  };
  const order = entries.map((e, i) => ({ e, i, rank: gateRank(e) })).sort((a, b) => a.rank - b.rank || a.i - b.i).map((x) => x.e);
  const T = order.reduce((n, e) => n + e.ids.length, 0);
  const S = order.length;
  const ids = new Int32Array(T);
  const positions = new Int32Array(T);
  const seqFields = new Int32Array(S * SEQ_FIELDS);
  const numGlobal = new Int32Array(S * L * H);
  const slotMapping = new Int32Array(L * H * T);
  const evictionCopies: SlotCopies[] = [];
  const layerCopies: SlotCopies[][] = Array.from({ length: L }, () => []);
  const tableUpdates: number[] = [];
  const boundsBefore: number[] = [];
  const boundsAfter: number[] = [];
  const logitRows: number[] = [];
  const sampleParams: number[] = [];
  const snapRequests: number[] = [];
  const outputs: EntryOutputs[] = [];
  const gateRuns: { gate: GateHandle; row0: number; numRows: number }[] = [];
  let numSnapScores = 0;
  let usesQuest = false;
  let maxQuestPages = 0;
  let usesObservations = false;

  let row = 0;
  order.forEach((e, s) => {
    const { cache, policy } = e;
    const numNew = e.ids.length;
    const startPos = cache.numTokens;
    const W = policy.window;
    const quest = policy.selection.kind === "quest";

    // evictions decided from last step's scores come first, and the last long step's rejected tokens: their moves free pages this step may reuse
    for (const drop of [...e.drops, ...cache.takeRejected()]) {
      const moves = cache.dropGlobal(drop.layer, drop.head, drop.indices);
      evictionCopies.push(moves);
      if (quest) pushBounds(boundsBefore, cache, drop.layer, drop.head, moves.toSlots);
    }
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) numGlobal[(s * L + l) * H + h] = cache.head(l, h).numGlobalTokens;
    const append = cache.append(numNew);
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) slotMapping.set(append.slotMapping.subarray((l * H + h) * numNew, (l * H + h + 1) * numNew), (l * H + h) * T + row);
      layerCopies[l].push(append.promotions[l]);
      if (quest) {
        for (let h = 0; h < H; h++) {
          const copies = append.promotions[l];
          // promotions of this head: their destinations are among its global slots
          const view = cache.head(l, h);
          const own = new Set(view.globalPageIds);
          const dest = Array.from(copies.toSlots.subarray(0, copies.numCopies)).filter((slot) => own.has(Math.floor(slot / PAGE_SIZE)));
          pushBounds(boundsAfter, cache, l, h, dest);
        }
      }
    }
    append.tableUpdates.forEach((updates, head) => {
      const base = (e.slot * L * H + head) * dims.tableRowStride;
      for (const u of updates) tableUpdates.push(base + u.index, u.page);
    });

    for (let t = 0; t < numNew; t++) {
      ids[row + t] = e.ids[t];
      positions[row + t] = startPos + t;
    }
    const f = s * SEQ_FIELDS;
    const admission = admissionFields(policy.admission);
    seqFields[f + SEQ_ROW_START] = row;
    seqFields[f + SEQ_NUM_ROWS] = numNew;
    seqFields[f + SEQ_START_POS] = startPos;
    seqFields[f + SEQ_WINDOW] = W;
    seqFields[f + SEQ_SLOT] = e.slot;
    seqFields[f + SEQ_ADMISSION] = admission.kind;
    seqFields[f + SEQ_ADMISSION_ARG] = admission.arg;
    seqFields[f + SEQ_ADMISSION_SEED] = admission.seed;
    if (quest && numNew === 1) {
      seqFields[f + SEQ_QUEST_BUDGET] = policy.selection.budget!;
      usesQuest = true;
      // NOTE: at most the pages this sequence has (a budget past its length selects them all), plus the partial one
      maxQuestPages = Math.max(maxQuestPages, Math.min(Math.floor(policy.selection.budget! / PAGE_SIZE), Math.ceil(startPos / PAGE_SIZE)) + 1);
    }
    const observe = policy.eviction.observationWindow > 0;
    seqFields[f + SEQ_OBSERVE] = observe ? 1 : 0;
    usesObservations ||= observe;

    if (policy.admission.kind === "gate" && policy.gate) {
      const last = gateRuns[gateRuns.length - 1];
      if (last && last.gate === policy.gate && last.row0 + last.numRows === row) last.numRows += numNew;
      else gateRuns.push({ gate: policy.gate, row0: row, numRows: numNew });
    }

    // logits: the rows asked for, and the sampled (last) row
    const logitsRow0 = logitRows.length;
    const firstLogits = e.logitsFrom === null ? numNew : Math.max(0, Math.min(numNew, e.logitsFrom - startPos));
    for (let t = firstLogits; t < numNew; t++) logitRows.push(row + t);
    let sampleIndex = -1;
    if (e.sample) {
      if (firstLogits === numNew) logitRows.push(row + numNew - 1);
      sampleIndex = sampleParams.length / SAMPLE_FIELDS;
      const p = new Array<number>(SAMPLE_FIELDS);
      p[SAMPLE_ROW] = logitRows.length - 1;
      p[SAMPLE_TEMPERATURE] = e.sample.temperature;
      p[SAMPLE_TOP_K] = e.sample.topK;
      p[SAMPLE_TOP_P] = e.sample.topP;
      p[SAMPLE_UNIFORM] = e.sample.u;
      p[SAMPLE_MIN_P] = e.sample.minP ?? 0;
      sampleParams.push(...p);
    }

    // SnapKV: heads over budget after this step are scored now and trimmed at the start of the next
    const snapHeads: { layer: number; head: number; offset: number; numGlobal: number }[] = [];
    if (policy.eviction.kind !== "none") {
      const numTokens = startPos + numNew;
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          const g = cache.head(l, h).numGlobalTokens;
          if (!policy.eviction.shouldEvict(g)) continue;
          const req = new Array<number>(SNAP_FIELDS).fill(0);
          req[SNAP_SLOT] = e.slot;
          req[SNAP_LAYER] = l;
          req[SNAP_HEAD] = h;
          req[SNAP_WINDOW] = W;
          req[SNAP_NUM_GLOBAL] = g;
          req[SNAP_NUM_RING] = Math.min(numTokens, W);
          req[SNAP_NUM_OBS] = Math.min(numTokens, dims.observationWindow);
          req[SNAP_OFFSET] = numSnapScores;
          snapRequests.push(...req);
          snapHeads.push({ layer: l, head: h, offset: numSnapScores, numGlobal: g });
          numSnapScores += g;
        }
      }
    }
    // a sampled row no one asked for is the last one: its logits are position startPos + numNew - 1's
    const logitsPos0 = e.sample && firstLogits === numNew ? startPos + numNew - 1 : startPos + firstLogits;
    outputs.push({ rowStart: row, numRows: numNew, startPos, sampleIndex, logitsRow0, numLogitsRows: logitRows.length - logitsRow0, logitsPos0, snapHeads });
    row += numNew;
  });

  const copies = [...evictionCopies];
  const layerCopyStart = new Int32Array(L);
  const layerCopyCount = new Int32Array(L);
  const numEvictionCopies = count(evictionCopies);
  let at = numEvictionCopies;
  for (let l = 0; l < L; l++) {
    layerCopyStart[l] = at;
    layerCopyCount[l] = count(layerCopies[l]);
    at += layerCopyCount[l];
    copies.push(...layerCopies[l]);
  }
  return {
    numRows: T, numSeqs: S, entries: order, outputs, ids, positions, seqFields, numGlobal, slotMapping,
    copies: pairs(copies), numEvictionCopies, layerCopyStart, layerCopyCount, tableUpdates: Int32Array.from(tableUpdates),
    boundsBefore: Int32Array.from(boundsBefore), boundsAfter: Int32Array.from(boundsAfter), logitRows: Int32Array.from(logitRows),
    sampleParams: Float32Array.from(sampleParams), numSamples: sampleParams.length / SAMPLE_FIELDS, snapRequests: Int32Array.from(snapRequests),
    numSnapScores, gateRuns, usesQuest, maxQuestPages, usesObservations,
  };
}

function count(lists: readonly SlotCopies[]): number {
  return lists.reduce((n, c) => n + c.numCopies, 0);
}

/** [C, 2] (from, to) pairs of copy lists, in order. */
function pairs(lists: readonly SlotCopies[]): Int32Array {
  const out = new Int32Array(2 * count(lists));
  let at = 0;
  for (const c of lists) {
    for (let i = 0; i < c.numCopies; i++, at += 2) {
      out[at] = c.fromSlots[i];
      out[at + 1] = c.toSlots[i];
    }
  }
  return out;
}

/** Adds (page, keys held) of the global pages of head (l, h) that `slots` touch, once each. */
function pushBounds(out: number[], cache: SequenceCache, layer: number, head: number, slots: ArrayLike<number>): void {
  const view = cache.head(layer, head);
  const seen = new Set<number>();
  for (let i = 0; i < slots.length; i++) {
    const page = Math.floor(slots[i] / PAGE_SIZE);
    if (seen.has(page)) continue;
    seen.add(page);
    const index = view.globalPageIds.indexOf(page);
    if (index < 0) continue; // a page freed by the same eviction
    out.push(page, Math.min(PAGE_SIZE, view.numGlobalTokens - index * PAGE_SIZE));
  }
}
