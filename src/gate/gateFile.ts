/**
 * @module gate/gateFile
 *
 * Gate files in both formats: the official PyTorch checkpoints (`.pt`) and the
 * project's own safetensors format: the same tensor names and shapes, f32,
 * plus `__metadata__` strings `format`, `window`, `tau`, `expand`, `model`,
 * `lambda` (each may be absent). The format is sniffed from the bytes, never
 * from the file name; bytes that are neither format are refused as such.
 * Metadata values are checked on reading and before writing, so wgkv never
 * writes a gate file it would refuse to load.
 */
import { decodeEntry, MAX_HEADER_BYTES, parseSafetensors, writeSafetensors } from "../io/safetensors.js";
import { InvalidInputError } from "../errors.js";
import { isZip } from "../util/zip.js";
import { GateFormatError } from "./errors.js";
import { buildGateWeights, gateExpand, gateTensors, type GateModelShape, type GateWeights } from "./gateWeights.js";
import { indexTorchCheckpoint } from "./torchCheckpoint.js";
import { saveTorchCheckpoint } from "./torchSave.js";

/** What a gate file says about how the gate was trained and should be used. */
export interface GateMetadata {
  /** Local window W the gate was trained with (tokens). */
  readonly window?: number;
  /** Admission threshold: admitted iff g > tau. */
  readonly tau?: number;
  /** Expand factor e (hiddenPerHead / headDim). */
  readonly expand?: number;
  /** The model the gate belongs to: a name or an architecture summary. */
  readonly model?: string;
  /** The sparsity weight lambda of the training loss. */
  readonly lambda?: number;
}

/** `pt`: a torch.save zip; `safetensors`: the project's format. */
export type GateFileFormat = "pt" | "safetensors";

/** A gate read from a file. */
export interface LoadedGate {
  readonly gate: GateWeights;
  readonly meta: GateMetadata;
  readonly format: GateFileFormat;
}

const FORMAT_TAG = "wgkv-gate";
const NUMERIC_KEYS = ["window", "tau", "expand", "lambda"] as const;

/**
 * `pt` when the bytes are a zip (`PK\x03\x04`), `safetensors` when they start
 * with a plausible header length and a JSON object, else null (neither).
 */
export function sniffGateFormat(bytes: Uint8Array): GateFileFormat | null {
  if (isZip(bytes)) return "pt";
  if (bytes.length < 9 || bytes[8] !== 0x7b) return null; // "{"
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return headerLength <= BigInt(MAX_HEADER_BYTES) ? "safetensors" : null;
}

/** The numeric metadata a gate file may record. */
export type GateMetadataKey = (typeof NUMERIC_KEYS)[number];

/**
 * Why `value` cannot be the gate's `key`, as a phrase ("must be ..."), or
 * null when it can: the window is a positive multiple of 16 (the page size),
 * tau lies in (0, 1), lambda and expand are positive and finite.
 */
export function gateMetadataProblem(key: GateMetadataKey, value: number): string | null {
  switch (key) {
    case "window":
      return Number.isInteger(value) && value > 0 && value % 16 === 0 ? null : "must be a positive multiple of 16";
    case "tau":
      return value > 0 && value < 1 ? null : "must be in (0, 1)";
    case "lambda":
    case "expand":
      return Number.isFinite(value) && value > 0 ? null : "must be a positive finite number";
  }
}

function parseMetadata(strings: Readonly<Record<string, string>>, fileName: string): GateMetadata {
  const meta: Record<string, number | string> = {};
  for (const key of NUMERIC_KEYS) {
    const s = strings[key];
    if (s === undefined) continue;
    const value = Number(s);
    const shown = JSON.stringify(s.slice(0, 40)).slice(1, -1);
    if (s.trim() === "" || !Number.isFinite(value)) throw new GateFormatError(`gate file ${fileName}: metadata ${key}='${shown}' is not a valid number`);
    const problem = gateMetadataProblem(key, value);
    if (problem) throw new GateFormatError(`gate file ${fileName}: metadata ${key}='${shown}' ${problem}`);
    meta[key] = value;
  }
  if (strings["model"] !== undefined) meta["model"] = strings["model"];
  return meta as GateMetadata;
}

/**
 * Reads a gate file of either format. With `model`, every tensor is checked
 * against the model's dimensions (else they are inferred from the file).
 * Throws `GateFormatError` (unreadable file) or `GateShapeError` (another model's gate).
 */
export function loadGate(bytes: Uint8Array, fileName: string, model?: GateModelShape): LoadedGate {
  // NOTE: the name only chooses the message: a .safetensors file that is not one gets the reader's own diagnosis.
  const format = sniffGateFormat(bytes) ?? (/\.safetensors$/i.test(fileName) ? "safetensors" : null);
  if (format === null) {
    const legacy = bytes[0] === 0x80 ? "; its first byte is a pickle's, as in the legacy (pre-1.6) torch.save format: re-save it with a current PyTorch" : "";
    throw new GateFormatError(`gate file ${fileName}: neither a PyTorch checkpoint (torch.save zip) nor a safetensors file${bytes.length === 0 ? " (it is empty)" : legacy}`);
  }
  if (format === "pt") {
    const gate = buildGateWeights(indexTorchCheckpoint(bytes, fileName), fileName, model);
    return { gate, meta: { expand: gateExpand(gate) }, format: "pt" };
  }
  const { entries, metadata } = parseSafetensors(bytes, fileName, { errorType: GateFormatError });
  const meta = parseMetadata(metadata, fileName);
  const tensors = new Map(entries.map((e) => [e.name, { shape: e.shape, load: () => decodeEntry(bytes, e) }]));
  const gate = buildGateWeights(tensors, fileName, model);
  if (meta.expand !== undefined && meta.expand !== gateExpand(gate)) {
    throw new GateFormatError(`gate file ${fileName}: metadata expand=${meta.expand} but conv1 implies ${gateExpand(gate)}`);
  }
  return { gate, meta: { ...meta, expand: gateExpand(gate) }, format: "safetensors" };
}

/** Serializes a gate to the project's safetensors format (f32; `expand` always recorded). */
export function saveGateSafetensors(gate: GateWeights, meta: GateMetadata = {}): Uint8Array {
  const strings: Record<string, string> = { format: FORMAT_TAG };
  for (const [key, value] of Object.entries({ ...meta, expand: gateExpand(gate) })) {
    if (value !== undefined) strings[key] = String(value);
  }
  return writeSafetensors(gateTensors(gate), strings);
}

/**
 * Converts a gate file (either format) to `outputFormat`; `meta` adds to or
 * overrides what the input records. A `.pt` output has the official layout,
 * which has no place for metadata. Throws `InvalidInputError` for a `meta`
 * value the loader would refuse (see {@link gateMetadataProblem}).
 */
export function convertGate(
  inputBytes: Uint8Array,
  inputName: string,
  outputFormat: GateFileFormat = "safetensors",
  meta: GateMetadata = {},
): Uint8Array {
  for (const key of NUMERIC_KEYS) {
    const value = meta[key];
    const problem = value === undefined ? null : gateMetadataProblem(key, value);
    if (problem) throw new InvalidInputError(`gate metadata ${key} ${problem}, got ${value}`);
  }
  const loaded = loadGate(inputBytes, inputName);
  if (outputFormat === "pt") return saveTorchCheckpoint(gateTensors(loaded.gate), { archiveName: "archive" });
  const defined = Object.fromEntries(Object.entries(meta).filter(([, v]) => v !== undefined));
  return saveGateSafetensors(loaded.gate, { ...loaded.meta, ...defined });
}
