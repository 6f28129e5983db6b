/**
 * The three primitives composed in the engine, on the default model: every
 * admission x selection x eviction through a chunked prefill with a small
 * window (so promotions and evictions really happen) and greedy decode steps.
 * For each composition:
 * - alone: what each head holds is checked against an independent replay of
 *   the admission rule, eviction against its budget, memory figures against
 *   the pages held, and the stored layer-0 keys bit for bit against full
 *   attention's (they depend only on token and position, so this follows the
 *   bytes through promotions, eviction moves and page reuse);
 * - batched: three sequences run together give each one's greedy ids and
 *   logits within 1e-4 relative L2 of running alone;
 * - preempted: the same three on a pool too small for them at once
 *   (sequences lose their cache and recompute) give the same again.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { admissionHash, PAGE_SIZE, randomAdmissionThreshold } from "../backends/stepLayout.js";
import { Engine } from "./engine.js";
import { resolveEngineConfig } from "./engineConfig.js";
import { resolveKvOptions } from "./kvOptions.js";
import { DEFAULT_MODEL_DIR, loadGateFile, loadModel, type GateInput, type Model } from "../index.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import { probeSequences, type ProbeRun } from "../testing/engineProbe.js";
import { relativeL2 } from "../testing/fixtures.js";

const WINDOW = 64;
// NOTE: ~300 tokens keep the 20 compositions (x 9 sequence runs) within the time budget while every
// policy acts: 236 tokens leave the window, so full, random:0.4 and the gate put more than 64
// (Quest's budget) and more than 48 + 16 (SnapKV's trigger) tokens in most heads' global caches.
const PROMPT_TOKENS = 300;
const DECODE_STEPS = 24;
const SNAPKV_BUDGET = 48;
const SNAPKV_SLACK = 16;
const TAU = 0.1;

const ADMISSIONS = ["full", "local", "sinks:4", "random:0.4", "gate"] as const;
const SELECTIONS = ["all", "quest:64"] as const;
const EVICTIONS = ["none", `snapkv:${SNAPKV_BUDGET}`] as const;

let model: Model;
let gate: GateInput;
let prompts: number[][];

before(async () => {
  model = await loadModel(DEFAULT_MODEL_DIR);
  gate = await loadGateFile(join(DEFAULT_MODEL_DIR, "gates/wgkv-tiny-chat-gate-0.016n.pt"), model);
  const ids = model.requireTokenizer().encode(readFileSync(join(DEFAULT_MODEL_DIR, "README.md"), "utf8"));
  const text: number[] = [];
  while (text.length < 3 * PROMPT_TOKENS) text.push(...ids);
  // three prompts: two of full length at different offsets, a shorter one
  prompts = [text.slice(0, PROMPT_TOKENS), text.slice(137, 137 + PROMPT_TOKENS), text.slice(411, 411 + 200)];
});
after(() => model.dispose());

function policyOf(admission: string, selection: string, eviction: string, window = WINDOW): KvPolicy {
  return resolveKvOptions({ window, admission, selection, eviction, ...(admission === "gate" ? { gate, tau: TAU } : {}) }, model);
}

function run(engine: Engine, policy: KvPolicy, which: readonly number[], steps = DECODE_STEPS): Promise<ProbeRun[]> {
  return probeSequences(model, engine, which.map((i) => ({ ids: prompts[i], policy, maxNewTokens: steps })));
}

/** The three prompts alone, fed one page per step as the preemption test does. */
async function runChunked(policy: KvPolicy): Promise<ProbeRun[]> {
  const engine = new Engine(model.backend, model.parts, resolveEngineConfig({ maxSeqs: 1, prefillChunk: PAGE_SIZE }, model.config, model.backend.availableBytes(), WINDOW));
  try {
    const out: ProbeRun[] = [];
    for (const i of [0, 1, 2]) out.push(...(await run(engine, policy, [i])));
    return out;
  } finally {
    engine.dispose();
  }
}

