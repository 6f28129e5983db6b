/**
 * @module engine/kvOptions
 *
 * A request's KV behaviour as users write it (the same spec strings as the
 * CLI: admission "gate" | "full" | "local" | "sinks:N" | "random:RATE",
 * selection "all" | "quest:BUDGET", eviction "none" | "snapkv:BUDGET", a
 * window, tau, and a gate already loaded) resolved to a KvPolicy. Errors
 * name the option as the caller calls it (`kv.admission` in the library,
 * `--admission` on the command line) and, for values read from a gate file,
 * the file.
 */
import type { Backend, GateHandle } from "../backends/backend.js";
import { InvalidInputError, shownValue } from "../errors.js";
import type { LoadedGate } from "../gate/gateFile.js";
import { DEFAULT_GATE_TAU } from "../gate/gateMath.js";
import type { GateWeights } from "../gate/gateWeights.js";
import type { AdmissionPolicy } from "../kvcache/admission.js";
import type { EvictionPolicy } from "../kvcache/eviction.js";
import { DEFAULT_WINDOW, resolveKvPolicy, type KvPolicy } from "../kvcache/kvPolicy.js";
import { parseAdmission, parseEviction, parseSelection } from "../kvcache/parse.js";
import type { SelectionPolicy } from "../kvcache/selection.js";
import type { ModelConfig } from "../model/config.js";

/** A gate as the library accepts it: a file read by loadGateFile (with its metadata), or bare weights. */
export type GateInput = LoadedGate & { readonly fileName?: string };

export interface KvOptions {
  /** Local window W in tokens, a multiple of 16 (default: the gate file's, else 256). */
  readonly window?: number;
  /** "full" (default; "gate" when a gate is given), "local", "sinks:N", "random:RATE", "gate". */
  readonly admission?: string | AdmissionPolicy;
  /** "all" (default) or "quest:BUDGET". */
  readonly selection?: string | SelectionPolicy;
  /** "none" (default) or "snapkv:BUDGET". */
  readonly eviction?: string | EvictionPolicy;
  /** The write gate (loadGateFile); implies admission "gate". */
  readonly gate?: GateInput | null;
  /** Admitted iff g > tau (default: the gate file's, else 0.1). */
  readonly tau?: number;
}

/** How errors name each option: "kv.window" in the library, "--window" on the command line. */
export type KvOptionNames = Readonly<Record<keyof KvOptions, string>>;

export const LIBRARY_KV_NAMES: KvOptionNames = {
  window: "kv.window", admission: "kv.admission", selection: "kv.selection", eviction: "kv.eviction", gate: "kv.gate", tau: "kv.tau",
};

const KNOWN = new Set(Object.keys(LIBRARY_KV_NAMES));

/** Uploads each gate once per backend. */
const uploaded = new WeakMap<Backend, WeakMap<GateWeights, GateHandle>>();

/** What resolveKvOptions reads of a model: its config, backend and, when it has one, its engine's largest window. */
export interface KvOptionsModel {
  readonly config: ModelConfig;
  readonly backend: Backend;
  readonly engine?: { readonly config: { readonly maxWindow: number } };
}

