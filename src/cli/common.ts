/**
 * @module cli/common
 *
 * Options and helpers shared by the CLI commands.
 */
import type { Command } from "commander";
import { InvalidInputError } from "../errors.js";
import { DEFAULT_MODEL_DIR, loadModel, type Model } from "../index.js";
import { BACKEND_NAMES, SIMD_BUILDS, type BackendName, type SimdBuild } from "../platform/node/backend.js";
import type { RopeFrequencyDType } from "../model/rope.js";
import { resolveKvOptions, type KvOptionNames } from "../engine/kvOptions.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import { KV_DTYPES, KV_MEMORY_PATTERN } from "../engine/engineConfig.js";
import type { KvDType } from "../backends/backend.js";
import { createProgress } from "./progress.js";
import { withLoadedGate, type NodeKvOptions } from "../platform/node/gateFiles.js";

export interface ModelFlags {
  model: string;
  backend: string;
  threads?: string;
  simd: string;
  ropeFreq: string;
  kvMemory?: string;
  kvDtype?: string;
  randomWeights?: string;
  quiet?: boolean;
}

/** Adds --model, --backend, --threads, --simd and --rope-freq to a command. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option("--model <dir>", "Hugging Face model folder", DEFAULT_MODEL_DIR)
    .option("--backend <name>", `compute backend (${BACKEND_NAMES.join(", ")})`, "cpu")
    .option("--threads <n>", "CPU threads (default: all cores)")
    .option("--simd <build>", `CPU kernel build: ${SIMD_BUILDS.join(", ")} (relaxed: fused multiply-add; auto: relaxed where the runtime has it)`, "auto")
    .option("--rope-freq <dtype>", "precision of RoPE frequencies: f32, or bf16 to match a model cast to bf16 in transformers", "f32")
    .option("--kv-memory <size>", "KV page pool: bytes (536870912, 512MiB, 2GB) or a fraction of free memory (0.5); default: a quarter of free memory, at most 1 GiB")
    .option("--kv-dtype <dtype>", "KV page storage: f32 (exact), f16 or bf16 (half the memory)", "f32")
    .option("--random-weights <seed>", "seeded random bf16 weights of the --model folder's shapes, in place of any it has (benchmarks)")
    .option("--quiet", "no progress output");
}

/**
 * An integer flag >= `min`, written in plain decimal digits: Number() would
 * also take "1e3", "0x10", "1.0", "+1" and " 1", which are refused here.
 */
export function parseIntFlag(flag: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new InvalidInputError(`${flag} must be an integer >= ${min}, got "${value}"`);
  return n;
}

export function parseFloatFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(n)) throw new InvalidInputError(`${flag} must be a number, got "${value}"`);
  return n;
}

/** A number flag in [min, max] (`minExclusive` makes the lower bound open); the message names the flag and the range. */
export function parseRangeFlag(flag: string, value: string | undefined, min: number, max: number, minExclusive = false): number | undefined {
  const n = parseFloatFlag(flag, value);
  if (n === undefined) return undefined;
  if ((minExclusive ? n <= min : n < min) || n > max) {
    const range = max === Infinity ? `${minExclusive ? ">" : ">="} ${min}` : `in ${minExclusive ? "(" : "["}${min}, ${max}]`;
    throw new InvalidInputError(`${flag} must be a number ${range}, got "${value}"`);
  }
  return n;
}

/**
 * Checks prompt ids against the model like Model.validatePrompt, with
 * messages that name the flag (or argument) the ids and the new-token count came from.
 */
export function validatePromptFlags(model: Model, ids: readonly number[], newTokens: number, promptName: string, newTokensFlag: string): void {
  const { vocabSize, maxPositions } = model.config;
  const configFile = `${model.name.replace(/\/+$/, "")}/config.json`;
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InvalidInputError(`${promptName}: token id ${id} at index ${i} is out of range (vocab_size is ${vocabSize} in ${configFile})`);
    }
  });
  if (ids.length > maxPositions) {
    throw new InvalidInputError(`${promptName}: ${ids.length} tokens exceed max_position_embeddings ${maxPositions} in ${configFile}`);
  }
  if (ids.length + newTokens > maxPositions) {
    throw new InvalidInputError(
      `${newTokensFlag} ${newTokens}: ${ids.length} prompt tokens + ${newTokens} new tokens exceed max_position_embeddings ${maxPositions} in ${configFile}`,
    );
  }
  model.validatePrompt(ids, newTokens);
}

export interface KvFlags {
  gate?: string;
  window?: string;
  tau?: string;
  admission?: string;
  selection?: string;
  eviction?: string;
}

/** Adds the KV cache flags: gate, window, tau and the three policies. */
export function addKvOptions(cmd: Command): Command {
  return cmd
    .option("--gate <file>", "write-gate checkpoint (.pt official layout or wgkv safetensors); implies --admission gate")
    .option("--window <w>", "local window in tokens, a multiple of 16 (default: the gate file's, else the model's sliding window, else 256)")
    .option("--tau <t>", "gate threshold: a token is admitted iff g > tau (default: the gate file's, else 0.1)")
    .option("--admission <policy>", "full | local | sinks:N | random:RATE | gate (default: gate with --gate, local for a sliding-window model, else full)")
    .option("--selection <policy>", "all | quest:BUDGET (decode reads the best pages within BUDGET tokens)")
    .option("--eviction <policy>", "none | snapkv:BUDGET (keep at most BUDGET global tokens per head)");
}

