/**
 * @module engine/scheduler.test
 *
 * The scheduler with a real KvManager (on a fake backend) and real
 * Sequences. A small driver plays the engine: it appends each scheduled
 * chunk to the sequence's cache (which throws if the scheduler's page count
 * was short), commits flags, samples a token at the end of a chunk that
 * samples, finishes sequences, and does what the engine's preemption
 * callback does (release the cache and slot, reset numComputed). Checked:
 * decode before admission, token / sequence / logits-row budgets, chunk
 * sizes, the admission watermark, FIFO admission without skipping, the
 * exact victims of preemption, requests that can never fit, and that every
 * page comes back.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import { KvManager } from "../kvcache/kvManager.js";
import { admitAll, randomAdmission } from "../kvcache/admission.js";
import { questSelection, selectAll } from "../kvcache/selection.js";
import { resolveKvPolicy } from "../kvcache/kvPolicy.js";
import { createFakeBackend, randomFlags, randomInt, tinyDims } from "../kvcache/testing.js";
import { createRandom } from "../util/random.js";
import { type Scheduled, Scheduler, type SchedulerLimits } from "./scheduler.js";
import { Sequence, type SequenceOptions } from "./sequence.js";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

interface SeqSpec {
  readonly window?: number;
  /** Full attention, steps longer than W. */
  readonly full?: boolean;
  /** Random admission (the driver makes the flags up) with steps longer than W; neither: with Quest, so W-token steps. */
  readonly longSteps?: boolean;
  readonly maxNewTokens?: number;
  readonly logitsFrom?: number | null;
  readonly singleTokenFrom?: number | null;
}

/** Plays the engine around one Scheduler. */
class Driver {
  readonly kv: KvManager;
  readonly scheduler: Scheduler;
  readonly names = new Map<Sequence, string>();
  readonly preempted: string[] = [];
  readonly cannotFit: { name: string; error: Error }[] = [];
  readonly finished: string[] = [];
  /** Admit flag of every new token: 1 makes every token leaving the window take a global page. */
  flags: (numEntries: number) => Uint8Array = (n) => new Uint8Array(n).fill(1);

  constructor(
    numPages: number,
    limits: Partial<SchedulerLimits> = {},
    shape: { numLayers?: number; numKvHeads?: number; numSlots?: number } = {},
  ) {
    const { numLayers = 1, numKvHeads = 1, numSlots = 8 } = shape;
    this.kv = new KvManager(createFakeBackend().backend, tinyDims(numLayers, numKvHeads), { numPages, kvDType: "f32", numSlots, maxWindow: 64, maxContext: 1024 });
    this.scheduler = new Scheduler(
      this.kv,
      { maxBatchTokens: 256, maxSeqs: 8, maxLogitRows: 64, prefillChunk: 64, watermarkPages: 0, ...limits },
      (seq) => {
        this.preempted.push(this.name(seq));
        this.#release(seq);
        seq.numComputed = 0;
      },
      (seq, error) => {
        this.cannotFit.push({ name: this.name(seq), error });
        this.#release(seq);
      },
    );
  }

  add(name: string, numPromptTokens: number, spec: SeqSpec = {}): Sequence {
    const options: SequenceOptions = {
      maxNewTokens: spec.maxNewTokens ?? 4,
      sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
      policy: resolveKvPolicy({
        window: spec.window ?? 16,
        admission: spec.full ? admitAll : randomAdmission(0.5),
        selection: spec.full || spec.longSteps ? selectAll : questSelection(1 << 20),
      }),
      logitsFrom: spec.logitsFrom ?? null,
      singleTokenFrom: spec.singleTokenFrom ?? null,
      traceGateScores: false,
      eosTokenIds: new Set(),
    };
    const seq = new Sequence(range(numPromptTokens).map((i) => 1000 + i), options, { onToken: () => "continue", onFinish: () => {} });
    this.names.set(seq, name);
    this.scheduler.add(seq);
    return seq;
  }

  name(seq: Sequence): string {
    return this.names.get(seq)!;
  }

