/**
 * @module eval/policySpec
 *
 * KV policies of an eval sweep, as written in `--policies`:
 *
 * ```
 * full | local | sinks:N | random:RATE | gate:FILE   (admission)
 *   [+snapkv:BUDGET] [+quest:BUDGET]                 (eviction, selection)
 * ```
 *
 * e.g. `gate:gates/g.pt+quest:512`. A spec becomes the options of
 * resolveKvOptions (platform/node/kvOptions); this module only parses, so it
 * stays free of file access.
 */
import { InvalidInputError } from "../errors.js";

/** What resolveKvOptions needs for one policy (besides window and tau). */
export interface PolicyKvOptions {
  readonly gate?: string;
  readonly admission: string;
  readonly selection?: string;
  readonly eviction?: string;
}

export interface PolicySpec {
  /** The spec as given. */
  readonly spec: string;
  /** Short name for tables and plots: the gate file's base name instead of its path. */
  readonly label: string;
  readonly options: PolicyKvOptions;
}

export const POLICY_SYNTAX = "full, local, sinks:N, random:RATE or gate:FILE, optionally followed by +snapkv:BUDGET and/or +quest:BUDGET";

/** One policy spec; a one-line error naming `flag` when it is malformed. */
export function parsePolicySpec(spec: string, flag = "--policies"): PolicySpec {
  const fail = (why: string): never => {
    throw new InvalidInputError(`${flag} "${spec}": ${why}`);
  };
  const trimmed = spec.trim();
  if (trimmed === "") fail(`empty policy (expected ${POLICY_SYNTAX})`);
  // NOTE: split only before "snapkv:" / "quest:", so a gate path may contain "+".
  const [base, ...extras] = trimmed.split(/\+(?=\s*(?:snapkv|quest)\s*:)/).map((s) => s.trim());
  const colon = base.indexOf(":");
  const kind = colon < 0 ? base : base.slice(0, colon).trim();
  const arg = colon < 0 ? undefined : base.slice(colon + 1).trim();
  let admission = kind;
  let gate: string | undefined;
  switch (kind) {
    case "full":
    case "local":
      if (arg !== undefined) fail(`${kind} takes no argument`);
      break;
    case "sinks":
      admission = `sinks:${positiveInt(arg, "sinks:N needs a positive integer N", fail)}`;
      break;
    case "random": {
      const rate = arg === undefined || arg === "" ? NaN : Number(arg);
      if (!(rate >= 0 && rate <= 1)) fail("random:RATE needs a rate in [0, 1]");
      admission = `random:${rate}`;
      break;
    }
    case "gate":
      if (!arg) fail("gate:FILE needs the gate checkpoint's path");
      gate = arg;
      break;
    default:
      fail(`unknown policy "${kind}" (expected ${POLICY_SYNTAX})`);
  }
  let selection: string | undefined;
  let eviction: string | undefined;
  for (const extra of extras) {
    const [name, value] = extra.split(":").map((s) => s.trim());
    const budget = positiveInt(value, `${name}:BUDGET needs a positive integer BUDGET`, fail);
    if (name === "snapkv") {
      if (eviction) fail("gives +snapkv twice");
      eviction = `snapkv:${budget}`;
    } else {
      if (selection) fail("gives +quest twice");
      selection = `quest:${budget}`;
    }
  }
  const label = gate === undefined ? trimmed : trimmed.replace(gate, baseName(gate));
  return { spec: trimmed, label, options: { gate, admission, selection, eviction } };
}

/** Comma-separated policy specs; duplicates are refused. */
export function parsePolicyList(list: string, flag = "--policies"): PolicySpec[] {
  const specs = list.split(",");
  const seen = new Set<string>();
  return specs.map((s) => {
    const policy = parsePolicySpec(s, flag);
    if (seen.has(policy.spec)) throw new InvalidInputError(`${flag} "${list}": policy ${policy.spec} is listed twice`);
    seen.add(policy.spec);
    return policy;
  });
}

function positiveInt(value: string | undefined, why: string, fail: (why: string) => never): number {
  const n = value === undefined || value === "" ? NaN : Number(value);
  if (!Number.isInteger(n) || n <= 0) fail(why);
  return n;
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}
