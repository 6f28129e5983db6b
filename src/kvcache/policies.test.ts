/**
 * The three cache primitives on their own: admission decisions (exact and
 * independent of chunking), spec parsing and its errors, Quest's page choice
 * (its bounds are upper bounds; budget, partial page and order rules) and
 * SnapKV's choice of what to drop.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import { createRng } from "../cache/testing.js";
import { admitAll, gateAdmission, localOnly, randomAdmission, sinksAndLocal, type AdmissionPolicy } from "./admission.js";
import { noEviction, SnapKvEviction, type EvictionRequest } from "./eviction.js";
import { parseAdmission, parseEviction, parseSelection } from "./parse.js";
import { PAGE_SIZE, QuestSelection, selectAll } from "./selection.js";

/** Flags [numKvHeads, numPositions] for positions 0.. decided in chunks of the given sizes. */
function decideInChunks(policy: AdmissionPolicy, layer: number, numKvHeads: number, chunks: readonly number[]): Uint8Array[] {
  const total = chunks.reduce((a, b) => a + b, 0);
  const perHead = Array.from({ length: numKvHeads }, () => new Uint8Array(total));
  let start = 0;
  for (const numTokens of chunks) {
    // a stale, oversized flags buffer, as the engine reuses one: only [H, T] may be written
    const flags = new Uint8Array(numKvHeads * numTokens + 7).fill(7);
    policy.decide({ layer, numKvHeads, numTokens, startPos: start, gateScores: null }, flags);
    assert.deepEqual([...flags.subarray(numKvHeads * numTokens)], new Array(7).fill(7), `${policy.name} wrote past [H, T]`);
    for (let h = 0; h < numKvHeads; h++) perHead[h].set(flags.subarray(h * numTokens, (h + 1) * numTokens), start);
    start += numTokens;
  }
  return perHead;
}

const CHUNKINGS: readonly (readonly number[])[] = [[100], [1, 2, 3, 94], [7, 33, 60], Array(100).fill(1), [64, 36]];

describe("admission", () => {
  test("full admits every token, local none", () => {
    for (const chunks of CHUNKINGS) {
      for (const head of decideInChunks(admitAll, 3, 2, chunks)) assert.ok(head.every((f) => f === 1));
      for (const head of decideInChunks(localOnly, 3, 2, chunks)) assert.ok(head.every((f) => f === 0));
    }
  });

  test("sinks:N admits exactly positions < N on every head, however the positions are chunked", () => {
    for (const numSinks of [1, 4, 16, 99, 100, 250]) {
      for (const chunks of CHUNKINGS) {
        for (const head of decideInChunks(sinksAndLocal(numSinks), 0, 3, chunks)) {
          head.forEach((f, p) => assert.equal(f, p < numSinks ? 1 : 0, `sinks:${numSinks} position ${p}`));
        }
      }
    }
  });

  test("random decisions do not depend on chunking", () => {
    for (const rate of [0.1, 0.4, 0.9]) {
      const whole = decideInChunks(randomAdmission(rate), 2, 2, [100]);
      for (const chunks of CHUNKINGS.slice(1)) assert.deepEqual(decideInChunks(randomAdmission(rate), 2, 2, chunks), whole);
    }
  });

  test("random admits at its rate (within 0.03 over 20k decisions); rate 0 admits none, rate 1 all", () => {
    for (const rate of [0.05, 0.25, 0.4, 0.5, 0.75, 0.97]) {
      const flags = decideInChunks(randomAdmission(rate), 1, 2, [10_000]);
      const admitted = flags.reduce((n, head) => n + head.reduce((a, f) => a + f, 0), 0);
      assert.ok(Math.abs(admitted / 20_000 - rate) < 0.03, `random:${rate} admitted ${admitted / 20_000}`);
    }
    for (const head of decideInChunks(randomAdmission(0), 1, 2, [2000])) assert.ok(head.every((f) => f === 0));
    for (const head of decideInChunks(randomAdmission(1), 1, 2, [2000])) assert.ok(head.every((f) => f === 1));
  });

  test("random patterns differ between layers, heads and seeds", () => {
    const rate = 0.4;
    const mismatch = (a: Uint8Array, b: Uint8Array) => a.reduce((n, f, i) => n + (f !== b[i] ? 1 : 0), 0) / a.length;
    // independent patterns at rate 0.4 disagree on 2 * 0.4 * 0.6 = 48% of positions
    const [l0h0, l0h1] = decideInChunks(randomAdmission(rate), 0, 2, [4000]);
    const [l1h0, l1h1] = decideInChunks(randomAdmission(rate), 1, 2, [4000]);
    const [s1h0] = decideInChunks(randomAdmission(rate, 1), 0, 2, [4000]);
    for (const [a, b, what] of [[l0h0, l0h1, "heads"], [l0h0, l1h0, "layers"], [l0h1, l1h1, "layers (head 1)"], [l0h0, s1h0, "seeds"]] as const) {
      const m = mismatch(a, b);
      assert.ok(m > 0.4 && m < 0.56, `${what}: patterns disagree on ${m} of positions`);
    }
    // and consecutive positions of one head are not correlated either
    const runs = l0h0.reduce((n, f, i) => n + (i > 0 && f !== l0h0[i - 1] ? 1 : 0), 0) / 3999;
    assert.ok(Math.abs(runs - 0.48) < 0.05, `flag changes between neighbours: ${runs}`);
  });

  test("gate admits iff score > tau, strictly (a score equal to tau, as an f32, is not admitted)", () => {
    for (const tau of [0.1, 0.125, 0.3, 0.5]) {
      const at = Math.fround(tau);
      const above = nextUpF32(at);
      const below = nextDownF32(at);
      const scores = Float32Array.of(at, above, below, 1e-3, 1, at, 0.99, above);
      const expected = [0, 1, 0, 0, 1, 0, 1, 1];
      const flags = new Uint8Array(scores.length);
      const policy = gateAdmission(tau);
      assert.equal(policy.needsGateScores, true);
      policy.decide({ layer: 0, numKvHeads: 2, numTokens: 4, startPos: 9, gateScores: scores }, flags);
      assert.deepEqual([...flags], expected, `tau ${tau}`);
    }
    assert.throws(() => gateAdmission(0.1).decide({ layer: 0, numKvHeads: 1, numTokens: 1, startPos: 0, gateScores: null }, new Uint8Array(1)));
  });
});