/** How KV errors name the flags. */
export const KV_FLAG_NAMES: KvOptionNames = {
  window: "--window", admission: "--admission", selection: "--selection", eviction: "--eviction", gate: "--gate", tau: "--tau",
};

/**
 * Checks the KV flags that need no model or file: --window and --tau are
 * numbers, and --tau is given only where the write gate admits (a threshold
 * nothing reads would silently do nothing).
 */
export function checkKvFlags(flags: KvFlags): void {
  parseIntFlag("--window", flags.window);
  parseFloatFlag("--tau", flags.tau);
  const admission = flags.admission ?? (flags.gate !== undefined ? "gate" : "full");
  if (flags.tau !== undefined && admission.trim() !== "gate") {
    throw new InvalidInputError(
      `--tau ${flags.tau}: only the write gate has a threshold, and ` +
        (flags.gate === undefined ? "no --gate FILE is given" : `--admission is "${admission}"`),
    );
  }
}

/** KV options from the flags (the gate file not read yet). */
export function kvOptionsFromFlags(flags: KvFlags): NodeKvOptions {
  return {
    gate: flags.gate,
    window: parseIntFlag("--window", flags.window),
    tau: parseFloatFlag("--tau", flags.tau),
    admission: flags.admission,
    selection: flags.selection,
    eviction: flags.eviction,
  };
}

/** Flags of the engine's step size (serve, bench). */
export interface BatchFlags {
  maxBatchTokens?: string;
  prefillChunk?: string;
}

/** --max-batch-tokens and --prefill-chunk (the engine's defaults where not given). */
export function addBatchOptions(cmd: Command): Command {
  return cmd
    .option("--max-batch-tokens <n>", "tokens per engine step (decode tokens plus prompt chunks; default 512, 2048 on tensor-core GPUs)")
    .option("--prefill-chunk <n>", "most prompt tokens of one request per step (default 512, 2048 on tensor-core GPUs; Quest and SnapKV also cap it at the window)");
}

/** The load options those flags give. */
export function batchLimitsFromFlags(flags: BatchFlags): { maxBatchTokens?: number; prefillChunk?: number } {
  return { maxBatchTokens: parseIntFlag("--max-batch-tokens", flags.maxBatchTokens), prefillChunk: parseIntFlag("--prefill-chunk", flags.prefillChunk) };
}

/** The KV policy the flags describe, for `model` (reads the gate file). */
export async function kvPolicyFromFlags(model: Model, flags: KvFlags): Promise<KvPolicy> {
  return resolveKvOptions(await withLoadedGate(model, kvOptionsFromFlags(flags)), model, KV_FLAG_NAMES);
}

/** Loads the model named by the flags, reporting progress on stderr for large files. */
export async function loadModelFromFlags(flags: ModelFlags, extra: { maxSeqs?: number; maxWindow?: number; maxBatchTokens?: number; prefillChunk?: number } = {}): Promise<Model> {
  if (flags.model.trim().length === 0) throw new InvalidInputError("--model is empty; give the path of a Hugging Face model folder");
  if (!(BACKEND_NAMES as readonly string[]).includes(flags.backend)) {
    throw new InvalidInputError(`--backend must be one of ${BACKEND_NAMES.join(", ")}, got "${flags.backend}"`);
  }
  if (!(SIMD_BUILDS as readonly string[]).includes(flags.simd)) throw new InvalidInputError(`--simd must be one of ${SIMD_BUILDS.join(", ")}, got "${flags.simd}"`);
  if (flags.ropeFreq !== "f32" && flags.ropeFreq !== "bf16") throw new InvalidInputError(`--rope-freq must be f32 or bf16, got "${flags.ropeFreq}"`);
  if (flags.kvDtype !== undefined && !(KV_DTYPES as readonly string[]).includes(flags.kvDtype)) throw new InvalidInputError(`--kv-dtype must be one of ${KV_DTYPES.join(", ")}, got "${flags.kvDtype}"`);
  // NOTE: checked here as well, so that a malformed size names the flag rather than the library's kvMemory option
  if (flags.kvMemory !== undefined && !KV_MEMORY_PATTERN.test(flags.kvMemory.trim())) {
    throw new InvalidInputError(`--kv-memory must be bytes (e.g. 536870912, 512MiB, 2GB) or a fraction of free memory in (0, 1], got "${flags.kvMemory}"`);
  }
  const progress = createProgress("loading weights", { quiet: flags.quiet, format: (b) => `${(b / 2 ** 20).toFixed(0)} MiB` });
  const model = await loadModel(flags.model, {
    backend: flags.backend as BackendName,
    threads: parseIntFlag("--threads", flags.threads),
    simd: flags.simd as SimdBuild,
    ropeFreqDType: flags.ropeFreq as RopeFrequencyDType,
    kvDType: flags.kvDtype as KvDType | undefined,
    kvMemory: flags.kvMemory,
    randomWeights: parseIntFlag("--random-weights", flags.randomWeights, 0),
    ...extra,
    onProgress(loaded, total) {
      if (total < 64 * 1024 * 1024) return; // small models load too fast to need progress
      progress.update(loaded, total);
    },
  }).finally(() => progress.end());
  return model;
}