  /** One step: schedule, run it, return [name, numNew] pairs. */
  step(): [string, number][] {
    const step = this.scheduler.schedule();
    this.run(step);
    return step.map(({ seq, numNew }) => [this.name(seq), numNew]);
  }

  /** Steps until nothing runs; returns them. */
  steps(max = 100): [string, number][][] {
    const out: [string, number][][] = [];
    while (this.scheduler.hasWork && out.length < max) out.push(this.step());
    return out;
  }

  /** Takes a sequence out (aborted): the engine removes it and returns its pages. */
  abort(seq: Sequence): void {
    this.scheduler.remove(seq);
    this.#release(seq);
  }

  get numFreePages(): number {
    return this.kv.blockPool.numFreePages;
  }

  /** Runs a scheduled step as the engine would. */
  run(step: readonly Scheduled[]): void {
    const { numLayers, numKvHeads } = this.kv.dims;
    for (const { seq, numNew } of step) {
      const samples = seq.samplesAfter(numNew);
      // as the step planner: the last long step's rejected tokens are dropped first
      for (const r of seq.cache!.takeRejected()) seq.cache!.dropGlobal(r.layer, r.head, r.indices);
      seq.cache!.append(numNew); // throws OutOfPagesError if the scheduler counted short
      seq.cache!.commitFlags(this.flags(numLayers * numKvHeads * numNew), numNew);
      seq.numComputed += numNew;
      if (samples) seq.tokenIds.push(7);
      // as the engine: done right after the last sample, or when a prompt-only request is computed
      if ((samples || seq.numUncomputed === 0) && seq.numGenerated >= seq.options.maxNewTokens) {
        this.finished.push(this.name(seq));
        this.abort(seq);
      }
    }
  }

  #release(seq: Sequence): void {
    seq.cache?.release();
    if (seq.slot >= 0) this.kv.releaseSlot(seq.slot);
    seq.cache = null;
    seq.slot = -1;
  }
}

test("running sequences decode before waiting ones are admitted; the token budget caps the prompt chunk", () => {
  const d = new Driver(64, { maxBatchTokens: 10 });
  d.add("A", 3, { maxNewTokens: 5 });
  assert.deepEqual(d.step(), [["A", 3]]);
  const b = d.add("B", 20);
  assert.deepEqual(d.step(), [["A", 1], ["B", 9]]);
  assert.equal(b.status, "running");
  assert.equal(b.slot, 1);
  assert.deepEqual(d.step(), [["A", 1], ["B", 9]]);
  assert.deepEqual(d.step(), [["A", 1], ["B", 2]]);
  assert.deepEqual(d.steps(), [[["A", 1], ["B", 1]], [["B", 1]], [["B", 1]]]);
  assert.deepEqual(d.finished, ["A", "B"]);
  assert.equal(d.numFreePages, 63);
});

test("a prompt chunk is at most the window and the prefill chunk", () => {
  const byWindow = new Driver(64);
  byWindow.add("A", 40, { window: 16, maxNewTokens: 1 });
  assert.deepEqual(byWindow.steps(), [[["A", 16]], [["A", 16]], [["A", 8]]]);
  const byChunk = new Driver(64, { prefillChunk: 12 });
  byChunk.add("A", 40, { window: 32, maxNewTokens: 2 });
  assert.deepEqual(byChunk.steps(), [[["A", 12]], [["A", 12]], [["A", 12]], [["A", 4]], [["A", 1]]]);
});

test("under full attention only the prefill chunk and the token budget bound a prompt chunk, and its pages are counted exactly", () => {
  const d = new Driver(64, { prefillChunk: 48, maxBatchTokens: 100 });
  const a = d.add("A", 100, { window: 16, maxNewTokens: 1, full: true });
  // pages held after each step: a ring of one page, then the tokens that left the window on global pages
  const held: number[] = [];
  for (const expected of [[["A", 48]], [["A", 48]]]) {
    assert.deepEqual(d.step(), expected);
    held.push(a.cache!.numPagesHeld);
    assert.equal(d.kv.blockPool.numUsablePages - d.kv.blockPool.numFreePages, a.cache!.numPagesHeld);
  }
  assert.deepEqual(held, [1 + 2, 1 + 5]);
  assert.deepEqual(d.step(), [["A", 4]]);
  assert.deepEqual(d.finished, ["A"]);
  d.kv.checkInvariants();
});

