/**
 * @module cli/trainGate
 *
 * `wgkv train-gate`: learns a write gate for a model with the WG-KV recipe
 * (docs/design.md §8) on the CPU or on WebGPU: the backbone frozen, the full-attention
 * model as teacher, soft gate in the student, MSE of the final hidden state
 * plus lambda times the sparsity term, AdamW with warm-up then cosine decay.
 * Writes the gate (wgkv safetensors with metadata, loadable by --gate and by
 * `eval --policies gate:FILE`), checkpoints to resume from, and a report of
 * the gate's scores per (layer, KV head) on held-out samples.
 */
import { Command } from "commander";
import { readFile, stat } from "node:fs/promises";
import { checkOutFile, writeOutFile } from "./outFolder.js";
import { basename, dirname } from "node:path";
import { InvalidInputError, ModelLoadError } from "../errors.js";
import { loadGate, saveGateSafetensors } from "../gate/gateFile.js";
import { DEFAULT_GATE_TAU } from "../gate/gateMath.js";
import { describeFile } from "../io/fileSource.js";
import { DEFAULT_MODEL_DIR } from "../index.js";
import { parseModelConfig } from "../model/config.js";
import { createFolderSource } from "../platform/node/fileSource.js";
import { HAYSTACK_NAME, resolveTextFile } from "../platform/node/haystack.js";
import { readTextPrefix } from "../platform/node/textFile.js";
import { parseTrainBackend, startTrainRunner, TRAIN_BACKENDS } from "../platform/node/trainRunner.js";
import { loadTokenizer } from "../tokenizer/tokenizer.js";
import { createAdamWState } from "../train/adamw.js";
import { checkResumable, loadCheckpoint, saveCheckpoint, type RunIdentity } from "../train/checkpoint.js";
import { gateParamLayout, gateWeightsView, initGateParams } from "../train/gateParams.js";
import { formatDuration, progressBar, progressLine } from "../train/progress.js";
import { TrainData } from "../train/trainData.js";
import { modelSignature } from "../train/trainModel.js";
import { runTraining, type StepReport } from "../train/trainer.js";
import { DOCUMENT_SEPARATOR } from "../eval/haystack.js";
import { parseIntFlag, parseRangeFlag } from "./common.js";
import { writeTrainReport } from "./trainGateReport.js";

interface TrainGateFlags {
  model: string;
  data: string;
  lambda?: string;
  window: string;
  length: string;
  batch: string;
  steps: string;
  lr: string;
  warmup: string;
  weightDecay: string;
  needleMix: string;
  positionRange?: string;
  expand: string;
  tau: string;
  seed: string;
  out?: string;
  force?: boolean;
  checkpointEvery: string;
  resume?: string;
  backend: string;
  threads?: string;
  simd: string;
  randomWeights?: string;
  ropeFreq: string;
  dataBytes: string;
  reportSamples: string;
  quiet?: boolean;
}

