/**
 * @module tokenizer/boundedInterpreter
 *
 * @huggingface/jinja's interpreter on a budget. The library calls back into
 * `evaluate` for every expression and statement and into `applyFilter` for
 * every filter, so a subclass sees each step, each value made, and each
 * filter's operand before the filter runs:
 *
 * - work: each evaluation is a step, each item a for loop goes over a few
 *   more; `range()` (see `chatTemplate.ts`) charges its items before making them;
 * - size: a value may hold at most `maxValueLength` characters (strings) or
 *   characters and items (lists, dicts, counted through their contents, so a
 *   list of one long string repeated counts every repeat); all strings made
 *   add up to at most `maxTotalChars`;
 * - amplifiers: the filters and methods whose output can outgrow their inputs
 *   many times over in one call (`replace`, `indent`, `join`, `tojson`'s
 *   indent) have their output size computed from their arguments first;
 * - depth and time: nesting (macro recursion) and a wall-clock backstop.
 *
 * The first limit crossed throws {@link BudgetExceeded}.
 */
import * as jinja from "@huggingface/jinja";

/** Limits of one render. */
export interface RenderBudget {
  readonly maxSteps: number;
  /** Characters of one string, or characters and items of one list or dict. */
  readonly maxValueLength: number;
  /** Characters of all strings made, added up. */
  readonly maxTotalChars: number;
  readonly maxDepth: number;
  readonly maxMs: number;
}

/** A limit was crossed; the message says which. */
export class BudgetExceeded extends Error {}

// NOTE: the library's declarations re-export Environment and Interpreter from a
// path NodeNext cannot resolve, so their shapes are stated here: what this uses.
// `applyFilter` is private in the library: if a release renamed it, the
// override below would never run, and the amplifier tests would fail.
/** A runtime value of the interpreter. */
export interface RuntimeValue {
  readonly type: string;
  readonly value: unknown;
}
/** A scope of template variables. */
export interface Environment {
  set(name: string, value: unknown): unknown;
}
interface Interpreter {
  run(program: unknown): RuntimeValue;
  evaluate(statement: unknown, environment: Environment): RuntimeValue;
  applyFilter(operand: RuntimeValue, filterNode: unknown, environment: Environment): RuntimeValue;
  evaluateMemberExpression(expr: unknown, environment: Environment): RuntimeValue;
}
/** The library's Environment constructor. */
export const Environment = jinja.Environment as unknown as new () => Environment;
const Interpreter = jinja.Interpreter as unknown as new (env: Environment) => Interpreter;

/** The AST fields read here (ast.ts of the library). */
interface Node {
  readonly type: string;
  readonly value?: unknown;
  readonly key?: Node;
  readonly callee?: Node;
  readonly args?: readonly Node[];
  readonly object?: Node;
  readonly property?: Node;
  readonly computed?: boolean;
  readonly iterable?: Node;
  readonly lhs?: Node;
}

/** Steps charged per item a for loop goes over (on top of the steps of its body). */
const LOOP_ITEM_STEPS = 4;

/** Filters whose output can be many times the size of their operand. */
const AMPLIFIERS = new Set(["replace", "indent", "join", "tojson"]);

/** An interpreter that counts its work and sizes and stops at the first limit crossed. */
export class BoundedInterpreter extends Interpreter {
  numSteps = 0;
  numChars = 0;
  #depth = 0;
  #loopIterable: unknown;
  /** The `x.replace` callees #checkMethodCall has sized (the one form of string replace allowed). */
  readonly #sizedCallees = new WeakSet<object>();
  readonly #deadline: number;
  // Characters and items inside each list or dict, by its JS array or Map: values are never mutated in place.
  readonly #sizes = new WeakMap<object, number>();

  constructor(
    env: Environment,
    readonly budget: RenderBudget,
  ) {
    super(env);
    this.#deadline = Date.now() + budget.maxMs;
  }

