/**
 * bench/syntheticFill: a filled cache is the cache a computed prefill
 * leaves (the same resident pages, the same admitted entries, at the
 * policy's rate), decode runs after it, and data-driven policies are refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../index.js";
import { randomAdmission } from "../kvcache/admission.js";
import { resolveKvPolicy } from "../kvcache/kvPolicy.js";
import { archDir } from "../testing/fixtures.js";
import { runBenches } from "./bench.js";

test("a synthetic fill leaves the cache a prefill leaves, at the policy's admission rate, and decode runs after it", async () => {
  const model = await loadModel(archDir("llama3-scaled"), { backend: "cpu-reference" });
  try {
    const cases = [
      { tag: "random", policy: resolveKvPolicy({ window: 16, admission: randomAdmission(0.3) }) },
      { tag: "full", policy: resolveKvPolicy({ window: 16 }) },
    ];
    const options = { context: 150, decode: 4, repeat: 1, concurrency: 1 };
    const real = await runBenches(model, options, cases, 1);
    const filled = await runBenches(model, { ...options, syntheticFill: true }, cases, 1);
    for (const [i, r] of real.entries()) {
      const f = filled[i];
      assert.equal(f.synthetic_fill, true);
      assert.equal(r.synthetic_fill, false);
      assert.equal(f.kv_resident_bytes, r.kv_resident_bytes, `${cases[i].tag}: resident bytes`);
      assert.equal(f.kv_peak_bytes, r.kv_peak_bytes, `${cases[i].tag}: peak bytes`);
      assert.equal(f.admitted_fraction, r.admitted_fraction, `${cases[i].tag}: admitted fraction`);
      assert.ok(f.decode_tokens_per_s > 0, `${cases[i].tag}: decoded after the fill`);
    }
    assert.ok(Math.abs(filled[0].admitted_fraction - 0.3) < 0.1, `random:0.3 admits ${filled[0].admitted_fraction}`);
    assert.equal(filled[1].admitted_fraction, 1);
    await assert.rejects(
      runBenches(model, { ...options, syntheticFill: true }, [{ tag: "snap", policy: resolveKvPolicy({ window: 16, eviction: { kind: "snapkv", name: "snapkv:32", budget: 32 } as never }) }], 1),
      /synthetic-fill/,
    );
  } finally {
    model.dispose();
  }
});
