/**
 * @module kv/kvSettings
 *
 * How a model's KV cache behaves: local window, page dtype and the three
 * policies (admission, selection, eviction), validated once.
 */
import type { GateHandle, KvDType } from "../backends/backend.js";
import { validateWindow } from "../cache/blockTable.js";
import { admitAll, type AdmissionPolicy } from "../policy/admission.js";
import { noEviction, type EvictionPolicy } from "../policy/eviction.js";
import { selectAll, type SelectionPolicy } from "../policy/selection.js";

export interface KvSettings {
  /** Local window W in tokens: a multiple of 16 (default 256). */
  readonly window: number;
  readonly kvDType: KvDType;
  readonly admission: AdmissionPolicy;
  readonly selection: SelectionPolicy;
  readonly eviction: EvictionPolicy;
  /** The write gate on the backend, when admission uses it. */
  readonly gate: GateHandle | null;
}

export const DEFAULT_WINDOW = 256;

/** Fills defaults (full attention, f32 pages, W = 256) and checks the combination. */
export function resolveKvSettings(partial: Partial<KvSettings> = {}): KvSettings {
  const settings: KvSettings = {
    window: partial.window ?? DEFAULT_WINDOW,
    kvDType: partial.kvDType ?? "f32",
    admission: partial.admission ?? admitAll,
    selection: partial.selection ?? selectAll,
    eviction: partial.eviction ?? noEviction,
    gate: partial.gate ?? null,
  };
  validateWindow(settings.window);
  if (settings.admission.needsGateScores && !settings.gate) throw new Error("gate admission needs a gate (pass --gate FILE)");
  return Object.freeze(settings);
}
