/**
 * @module eval/tasks
 *
 * Task specs as written on the command line (`--tasks niah,niah_multikey:uuids,vt`)
 * and the generators they name. A spec is a task name with optional
 * modifiers after colons: the value kind (numbers, words, uuids) and the
 * haystack (corpus, noise) where the task has them.
 */
import { InvalidInputError } from "../errors.js";
import { commonWordsTask } from "./commonWords.js";
import { frequentWordsTask } from "./frequentWords.js";
import type { HaystackKind } from "./haystack.js";
import { jsonKvTask } from "./jsonKv.js";
import { niahTask, type NiahVariant } from "./niah.js";
import type { TaskGenerator } from "./task.js";
import { variableTrackingTask } from "./variableTracking.js";
import { VALUE_KINDS, type ValueKind } from "./words.js";

const NIAH_NAMES: Record<string, NiahVariant> = {
  niah: "single",
  niah_single: "single",
  niah_multikey: "multikey",
  niah_multivalue: "multivalue",
  niah_multiquery: "multiquery",
};

export const TASK_NAMES = [...Object.keys(NIAH_NAMES), "vt", "cwe", "fwe", "kv"] as const;
const HAYSTACKS: readonly HaystackKind[] = ["corpus", "noise"];

/** The generator a spec names; a one-line error naming `flag` otherwise. */
export function parseTask(spec: string, flag = "--tasks"): TaskGenerator {
  const [name, ...modifiers] = spec.trim().split(":").map((s) => s.trim());
  const fail = (why: string): never => {
    throw new InvalidInputError(`${flag} "${spec}": ${why}`);
  };
  let values: ValueKind | undefined;
  let haystack: HaystackKind | undefined;
  for (const m of modifiers) {
    if ((VALUE_KINDS as readonly string[]).includes(m)) {
      if (values) fail("gives the value kind twice");
      values = m as ValueKind;
    } else if ((HAYSTACKS as readonly string[]).includes(m)) {
      if (haystack) fail("gives the haystack twice");
      haystack = m as HaystackKind;
    } else fail(`unknown modifier "${m}" (expected one of ${[...VALUE_KINDS, ...HAYSTACKS].join(", ")})`);
  }
  const variant = NIAH_NAMES[name];
  if (variant) return niahTask(spec.trim(), { variant, values: values ?? "numbers", haystack: haystack ?? "corpus" });
  if (!(TASK_NAMES as readonly string[]).includes(name)) fail(`unknown task (expected one of ${TASK_NAMES.join(", ")})`);
  if (values) fail(`task ${name} takes no value kind`);
  if (name === "vt") return variableTrackingTask(spec.trim(), { haystack: haystack ?? "noise" });
  if (haystack) fail(`task ${name} takes no haystack`);
  if (name === "cwe") return commonWordsTask(spec.trim());
  if (name === "fwe") return frequentWordsTask(spec.trim());
  return jsonKvTask(spec.trim());
}

/** Comma-separated task specs; duplicates are refused. */
export function parseTaskList(list: string, flag = "--tasks"): TaskGenerator[] {
  const specs = list.split(",").map((s) => s.trim());
  if (specs.some((s) => s === "")) throw new InvalidInputError(`${flag} "${list}": empty task name`);
  const seen = new Set<string>();
  return specs.map((s) => {
    if (seen.has(s)) throw new InvalidInputError(`${flag} "${list}": task ${s} is listed twice`);
    seen.add(s);
    return parseTask(s, flag);
  });
}
