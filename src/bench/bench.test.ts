/**
 * bench/bench's decode timing: the timed tokens are exactly the ones asked
 * for, per sequence, with or without an untimed warm-up before them, and the
 * warm-up decodes for at least as long as asked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../index.js";
import { resolveKvPolicy } from "../kvcache/kvPolicy.js";
import { archDir } from "../testing/fixtures.js";
import { runBenches } from "./bench.js";

test("bench times the decode tokens asked for, after an untimed warm-up of at least the time asked for", async () => {
  const model = await loadModel(archDir("llama3-scaled"), { backend: "cpu-reference" });
  try {
    const cases = [{ tag: "full", policy: resolveKvPolicy({ window: 16 }) }];
    const run = async (concurrency: number, decodeWarmupMs: number) => {
      const lines: string[] = [];
      const t0 = performance.now();
      const [r] = await runBenches(model, { context: 40, decode: 3, repeat: 1, concurrency, warmup: 0, decodeWarmupMs }, cases, 1, (_, line) => lines.push(line));
      return { r, ms: performance.now() - t0, tokens: Number(/decode \d+ ms for (\d+) tokens/.exec(lines[0])![1]) };
    };
    const plain = await run(1, 0);
    assert.equal(plain.tokens, 3);
    const warm = await run(1, 300);
    assert.equal(warm.tokens, 3, "the warm-up's tokens are not timed");
    assert.ok(warm.ms >= 300, `the run took ${warm.ms} ms`);
    assert.ok(warm.r.kv_full_attention_bytes > plain.r.kv_full_attention_bytes, "the warm-up decoded tokens into the cache");
    const batched = await run(2, 0);
    assert.equal(batched.tokens, 2 * 3, "each sequence's tokens, stepped together");
  } finally {
    model.dispose();
  }
});