describe("parse", () => {
  test("every spec form", () => {
    assert.equal(parseAdmission("full", 0.1), admitAll);
    assert.equal(parseAdmission("local", 0.1), localOnly);
    const sinks = parseAdmission("sinks:4", 0.1);
    assert.equal(sinks.name, "sinks:4");
    assert.deepEqual(decideInChunks(sinks, 0, 1, [6])[0], Uint8Array.of(1, 1, 1, 1, 0, 0));
    const random = parseAdmission("random:0.25", 0.1);
    assert.equal(random.name, "random:0.25");
    assert.deepEqual(decideInChunks(random, 5, 2, [300]), decideInChunks(randomAdmission(0.25), 5, 2, [300]));
    for (const rate of ["0", "1", "0.5"]) assert.equal(parseAdmission(`random:${rate}`, 0.1).name, `random:${Number(rate)}`);
    const gate = parseAdmission("gate", 0.25);
    assert.equal(gate.name, "gate");
    assert.equal(gate.needsGateScores, true);
    const flags = new Uint8Array(2);
    gate.decide({ layer: 0, numKvHeads: 1, numTokens: 2, startPos: 0, gateScores: Float32Array.of(0.25, 0.2501) }, flags);
    assert.deepEqual([...flags], [0, 1], "the tau given to parseAdmission is the gate's");
    for (const policy of [admitAll, localOnly, sinks, random]) assert.equal(policy.needsGateScores, false);

    assert.equal(parseSelection("all", 64), selectAll);
    const quest = parseSelection("quest:128", 64);
    assert.ok(quest instanceof QuestSelection);
    assert.equal(quest.name, "quest:128");
    assert.equal(quest.tracksKeys, true);
    assert.equal(selectAll.tracksKeys, false);

    assert.equal(parseEviction("none"), noEviction);
    const snap = parseEviction("snapkv:96");
    assert.ok(snap instanceof SnapKvEviction);
    assert.equal(snap.name, "snapkv:96");
    assert.ok(snap.observationWindow > 0);
    assert.equal(noEviction.observationWindow, 0);
  });

  test("bad specs are InvalidInputErrors that name the flag", () => {
    const cases: [() => unknown, RegExp][] = [
      [() => parseAdmission("sinks:0", 0.1), /--admission/],
      [() => parseAdmission("sinks:x", 0.1), /--admission/],
      [() => parseAdmission("sinks:2.5", 0.1), /--admission/],
      [() => parseAdmission("sinks", 0.1), /--admission/],
      [() => parseAdmission("random:1.5", 0.1), /--admission/],
      [() => parseAdmission("random:-0.1", 0.1), /--admission/],
      [() => parseAdmission("random:x", 0.1), /--admission/],
      [() => parseAdmission("random", 0.1), /--admission/],
      [() => parseAdmission("random:", 0.1), /--admission/],
      [() => parseAdmission("bogus", 0.1), /--admission/],
      [() => parseAdmission("full:3", 0.1), /--admission/],
      [() => parseAdmission("local:1", 0.1), /--admission/],
      [() => parseAdmission("gate:1", 0.1), /--admission/],
      [() => parseAdmission("gate", 1.5), /--tau/],
      [() => parseAdmission("gate", 0), /--tau/],
      [() => parseSelection("quest:0", 64), /--selection/],
      [() => parseSelection("quest:-3", 64), /--selection/],
      [() => parseSelection("quest", 64), /--selection/],
      [() => parseSelection("quest:1.5", 64), /--selection/],
      [() => parseSelection("bogus", 64), /--selection/],
      [() => parseSelection("all:3", 64), /--selection/],
      [() => parseEviction("snapkv:0", ), /--eviction/],
      [() => parseEviction("snapkv"), /--eviction/],
      [() => parseEviction("snapkv:x"), /--eviction/],
      [() => parseEviction("bogus"), /--eviction/],
      [() => parseEviction("none:3"), /--eviction/],
    ];
    for (const [parse, flag] of cases) {
      assert.throws(parse, (err: unknown) => {
        assert.ok(err instanceof InvalidInputError, `${parse}: ${String(err)} is not an InvalidInputError`);
        assert.match(err.message, flag);
        assert.ok(!err.message.includes("\n"), "one line");
        return true;
      }, String(parse));
    }
  });
});