test("singleTokenFrom feeds the prompt one token per step from that position", () => {
  const d = new Driver(64);
  d.add("A", 7, { singleTokenFrom: 4, maxNewTokens: 2 });
  assert.deepEqual(d.steps().map((s) => s[0]![1]), [4, 1, 1, 1, 1]);
});

test("logits rows: logitsFrom rows count against the step's budget; a chunk ending in a sample needs a row", () => {
  const d = new Driver(64, { maxLogitRows: 4 });
  d.add("A", 10, { logitsFrom: 0, maxNewTokens: 0 });
  d.add("B", 10, { maxNewTokens: 1 });
  // A takes the 4 rows; B's chunk stops one short of its sample; then B's last token waits for a row
  assert.deepEqual(d.step(), [["A", 4], ["B", 9]]);
  assert.deepEqual(d.step(), [["A", 4]]);
  assert.deepEqual(d.step(), [["A", 2], ["B", 1]]);
  assert.deepEqual(d.finished, ["A", "B"]);

  const e = new Driver(64, { maxLogitRows: 2 });
  e.add("C", 10, { logitsFrom: 6, maxNewTokens: 1 });
  assert.deepEqual(e.steps(), [[["C", 8]], [["C", 2]]]); // rows of positions 6, 7; then 8, 9 (the sample)
});

test("sequences per step and free slots bound admission", () => {
  const bySeqs = new Driver(64, { maxSeqs: 2 });
  for (const name of ["A", "B", "C"]) bySeqs.add(name, 4);
  assert.deepEqual(bySeqs.step(), [["A", 4], ["B", 4]]);
  const bySlots = new Driver(64, {}, { numSlots: 2 });
  for (const name of ["A", "B", "C"]) bySlots.add(name, 4);
  assert.deepEqual(bySlots.step(), [["A", 4], ["B", 4]]);
  assert.deepEqual(bySlots.scheduler.waiting.map((s) => bySlots.name(s)), ["C"]);
});

test("admission keeps the watermark free once something runs", () => {
  for (const [watermark, expected] of [[2, [["A", 16]]], [1, [["A", 16], ["B", 16]]]] as const) {
    const d = new Driver(4, { watermarkPages: watermark }); // 3 usable pages
    d.flags = (n) => new Uint8Array(n); // local only: decode needs no page
    d.add("A", 16, { maxNewTokens: 2 });
    d.add("B", 16, { maxNewTokens: 2 });
    assert.deepEqual(d.step(), expected, `watermark ${watermark}`);
  }
  // with nothing running the watermark does not apply: a lone request may take the last pages
  const alone = new Driver(2, { watermarkPages: 5 });
  alone.add("A", 16, { maxNewTokens: 1 });
  assert.deepEqual(alone.step(), [["A", 16]]);
});

test("admission is first come first served: a request that does not fit blocks those behind it", () => {
  const d = new Driver(4); // 3 usable pages
  d.flags = (n) => new Uint8Array(n);
  d.add("C", 32, { window: 32, maxNewTokens: 3 }); // two ring pages
  assert.deepEqual(d.step(), [["C", 32]]);
  d.add("A", 32, { window: 32 }); // needs 2, 1 free
  d.add("B", 16); // would fit
  assert.deepEqual(d.step(), [["C", 1]]);
  assert.deepEqual(d.scheduler.waiting.map((s) => d.name(s)), ["A", "B"]);
  // C's last token frees its pages: then both fit
  assert.deepEqual(d.steps(), [[["C", 1]], [["A", 32], ["B", 16]], [["A", 1], ["B", 1]], [["A", 1], ["B", 1]], [["A", 1], ["B", 1]]]);
});

