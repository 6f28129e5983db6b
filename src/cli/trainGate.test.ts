/**
 * `wgkv train-gate` end to end on the embedded model at tiny settings: the
 * gate file (loadable, with its metadata, by the gate reader and by `eval`),
 * the report, progress lines, checkpoints and --resume, --quiet; and the
 * one-line errors: lambda <= 0 or missing, text too short for the length, a
 * model of an unsupported architecture, a checkpoint of another model, an
 * existing --out; --random-weights (timing runs).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadGate } from "../gate/gateFile.js";
import { copyModel, expectCliError, runCli } from "../testing/cli.js";
import { DEFAULT_MODEL_DIR } from "../testing/fixtures.js";
import { saveCheckpoint } from "../train/checkpoint.js";

let tmp = "";
before(() => (tmp = mkdtempSync(join(tmpdir(), "wgkv-train-cli-"))));
after(() => tmp && rmSync(tmp, { recursive: true, force: true }));

const TINY = ["--length", "288", "--window", "32", "--batch", "2", "--threads", "1", "--report-samples", "2"];
const MODEL_SHAPE = { numLayers: 8, numKvHeads: 2, headDim: 64 };

test("train-gate writes a gate, its report and checkpoints; --resume continues the run", () => {
  const out = join(tmp, "g.safetensors");
  const r = runCli(["train-gate", "--lambda", "0.1", "--steps", "2", "--needle-mix", "0.5", "--checkpoint-every", "1", "--out", out, ...TINY]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.match(lines[0]!, /^train-gate: wgkv-tiny-chat \(llama L8 H384 I1024 heads6\/2 d64 V8192\), 533520 gate parameters; 2 steps x 2 samples of 288 tokens \(50% needles\), lambda 0\.1, window 32; /);
  for (const step of [1, 2]) {
    assert.ok(lines.some((l) => new RegExp(`^step ${step}/2  loss \\d\\.\\d{5}  distill \\d\\.\\d{5}  sparsity \\d\\.\\d{4}  admitted [01]\\.\\d{3}  lr \\S+  \\S+/step  \\S+ left$`).test(l)), `step ${step} line in:\n${r.stderr}`);
  }
  const { gate, meta, format } = loadGate(new Uint8Array(readFileSync(out)), out, MODEL_SHAPE);
  assert.equal(format, "safetensors");
  assert.equal(gate.hiddenPerHead, 256);
  assert.deepEqual({ ...meta, model: undefined }, { window: 32, tau: 0.1, lambda: 0.1, expand: 4, model: undefined });
  assert.match(meta.model!, /^wgkv-tiny-chat \(llama L8 /);
  const report = JSON.parse(readFileSync(join(tmp, "g.report.json"), "utf8")) as { heads: { admitted: number }[]; admitted: number; steps: number };
  assert.equal(report.heads.length, 16);
  assert.ok(report.admitted > 0.5, "two steps from an admit-most start still admit most");
  assert.match(readFileSync(join(tmp, "g.histograms.svg"), "utf8"), /layer 7 head 1: \d+\.\d% admitted/);
  assert.match(r.stdout, /^admitted \(g > 0\.1\) on 2 held-out samples: \d+\.\d% overall\n/);
  assert.ok(existsSync(`${out}.ckpt`));

  const resumed = runCli(["train-gate", "--lambda", "0.1", "--steps", "3", "--needle-mix", "0.5", "--resume", `${out}.ckpt`, "--out", out, ...TINY]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /; resuming at step 3\n/);
  assert.doesNotMatch(resumed.stderr, /^step [12]\//m);
  assert.match(resumed.stderr, /^step 3\/3 /m);

  // the gate runs in eval as gate:FILE
  const ev = runCli(["eval", "--policies", `gate:${out}`, "--lengths", "288", "--cases", "1", "--window", "32", "--out", join(tmp, "eval")]);
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, /\| niah \| 288 \| gate:g\.safetensors \| 1 \|/);
});

test("--random-weights trains on seeded random weights of the config (other losses than the model's; the same for the same seed)", () => {
  const loss = (extra: string[], name: string) => {
    const r = runCli(["train-gate", "--lambda", "0.1", "--steps", "1", "--out", join(tmp, name), ...TINY, ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return /^step 1\/1  loss (\S+) /m.exec(r.stderr)![1];
  };
  const real = loss([], "real.safetensors");
  const random = loss(["--random-weights", "7"], "random.safetensors");
  assert.notEqual(random, real);
  assert.equal(loss(["--random-weights", "7"], "random2.safetensors"), random);
  expectCliError(["train-gate", "--lambda", "0.1", "--random-weights", "x", "--out", join(tmp, "never.safetensors")], ['--random-weights must be an integer >= 0, got "x"']);
});

test("--quiet prints nothing", () => {
  const r = runCli(["train-gate", "--lambda", "0.1", "--steps", "1", "--quiet", "--out", join(tmp, "q.safetensors"), ...TINY]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.equal(r.stdout, "");
  assert.ok(existsSync(join(tmp, "q.safetensors")));
});

test("train-gate refuses bad input with one line", () => {
  const out = join(tmp, "never.safetensors");
  expectCliError(["train-gate", "--lambda", "0", "--out", out], ["--lambda must be a number > 0", '"0"']);
  expectCliError(["train-gate", "--lambda", "-0.5", "--out", out], ["--lambda", "-0.5"]);
  expectCliError(["train-gate", "--out", out], ["--lambda is required"]);
  expectCliError(["train-gate", "--lambda", "0.1", "--needle-mix", "1.5", "--out", out], ["--needle-mix", "[0, 1]"]);
  expectCliError(["train-gate", "--lambda", "0.1", "--window", "300", "--out", out], ["--window must be a multiple of 16"]);

  const short = join(tmp, "short.txt");
  writeFileSync(short, "A few words of text, far too few for a sample.\n".repeat(20));
  expectCliError(["train-gate", "--lambda", "0.1", "--data", short, "--length", "4096", "--out", out], [`--data ${short}: the text holds about`, "--length 4096"]);

  const gpt2 = copyModel(DEFAULT_MODEL_DIR, join(tmp, "gpt2"), (dir) => {
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, architectures: ["GPT2LMHeadModel"], model_type: "gpt2" }));
  });
  expectCliError(["train-gate", "--lambda", "0.1", "--model", gpt2, "--out", out], ["config.json", "unsupported architecture GPT2LMHeadModel"]);

  const foreign = join(tmp, "foreign.ckpt");
  const identity = { model: "qwen3 L2 H64 I128 heads4/2 d16 V512", lambda: 0.1, window: 256, length: 4096, expand: 4 };
  writeFileSync(foreign, saveCheckpoint({ identity, nextStep: 3, params: new Float32Array(8), adam: { m: new Float32Array(8), v: new Float32Array(8), step: 3 } }));
  expectCliError(["train-gate", "--lambda", "0.1", "--resume", foreign, "--out", out], [`--resume ${foreign}: a checkpoint of another model (qwen3 L2`, "llama L8"]);

  const existing = join(tmp, "exists.safetensors");
  writeFileSync(existing, "x");
  expectCliError(["train-gate", "--lambda", "0.1", "--out", existing], [`--out ${existing}: already exists`, "--force"]);
  assert.equal(existsSync(out), false);
});
