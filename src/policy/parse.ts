/**
 * @module policy/parse
 *
 * Policy specs as written on the command line and in eval sweeps:
 * admission `full | local | sinks:N | random:RATE | gate`, selection
 * `all | quest:BUDGET`, eviction `none | snapkv:BUDGET`.
 */
import { InvalidInputError } from "../errors.js";
import { admitAll, gateAdmission, localOnly, randomAdmission, sinksAndLocal, type AdmissionPolicy } from "./admission.js";
import { noEviction, SnapKvEviction, type EvictionPolicy } from "./eviction.js";
import { QuestSelection, selectAll, type SelectionPolicy } from "./selection.js";

export const ADMISSION_SPECS = "full, local, sinks:N, random:RATE, gate";

export function parseAdmission(spec: string, tau: number): AdmissionPolicy {
  const [kind, arg] = splitSpec(spec);
  switch (kind) {
    case "full":
      return noArg("--admission", spec, arg, admitAll);
    case "local":
      return noArg("--admission", spec, arg, localOnly);
    case "sinks":
      return sinksAndLocal(positiveInt("--admission sinks:N", arg));
    case "random": {
      const rate = Number(arg);
      if (arg === undefined || arg === "" || !(rate >= 0 && rate <= 1)) throw new InvalidInputError(`--admission random:RATE needs a rate in [0, 1], got "${spec}"`);
      return randomAdmission(rate);
    }
    case "gate":
      if (!(tau > 0 && tau < 1)) throw new InvalidInputError(`--tau must be in (0, 1), got ${tau}`);
      return noArg("--admission", spec, arg, gateAdmission(tau));
    default:
      throw new InvalidInputError(`--admission "${spec}" is not one of ${ADMISSION_SPECS}`);
  }
}

export function parseSelection(spec: string, headDim: number): SelectionPolicy {
  const [kind, arg] = splitSpec(spec);
  if (kind === "all") return noArg("--selection", spec, arg, selectAll);
  if (kind === "quest") return new QuestSelection(positiveInt("--selection quest:BUDGET", arg), headDim);
  throw new InvalidInputError(`--selection "${spec}" is not one of all, quest:BUDGET`);
}

export function parseEviction(spec: string): EvictionPolicy {
  const [kind, arg] = splitSpec(spec);
  if (kind === "none") return noArg("--eviction", spec, arg, noEviction);
  if (kind === "snapkv") return new SnapKvEviction(positiveInt("--eviction snapkv:BUDGET", arg));
  throw new InvalidInputError(`--eviction "${spec}" is not one of none, snapkv:BUDGET`);
}

function splitSpec(spec: string): [string, string | undefined] {
  const at = spec.indexOf(":");
  return at < 0 ? [spec.trim(), undefined] : [spec.slice(0, at).trim(), spec.slice(at + 1).trim()];
}

function noArg<T>(flag: string, spec: string, arg: string | undefined, value: T): T {
  if (arg !== undefined) throw new InvalidInputError(`${flag} "${spec}" takes no argument`);
  return value;
}

function positiveInt(what: string, arg: string | undefined): number {
  const n = Number(arg);
  if (arg === undefined || arg === "" || !Number.isInteger(n) || n <= 0) throw new InvalidInputError(`${what} must be a positive integer, got "${arg ?? ""}"`);
  return n;
}
