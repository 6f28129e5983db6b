import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import { checkResumable, loadCheckpoint, saveCheckpoint, type RunIdentity } from "./checkpoint.js";

const identity: RunIdentity = { model: "llama L8 H384 I1024 heads6/2 d64 V8192", lambda: 0.08, window: 256, length: 4096, expand: 4 };

test("a checkpoint round-trips parameters, optimizer state and the step", () => {
  const params = Float32Array.of(1, -2, 3.5), m = Float32Array.of(0.1, 0.2, 0.3), v = Float32Array.of(1e-4, 2e-4, 3e-4);
  const back = loadCheckpoint(saveCheckpoint({ identity, nextStep: 25, params, adam: { m, v, step: 25 } }), "run.ckpt");
  assert.deepEqual(back.identity, identity);
  assert.equal(back.nextStep, 25);
  assert.equal(back.adam.step, 25);
  assert.deepEqual([back.params, back.adam.m, back.adam.v], [params, m, v]);
  checkResumable(back, identity, 3, "run.ckpt");
});

test("resuming refuses another model's checkpoint, changed settings and foreign files, in one line", () => {
  const ckpt = loadCheckpoint(saveCheckpoint({ identity, nextStep: 1, params: new Float32Array(3), adam: { m: new Float32Array(3), v: new Float32Array(3), step: 1 } }), "a.ckpt");
  const refuses = (fn: () => void, re: RegExp) => assert.throws(fn, (e: Error) => e instanceof InvalidInputError && re.test(e.message) && !e.message.includes("\n"));
  refuses(() => checkResumable(ckpt, { ...identity, model: "qwen3 L2 H64 I128 heads4/2 d16 V512" }, 3, "a.ckpt"),
    /^--resume a\.ckpt: a checkpoint of another model \(llama L8 .*\), not of --model's \(qwen3 L2 .*\)$/);
  refuses(() => checkResumable(ckpt, { ...identity, lambda: 0.16 }, 3, "a.ckpt"), /^--resume a\.ckpt: the run had --lambda 0\.08, this command gives 0\.16; resume with the same value$/);
  refuses(() => checkResumable(ckpt, identity, 4, "a.ckpt"), /holds 3 gate parameters, this model's gate has 4/);
  refuses(() => loadCheckpoint(new TextEncoder().encode("not a checkpoint at all"), "x.bin"), /x\.bin/);
});
