/**
 * @module engine/gateRefs
 *
 * KV options whose gate may be given by reference — a file path in Node, a
 * URL in browsers — and generate() on top of them, shared by the platform
 * entries (index.ts, browser.ts). The platform supplies the loader; each
 * reference is loaded once per model and loader, and a failed load is
 * forgotten so a retry reads it again.
 */
import { Model } from "./model.js";
import { GenerationStream, startGeneration, type GenerateOptions } from "./generation.js";
import { resolveKvOptions, type GateInput, type KvOptions } from "./kvOptions.js";
import { promptToIds, type Prompt } from "./prompt.js";
import { InvalidInputError } from "../errors.js";

/** KV options whose gate may be a reference the platform loads (a path, a URL). */
export interface GateRefKvOptions extends Omit<KvOptions, "gate"> {
  readonly gate?: string | GateInput | null;
}

/** Loads a gate reference for `model`, its shape checked against it. */
export type GateLoader = (ref: string, model: Model) => Promise<GateInput>;

const caches = new WeakMap<GateLoader, WeakMap<Model, Map<string, Promise<GateInput>>>>();

/** KV options with a gate reference replaced by the loaded gate. */
export async function withGateRef(model: Model, kv: GateRefKvOptions | undefined, load: GateLoader): Promise<KvOptions | undefined> {
  if (!kv || typeof kv.gate !== "string") return kv as KvOptions | undefined;
  const ref = kv.gate;
  let byModel = caches.get(load);
  if (!byModel) caches.set(load, (byModel = new WeakMap()));
  let byRef = byModel.get(model);
  if (!byRef) byModel.set(model, (byRef = new Map()));
  let gate = byRef.get(ref);
  if (!gate) {
    gate = load(ref, model);
    byRef.set(ref, gate);
    gate.catch(() => byRef.delete(ref));
  }
  return { ...kv, gate: await gate };
}

/** generate()'s options as the platform entries take them: `kv.gate` may be a reference. */
export interface GenerateRefOptions extends Omit<GenerateOptions, "kv"> {
  readonly kv?: GateRefKvOptions;
}

/** Starts a generation whose gate reference `load` reads; bad input rejects the stream with a one-line WgkvError. */
export function generateWithGates(model: Model, prompt: Prompt, options: GenerateRefOptions, load: GateLoader): GenerationStream {
  let ids: number[];
  try {
    if (!(model instanceof Model)) throw new InvalidInputError("generate: the first argument must be a model from loadModel()");
    model.checkLive();
    ids = promptToIds(model, prompt);
  } catch (err) {
    return GenerationStream.failed(err);
  }
  const { kv, ...rest } = options ?? {};
  return startGeneration(model, ids, rest, async () => resolveKvOptions(await withGateRef(model, kv, load), model));
}

/** Runs a generation to its end and returns its result (no streaming). */
export async function finishGeneration(stream: GenerationStream) {
  for await (const _ of stream) {
    // the text is in the result
  }
  return stream.result;
}
