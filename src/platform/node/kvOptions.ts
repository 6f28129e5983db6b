/**
 * @module platform/node/kvOptions
 *
 * KV cache settings from user-facing options: reads a gate file from disk,
 * checks it against the model, and builds the policies.
 */
import { readFile } from "node:fs/promises";
import type { KvDType } from "../../backends/backend.js";
import type { Model } from "../../engine/model.js";
import { causeText, InvalidInputError, ModelLoadError, type WgkvError } from "../../errors.js";
import { DEFAULT_GATE_TAU } from "../../gate/gateMath.js";
import { loadGate } from "../../gate/gateFile.js";
import type { KvSettings } from "../../kv/kvSettings.js";
import { DEFAULT_WINDOW } from "../../kv/kvSettings.js";
import { validateWindow } from "../../cache/blockTable.js";
import { parseAdmission, parseEviction, parseSelection } from "../../policy/parse.js";

export interface KvOptions {
  /** Write-gate checkpoint: official `.pt` or wgkv safetensors. */
  readonly gate?: string;
  readonly window?: number;
  readonly tau?: number;
  /** full | local | sinks:N | random:RATE | gate (default: gate with --gate, else full). */
  readonly admission?: string;
  /** all | quest:BUDGET */
  readonly selection?: string;
  /** none | snapkv:BUDGET */
  readonly eviction?: string;
  readonly kvDType?: string;
}

const KV_DTYPES: readonly KvDType[] = ["f32", "f16", "bf16"];

export async function resolveKvOptions(model: Model, options: KvOptions): Promise<Partial<KvSettings>> {
  if (options.kvDType !== undefined && !(KV_DTYPES as readonly string[]).includes(options.kvDType)) {
    throw new InvalidInputError(`--kv-dtype must be one of ${KV_DTYPES.join(", ")}, got "${options.kvDType}"`);
  }
  let gate = null;
  let meta: { window?: number; tau?: number } = {};
  if (options.gate !== undefined) {
    const bytes = await readFile(options.gate).catch((err: NodeJS.ErrnoException) => {
      throw new ModelLoadError(`${options.gate}: cannot read the gate file (${err.code ?? err.message})`);
    });
    const { numLayers, numKvHeads, headDim } = model.config;
    const loaded = loadGate(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), options.gate, { numLayers, numKvHeads, headDim });
    gate = model.backend.uploadGate(loaded.gate);
    meta = loaded.meta;
  }
  const { tau, window } = checkedTauAndWindow(options, meta);
  const admissionSpec = options.admission ?? (gate ? "gate" : "full");
  if (admissionSpec === "gate" && !gate) throw new InvalidInputError("--admission gate needs --gate FILE");
  return {
    window,
    kvDType: (options.kvDType as KvDType | undefined) ?? "f32",
    admission: parseAdmission(admissionSpec, tau),
    selection: parseSelection(options.selection ?? "all", model.config.headDim),
    eviction: parseEviction(options.eviction ?? "none"),
    gate,
  };
}

/**
 * Tau and window, from the options, else the gate file's metadata, else the
 * defaults, checked here so that a bad value is blamed on where it came
 * from: the flag, or the gate file (never `--tau` for a file's metadata).
 */
function checkedTauAndWindow(options: KvOptions, meta: { window?: number; tau?: number }): { tau: number; window: number } {
  const tau = options.tau ?? meta.tau ?? DEFAULT_GATE_TAU;
  if (!(tau > 0 && tau < 1)) throw blame(options, "tau", tau, "the gate threshold must be in (0, 1)");
  const window = options.window ?? meta.window ?? DEFAULT_WINDOW;
  try {
    validateWindow(window);
  } catch (err) {
    throw blame(options, "window", window, causeText(err));
  }
  return { tau, window };
}

/** The error for a bad value: the flag's when the option gave it, else the gate file's, whose metadata held it. */
function blame(options: KvOptions, key: "tau" | "window", value: number, why: string): WgkvError {
  return options[key] !== undefined ? new InvalidInputError(`--${key} ${value}: ${why}`) : new ModelLoadError(`${options.gate}: metadata ${key} ${value}: ${why}`);
}
