/**
 * @module platform/node/kvOptions
 *
 * KV cache settings from user-facing options: reads a gate file from disk,
 * checks it against the model, and builds the policies.
 */
import type { KvDType } from "../../backends/backend.js";
import type { Model } from "../../engine/model.js";
import { InvalidInputError } from "../../errors.js";
import { DEFAULT_GATE_TAU } from "../../gate/gateMath.js";
import { loadGate } from "../../gate/gateFile.js";
import type { KvSettings } from "../../kv/kvSettings.js";
import { DEFAULT_WINDOW } from "../../kv/kvSettings.js";
import { parseAdmission, parseEviction, parseSelection } from "../../policy/parse.js";
import { readGateFile } from "./gateFileRead.js";

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
    const bytes = await readGateFile(options.gate);
    const { numLayers, numKvHeads, headDim } = model.config;
    const loaded = loadGate(bytes, options.gate, { numLayers, numKvHeads, headDim });
    gate = model.backend.uploadGate(loaded.gate);
    meta = loaded.meta;
  }
  const tau = options.tau ?? meta.tau ?? DEFAULT_GATE_TAU;
  const admissionSpec = options.admission ?? (gate ? "gate" : "full");
  if (admissionSpec === "gate" && !gate) throw new InvalidInputError("--admission gate needs --gate FILE");
  return {
    window: options.window ?? meta.window ?? DEFAULT_WINDOW,
    kvDType: (options.kvDType as KvDType | undefined) ?? "f32",
    admission: parseAdmission(admissionSpec, tau),
    selection: parseSelection(options.selection ?? "all", model.config.headDim),
    eviction: parseEviction(options.eviction ?? "none"),
    gate,
  };
}
