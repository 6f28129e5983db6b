/**
 * `wgkv bench` end to end on the default model at small contexts: the JSON
 * shape, memory ratios that follow from the policy, and compared settings
 * taking turns run by run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(ROOT, "dist/cli.js");

interface Result {
  context: number;
  policy: string;
  kernels: string;
  admitted_fraction: number;
  kv_resident_bytes: number;
  kv_full_attention_bytes: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  full_attention: Result;
  ratio: { kv_resident: number; prefill_time: number };
}

test("bench runs the kernel build --simd names and says which ran", () => {
  for (const [simd, kernels] of [["baseline", "wasm SIMD, 1 thread"], ["relaxed", "wasm relaxed SIMD (FMA), 1 thread"]]) {
    const args = ["bench", "--context", "32", "--decode", "1", "--repeat", "1", "--threads", "1", "--simd", simd, "--json"];
    const run = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as Result).kernels, kernels);
  }
});

test("bench compares a policy with full attention, interleaving their runs", () => {
  const args = ["bench", "--context", "64,96", "--decode", "3", "--repeat", "2", "--admission", "local", "--window", "32", "--threads", "2", "--json"];
  const run = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  assert.equal(run.status, 0, run.stderr);
  const results = JSON.parse(run.stdout) as Result[];
  assert.deepEqual(results.map((r) => r.context), [64, 96]);
  for (const r of results) {
    assert.equal(r.policy, "local/all/none/w32/f32");
    assert.equal(r.full_attention.policy, "full/all/none/w32/f32");
    assert.match(r.kernels, /^wasm .*2 threads$/);
    assert.equal(r.admitted_fraction, 0);
    assert.equal(r.full_attention.admitted_fraction, 1);
    // bytes per token of all (layer, KV head)s: 8 layers × 2 KV heads × K and V × 64 dims × f32
    const perToken = 8 * 2 * 2 * 64 * 4, tokens = r.context + 3;
    assert.equal(r.kv_full_attention_bytes, tokens * perToken);
    // local-only holds the window's two pages per head; full attention whole pages of every token
    assert.equal(r.kv_resident_bytes, 32 * perToken);
    assert.equal(r.full_attention.kv_resident_bytes, Math.ceil(tokens / 16) * 16 * perToken);
    assert.equal(r.ratio.kv_resident, Math.round((r.kv_resident_bytes / r.full_attention.kv_resident_bytes) * 1000) / 1000);
    assert.ok(r.prefill_tokens_per_s > 0 && r.decode_tokens_per_s > 0);
  }
  // per context: warm-up, then each round runs the policy, then full attention
  const tags = run.stderr.trim().split("\n").map((line) => /^\[(\w+) (\d+)\] (warm-up|run \d)/.exec(line)?.slice(1, 4).join(" "));
  assert.deepEqual(tags, [64, 96].flatMap((n) => ["warm-up", "run 1", "run 2"].flatMap((what) => [`policy ${n} ${what}`, `full ${n} ${what}`])));
});