/** Positions the admission rule admits for (layer, head), replayed independently of the device. */
function decided(admission: string, r: ProbeRun, layer: number, head: number, numTotal: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < numTotal; p++) {
    let admit: boolean;
    if (admission === "full") admit = true;
    else if (admission === "local") admit = false;
    else if (admission === "sinks:4") admit = p < 4;
    else if (admission === "random:0.4") admit = admissionHash(0, layer, head, p) < randomAdmissionThreshold(0.4);
    else {
      const g = r.scores[layer][head][p];
      assert.ok(Number.isFinite(g), `gate score of (${layer}, ${head}, ${p}) was reported`);
      admit = g > Math.fround(TAU);
    }
    if (admit) out.push(p);
  }
  return out;
}

function assertSameRuns(actual: readonly ProbeRun[], expected: readonly ProbeRun[], what: string): void {
  actual.forEach((r, i) => {
    assert.deepEqual(r.tokens, expected[i].tokens, `${what}, sequence ${i}: greedy ids`);
    assert.equal(r.logits.length, expected[i].logits.length);
    r.logits.forEach((l, s) => {
      const rel = relativeL2(l, expected[i].logits[s]);
      assert.ok(rel <= 1e-4, `${what}, sequence ${i}, step ${s}: logits relative L2 ${rel}`);
    });
    assert.deepEqual(r.report.admittedByHead, expected[i].report.admittedByHead, `${what}, sequence ${i}: admitted counts`);
  });
}

function assertPoolWhole(engine: Engine): void {
  engine.kv.checkInvariants();
  const stats = engine.stats();
  assert.equal(stats.numFreePages, stats.numUsablePages, "every page returns to the pool");
  assert.equal(stats.numRunning + stats.numWaiting, 0);
}

const key = (a: string, s: string, e: string) => `${a} + ${s} + ${e}`;
const alone = new Map<string, ProbeRun[]>();

