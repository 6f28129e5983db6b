/**
 * @module platform/node/gateFiles
 *
 * Reading write-gate files from disk, checked against a model, and KV
 * options whose gate is given as a path (the library accepts both; the
 * caching of references is engine/gateRefs.ts, shared with browsers).
 */
import { loadGate } from "../../gate/gateFile.js";
import { readGateFile } from "./gateFileRead.js";
import type { Model } from "../../engine/model.js";
import type { GateInput, KvOptions } from "../../engine/kvOptions.js";
import { withGateRef, type GateRefKvOptions } from "../../engine/gateRefs.js";

/** KV options as the Node entry accepts them: the gate may be a file path. */
export interface NodeKvOptions extends GateRefKvOptions {
  readonly gate?: string | GateInput | null;
}

/** Reads a gate file (official `.pt` or wgkv safetensors); with `model`, its shape is checked against it. */
export async function loadGateFile(path: string, model?: Model): Promise<GateInput> {
  const bytes = await readGateFile(path);
  const shape = model ? { numLayers: model.config.numLayers, numKvHeads: model.config.numKvHeads, headDim: model.config.headDim } : undefined;
  const loaded = loadGate(bytes, path, shape);
  return { ...loaded, fileName: path };
}

/** KV options with a gate path replaced by the loaded gate (each path read once per model). */
export async function withLoadedGate(model: Model, kv: NodeKvOptions | undefined): Promise<KvOptions | undefined> {
  return withGateRef(model, kv, loadGateFile);
}
