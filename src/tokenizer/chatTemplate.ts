/**
 * @module tokenizer/chatTemplate
 *
 * A model's chat template, rendered by @huggingface/jinja within bounds.
 * A template is code from the model folder: `{% for i in range(1000000000) %}`
 * makes the library build a billion-element array (V8 dies), and string
 * doubling or nested loops hang for minutes with gigabytes. Here a render
 * runs on a budget that grows with its input (the messages), enforced by
 * `./boundedInterpreter.ts`, and `range()` refuses more items than the steps
 * left; the first limit crossed ends the render with a one-line
 * ModelLoadError naming the template file.
 *
 * The library's `Template.render` cannot take a different `range` (its
 * globals are declared first and cannot be declared again) or a different
 * interpreter, so this sets up the same globals itself and runs its own
 * interpreter on the parsed program.
 */
import * as jinja from "@huggingface/jinja";
import { causeText, ModelLoadError } from "../errors.js";
import { BoundedInterpreter, BudgetExceeded, Environment, type RenderBudget } from "./boundedInterpreter.js";

export type { RenderBudget } from "./boundedInterpreter.js";

/**
 * The budget for a render whose context holds `inputChars` characters of
 * strings in `numMessages` messages: far above what any real template needs
 * (a few dozen steps per message, the input's length a few times over), far
 * below what costs noticeable time or memory.
 */
export function renderBudget(inputChars: number, numMessages: number): RenderBudget {
  return {
    maxSteps: 50_000 + 2_000 * numMessages,
    maxValueLength: 1_048_576 + 2 * inputChars,
    maxTotalChars: 16_777_216 + 64 * inputChars,
    maxDepth: 256,
    maxMs: 1_000 + Math.ceil(inputChars / 10_000) + numMessages, // a backstop: the steps run out first
  };
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** The library's `strftime_now`: %Y %m %d %b %B %H %M %% of the local time (month names in English, as Python's C locale). */
function strftimeNow(format: unknown): string {
  const now = new Date();
  const pad2 = (n: number) => String(n).padStart(2, "0");
  return String(format).replace(/%[YmdbBHM%]/g, (token) => {
    switch (token) {
      case "%Y": return String(now.getFullYear());
      case "%m": return pad2(now.getMonth() + 1);
      case "%d": return pad2(now.getDate());
      case "%b": return MONTHS[now.getMonth()]!.slice(0, 3);
      case "%B": return MONTHS[now.getMonth()]!;
      case "%H": return pad2(now.getHours());
      case "%M": return pad2(now.getMinutes());
      default: return "%";
    }
  });
}

/** Python's range() over the interpreter's remaining steps: the items are counted before any is made. */
function boundedRange(interpreter: BoundedInterpreter): (...args: unknown[]) => number[] {
  return (...args) => {
    if (args.length < 1 || args.length > 3 || !args.every((a) => Number.isSafeInteger(a))) {
      throw new Error(`range() takes 1 to 3 integers, got (${args.map((a) => typeof a).join(", ")})`);
    }
    const [start, stop, step] = args.length === 1 ? [0, args[0] as number, 1] : [args[0] as number, args[1] as number, (args[2] as number | undefined) ?? 1];
    if (step === 0) throw new Error("range() step must not be zero");
    const count = Math.max(0, Math.ceil((stop - start) / step));
    if (interpreter.numSteps + count > interpreter.budget.maxSteps) {
      throw new BudgetExceeded(`range() of ${count} items with ${interpreter.budget.maxSteps - interpreter.numSteps} steps left`);
    }
    interpreter.charge(count);
    return Array.from({ length: count }, (_, i) => start + i * step);
  };
}

/** A parsed chat template and the file it came from. */
export class ChatTemplate {
  readonly #template: jinja.Template;
  /** The source writes characters of U+F0000-U+FFFFD, which chat encoding reserves for its markers (`./contentEscape.ts`). */
  readonly writesPrivateUseMarkers: boolean;

  /** Parses `source`; a syntax error is a one-line ModelLoadError naming `file`. */
  constructor(
    source: string,
    readonly file: string,
  ) {
    this.writesPrivateUseMarkers = /[\u{F0000}-\u{FFFFD}]/u.test(source);
    try {
      this.#template = new jinja.Template(source);
    } catch (err) {
      throw new ModelLoadError(`${file}: cannot parse the chat template (${causeText(err)})`);
    }
  }

  /**
   * Renders with `context` as the template's variables, within `budget`
   * (default: {@link renderBudget} of the context's strings and messages).
   */
  render(context: Readonly<Record<string, unknown>>, budget?: RenderBudget): string {
    const messages = context["messages"];
    const limits = budget ?? renderBudget(countChars(context), Array.isArray(messages) ? messages.length : 1);
    const env = new Environment();
    const interpreter = new BoundedInterpreter(env, limits);
    const globals: Record<string, unknown> = {
      false: false, true: true, none: null, False: false, True: true, None: null,
      raise_exception: (message: unknown) => {
        throw new Error(String(message));
      },
      range: boundedRange(interpreter),
      strftime_now: strftimeNow,
    };
    try {
      // NOTE: the globals go last so that no context key can replace the bounded range().
      for (const [key, value] of Object.entries({ ...context, ...globals })) env.set(key, value);
      const out = interpreter.run(this.#template.parsed);
      return String(out.value);
    } catch (err) {
      if (err instanceof BudgetExceeded) {
        throw new ModelLoadError(`${this.file}: the chat template exceeds its rendering budget (${err.message}); refusing to render it`);
      }
      throw new ModelLoadError(`${this.file}: the chat template failed to render (${causeText(err).slice(0, 300)})`);
    }
  }
}

/** Characters in the strings of a context (messages are plain data: strings, numbers, arrays, objects). */
function countChars(value: unknown, depth = 0): number {
  if (typeof value === "string") return value.length;
  if (depth > 32 || value === null || typeof value !== "object") return 0;
  let n = 0;
  for (const v of Array.isArray(value) ? value : Object.values(value)) n += countChars(v, depth + 1);
  return n;
}