describe(`every admission x selection x eviction: ${PROMPT_TOKENS}-token prompts, W = ${WINDOW}, ${DECODE_STEPS} greedy steps`, () => {
  for (const admission of ADMISSIONS) {
    for (const selection of SELECTIONS) {
      for (const eviction of EVICTIONS) {
        test(key(admission, selection, eviction), async () => {
          const policy = policyOf(admission, selection, eviction);
          const single: ProbeRun[] = [];
          for (const i of [0, 1, 2]) single.push(...(await run(model.engine, policy, [i])));
          assertPoolWhole(model.engine);
          alone.set(key(admission, selection, eviction), single);
          const r = single[0];
          const { numLayers: L, numKvHeads: H } = model.config;
          const numTotal = PROMPT_TOKENS + DECODE_STEPS;
          assert.equal(r.tokens.length, DECODE_STEPS);
          assert.equal(r.report.numTokens, numTotal - 1, "the last sampled token is never fed");

          // what each head holds follows from the admission rule (and eviction)
          const leftWindow = r.report.numTokens - WINDOW;
          let numDropped = 0;
          for (let l = 0; l < L; l++) {
            for (let h = 0; h < H; h++) {
              const admitted = decided(admission, r, l, h, r.report.numTokens);
              assert.equal(r.report.admittedByHead[l][h], admitted.length, `(${l}, ${h}) admitted count`);
              const eligible = admitted.filter((p) => p < leftWindow);
              const held = r.globalPositions[l][h];
              if (eviction === "none") {
                assert.deepEqual(held, eligible, `(${l}, ${h}): the global cache holds exactly the admitted tokens that left the window`);
                continue;
              }
              const eligibleSet = new Set(eligible);
              assert.ok(held.every((p) => eligibleSet.has(p)), `(${l}, ${h}): only admitted tokens that left the window are global`);
              // NOTE: drops decided from a step's scores apply at the start of the next: one promotion may come first
              assert.ok(held.length <= SNAPKV_BUDGET + SNAPKV_SLACK + 1, `(${l}, ${h}) holds ${held.length} global tokens`);
              if (eligible.length > SNAPKV_BUDGET + SNAPKV_SLACK + 1) assert.ok(held.length >= SNAPKV_BUDGET, `(${l}, ${h}) evicted below the budget: ${held.length}`);
              else if (eligible.length <= SNAPKV_BUDGET + SNAPKV_SLACK) assert.equal(held.length, eligible.length, `(${l}, ${h}) evicted without need`);
              numDropped += eligible.length - held.length;
            }
          }
          if (eviction !== "none" && ["full", "random:0.4", "gate"].includes(admission)) assert.ok(numDropped > 0, "eviction never happened");
          if (admission === "local") assert.equal(r.report.numAdmitted, 0);

          // memory figures: whole pages of ring and global tokens, nothing else
          const bytesPerToken = 2 * model.config.headDim * 4;
          let numPages = 0;
          for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) numPages += WINDOW / PAGE_SIZE + Math.ceil(r.globalPositions[l][h].length / PAGE_SIZE);
          assert.equal(r.numPagesHeld, numPages, "pages held");
          assert.equal(r.report.residentBytes, numPages * PAGE_SIZE * bytesPerToken);
          assert.equal(r.report.fullAttentionBytes, r.report.numTokens * L * H * bytesPerToken);
          assert.ok(r.report.peakBytes >= r.report.residentBytes);

          // the stored layer-0 keys are full attention's, bit for bit
          const reference = alone.get(key("full", "all", "none"))?.[0];
          if (reference) {
            let numChecked = 0;
            r.layer0Keys.forEach((keys, h) => {
              for (const [p, k] of keys) {
                const expected = reference.layer0Keys[h].get(p);
                if (!expected) continue;
                assert.deepEqual(k, expected, `layer 0, head ${h}: the key held for position ${p}`);
                numChecked++;
              }
            });
            assert.ok(numChecked >= WINDOW, `only ${numChecked} layer-0 keys compared`);
          }

          // batched: the three together, each as alone
          assertSameRuns(await run(model.engine, policy, [0, 1, 2]), single, "together");
          assertPoolWhole(model.engine);

          // preempted: a pool that holds one full sequence and a half; prompts go in one page at a
          // time, so sequences are admitted small and run out of pages as they grow
          // NOTE: without eviction a cache only grows, so what it holds at the end is the peak of 16-token steps (a long step's peak holds its leaving tokens until the rejected are dropped)
          const peakPages = eviction === "none" ? Math.max(...single.map((s) => s.numPagesHeld)) : Math.max(...single.map((s) => s.report.peakBytes)) / (PAGE_SIZE * bytesPerToken);
          const kvMemory = Math.ceil(peakPages * 1.5) * model.engine.config.pageBytes;
          const small = new Engine(model.backend, model.parts, resolveEngineConfig({ kvMemory, maxSeqs: 4, prefillChunk: PAGE_SIZE }, model.config, model.backend.availableBytes(), WINDOW));
          try {
            // NOTE: SnapKV decides at the end of each step, so its reference runs alone with the same chunks
            const reference = eviction === "none" ? single : await runChunked(policy);
            const squeezed = await run(small, policy, [0, 1, 2]);
            assertSameRuns(squeezed, reference, "preempted");
            assert.ok(small.stats().numPreemptions > 0, "the small pool forced no preemption");
            assertPoolWhole(small);
          } finally {
            small.dispose();
          }
        });
      }
    }
  }

  test("resident bytes order: full >= gate >= local, full >= random:0.4, sinks:4 >= local", () => {
    const bytes = (admission: string, selection: string, eviction = "none") => {
      const r = alone.get(key(admission, selection, eviction));
      assert.ok(r, `no result for ${key(admission, selection, eviction)}`);
      return r[0].report.residentBytes;
    };
    for (const selection of SELECTIONS) {
      assert.ok(bytes("full", selection) >= bytes("gate", selection));
      assert.ok(bytes("gate", selection) >= bytes("local", selection));
      assert.ok(bytes("full", selection) > bytes("local", selection));
      assert.ok(bytes("full", selection) >= bytes("random:0.4", selection));
      assert.ok(bytes("sinks:4", selection) > bytes("local", selection));
      assert.ok(bytes("full", selection) > bytes("full", selection, `snapkv:${SNAPKV_BUDGET}`), "eviction frees memory");
    }
    // selection decides what is read, never what is stored (position-based admissions)
    for (const admission of ["full", "local", "sinks:4", "random:0.4"]) assert.equal(bytes(admission, "all"), bytes(admission, "quest:64"));
  });

  test("full attention through ring + promoted global pages equals full attention in one window holding everything", async () => {
    const paged = alone.get(key("full", "all", "none"));
    assert.ok(paged);
    const [wide] = await run(model.engine, policyOf("full", "all", "none", 512), [0]);
    assert.equal(wide.report.numGlobalTokens, 0, "nothing left the 512-token window");
    wide.logits.forEach((logits, s) => {
      const rel = relativeL2(paged[0].logits[s], logits);
      assert.ok(rel <= 1e-4, `step ${s}: relative L2 ${rel}`);
    });
  });

  test("Quest with a budget above the context reads everything; quest:64 really selects", async () => {
    const reference = alone.get(key("full", "all", "none"))![0];
    const restricted = alone.get(key("full", "quest:64", "none"))![0];
    const [r] = await run(model.engine, policyOf("full", `quest:${PROMPT_TOKENS + DECODE_STEPS}`, "none"), [0]);
    r.logits.forEach((logits, s) => {
      const rel = relativeL2(logits, reference.logits[s]);
      assert.ok(rel <= 1e-5, `step ${s}: relative L2 ${rel}`);
    });
    // the same prefill, so the first step's logits match; then a 64-token budget over ~236 global tokens changes them
    assert.ok(relativeL2(restricted.logits[0], reference.logits[0]) <= 1e-5);
    const differ = restricted.logits.slice(1).map((l, s) => relativeL2(l, reference.logits[s + 1]));
    assert.ok(Math.max(...differ) > 1e-4, `quest:64 never changed the logits (max relative L2 ${Math.max(...differ)})`);
  });

  test("Quest: two live sequences in one pool each attend exactly as alone (bounds are per page)", async () => {
    const policy = policyOf("full", "quest:64", "none");
    const single = alone.get(key("full", "quest:64", "none"))!;
    const together = await run(model.engine, policy, [0, 1]);
    together.forEach((r, i) => {
      assert.deepEqual(r.tokens, single[i].tokens);
      r.logits.forEach((l, s) => assert.ok(relativeL2(l, single[i].logits[s]) <= 1e-5, `sequence ${i}, step ${s}`));
    });
  });
});

describe(`a context within the window (W = ${WINDOW}): every admission is full attention`, () => {
  test("local, sinks:4, random:0.4 and gate give full attention's logits until the context exceeds W", async () => {
    const numPrompt = 40;
    const numWithin = WINDOW - numPrompt;
    const probe = async (admission: string, steps: number) =>
      (await probeSequences(model, model.engine, [{ ids: prompts[0].slice(0, numPrompt), policy: policyOf(admission, "all", "none"), maxNewTokens: steps }]))[0];
    const full = await probe("full", numWithin + 6);
    for (const admission of ["local", "sinks:4", "random:0.4", "gate"]) {
      const r = await probe(admission, numWithin + 6);
      for (let s = 0; s <= numWithin; s++) {
        const rel = relativeL2(r.logits[s], full.logits[s]);
        assert.ok(rel <= 1e-5, `${admission}, step ${s} (context ${numPrompt + s}): relative L2 ${rel}`);
      }
      if (admission === "local") {
        // past the window, local attention forgets position 0.. and the logits part
        const rel = relativeL2(r.logits[numWithin + 5], full.logits[numWithin + 5]);
        assert.ok(rel > 1e-4, `local attention past the window still equals full attention (${rel})`);
      }
    }
  });
});