export function trainGateCommand(): Command {
  return new Command("train-gate")
    .description("train a write gate for a model: distill full attention into the soft-gated model, with a sparsity term (the WG-KV recipe), on the CPU or on WebGPU")
    .option("--model <dir>", "Hugging Face model folder", DEFAULT_MODEL_DIR)
    .option("--data <files>", `training text, comma-separated (.br, .gz, .xz are decompressed; documents separated by \\x1e); "${HAYSTACK_NAME}": the one shipped with wgkv`, HAYSTACK_NAME)
    .option("--lambda <l>", "sparsity weight (> 0): larger admits fewer tokens")
    .option("--window <w>", "local window in tokens, a multiple of 16", "256")
    .option("--length <n>", "tokens per training sample", "4096")
    .option("--batch <n>", "samples per step", "2")
    .option("--steps <n>", "optimizer steps", "600")
    .option("--lr <lr>", "peak learning rate of AdamW", "1e-3")
    .option("--warmup <f>", "fraction of the steps spent warming up", "0.1")
    .option("--weight-decay <wd>", "AdamW weight decay", "0.01")
    .option("--needle-mix <f>", "fraction of samples drawn from the eval's needle-in-a-haystack tasks, in [0, 1]", "0")
    .option("--position-range <n>", "place each sample at a random position below n (>= --length): RoPE keeps attention the same, and the gate sees the key angles of long contexts while training on short samples (default: --length)")
    .option("--expand <e>", "gate hidden units per KV head, as a multiple of head_dim (4 for the Llama checkpoints)", "4")
    .option("--tau <t>", "admission threshold recorded in the gate file and used in the report", String(DEFAULT_GATE_TAU))
    .option("--seed <s>", "seed of the gate's initial values and of the samples", "0")
    .option("--out <file>", "gate file to write (wgkv safetensors); <file>.ckpt holds checkpoints, <stem>.histograms.svg and <stem>.report.json the report")
    .option("--force", "overwrite --out if it exists")
    .option("--checkpoint-every <n>", "write <out>.ckpt every n steps (0: only at the end)", "50")
    .option("--resume <ckpt>", "continue the run a checkpoint (<out>.ckpt) was written by")
    .option("--backend <name>", `where samples run (${TRAIN_BACKENDS.join(", ")}): cpu, worker threads; webgpu, the GPU, one sample after another; auto, a real GPU if found, else cpu`, "cpu")
    .option("--threads <n>", "cpu: worker threads, each running whole samples (default: min(--batch, cores))")
    .option("--simd <build>", "cpu: kernel build, auto, relaxed (fused multiply-add) or baseline", "auto")
    .option("--random-weights <seed>", "seeded random bf16 weights of --model's config instead of its weight files (timing runs; the gate learns nothing useful)")
    .option("--rope-freq <dtype>", "precision of RoPE frequencies: f32, or bf16 to match a model cast to bf16 in transformers", "f32")
    .option("--data-bytes <n>", "read at most this many (decompressed) bytes of each --data file", String(64 * 2 ** 20))
    .option("--report-samples <n>", "held-out samples (half text, half needles) for the final report of gate scores", "4")
    .option("--quiet", "print nothing while training")
    .action(async (flags: TrainGateFlags) => trainGate(flags));
}

