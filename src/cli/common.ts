/**
 * @module cli/common
 *
 * Options and helpers shared by the CLI commands.
 */
import type { Command } from "commander";
import { InvalidInputError } from "../errors.js";
import { DEFAULT_MODEL_DIR, loadModel, type Model } from "../index.js";
import { BACKEND_NAMES, type BackendName } from "../platform/node/backend.js";
import type { RopeFrequencyDType } from "../model/rope.js";

export interface ModelFlags {
  model: string;
  backend: string;
  threads?: string;
  ropeFreq: string;
}

/** Adds --model, --backend, --threads and --rope-freq to a command. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option("--model <dir>", "Hugging Face model folder", DEFAULT_MODEL_DIR)
    .option("--backend <name>", `compute backend (${BACKEND_NAMES.join(", ")})`, "cpu")
    .option("--threads <n>", "CPU threads (default: all cores)")
    .option("--rope-freq <dtype>", "precision of RoPE frequencies: f32, or bf16 to match a model cast to bf16 in transformers", "f32");
}

export function parseIntFlag(flag: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidInputError(`${flag} must be an integer >= ${min}, got "${value}"`);
  return n;
}

export function parseFloatFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidInputError(`${flag} must be a number, got "${value}"`);
  return n;
}

/** Loads the model named by the flags, reporting progress on stderr for large files. */
export async function loadModelFromFlags(flags: ModelFlags): Promise<Model> {
  if (!(BACKEND_NAMES as readonly string[]).includes(flags.backend)) {
    throw new InvalidInputError(`--backend must be one of ${BACKEND_NAMES.join(", ")}, got "${flags.backend}"`);
  }
  if (flags.ropeFreq !== "f32" && flags.ropeFreq !== "bf16") throw new InvalidInputError(`--rope-freq must be f32 or bf16, got "${flags.ropeFreq}"`);
  let lastReported = -1;
  return loadModel(flags.model, {
    backend: flags.backend as BackendName,
    threads: parseIntFlag("--threads", flags.threads),
    ropeFreqDType: flags.ropeFreq as RopeFrequencyDType,
    onProgress(loaded, total) {
      if (total < 64 * 1024 * 1024) return; // small models load too fast to need progress
      const percent = Math.floor((loaded / total) * 100);
      if (percent >= lastReported + 10 || loaded === total) {
        lastReported = percent;
        process.stderr.write(`loading weights: ${percent}% of ${(total / 2 ** 20).toFixed(0)} MiB\n`);
      }
    },
  });
}
