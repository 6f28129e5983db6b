/**
 * `wgkv bench` end to end on the default model at small contexts: the JSON
 * shape scripts depend on (one object per context, concurrency and policy),
 * memory figures that follow from the policy, compared settings taking turns
 * run by run, and concurrent sequences batched.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../testing/fixtures.js";

const CLI = join(PROJECT_ROOT, "dist/cli.js");

interface Result {
  context: number;
  concurrency: number;
  policy: string;
  kernels: string;
  kv_dtype: string;
  admitted_fraction: number;
  kv_resident_bytes: number;
  kv_full_attention_bytes: number;
  aggregate_prefill_tokens_per_s: number;
  aggregate_decode_tokens_per_s: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  sequences_fitting_kv_memory: number;
  ratio?: { kv_resident: number; prefill_time: number; sequences_fitting: number };
  vs_one_sequence?: { aggregate_prefill: number; aggregate_decode: number };
}

function bench(args: string[]): Result[] {
  const run = spawnSync(process.execPath, [CLI, "bench", ...args, "--json"], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 180_000 });
  assert.equal(run.status, 0, run.stderr);
  const results = JSON.parse(run.stdout) as Result[];
  assert.ok(Array.isArray(results));
  return Object.assign(results, { stderr: run.stderr });
}

test("bench runs the kernel build --simd names and says which ran", () => {
  for (const [simd, kernels] of [["baseline", "wasm SIMD, 1 thread"], ["relaxed", "wasm relaxed SIMD (FMA), 1 thread"]]) {
    const [r] = bench(["--context", "32", "--decode", "1", "--repeat", "1", "--threads", "1", "--simd", simd]);
    assert.equal(r.kernels, kernels);
    assert.equal(r.policy, "full");
  }
});

test("bench compares a policy with full attention, interleaving their runs", () => {
  const results = bench(["--context", "64,96", "--decode", "3", "--repeat", "2", "--admission", "local", "--window", "32", "--threads", "2"]) as Result[] & { stderr: string };
  assert.deepEqual(results.map((r) => [r.context, r.concurrency, r.policy]), [[64, 1, "local/all/none/w32"], [64, 1, "full"], [96, 1, "local/all/none/w32"], [96, 1, "full"]]);
  for (let i = 0; i < results.length; i += 2) {
    const [r, full] = [results[i], results[i + 1]];
    assert.match(r.kernels, /^wasm .*2 threads$/);
    assert.equal(r.kv_dtype, "f32");
    assert.equal(r.admitted_fraction, 0);
    assert.equal(full.admitted_fraction, 1);
    // bytes per token of all (layer, KV head)s: 8 layers × 2 KV heads × K and V × 64 dims × f32;
    // the cache holds the prompt and all generated tokens but the last
    const perToken = 8 * 2 * 2 * 64 * 4, tokens = r.context + 3;
    assert.equal(r.kv_full_attention_bytes, tokens * perToken);
    // local-only holds the window's two pages per head; full attention whole pages of every token
    assert.equal(r.kv_resident_bytes, 32 * perToken);
    assert.equal(full.kv_resident_bytes, Math.ceil(tokens / 16) * 16 * perToken);
    assert.equal(r.ratio!.kv_resident, Math.round((r.kv_resident_bytes / full.kv_resident_bytes) * 1000) / 1000);
    assert.ok(r.sequences_fitting_kv_memory > full.sequences_fitting_kv_memory, "a local-only sequence takes less of the pool");
    assert.ok(r.aggregate_prefill_tokens_per_s > 0 && r.aggregate_decode_tokens_per_s > 0);
  }
  // per context: warm-up, then each round runs the policy, then full attention
  const tags = results.stderr.trim().split("\n").map((line) => /^\[(\w+) (\d+) x1\] (warm-up|run \d)/.exec(line)?.slice(1, 4).join(" "));
  assert.deepEqual(tags, [64, 96].flatMap((n) => ["warm-up", "run 1", "run 2"].flatMap((what) => [`policy ${n} ${what}`, `full ${n} ${what}`])));
});

test("bench --no-full measures the policy alone: no full-attention runs, no ratios", () => {
  const results = bench(["--context", "64", "--decode", "2", "--repeat", "1", "--warmup", "0", "--admission", "local", "--window", "32", "--threads", "1", "--no-full"]) as Result[] & { stderr: string };
  assert.deepEqual(results.map((r) => r.policy), ["local/all/none/w32"]);
  assert.equal(results[0].ratio, undefined);
  assert.deepEqual(results.stderr.trim().split("\n").map((line) => /^\[(\w+) /.exec(line)?.[1]), ["policy"]);
});

test("bench --concurrency runs sequences together: aggregate and per-sequence figures", () => {
  const results = bench(["--context", "48", "--concurrency", "1,3", "--decode", "4", "--repeat", "1", "--threads", "1"]);
  assert.deepEqual(results.map((r) => [r.concurrency, r.policy]), [[1, "full"], [3, "full"]]);
  for (const r of results) {
    assert.ok(Math.abs(r.prefill_tokens_per_s * r.concurrency - r.aggregate_prefill_tokens_per_s) < 0.05 * r.aggregate_prefill_tokens_per_s);
    assert.ok(r.aggregate_decode_tokens_per_s > 0);
  }
  // each against the one-sequence run of the same context and policy
  const [one, three] = results;
  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  assert.deepEqual(one.vs_one_sequence, { aggregate_prefill: 1, aggregate_decode: 1 });
  assert.deepEqual(three.vs_one_sequence, {
    aggregate_prefill: ratio(three.aggregate_prefill_tokens_per_s, one.aggregate_prefill_tokens_per_s),
    aggregate_decode: ratio(three.aggregate_decode_tokens_per_s, one.aggregate_decode_tokens_per_s),
  });
});

test("bench takes the engine's step size (--max-batch-tokens, --prefill-chunk) and refuses a bad one in one line", () => {
  const [whole] = bench(["--context", "48", "--decode", "1", "--repeat", "1", "--warmup", "0", "--threads", "1"]);
  const [chunked] = bench(["--context", "48", "--decode", "1", "--repeat", "1", "--warmup", "0", "--threads", "1", "--max-batch-tokens", "16", "--prefill-chunk", "16"]);
  assert.equal(chunked.kv_resident_bytes, whole.kv_resident_bytes);
  for (const [flag, value] of [["--prefill-chunk", "0"], ["--max-batch-tokens", "many"]]) {
    const run = spawnSync(process.execPath, [CLI, "bench", "--context", "16", flag, value], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60_000 });
    assert.notEqual(run.status, 0);
    assert.equal(run.stderr.trim(), `wgkv: error: ${flag} must be an integer >= 1, got "${value}"`);
  }
});
