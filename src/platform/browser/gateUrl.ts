/**
 * @module platform/browser/gateUrl
 *
 * Reads a write-gate file over HTTP (official `.pt` or wgkv safetensors) and
 * checks it against a model: the browser's counterpart of Node's
 * loadGateFile. A gate is megabytes and read whole.
 */
import { loadGate } from "../../gate/gateFile.js";
import type { Model } from "../../engine/model.js";
import type { GateInput } from "../../engine/kvOptions.js";
import { causeText, ModelLoadError } from "../../errors.js";

/** Larger than any write gate (Llama-3.1-8B's is about 0.3 GB in f32). */
const MAX_GATE_BYTES = 2 ** 31;

export async function loadGateUrl(url: string, model?: Model, fetchImpl: typeof fetch = (i, init) => globalThis.fetch(i, init)): Promise<GateInput> {
  const fail = (why: string, cause?: unknown): never => {
    throw new ModelLoadError(`${url}: cannot read the gate file (${why})`, { cause });
  };
  const r = await fetchImpl(url).catch((err: unknown) => fail(causeText(err), err));
  if (!r.ok) fail(`HTTP ${r.status}${r.statusText ? ` ${r.statusText}` : ""}`);
  const length = Number(r.headers.get("content-length") ?? 0);
  if (length > MAX_GATE_BYTES) {
    await r.body?.cancel();
    fail(`${length} bytes, more than any gate's ${MAX_GATE_BYTES}; is it a gate?`);
  }
  const bytes = new Uint8Array(await r.arrayBuffer().catch((err: unknown) => fail(causeText(err), err)));
  const shape = model ? { numLayers: model.config.numLayers, numKvHeads: model.config.numKvHeads, headDim: model.config.headDim } : undefined;
  return { ...loadGate(bytes, url, shape), fileName: url };
}