/** Builds a Quest instance over `numPages` pool pages and writes keys into pages of a head. */
class QuestFixture {
  readonly quest: QuestSelection;
  /** Keys by slot, as written (the oracle reads these). */
  readonly keys = new Map<number, Float32Array>();

  constructor(budget: number, readonly d: number) {
    this.quest = new QuestSelection(budget, d);
  }

  write(slot: number, key: Float32Array, appended = true): void {
    if (appended && slot % PAGE_SIZE === 0) for (let o = 0; o < PAGE_SIZE; o++) this.keys.delete(slot + o); // a page starts afresh
    this.keys.set(slot, key);
    this.quest.onGlobalWrite(slot, key, appended);
  }

  /** Independent upper bound of a page: sum_i max over the page's keys' min/max of q_i k_i, max over query heads. */
  bound(page: number, queries: Float32Array): number {
    const d = this.d;
    const min = new Float64Array(d).fill(Infinity);
    const max = new Float64Array(d).fill(-Infinity);
    for (let o = 0; o < PAGE_SIZE; o++) {
      const k = this.keys.get(page * PAGE_SIZE + o);
      if (!k) continue;
      for (let i = 0; i < d; i++) {
        min[i] = Math.min(min[i], k[i]);
        max[i] = Math.max(max[i], k[i]);
      }
    }
    let best = -Infinity;
    for (let h = 0; h < queries.length / d; h++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += Math.max(queries[h * d + i] * min[i], queries[h * d + i] * max[i]);
      best = Math.max(best, s);
    }
    return best;
  }

