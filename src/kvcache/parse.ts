/**
 * @module kvcache/parse
 *
 * Policy specs as written on the command line, in eval sweeps and in the
 * library's options: admission `full | local | sinks:N | random:RATE | gate`,
 * selection `all | quest:BUDGET`, eviction `none | snapkv:BUDGET`. `what`
 * names the option in error messages (`--admission`, `kv.admission`).
 */
import { InvalidInputError } from "../errors.js";
import { admitAll, gateAdmission, localOnly, randomAdmission, sinksAndLocal, type AdmissionPolicy } from "./admission.js";
import { noEviction, SnapKvEviction, type EvictionPolicy } from "./eviction.js";
import { questSelection, selectAll, type SelectionPolicy } from "./selection.js";

export const ADMISSION_SPECS = "full, local, sinks:N, random:RATE, gate";

export function parseAdmission(spec: string, tau: number, what = "--admission"): AdmissionPolicy {
  const [kind, arg] = splitSpec(what, spec);
  switch (kind) {
    case "full":
      return noArg(what, spec, arg, admitAll);
    case "local":
      return noArg(what, spec, arg, localOnly);
    case "sinks":
      return sinksAndLocal(positiveInt(`${what} sinks:N`, arg));
    case "random": {
      const rate = arg !== undefined && /^(\d+\.?\d*|\.\d+)$/.test(arg) ? Number(arg) : NaN;
      if (!(rate >= 0 && rate <= 1)) throw new InvalidInputError(`${what} random:RATE needs a rate in [0, 1], got "${spec}"`);
      return randomAdmission(rate);
    }
    case "gate":
      if (!(tau > 0 && tau < 1)) throw new InvalidInputError(`tau must be in (0, 1), got ${tau}`);
      return noArg(what, spec, arg, gateAdmission(tau));
    default:
      throw new InvalidInputError(`${what} "${spec}" is not one of ${ADMISSION_SPECS}`);
  }
}

export function parseSelection(spec: string, what = "--selection"): SelectionPolicy {
  const [kind, arg] = splitSpec(what, spec);
  if (kind === "all") return noArg(what, spec, arg, selectAll);
  if (kind === "quest") return questSelection(positiveInt(`${what} quest:BUDGET`, arg));
  throw new InvalidInputError(`${what} "${spec}" is not one of all, quest:BUDGET`);
}

export function parseEviction(spec: string, what = "--eviction"): EvictionPolicy {
  const [kind, arg] = splitSpec(what, spec);
  if (kind === "none") return noArg(what, spec, arg, noEviction);
  if (kind === "snapkv") return new SnapKvEviction(positiveInt(`${what} snapkv:BUDGET`, arg));
  throw new InvalidInputError(`${what} "${spec}" is not one of none, snapkv:BUDGET`);
}

function splitSpec(what: string, spec: string): [string, string | undefined] {
  if (typeof spec !== "string") throw new InvalidInputError(`${what} must be a string, got ${typeof spec}`);
  const at = spec.indexOf(":");
  return at < 0 ? [spec.trim(), undefined] : [spec.slice(0, at).trim(), spec.slice(at + 1).trim()];
}

function noArg<T>(what: string, spec: string, arg: string | undefined, value: T): T {
  if (arg !== undefined) throw new InvalidInputError(`${what} "${spec}" takes no argument`);
  return value;
}

/** Token counts (sinks, budgets) beyond any context (2^24 positions, model/config.ts) are typos or attacks: buffers are sized by them. */
const MAX_TOKENS = 2 ** 24;

function positiveInt(what: string, arg: string | undefined): number {
  const n = arg !== undefined && /^\d+$/.test(arg) ? Number(arg) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n > MAX_TOKENS) throw new InvalidInputError(`${what} must be a positive integer up to ${MAX_TOKENS}, got "${arg ?? ""}"`);
  return n;
}