export function resolveKvOptions(options: KvOptions | undefined, model: KvOptionsModel, names: KvOptionNames = LIBRARY_KV_NAMES): KvPolicy {
  const o = options ?? {};
  if (typeof o !== "object" || Array.isArray(o)) throw new InvalidInputError(`kv options must be an object, got ${shownValue(o)}`);
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) throw new InvalidInputError(`unknown KV option "${key}" (known: ${[...KNOWN].join(", ")})`);
  const gate = o.gate ?? null;
  if (gate !== null && (typeof gate !== "object" || !("gate" in gate))) throw new InvalidInputError(`${names.gate} must be a gate loaded with loadGateFile(), got ${typeof gate}`);
  const meta = gate?.meta ?? {};
  const source = gate?.fileName ? `gate file ${gate.fileName}` : names.gate;
  if (o.tau !== undefined && !(typeof o.tau === "number" && o.tau > 0 && o.tau < 1)) throw new InvalidInputError(`${names.tau} ${shownValue(o.tau)}: must be a number in (0, 1)`);
  if (o.tau === undefined && meta.tau !== undefined && !(meta.tau > 0 && meta.tau < 1)) throw new InvalidInputError(`${source}: metadata tau=${meta.tau} is not in (0, 1)`);
  const tau = o.tau ?? meta.tau ?? DEFAULT_GATE_TAU;
  if (o.window !== undefined && !(typeof o.window === "number" && Number.isInteger(o.window) && o.window > 0 && o.window % 16 === 0)) {
    throw new InvalidInputError(`${names.window} must be a positive multiple of 16, got ${shownValue(o.window)}`);
  }
  if (o.window === undefined && meta.window !== undefined && !(Number.isInteger(meta.window) && meta.window > 0 && meta.window % 16 === 0)) {
    throw new InvalidInputError(`${source}: metadata window=${meta.window} is not a positive multiple of 16`);
  }
  const sliding = model.config.slidingWindow;
  // NOTE: a window past the context keeps everything local, as one as long as the context does
  const window = Math.min(o.window ?? meta.window ?? sliding ?? DEFAULT_WINDOW, Math.ceil(model.config.maxPositions / 16) * 16);
  const largest = model.engine?.config.maxWindow;
  if (o.window === undefined && meta.window !== undefined && largest !== undefined && window > largest) {
    throw new InvalidInputError(`${source}: metadata window=${meta.window} is larger than this engine's largest window ${largest}; set ${names.window} (at most ${largest}, unless the model is loaded with a larger maxWindow)`);
  }

  // a sliding-window model (Mistral v0.1) runs as it was trained by default: its own span, local admission
  const admission = typeof o.admission === "object" ? o.admission : parseAdmission(o.admission ?? (gate ? "gate" : sliding !== null ? "local" : "full"), tau, names.admission);
  if (sliding !== null) checkSlidingWindow(sliding, admission, window, names);
  if (o.tau !== undefined && admission.kind !== "gate") throw new InvalidInputError(`${names.tau} is only used by gate admission (give ${names.gate})`);
  if (admission.kind === "gate" && !gate) throw new InvalidInputError(`${names.admission} gate needs ${names.gate}`);
  // NOTE: a gate that another admission would silently not read is a mistake, like a tau without a gate
  if (gate && admission.kind !== "gate") throw new InvalidInputError(`${names.gate} is only used by gate admission, and ${names.admission} is ${admission.name}`);
  const selection = typeof o.selection === "object" ? o.selection : parseSelection(o.selection ?? "all", names.selection);
  const eviction = typeof o.eviction === "object" ? o.eviction : parseEviction(o.eviction ?? "none", names.eviction);
  let handle: GateHandle | null = null;
  if (gate) {
    const { numLayers, numKvHeads, headDim } = model.config;
    const g = gate.gate;
    if (g.numLayers !== numLayers || g.numKvHeads !== numKvHeads || g.headDim !== headDim) {
      throw new InvalidInputError(`${source}: a gate for ${g.numLayers} layers x ${g.numKvHeads} KV heads of dim ${g.headDim}, but the model has ${numLayers} x ${numKvHeads} of dim ${headDim}`);
    }
    let byGate = uploaded.get(model.backend);
    if (!byGate) uploaded.set(model.backend, (byGate = new WeakMap()));
    handle = byGate.get(g) ?? model.backend.uploadGate(g);
    byGate.set(g, handle);
  }
  return resolveKvPolicy({ window, admission, selection, eviction, gate: handle });
}

/**
 * A model trained to attend to its last `span` tokens (config.json sliding_window) gives its answers only
 * under local admission with a window of at most that span: any other policy would show it older tokens.
 */
function checkSlidingWindow(span: number, admission: AdmissionPolicy, window: number, names: KvOptionNames): void {
  const why = `the model attends only to its last ${span} tokens (config.json sliding_window)`;
  if (admission.kind !== "local") throw new InvalidInputError(`${names.admission} ${admission.name}: ${why}; only local admission keeps its answers`);
  if (window > span) throw new InvalidInputError(`${names.window} ${window}: ${why}; use a window of at most ${span}`);
}
