/**
 * @module platform/node/gateFiles
 *
 * Reading write-gate files from disk, checked against a model, and KV
 * options whose gate is given as a path (the library accepts both).
 */
import { loadGate } from "../../gate/gateFile.js";
import { readGateFile } from "./gateFileRead.js";
import type { Model } from "../../engine/model.js";
import type { GateInput, KvOptions } from "../../engine/kvOptions.js";

/** KV options as the Node entry accepts them: the gate may be a file path. */
export interface NodeKvOptions extends Omit<KvOptions, "gate"> {
  readonly gate?: string | GateInput | null;
}

/** Reads a gate file (official `.pt` or wgkv safetensors); with `model`, its shape is checked against it. */
export async function loadGateFile(path: string, model?: Model): Promise<GateInput> {
  const bytes = await readGateFile(path);
  const shape = model ? { numLayers: model.config.numLayers, numKvHeads: model.config.numKvHeads, headDim: model.config.headDim } : undefined;
  const loaded = loadGate(bytes, path, shape);
  return { ...loaded, fileName: path };
}

const cache = new WeakMap<Model, Map<string, Promise<GateInput>>>();

/** KV options with a gate path replaced by the loaded gate (each path read once per model). */
export async function withLoadedGate(model: Model, kv: NodeKvOptions | undefined): Promise<KvOptions | undefined> {
  if (!kv || typeof kv.gate !== "string") return kv as KvOptions | undefined;
  let byPath = cache.get(model);
  if (!byPath) cache.set(model, (byPath = new Map()));
  let gate = byPath.get(kv.gate);
  if (!gate) {
    gate = loadGateFile(kv.gate, model);
    byPath.set(kv.gate, gate);
    gate.catch(() => byPath!.delete(kv.gate as string));
  }
  return { ...kv, gate: await gate };
}
