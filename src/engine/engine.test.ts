/**
 * The engine as a library user and a server see it: one host round trip per
 * decode step, the event loop kept alive, aborts that free pages at once,
 * a pool whose counters come back to zero after any mix of finished, aborted
 * and preempted sequences, and results reachable however the stream is read.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_MODEL_DIR, generate, loadGateFile, loadModel, type GateInput, type Model } from "../index.js";
import { InvalidInputError } from "../errors.js";
import { Engine } from "./engine.js";
import { resolveEngineConfig } from "./engineConfig.js";
import { resolveKvOptions } from "./kvOptions.js";
import { probeSequences } from "../testing/engineProbe.js";

let model: Model;
let gate: GateInput;
const GATE = join(DEFAULT_MODEL_DIR, "gates/wgkv-tiny-chat-gate-0.016n.pt");

before(async () => {
  model = await loadModel(DEFAULT_MODEL_DIR);
  gate = await loadGateFile(GATE, model);
});
after(() => model.dispose());

const text = (n: number) => Array.from({ length: n }, (_, i) => 100 + ((i * 7919) % 5000));

function assertPoolIdle(engine: Engine = model.engine): void {
  engine.kv.checkInvariants();
  const stats = engine.stats();
  assert.equal(stats.numRunning + stats.numWaiting, 0, "no sequence left");
  assert.equal(stats.numFreePages, stats.numUsablePages, "every page back in the pool");
  assert.equal(engine.kv.numFreeSlots, engine.config.maxSeqs, "every slot back");
}

describe("host round trips", () => {
  const cases: [string, object][] = [
    ["full", {}],
    ["local", { admission: "local", window: 64 }],
    ["sinks:4", { admission: "sinks:4", window: 64 }],
    ["random:0.3", { admission: "random:0.3", window: 64 }],
    ["gate", { window: 64 }],
    ["gate + quest:64", { window: 64, selection: "quest:64" }],
    ["gate + snapkv:64", { window: 64, eviction: "snapkv:64" }],
  ];
  for (const [name, kv] of cases) {
    test(`${name}: one backend read per decode step`, async () => {
      const b = model.backend;
      const options = { kv: { ...kv, ...(name.startsWith("gate") ? { gate } : {}) }, maxNewTokens: 1, temperature: 0 };
      // the prompt alone first, so that decode steps are counted on their own
      const prompt = text(600);
      const reads0 = b.counters.numReads;
      const steps0 = model.engine.stats().numSteps;
      await generate(model, prompt, options).result;
      const prefillReads = b.counters.numReads - reads0;
      const prefillSteps = model.engine.stats().numSteps - steps0;
      assert.equal(prefillReads, prefillSteps, "one read per prefill step");
      const reads1 = b.counters.numReads;
      const steps1 = model.engine.stats().numSteps;
      const r = await generate(model, prompt, { ...options, maxNewTokens: 33 }).result;
      assert.equal(r.tokenIds.length, 33);
      const reads = b.counters.numReads - reads1;
      const steps = model.engine.stats().numSteps - steps1;
      assert.equal(steps, prefillSteps + 32, "32 decode steps after the same prefill");
      assert.equal(reads, steps, `${reads} reads for ${steps} steps`);
    });
  }
});

test("the event loop runs during a long generation: a 10 ms timer fires every 50 ms but for rare spikes, and a timeout aborts it", async () => {
  const ticks: number[] = [];
  const timer = setInterval(() => ticks.push(performance.now()), 10);
  const start = performance.now();
  const stream = generate(model, text(3000), { maxNewTokens: 400, signal: AbortSignal.timeout(1500) });
  for await (const _ of stream) {
    // consume
  }
  clearInterval(timer);
  const r = await stream.result;
  const end = performance.now();
  assert.equal(r.finishReason, "aborted", "AbortSignal.timeout ended the generation");
  assert.ok(end - start < 2500, `the abort took effect ${end - start - 1500} ms late`);
  const gaps = [ticks[0] - start, ...ticks.slice(1).map((t, i) => t - ticks[i])];
  assert.ok(ticks.length > 20, `only ${ticks.length} ticks`);
  // NOTE: a busy machine may deschedule the whole process now and then; an engine that blocks does it at every step
  const blocked = gaps.filter((g) => g >= 50);
  assert.ok(blocked.length <= Math.max(2, gaps.length / 50), `the event loop was blocked ${blocked.length} times of ${gaps.length}: ${blocked.map((g) => g.toFixed(0)).join(", ")} ms`);
  assert.ok(Math.max(...gaps) < 300, `the event loop was blocked for ${Math.max(...gaps).toFixed(1)} ms`);
  assertPoolIdle();
});

describe("endings", () => {
  test("an abort signal set before the start ends at once with an empty text", async () => {
    const controller = new AbortController();
    controller.abort();
    const stream = generate(model, text(50), { signal: controller.signal });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const r = await stream.result;
    assert.deepEqual(chunks, []);
    assert.equal(r.finishReason, "aborted");
    assert.equal(r.text, "");
    assert.deepEqual(r.tokenIds, []);
  });

  test("an end-of-sequence first token gives an empty text, not an error", async () => {
    // the golden chat prompt of the default model is answered; its answer's own end-of-turn comes after it
    const eot = [...model.eosTokenIds][0];
    const prompt = [...text(20), eot];
    // find a seed whose first sampled token is an end-of-sequence id (the model likes to end after one)
    let found = false;
    for (let seed = 0; seed < 200 && !found; seed++) {
      const r = await generate(model, prompt, { maxNewTokens: 1, temperature: 2, seed }).result;
      if (model.eosTokenIds.has(r.tokenIds[0])) {
        found = true;
        const again = await generate(model, prompt, { maxNewTokens: 8, temperature: 2, seed }).result;
        assert.equal(again.finishReason, "eos");
        assert.equal(again.text, "");
        assert.deepEqual(again.tokenIds, r.tokenIds);
      }
    }
    assert.ok(found, "no seed produced an end-of-sequence first token");
  });

  test("breaking out of for-await aborts the generation and frees its pages; the result stays reachable", async () => {
    const stream = generate(model, text(300), { maxNewTokens: 200 });
    let n = 0;
    for await (const _ of stream) if (++n === 3) break;
    const r = await stream.result;
    assert.equal(r.finishReason, "aborted");
    assert.equal(r.tokenIds.length, 3);
    assertPoolIdle();
  });

  test("an abort mid-prompt frees the sequence's pages at once", async () => {
    const stream = generate(model, text(4000), { maxNewTokens: 4 });
    // wait until the prompt is partly in the cache
    while (model.engine.stats().numFreePages === model.engine.stats().numUsablePages) await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    stream.abort();
    const r = await stream.result;
    const ms = performance.now() - t0;
    assert.equal(r.finishReason, "aborted");
    assertPoolIdle();
    assert.ok(ms < 100, `the pages came back ${ms.toFixed(0)} ms after the abort`);
  });
});

test("after a mix of finished, aborted and preempted sequences the pool is whole again", async () => {
  const policy = resolveKvOptions({ window: 64 }, model);
  const small = new Engine(model.backend, model.parts, resolveEngineConfig({ kvMemory: 400 * 8192, maxSeqs: 6, prefillChunk: 16 }, model.config, model.backend.availableBytes(), 64));
  try {
    const runs = probeSequences(model, small, [
      { ids: text(200), policy, maxNewTokens: 20 },
      { ids: text(150), policy, maxNewTokens: 30 },
      { ids: text(120), policy, maxNewTokens: 10 },
    ]);
    const aborted = new Promise<void>((resolve) => {
      const seq = small.add(text(180), { maxNewTokens: 50, sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 }, policy, logitsFrom: null, singleTokenFrom: null, traceGateScores: false, eosTokenIds: new Set() }, {
        onToken: (() => {
          let n = 0;
          return () => (++n === 5 ? (small.abort(seq), "continue") : "continue");
        })(),
        onFinish: (reason) => {
          assert.equal(reason, "aborted");
          resolve();
        },
      });
    });
    const [results] = await Promise.all([runs, aborted]);
    assert.ok(small.stats().numPreemptions > 0, "the pool was small enough to preempt");
    assert.deepEqual(results.map((r) => r.tokens.length), [20, 30, 10]);
    await small.idle();
    assertPoolIdle(small);
  } finally {
    small.dispose();
  }
});

describe("library options", () => {
  test("spec strings of the CLI work from the library: gate path, quest, snapkv", async () => {
    const r = await generate(model, text(400), { maxNewTokens: 4, kv: { gate: GATE, selection: "quest:64", eviction: "snapkv:128", window: 64 } }).result;
    assert.equal(r.tokenIds.length, 4);
    const admitted = r.kv.admittedByHead.flat().reduce((a, b) => a + b, 0);
    assert.ok(admitted > 0 && admitted < r.kv.numTokens * 16, `the gate admitted ${admitted}`);
  });

  const bad: [string, () => Promise<unknown>, RegExp][] = [
    ["unknown admission", () => generate(model, text(8), { kv: { admission: "sometimes" } }).result, /kv\.admission "sometimes" is not one of/],
    ["bad quest budget", () => generate(model, text(8), { kv: { selection: "quest:0" } }).result, /kv\.selection quest:BUDGET must be a positive integer/],
    ["gate admission without a gate", () => generate(model, text(8), { kv: { admission: "gate" } }).result, /kv\.admission gate needs kv\.gate/],
    ["tau without a gate", () => generate(model, text(8), { kv: { tau: 0.2 } }).result, /kv\.tau is only used by gate admission/],
    ["a gate another admission would not read", () => generate(model, text(8), { kv: { gate: GATE, admission: "local" } }).result, /^kv\.gate is only used by gate admission, and kv\.admission is local$/],
    ["window not a multiple of 16", () => generate(model, text(8), { kv: { window: 100 } }).result, /kv\.window must be a positive multiple of 16/],
    ["a gate trained with a window past the engine's", () => generate(model, text(8), { kv: { gate: { ...gate, meta: { ...gate.meta, window: 8192 } } } }).result, /^gate file .*wgkv-tiny-chat-gate-0\.016n\.pt: metadata window=8192 is larger than this engine's largest window 4096; set kv\.window \(at most 4096/],
    ["a missing gate file", () => generate(model, text(8), { kv: { gate: "/no/such/gate.pt" } }).result, /\/no\/such\/gate\.pt: cannot read the gate file/],
    ["unknown option", () => generate(model, text(8), { maxTokens: 3 } as never).result, /unknown generate option "maxTokens"/],
    ["maxNewTokens NaN", () => generate(model, text(8), { maxNewTokens: NaN }).result, /^maxNewTokens must be an integer >= \d+, got NaN$/],
    ["negative temperature", () => generate(model, text(8), { temperature: -1 }).result, /temperature must be a number >= 0/],
    ["top-p of 0", () => generate(model, text(8), { topP: 0 }).result, /topP must be a number in \(0, 1\]/],
    ["token out of range", () => generate(model, [1, 99999]).result, /token id 99999 at index 1 is out of range/],
    ["an empty prompt", () => generate(model, []).result, /the prompt is empty/],
    ["a null prompt", () => generate(model, null as never).result, /^the prompt must be a string, an array of token ids or \{ messages \}, got null$/],
    ["an object without messages", () => generate(model, { text: "hi" } as never).result, /^the prompt must be .*, got an object without messages$/],
    ["no messages", () => generate(model, { messages: [] }).result, /^messages must be a non-empty array of \{ role, content \}$/],
    ["messages as a string", () => generate(model, { messages: "hi" } as never).result, /^messages must be a non-empty array/],
    ["a message whose content is not text", () => generate(model, { messages: [{ role: "user", content: "a" }, { role: "user", content: 5 }] } as never).result, /^messages\[1\] must be \{ role: string, content: string \}, got \{"role":"user","content":5\}$/],
    ["a null message", () => generate(model, { messages: [null] } as never).result, /^messages\[0\] must be \{ role: string, content: string \}, got null$/],
    ["too long a prompt", () => generate(model, text(10), { maxNewTokens: 1 << 20 }).result, /exceeds the context/],
  ];
  for (const [what, run, message] of bad) {
    test(`${what}: a one-line WgkvError`, async () => {
      await assert.rejects(run(), (err: unknown) => {
        assert.ok(err instanceof Error && err.name !== "Error" && err.name !== "TypeError", `not a WgkvError: ${String(err)}`);
        assert.match(err.message, message);
        assert.ok(!err.message.includes("\n"), "one line");
        return true;
      });
    });
  }

  test("engine options are checked at load: prefillChunk 0, kvDType f8, kvMemory garbage", async () => {
    await assert.rejects(loadModel(DEFAULT_MODEL_DIR, { prefillChunk: 0 }), /prefillChunk must be a positive integer, got 0/);
    await assert.rejects(loadModel(DEFAULT_MODEL_DIR, { kvDType: "f8" as never }), /kvDType must be one of f32, f16, bf16, got "f8"/);
    await assert.rejects(loadModel(DEFAULT_MODEL_DIR, { kvMemory: "lots" }), /kvMemory must be bytes/);
    await assert.rejects(loadModel(DEFAULT_MODEL_DIR, { kvMemory: 1000 }), /kvMemory 1000 bytes holds 0 pages/);
  });

  test("a quest budget past the sequence's length selects every page: the tokens of selection all", async () => {
    const prompt = text(300);
    const all = await generate(model, prompt, { maxNewTokens: 4, ignoreEos: true, kv: { gate: GATE, window: 64 } }).result;
    const quest = await generate(model, prompt, { maxNewTokens: 4, ignoreEos: true, kv: { gate: GATE, window: 64, selection: "quest:16777216" } }).result;
    assert.deepEqual(quest.tokenIds, all.tokenIds);
  });

  test("the CPU backend past 2 GiB of memory (a 2.5 GiB KV pool: addresses above 2^31) answers as with a small pool", async () => {
    const big = await loadModel(DEFAULT_MODEL_DIR, { kvMemory: "2.5GiB", threads: 1 });
    try {
      const prompt = text(300);
      const want = await generate(model, prompt, { maxNewTokens: 4, ignoreEos: true, kv: { gate: GATE } }).result;
      const got = await generate(big, prompt, { maxNewTokens: 4, ignoreEos: true, kv: { gate: GATE } }).result;
      assert.deepEqual(got.tokenIds, want.tokenIds);
    } finally {
      big.dispose();
    }
  });

  test("requests the KV pool can never hold, in prefill or in decode, fail alone: the engine goes on with the next", async () => {
    // 1 MiB: 3000 prompt tokens do not fit; 425984 bytes: a short prompt outgrows it while generating
    for (const [kvMemory, prompt, maxNewTokens] of [["1MiB", text(3000), 1], [425_984, text(2), 2000]] as const) {
      const m = await loadModel(DEFAULT_MODEL_DIR, { kvMemory, threads: 1 });
      try {
        await assert.rejects(generate(m, prompt, { maxNewTokens, ignoreEos: true }).result, (e: unknown) => e instanceof InvalidInputError && /^the KV memory budget is too small for this request/.test(e.message));
        const next = await generate(m, text(4), { maxNewTokens: 2, ignoreEos: true }).result;
        assert.deepEqual([next.finishReason, next.tokenIds.length], ["length", 2]);
        await m.engine.idle();
      } finally {
        m.dispose();
      }
    }
  });

  test("a disposed model refuses work with one line", async () => {
    const m = await loadModel(DEFAULT_MODEL_DIR, { threads: 1 });
    m.dispose();
    await assert.rejects(generate(m, text(4)).result, /was used after dispose\(\)/);
  });
});
