/**
 * @module train/checkpoint
 *
 * A training run's state as one safetensors file: the gate parameters, AdamW's
 * moments, and in the metadata the step to continue from and the settings
 * that must not change across a resume (model, lambda, window, length,
 * expand). Bytes in, bytes out: the CLI reads and writes the file.
 */
import { InvalidInputError } from "../errors.js";
import { decodeEntry, parseSafetensors, writeSafetensors } from "../io/safetensors.js";
import type { AdamWState } from "./adamw.js";

const FORMAT = "wgkv-gate-train-checkpoint";

/** Settings a resumed run must share with the checkpoint, and what it records besides. */
export interface RunIdentity {
  /** modelSignature() of the model trained. */
  readonly model: string;
  readonly lambda: number;
  readonly window: number;
  readonly length: number;
  readonly expand: number;
}

export interface TrainCheckpoint {
  readonly identity: RunIdentity;
  /** The next step to run (0-based). */
  readonly nextStep: number;
  readonly params: Float32Array;
  readonly adam: AdamWState;
}

export function saveCheckpoint(c: TrainCheckpoint): Uint8Array {
  const n = c.params.length;
  return writeSafetensors(
    [
      ["params", { shape: [n], data: c.params }],
      ["adam.m", { shape: [n], data: c.adam.m }],
      ["adam.v", { shape: [n], data: c.adam.v }],
    ],
    { format: FORMAT, identity: JSON.stringify(c.identity), next_step: String(c.nextStep), adam_step: String(c.adam.step) },
  );
}

/** Reads a checkpoint; one-line errors name `file` (the --resume value). */
export function loadCheckpoint(bytes: Uint8Array, file: string): TrainCheckpoint {
  const fail = (why: string): never => {
    throw new InvalidInputError(`--resume ${file}: ${why}`);
  };
  const { entries, metadata } = parseSafetensors(bytes, file, { errorType: InvalidInputError });
  if (metadata["format"] !== FORMAT) fail("not a wgkv train-gate checkpoint");
  let identity: RunIdentity;
  try {
    identity = JSON.parse(metadata["identity"] ?? "") as RunIdentity;
  } catch {
    return fail("its metadata is damaged (identity)");
  }
  const nextStep = Number(metadata["next_step"]), adamStep = Number(metadata["adam_step"]);
  if (!Number.isSafeInteger(nextStep) || nextStep < 0 || !Number.isSafeInteger(adamStep) || adamStep < 0) fail("its metadata is damaged (step)");
  const tensor = (name: string) => {
    const e = entries.find((x) => x.name === name);
    return e ? decodeEntry(bytes, e) : fail(`tensor ${name} is missing`);
  };
  const params = tensor("params"), m = tensor("adam.m"), v = tensor("adam.v");
  if (m.length !== params.length || v.length !== params.length) fail("its optimizer state does not match its parameters");
  return { identity, nextStep, params, adam: { m, v, step: adamStep } };
}

/** Throws a one-line error when a checkpoint cannot continue the run described by `current`. */
export function checkResumable(c: TrainCheckpoint, current: RunIdentity, numParams: number, file: string): void {
  const was = c.identity;
  if (was.model !== current.model) {
    throw new InvalidInputError(`--resume ${file}: a checkpoint of another model (${was.model}), not of --model's (${current.model})`);
  }
  for (const [key, flag] of [["lambda", "--lambda"], ["window", "--window"], ["length", "--length"], ["expand", "--expand"]] as const) {
    if (was[key] !== current[key]) throw new InvalidInputError(`--resume ${file}: the run had ${flag} ${was[key]}, this command gives ${current[key]}; resume with the same value`);
  }
  if (c.params.length !== numParams) throw new InvalidInputError(`--resume ${file}: holds ${c.params.length} gate parameters, this model's gate has ${numParams}`);
}