  /** Largest actual q.k over the page's keys and the query heads. */
  trueMax(page: number, queries: Float32Array): number {
    let best = -Infinity;
    for (let o = 0; o < PAGE_SIZE; o++) {
      const k = this.keys.get(page * PAGE_SIZE + o);
      if (!k) continue;
      for (let h = 0; h < queries.length / this.d; h++) best = Math.max(best, dot(queries.subarray(h * this.d, (h + 1) * this.d), k));
    }
    return best;
  }
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function randomVector(rng: () => number, d: number, scale = 1, center?: Float32Array): Float32Array {
  return Float32Array.from({ length: d }, (_, i) => (center ? center[i] : 0) + (rng() * 2 - 1) * scale);
}

describe("Quest selection", () => {
  const d = 64;
  const group = 3;
  const numFull = 40;
  const partial = 7;

  /** 40 full pages + a partial page of keys clustered per page (Quest's premise), at scattered page ids. */
  function build(budget: number, seed: number) {
    const rng = createRng(seed);
    const fx = new QuestFixture(budget, d);
    const pageIds = shuffle(Array.from({ length: 64 }, (_, i) => i), rng).slice(0, numFull + 1);
    // stale keys from an earlier owner of some pages: a new page must start afresh
    for (const page of pageIds.slice(0, 10)) for (let o = 0; o < PAGE_SIZE; o++) fx.write(page * PAGE_SIZE + o, randomVector(rng, d, 50));
    pageIds.forEach((page, i) => {
      const center = randomVector(rng, d, 1);
      for (let o = 0; o < (i < numFull ? PAGE_SIZE : partial); o++) fx.write(page * PAGE_SIZE + o, randomVector(rng, d, 0.3, center));
    });
    const view = { globalPageIds: pageIds, numGlobalTokens: numFull * PAGE_SIZE + partial };
    return { fx, view, pageIds, rng };
  }

  test("chooses the top pages by an upper bound: the page with the true max q.k is read; partial page always; order kept", () => {
    let sawDifferentChoice = false;
    for (let trial = 0; trial < 20; trial++) {
      const { fx, view, pageIds, rng } = build(5 * PAGE_SIZE + partial, 100 + trial);
      const queries = randomVector(rng, group * d, 1);
      const out = new Int32Array(64).fill(-1);
      const numGlobal = fx.quest.selectPages(view, queries, out);
      assert.equal(numGlobal, 5 * PAGE_SIZE + partial);
      const chosen = [...out.subarray(0, 5)];
      assert.equal(out[5], pageIds[numFull], "the partial last page is read, last");
      assert.equal(out[6], -1, "nothing more is written");
      // pages keep their original order
      const indices = chosen.map((p) => pageIds.indexOf(p));
      assert.ok(indices.every((i, n) => i >= 0 && i < numFull && (n === 0 || i > indices[n - 1])), `order ${indices}`);
      // every page's bound is an upper bound of its actual q.k, and the chosen pages are the top 5 by it
      const full = pageIds.slice(0, numFull);
      for (const page of full) assert.ok(fx.bound(page, queries) >= fx.trueMax(page, queries) - 1e-9);
      const byBound = [...full].sort((a, b) => fx.bound(b, queries) - fx.bound(a, queries)).slice(0, 5);
      assert.deepEqual([...chosen].sort((a, b) => a - b), [...byBound].sort((a, b) => a - b), `trial ${trial}`);
      // the key with the largest actual q.k sits in a chosen page
      const best = [...full].sort((a, b) => fx.trueMax(b, queries) - fx.trueMax(a, queries))[0];
      assert.ok(chosen.includes(best), `trial ${trial}: the page of the max q.k key (${best}) is not among ${chosen}`);
      const byTrueMax = [...full].sort((a, b) => fx.trueMax(b, queries) - fx.trueMax(a, queries)).slice(0, 5);
      if (byTrueMax.some((p) => !chosen.includes(p))) sawDifferentChoice = true;
    }
    // the choice goes by bounds, not by exact scores: on some trial the two differ
    assert.ok(sawDifferentChoice, "bounds and exact scores always agreed: the test does not tell them apart");
  });

  test("a page whose best key beats a tight page by a hair is preferred (bounds never fall below the real scores)", () => {
    for (let trial = 0; trial < 30; trial++) {
      const rng = createRng(500 + trial);
      const fx = new QuestFixture(PAGE_SIZE, d);
      const queries = randomVector(rng, group * d, 1);
      // page 3: random keys; page 9: 16 copies of one key, so its bound is exact
      for (let o = 0; o < PAGE_SIZE; o++) fx.write(3 * PAGE_SIZE + o, randomVector(rng, d, 1));
      const best = fx.trueMax(3, queries);
      // a key whose best score over the query heads is just below page 3's best key
      const base = randomVector(rng, d, 0.01);
      const h = Math.floor(rng() * group);
      const q = queries.subarray(h * d, (h + 1) * d);
      const qq = dot(q, q);
      const scaled = Float32Array.from(base, (b, i) => b + ((best * (1 - 1e-3) - dot(q, base)) / qq) * q[i]);
      const tight = Math.max(...Array.from({ length: group }, (_, g) => dot(queries.subarray(g * d, (g + 1) * d), scaled)));
      if (tight >= best) continue; // another head scores the tight key higher: no hair to split
      for (let o = 0; o < PAGE_SIZE; o++) fx.write(9 * PAGE_SIZE + o, scaled);
      const out = new Int32Array(4).fill(-1);
      for (const order of [[3, 9], [9, 3]]) {
        assert.equal(fx.quest.selectPages({ globalPageIds: order, numGlobalTokens: 2 * PAGE_SIZE }, queries, out), PAGE_SIZE);
        assert.equal(out[0], 3, `trial ${trial}: page 3 (best key ${best}) lost to a tight page scoring ${tight}`);
      }
    }
  });

  test("keys moved in by eviction widen a page's bounds", () => {
    const rng = createRng(7);
    const fx = new QuestFixture(PAGE_SIZE + 3, d);
    const queries = randomVector(rng, group * d, 1);
    for (const page of [0, 1]) for (let o = 0; o < PAGE_SIZE; o++) fx.write(page * PAGE_SIZE + o, randomVector(rng, d, 0.1));
    fx.write(2 * PAGE_SIZE, randomVector(rng, d, 0.1)); // partial page
    const view = { globalPageIds: [0, 1, 2], numGlobalTokens: 2 * PAGE_SIZE + 1 };
    const out = new Int32Array(4);
    for (const [step, target] of [0, 1, 0].entries()) {
      // each move brings a stronger key than the last (bounds only ever widen)
      const strong = Float32Array.from(queries.subarray(0, d), (x) => x * 10 * (step + 1));
      fx.write(target * PAGE_SIZE + 5, strong, false);
      assert.equal(fx.quest.selectPages(view, queries, out), PAGE_SIZE + 1);
      assert.deepEqual([...out.subarray(0, 2)], [target, 2]);
    }
  });

  test("with a budget covering every token, every page is read in order", () => {
    for (const budget of [40 * PAGE_SIZE + 7, 40 * PAGE_SIZE + 8, 100_000]) {
      const { fx, view, pageIds, rng } = build(budget, 3);
      const out = new Int32Array(64).fill(-1);
      assert.equal(fx.quest.selectPages(view, randomVector(rng, group * d), out), view.numGlobalTokens);
      assert.deepEqual([...out.subarray(0, numFull + 1)], pageIds);
    }
    // a budget one token short drops a page
    const { fx, view, rng } = build(40 * PAGE_SIZE + 6, 3);
    assert.equal(fx.quest.selectPages(view, randomVector(rng, group * d), new Int32Array(64)), 39 * PAGE_SIZE + 7);
  });

  test("a budget below the partial page reads the partial page only; no pages read nothing", () => {
    const { fx, view, pageIds, rng } = build(5, 4);
    const out = new Int32Array(64).fill(-1);
    assert.equal(fx.quest.selectPages(view, randomVector(rng, group * d), out), partial);
    assert.equal(out[0], pageIds[numFull]);
    assert.equal(out[1], -1);
    assert.equal(fx.quest.selectPages({ globalPageIds: [], numGlobalTokens: 0 }, randomVector(rng, group * d), out), 0);
  });

  test("all reads every global page in order", () => {
    const out = new Int32Array(8).fill(-1);
    assert.equal(selectAll.selectPages({ globalPageIds: [9, 2, 30, 4], numGlobalTokens: 3 * PAGE_SIZE + 1 }, new Float32Array(0), out), 3 * PAGE_SIZE + 1);
    assert.deepEqual([...out.subarray(0, 5)], [9, 2, 30, 4, -1]);
  });
});

describe("SnapKV eviction", () => {
  const d = 32;
  const group = 2;

  /** numGlobal random small keys at shuffled positions; `important` indices get keys aligned with one observation query head. */
  function request(numGlobal: number, important: readonly number[], seed: number): EvictionRequest & { positions: Int32Array } {
    const rng = createRng(seed);
    const numObs = 16;
    const direction = randomVector(rng, d, 1);
    const queries = new Float32Array(numObs * group * d);
    for (let o = 0; o < numObs; o++) {
      for (let h = 0; h < group; h++) {
        // head 1 of the group looks along `direction`, head 0 at random
        queries.set(h === 1 ? randomVector(rng, d, 0.1, direction) : randomVector(rng, d, 1), (o * group + h) * d);
      }
    }
    const globalKeys = new Float32Array(numGlobal * d);
    for (let n = 0; n < numGlobal; n++) globalKeys.set(randomVector(rng, d, 0.3), n * d);
    for (const n of important) globalKeys.set(Float32Array.from(direction, (x) => x * 3), n * d);
    const positions = Int32Array.from(shuffle(Array.from({ length: numGlobal }, (_, i) => i * 3 + 1), rng));
    const otherKeys = new Float32Array(64 * d);
    for (let n = 0; n < 64; n++) otherKeys.set(randomVector(rng, d, 0.3), n * d);
    return { headDim: d, globalKeys, globalPositions: positions, positions, otherKeys, queries, numObs, group, scale: 1 / Math.sqrt(d) };
  }

  test("keys the observation queries attend to survive, with their pooled neighbours; exactly `budget` remain", () => {
    const important = [17, 88, 150];
    for (const budget of [40, 96]) {
      const r = request(200, important, 11);
      const drops = new SnapKvEviction(budget).chooseDrops(r);
      assert.equal(drops.length, 200 - budget);
      assert.deepEqual(drops, [...new Set(drops)].sort((a, b) => a - b), "distinct, ascending");
      assert.ok(drops.every((i) => Number.isInteger(i) && i >= 0 && i < 200));
      const kept = new Set(Array.from({ length: 200 }, (_, i) => i).filter((i) => !drops.includes(i)));
      for (const i of important) assert.ok(kept.has(i), `important key ${i} was dropped`);
      // pooling goes by position, not by index: the keys at the 3 neighbouring positions on each side survive
      const byPosition = Array.from({ length: 200 }, (_, i) => i).sort((a, b) => r.positions[a] - r.positions[b]);
      for (const i of important) {
        const at = byPosition.indexOf(i);
        for (let m = at - 3; m <= at + 3; m++) if (m >= 0 && m < 200) assert.ok(kept.has(byPosition[m]), `neighbour of ${i} at rank ${m} was dropped`);
      }
    }
  });

  test("one attending head of the query group is enough, whichever it is", () => {
    const r = request(120, [5, 60], 12);
    const swapped = new Float32Array(r.queries.length);
    for (let o = 0; o < r.numObs; o++) {
      swapped.set(r.queries.subarray((o * group + 1) * d, (o * group + 2) * d), (o * group) * d);
      swapped.set(r.queries.subarray((o * group) * d, (o * group + 1) * d), (o * group + 1) * d);
    }
    for (const queries of [r.queries, swapped]) {
      const drops = new SnapKvEviction(20).chooseDrops({ ...r, queries });
      assert.equal(drops.length, 100);
      assert.ok(!drops.includes(5) && !drops.includes(60), "an aligned key was dropped");
    }
  });

  test("the group's score is its max, not its sum or mean", () => {
    // d = 2, one observation query per head, scale 1. Key A = (1, 0) at index 0 (position 0),
    // key B = (0, 1) at index 10 (position 1000), 18 zero keys at positions 10, 20, ...
    // Head 0 pays A 0.6 and B 0.35; head 1 pays B 0.5 and A ~0.03: max favours A, a sum B.
    const numGlobal = 20;
    const globalKeys = new Float32Array(numGlobal * 2);
    globalKeys.set([1, 0], 0);
    globalKeys.set([0, 1], 10 * 2);
    const globalPositions = Int32Array.from({ length: numGlobal }, (_, i) => (i === 10 ? 1000 : i * 10));
    const queries = Float32Array.of(Math.log(216), Math.log(126), 0, Math.log(19));
    const drops = new SnapKvEviction(1).chooseDrops({ headDim: 2, globalKeys, globalPositions, otherKeys: new Float32Array(0), queries, numObs: 1, group: 2, scale: 1 });
    assert.deepEqual(drops, Array.from({ length: 19 }, (_, i) => i + 1), "only key A (index 0) is kept");
  });

  test("nothing is dropped at or under the budget; shouldEvict allows 16 tokens of slack", () => {
    const policy = new SnapKvEviction(96);
    assert.deepEqual(policy.chooseDrops(request(96, [], 13)), []);
    assert.deepEqual(policy.chooseDrops(request(50, [], 13)), []);
    assert.equal(policy.chooseDrops(request(97, [], 13)).length, 1);
    assert.equal(policy.shouldEvict(96), false);
    assert.equal(policy.shouldEvict(96 + 16), false);
    assert.equal(policy.shouldEvict(96 + 17), true);
    assert.equal(new SnapKvEviction(5).shouldEvict(21), false);
    assert.equal(new SnapKvEviction(5).shouldEvict(22), true);
    assert.equal(noEviction.shouldEvict(1e9), false);
    assert.deepEqual(noEviction.chooseDrops(request(300, [], 13)), []);
  });
});

function shuffle<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** The next f32 above x (x a positive f32). */
function nextUpF32(x: number): number {
  const f = Float32Array.of(x);
  new Uint32Array(f.buffer)[0]++;
  return f[0];
}

function nextDownF32(x: number): number {
  const f = Float32Array.of(x);
  new Uint32Array(f.buffer)[0]--;
  return f[0];
}