test("out of pages, the newest running sequences are preempted: exact victims, caches released, back at the front", () => {
  const d = new Driver(7, {}, { numKvHeads: 2 }); // 6 usable pages; each head's decode promotes
  const [a, b, c] = ["A", "B", "C"].map((name) => d.add(name, 16, { maxNewTokens: 8 }));
  assert.deepEqual(d.step(), [["A", 16], ["B", 16], ["C", 16]]);
  assert.equal(d.numFreePages, 0);
  // A needs 2 pages: C gives its 2; B then needs 2 with no one newer: B itself goes
  assert.deepEqual(d.step(), [["A", 1]]);
  assert.deepEqual(d.preempted, ["C", "B"]);
  assert.equal(d.scheduler.numPreemptions, 2);
  assert.deepEqual(d.scheduler.running, [a]);
  assert.deepEqual(d.scheduler.waiting, [b, c]);
  for (const seq of [b!, c!]) {
    assert.deepEqual([seq.status, seq.cache, seq.slot, seq.numComputed, seq.tokenIds.length], ["waiting", null, -1, 0, 17]);
  }
  assert.equal(d.numFreePages, 2);
  // B recomputes its 17 tokens from the start (one window, then the rest)
  assert.deepEqual(d.step(), [["A", 1], ["B", 16]]);
  assert.deepEqual(d.step(), [["A", 1]]);
  assert.deepEqual(d.preempted, ["C", "B", "B"]);
  d.steps(200);
  assert.deepEqual(d.finished, ["A", "B", "C"]);
  assert.equal(d.numFreePages, 6);
  assert.equal(d.kv.numFreeSlots, 8);
});

test("a request whose first chunk needs more pages than the pool holds fails at once; the next is admitted", () => {
  const d = new Driver(4, {}, { numKvHeads: 2 }); // 3 usable pages
  d.add("A", 32, { window: 32 }); // 2 ring pages per head
  d.add("B", 16);
  assert.deepEqual(d.step(), [["B", 16]]);
  assert.equal(d.cannotFit.length, 1);
  const { name, error } = d.cannotFit[0]!;
  assert.equal(name, "A");
  assert.ok(error instanceof InvalidInputError);
  assert.equal(error.message, "the KV memory budget is too small for this request: its next step needs 4 pages of 16 tokens, and the pool holds 3; raise kvMemory (--kv-memory) or shorten the request");
  assert.deepEqual(d.scheduler.waiting, []);
});

test("a sequence running alone that cannot grow fails instead of preempting itself forever", () => {
  const d = new Driver(2); // 1 usable page
  d.add("A", 17);
  assert.deepEqual(d.step(), [["A", 16]]);
  assert.deepEqual(d.step(), []); // position 16 would promote position 0: a second page
  assert.deepEqual(d.cannotFit.map((x) => x.name), ["A"]);
  assert.match(d.cannotFit[0]!.error.message, /^the KV memory budget is too small for this request: after 16 tokens it holds 1 pages of 16 tokens and its next step needs 1 more, and the pool holds 1; raise kvMemory/);
  assert.deepEqual([d.scheduler.running.length, d.scheduler.waiting.length, d.scheduler.numPreemptions], [0, 0, 0]);
  assert.equal(d.numFreePages, 1);
});

test("a long step that the pool cannot hold is halved, down to the window, instead of failing or preempting", () => {
  // 3 usable pages: a 64-token step of window 16 needs the ring's page and 3 global pages for the 48 tokens
  // leaving within it (4); 32 tokens need 2; what the policy keeps (nothing admitted) is the ring's page
  const d = new Driver(4, { prefillChunk: 64 });
  d.flags = (n) => new Uint8Array(n);
  d.add("A", 64, { longSteps: true, maxNewTokens: 2 });
  assert.deepEqual(d.steps(), [[["A", 32]], [["A", 32]], [["A", 1]]]);
  assert.deepEqual(d.cannotFit, []);
  assert.deepEqual(d.preempted, []);
  assert.deepEqual(d.finished, ["A"]);
  // with the pool to spare, the same prompt goes in one step
  const roomy = new Driver(8, { prefillChunk: 64 });
  roomy.flags = (n) => new Uint8Array(n);
  roomy.add("A", 64, { longSteps: true, maxNewTokens: 2 });
  assert.deepEqual(roomy.steps(), [[["A", 64]], [["A", 1]]]);
});

