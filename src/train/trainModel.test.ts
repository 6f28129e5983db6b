/**
 * The trainer's forward (the teacher: full attention) on each architecture
 * fixture against Hugging Face transformers: logits from the final hidden
 * state (times the LM head) match the reference's argmax at every position,
 * its last-position logits and its per-position logit norms.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARCH_FIXTURES, archDir, readJson, relativeL2, type ArchReference } from "../testing/fixtures.js";
import { createFolderSource } from "../platform/node/fileSource.js";
import { CpuTrainOps } from "./cpu/cpuTrainOps.js";
import { createSampleActivations } from "./sampleActivations.js";
import { forward } from "./samplePass.js";
import { loadTrainModel, matrix } from "./trainModel.js";
import { createTrainKernels } from "./wasm/trainKernels.js";

for (const arch of ARCH_FIXTURES) {
  test(`teacher forward (${arch}) matches transformers' logits`, async () => {
    const ref = readJson<ArchReference>(`${archDir(arch)}/reference.json`);
    const ops = new CpuTrainOps(await createTrainKernels({ variant: "baseline", maxBytes: 512 << 20 }));
    // NOTE: these references come from a model cast to bf16 and back, which rounds the RoPE
    // frequency buffer to bf16 (as src/engine/fixtures.test.ts notes)
    const model = await loadTrainModel(createFolderSource(archDir(arch)), ops, "bf16");
    const c = model.config, T = ref.input_ids.length;
    const acts = createSampleActivations(ops, c, T, c.headDim, (inverse) => ops.ropeAngles(T, model.rope, inverse));
    forward(ops, model, acts, Int32Array.from(ref.input_ids), null, 16);
    const logits = ops.alloc(T * c.vocabSize, "logits");
    ops.matmul(logits, acts.scratch.y, matrix(model.weights.lmHead), null, T);
    const all = await ops.read(logits);
    const row = (t: number) => all.subarray(t * c.vocabSize, (t + 1) * c.vocabSize);
    for (let t = 0; t < T; t++) {
      const r = row(t);
      assert.equal(r.indexOf(Math.max(...r)), ref.argmax[t], `argmax at position ${t}`);
      const norm = Math.sqrt(r.reduce((s, v) => s + v * v, 0));
      assert.ok(Math.abs(norm - ref.logits_norm[t]!) < 1e-3 * ref.logits_norm[t]!, `logit norm at ${t}: ${norm} vs ${ref.logits_norm[t]}`);
    }
    const err = relativeL2(row(T - 1), ref.last_logits);
    assert.ok(err < 2e-5, `last logits: relative L2 ${err}`);
  });
}