  /** Charges `n` steps (an evaluation, or the items of a range). */
  charge(n: number): void {
    this.numSteps += n;
    if (this.numSteps > this.budget.maxSteps) throw new BudgetExceeded(`more than ${this.budget.maxSteps} steps`);
    if ((this.numSteps & 0xff) === 0 && Date.now() > this.#deadline) throw new BudgetExceeded(`more than ${this.budget.maxMs} ms`);
  }

  override evaluate(statement: unknown, environment: Environment): RuntimeValue {
    this.charge(1);
    if (++this.#depth > this.budget.maxDepth) throw new BudgetExceeded(`nesting deeper than ${this.budget.maxDepth}`);
    try {
      const node = statement as Node | undefined;
      if (node?.type === "CallExpression") this.#checkMethodCall(node, environment);
      // A for loop evaluates its iterable first: remember which node that is, to charge its items.
      if (node?.type === "For") this.#loopIterable = node.iterable?.type === "SelectExpression" ? node.iterable.lhs : node.iterable;
      const value = super.evaluate(statement, environment);
      this.#checkValue(value);
      if (statement === this.#loopIterable) {
        this.#loopIterable = undefined;
        // NOTE: an iteration costs the library a scope and a loop object even with an empty body.
        if (Array.isArray(value.value)) this.charge(LOOP_ITEM_STEPS * value.value.length);
        else if (value.value instanceof Map) this.charge(LOOP_ITEM_STEPS * value.value.size);
      }
      return value;
    } finally {
      this.#depth--;
    }
  }

  override applyFilter(operand: RuntimeValue, filterNode: unknown, environment: Environment): RuntimeValue {
    const node = filterNode as Node;
    const name = node.type === "Identifier" ? node.value : node.callee?.type === "Identifier" ? node.callee.value : undefined;
    if (typeof name !== "string" || !AMPLIFIERS.has(name)) return super.applyFilter(operand, filterNode, environment);
    // NOTE: the arguments are evaluated again by the filter itself; they are charged twice, which is fine.
    const args = node.type === "CallExpression" ? this.#arguments(node.args ?? [], environment) : { positional: [], keyword: new Map<string, unknown>() };
    const arg = (i: number, key: string): unknown => args.positional[i] ?? args.keyword.get(key);
    if (name === "replace" && typeof operand.value === "string") {
      this.#checkLength("replace", replacedLength(operand.value, arg(0, "old"), arg(1, "new"), arg(2, "count")));
    } else if (name === "indent" && typeof operand.value === "string") {
      const width = arg(0, "width");
      const numLines = countOf(operand.value, "\n") + 1;
      this.#checkLength("indent", operand.value.length + numLines * (typeof width === "string" ? width.length : typeof width === "number" ? width : 4));
    } else if (name === "join" && Array.isArray(operand.value)) {
      const sep = arg(0, "d");
      const items = operand.value as RuntimeValue[];
      this.#checkLength("join", this.#sizeOf(operand) + Math.max(0, items.length - 1) * (typeof sep === "string" ? sep.length : 0));
    } else if (name === "tojson") {
      const indent = args.keyword.get("indent");
      // NOTE: each line repeats the indent once per level: cap it at what JSON pretty-printing uses.
      if (typeof indent === "number" && indent > 16) throw new BudgetExceeded(`tojson indent ${indent}, more than 16`);
      this.#checkLength("tojson", 6 * this.#sizeOf(operand));
    }
    return super.applyFilter(operand, filterNode, environment);
  }

  /**
   * A string's replace reached any other way (`s['replace']`, `{% set r = s.replace %}`) could not be
   * sized before it runs: refused. Real templates call it as `s.replace(...)` or use the filter.
   */
  override evaluateMemberExpression(expr: unknown, environment: Environment): RuntimeValue {
    const value = super.evaluateMemberExpression(expr, environment);
    if (value.type === "FunctionValue" && !this.#sizedCallees.has(expr as object) && isStringReplace(value.value)) {
      throw new BudgetExceeded("a string's replace taken other than as s.replace(old, new), which cannot be sized before it runs");
    }
    return value;
  }

  /** `s.replace(old, new[, count])` as a method: its output size, before it is made. */
  #checkMethodCall(node: Node, environment: Environment): void {
    const callee = node.callee;
    if (callee?.type !== "MemberExpression" || callee.computed || callee.property?.value !== "replace") return;
    this.#sizedCallees.add(callee);
    // NOTE: evaluates the string and arguments once more; each step is charged, so nesting cannot hide work.
    const target = this.evaluate(callee.object, environment);
    if (typeof target.value !== "string") return;
    const args = this.#arguments(node.args ?? [], environment);
    this.#checkLength("replace", replacedLength(target.value, args.positional[0], args.positional[1], args.positional[2] ?? args.keyword.get("count")));
  }

  #arguments(nodes: readonly Node[], environment: Environment): { positional: unknown[]; keyword: Map<string, unknown> } {
    const positional: unknown[] = [];
    const keyword = new Map<string, unknown>();
    for (const n of nodes) {
      if (n.type === "KeywordArgumentExpression") keyword.set(String(n.key?.value), this.evaluate(n.value, environment).value);
      else positional.push(this.evaluate(n, environment).value);
    }
    return { positional, keyword };
  }

  #checkLength(what: string, length: number): void {
    if (length > this.budget.maxValueLength) throw new BudgetExceeded(`${what} would make ${length} characters, more than ${this.budget.maxValueLength}`);
  }

  #checkValue(value: RuntimeValue): void {
    const size = this.#sizeOf(value);
    if (size > this.budget.maxValueLength) throw new BudgetExceeded(`a value of more than ${this.budget.maxValueLength} characters or items`);
    if (typeof value.value === "string" && value.type === "StringValue") {
      this.numChars += size;
      if (this.numChars > this.budget.maxTotalChars) throw new BudgetExceeded(`more than ${this.budget.maxTotalChars} characters made in all`);
    }
  }

  /** Characters of a string; for a list or dict, its items plus everything inside them (cached per list or dict). */
  #sizeOf(value: RuntimeValue): number {
    const raw = value.value;
    if (typeof raw === "string") return raw.length;
    if (!Array.isArray(raw) && !(raw instanceof Map)) return 1;
    const cached = this.#sizes.get(raw);
    if (cached !== undefined) return cached;
    let size = 0;
    if (Array.isArray(raw)) for (const item of raw as RuntimeValue[]) size += 1 + this.#sizeOf(item);
    else for (const [key, item] of raw as Map<string, RuntimeValue>) size += 1 + key.length + this.#sizeOf(item);
    this.#sizes.set(raw, size);
    return size;
  }
}

/** Occurrences of `part` in `s` (without overlaps), counted without making anything. */
function countOf(s: string, part: string): number {
  let n = 0;
  for (let at = s.indexOf(part); at >= 0; at = s.indexOf(part, at + part.length)) n++;
  return n;
}

/** Whether a function value is the library's string replace (its source names its own error). */
function isStringReplace(fn: unknown): boolean {
  return typeof fn === "function" && Function.prototype.toString.call(fn).includes("replace() requires at least two arguments");
}

/** Length of Python's `s.replace(old, new, count)`; 0 when the arguments are not strings (the call will fail anyway). */
function replacedLength(s: string, old: unknown, replacement: unknown, count: unknown): number {
  if (typeof old !== "string" || typeof replacement !== "string") return 0;
  const found = old.length === 0 ? s.length + 1 : countOf(s, old);
  const n = typeof count === "number" && count >= 0 ? Math.min(count, found) : found;
  return s.length + n * (replacement.length - old.length);
}