async function trainGate(flags: TrainGateFlags): Promise<void> {
  // ---- every flag is checked before anything is loaded
  if (flags.lambda === undefined) throw new InvalidInputError("--lambda is required: the sparsity weight, a number > 0 (the reference uses 0.004 to 0.16)");
  const lambda = parseRangeFlag("--lambda", flags.lambda, 0, Infinity, true)!;
  const window = parseIntFlag("--window", flags.window, 16)!;
  if (window % 16 !== 0) throw new InvalidInputError(`--window must be a multiple of 16, got ${window}`);
  const length = parseIntFlag("--length", flags.length, 2)!;
  if (length <= window) throw new InvalidInputError(`--length ${length} must be greater than --window ${window}: within the window every token is kept anyway`);
  const batch = parseIntFlag("--batch", flags.batch)!;
  const steps = parseIntFlag("--steps", flags.steps)!;
  const lr = parseRangeFlag("--lr", flags.lr, 0, 1, true)!;
  const warmup = parseRangeFlag("--warmup", flags.warmup, 0, 1)!;
  const weightDecay = parseRangeFlag("--weight-decay", flags.weightDecay, 0, 1)!;
  const needleMix = parseRangeFlag("--needle-mix", flags.needleMix, 0, 1)!;
  const positionRange = parseIntFlag("--position-range", flags.positionRange) ?? length;
  if (positionRange < length) throw new InvalidInputError(`--position-range ${positionRange} must be at least --length ${length}`);
  const expand = parseRangeFlag("--expand", flags.expand, 0, 64, true)!;
  const tau = parseRangeFlag("--tau", flags.tau, 0, 1, true)!;
  if (tau >= 1) throw new InvalidInputError(`--tau must be in (0, 1), got "${flags.tau}"`);
  const seed = parseIntFlag("--seed", flags.seed, 0)!;
  const randomWeights = parseIntFlag("--random-weights", flags.randomWeights, 0);
  const checkpointEvery = parseIntFlag("--checkpoint-every", flags.checkpointEvery, 0)!;
  const backend = parseTrainBackend(flags.backend);
  const threads = parseIntFlag("--threads", flags.threads);
  const dataBytes = parseIntFlag("--data-bytes", flags.dataBytes, 1024)!;
  const reportSamples = parseIntFlag("--report-samples", flags.reportSamples, 0)!;
  if (flags.simd !== "auto" && flags.simd !== "relaxed" && flags.simd !== "baseline") throw new InvalidInputError(`--simd must be auto, relaxed or baseline, got "${flags.simd}"`);
  if (flags.ropeFreq !== "f32" && flags.ropeFreq !== "bf16") throw new InvalidInputError(`--rope-freq must be f32 or bf16, got "${flags.ropeFreq}"`);
  if (flags.out === undefined) throw new InvalidInputError("--out is required: the gate file to write, e.g. --out gate.safetensors");
  const out = flags.out;
  await checkWritable(out, flags.force === true, flags.resume !== undefined);
  const dataFiles = flags.data.split(",").map((f) => f.trim());
  if (dataFiles.some((f) => f === "")) throw new InvalidInputError(`--data "${flags.data}": an empty file name`);

  // ---- the model's config and tokenizer (the weights load where the samples run)
  if (flags.model.trim() === "") throw new InvalidInputError("--model is empty; give the path of a Hugging Face model folder");
  const source = createFolderSource(flags.model);
  if (!(await source.exists("config.json"))) throw new ModelLoadError(`${describeFile(source, "config.json")}: file is missing; --model must be a Hugging Face model folder`);
  const config = parseModelConfig(await source.readText("config.json"), describeFile(source, "config.json"));
  if (!(await source.exists("tokenizer.json"))) throw new ModelLoadError(`${describeFile(source, "tokenizer.json")}: file is missing; train-gate builds its samples from text`);
  const tokenizer = await loadTokenizer(source);
  const hidden = expand * config.headDim;
  if (!Number.isInteger(hidden)) throw new InvalidInputError(`--expand ${expand} times head_dim ${config.headDim} is not a whole number of units`);
  if (positionRange > config.maxPositions) {
    throw new InvalidInputError(`${flags.positionRange === undefined ? "--length" : "--position-range"} ${positionRange} exceeds the model's max_position_embeddings ${config.maxPositions}`);
  }

  // ---- data
  const texts = await Promise.all(dataFiles.map((f) => readTextPrefix(resolveTextFile(f), dataBytes)));
  const data = new TrainData(tokenizer, texts.join(DOCUMENT_SEPARATOR), { length, needleMix, positionRange, seed, dataName: flags.data });

  // ---- the gate and the optimizer: new, or from a checkpoint
  const layout = gateParamLayout({ numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim, hidden });
  const identity: RunIdentity = { model: modelSignature(config), lambda, window, length, expand };
  let params = initGateParams(layout, seed);
  let adam = createAdamWState(layout.numParams);
  let startStep = 0;
  if (flags.resume !== undefined) {
    const ckpt = loadCheckpoint(await readCheckpointFile(flags.resume), flags.resume);
    checkResumable(ckpt, identity, layout.numParams, flags.resume);
    ({ params, adam } = ckpt);
    startStep = ckpt.nextStep;
    if (startStep >= steps) throw new InvalidInputError(`--resume ${flags.resume}: the run is already at step ${startStep} of --steps ${steps}`);
  }

  const quiet = flags.quiet === true;
  const log = (line: string) => {
    if (!quiet) process.stderr.write(line + "\n");
  };
  const numWorkers = threads ?? Math.min(batch, (await import("node:os")).availableParallelism());
  const runner = await startTrainRunner(
    backend,
    { modelDir: flags.model, randomWeights, ropeFreq: flags.ropeFreq, gate: layout.shape, settings: { window, lambda, tau }, variant: flags.simd },
    numWorkers,
  );
  try {
    log(`train-gate: ${basename(flags.model)} (${identity.model}), ${layout.numParams} gate parameters; ${steps} steps x ${batch} samples of ${length} tokens ` +
      `(${Math.round(needleMix * 100)}% needles${positionRange > length ? `, placed below position ${positionRange}` : ""}), lambda ${lambda}, window ${window}; ${runner.description}` + (startStep ? `; resuming at step ${startStep + 1}` : ""));
    const tty = process.stderr.isTTY === true && !flags.quiet;
    const stepTimes: number[] = [];
    let last: StepReport | null = null;
    const t0 = performance.now();
    await runTraining({
      runner, data, params, adam, startStep, checkpointEvery,
      settings: { steps, batch, lr, warmup, weightDecay, lambda },
      onStep: (r) => {
        stepTimes.push(r.stepMs);
        last = r;
        if (flags.quiet) return;
        if (tty) process.stderr.write(`\r${progressBar(r, process.stderr.columns ?? 100)}\x1b[K` + (r.step === r.steps ? "\n" : ""));
        else process.stderr.write(progressLine(r) + "\n");
      },
      onCheckpoint: async (nextStep) => {
        await writeOutFile("--out", `${out}.ckpt`, saveCheckpoint({ identity, nextStep, params, adam }));
      },
    });
    const trainMs = performance.now() - t0;

    // ---- the gate file (read back before it is written: never a file the loader would refuse)
    const meta = { window, tau, lambda, model: `${basename(flags.model.replace(/\/+$/, ""))} (${identity.model})` };
    const bytes = saveGateSafetensors(gateWeightsView(layout, params), meta);
    loadGate(bytes, out, { numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim });
    await writeOutFile("--out", out, bytes);

    // ---- the report: gate scores on held-out samples
    const scores = reportSamples > 0 ? await runner.gateScores(params, data.heldOut(reportSamples).map((s) => s.ids)) : [];
    const meanStepMs = stepTimes.reduce((a, b) => a + b, 0) / Math.max(1, stepTimes.length);
    const stem = await writeTrainReport(out, scores, config.numKvHeads, {
      gate: out, model: meta.model, lambda, window, tau, length, positionRange, batch, steps, lr, warmup, weightDecay, needleMix, expand, seed, data: flags.data,
      runner: runner.description, trainSeconds: Math.round(trainMs / 1000), meanStepSeconds: +(meanStepMs / 1000).toFixed(2), final: last, reportSamples,
    }, quiet);
    log(`wrote ${out}, ${stem}.histograms.svg and ${stem}.report.json; trained in ${formatDuration(trainMs)} (${formatDuration(meanStepMs)}/step)`);
  } finally {
    runner.dispose();
  }
}

/** --out must not exist (unless --force or a resumed run), and its folder must. */
async function checkWritable(out: string, force: boolean, resuming: boolean): Promise<void> {
  const folder = dirname(out);
  const info = await stat(folder).catch(() => null);
  if (!info?.isDirectory()) throw new InvalidInputError(`--out ${out}: the folder ${folder} does not exist`);
  const existing = await stat(out).catch(() => null);
  if (existing?.isDirectory()) throw new InvalidInputError(`--out ${out}: is a folder; give a file name such as ${out}/gate.safetensors`);
  if (existing && !force && !resuming) throw new InvalidInputError(`--out ${out}: already exists (pass --force to overwrite)`);
  await checkOutFile("--out", out);
}

async function readCheckpointFile(path: string): Promise<Uint8Array> {
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`--resume ${path}: cannot read the checkpoint (${err.code === "ENOENT" ? "file is missing" : (err.code ?? err.message)})`);
  });
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