test("random mixes of admissions, preemptions and aborts respect every budget and return every page (seeded)", () => {
  let totals = { preemptions: 0, cannotFit: 0, aborts: 0, steps: 0 };
  for (let seed = 1; seed <= 30; seed++) {
    const random = createRandom(seed);
    const limits: SchedulerLimits = {
      maxBatchTokens: randomInt(random, 8, 96), maxSeqs: randomInt(random, 1, 6), maxLogitRows: randomInt(random, 1, 8),
      prefillChunk: randomInt(random, 4, 64), watermarkPages: randomInt(random, 0, 2),
    };
    const d = new Driver(randomInt(random, 3, 24), limits, { numKvHeads: randomInt(random, 1, 2), numSlots: randomInt(random, 1, 6) });
    const rate = 0.5 + random() / 2; // most tokens take global pages: the pool runs out
    d.flags = (n) => randomFlags(random, n, rate);
    const all: Sequence[] = [];
    for (let i = 0; i < 10; i++) {
      all.push(d.add(`S${i}`, randomInt(random, 1, 60), {
        window: 16 * randomInt(random, 1, 4), maxNewTokens: randomInt(random, 0, 40),
        logitsFrom: random() < 0.3 ? randomInt(random, 0, 40) : null, singleTokenFrom: random() < 0.2 ? randomInt(random, 0, 40) : null,
        longSteps: random() < 0.4,
      }));
    }
    let numSteps = 0;
    let numAborts = 0;
    while (d.scheduler.hasWork) {
      assert.ok(++numSteps < 5000, `seed ${seed}: no end in sight`);
      const step = d.scheduler.schedule();
      assert.ok(step.reduce((n, s) => n + s.numNew, 0) <= limits.maxBatchTokens);
      assert.ok(step.length <= limits.maxSeqs);
      assert.ok(step.reduce((n, s) => n + s.seq.numLogitRows(s.numNew), 0) <= limits.maxLogitRows);
      assert.equal(new Set(step.map((s) => s.seq)).size, step.length);
      for (const { seq, numNew } of step) {
        assert.ok(numNew >= 1 && numNew <= Math.min(seq.maxStepTokens, limits.prefillChunk, seq.numUncomputed));
        assert.equal(seq.status, "running");
      }
      const needed = step.reduce((n, s) => n + s.seq.cache!.numPagesNeeded(s.numNew), 0);
      assert.ok(needed <= d.numFreePages, "the step fits the pool");
      d.run(step);
      d.kv.checkInvariants();
      const held = d.scheduler.running.reduce((n, s) => n + s.cache!.numPagesHeld, 0);
      assert.equal(d.kv.blockPool.numOwnedPages, held, "only running sequences hold pages");
      assert.ok(d.scheduler.waiting.every((s) => s.cache === null && s.slot === -1));
      if (random() < 0.02) {
        const live = all.filter((s) => d.scheduler.running.includes(s) || d.scheduler.waiting.includes(s));
        if (live.length > 0) {
          d.abort(live[Math.floor(random() * live.length)]!);
          numAborts++;
        }
      }
    }
    assert.equal(d.numFreePages, d.kv.blockPool.numUsablePages, `seed ${seed}: every page back`);
    assert.equal(d.kv.numFreeSlots, d.kv.options.numSlots);
    totals = { preemptions: totals.preemptions + d.scheduler.numPreemptions, cannotFit: totals.cannotFit + d.cannotFit.length, aborts: totals.aborts + numAborts, steps: totals.steps + numSteps };
  }
  assert.ok(totals.preemptions > 40 && totals.cannotFit > 0 && totals.aborts > 0, JSON.stringify(totals));
});
