/**
 * @module train/trainData
 *
 * The training samples of the gate recipe (docs/design.md §8), as token ids
 * of exactly `length` tokens each:
 *
 * - text: a window of the training text at a seeded offset, wrapped as one
 *   chat turn, "Please analyze and summarize the following text:\n\n" + text,
 *   cut so that user header + content + assistant header fill the length;
 * - needles (a fraction `needleMix` of the samples): a case of one of the
 *   eval's needle-in-a-haystack tasks (eval/niah.ts) at that length, its
 *   answer included (so the queries that answer attend to the needle), the
 *   haystack drawn from the same training text.
 *
 * Sample (step, i) depends only on (seed, step, i): a resumed run sees the
 * data it would have seen, and the eval's cases (seeded apart) are never
 * trained on by construction of the keys and values drawn.
 */
import { InvalidInputError } from "../errors.js";
import { chatFrame, frameOverhead, type ChatFrame } from "../eval/chatFrame.js";
import { corpusHaystack, DOCUMENT_SEPARATOR, noiseHaystack, type Haystack } from "../eval/haystack.js";
import { Rng } from "../eval/rng.js";
import type { TaskContext, TaskGenerator } from "../eval/task.js";
import { parseTask } from "../eval/tasks.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";

/** The instruction the recipe wraps plain text in. */
export const SUMMARIZE_PROMPT = "Please analyze and summarize the following text:\n\n";

/** The needle tasks mixed in: the eval's NIAH variants, number values, corpus haystack. */
export const NEEDLE_TASKS = ["niah", "niah_multikey", "niah_multivalue", "niah_multiquery"] as const;

export interface TrainSample {
  readonly ids: Int32Array;
  readonly kind: "text" | "needle";
  /** Position of the first token: RoPE's angles start there (see {@link TrainDataOptions.positionRange}). */
  readonly positionOffset: number;
}

export interface TrainDataOptions {
  readonly length: number;
  /** Fraction of samples drawn from the needle tasks, in [0, 1]. */
  readonly needleMix: number;
  readonly seed: number;
  /**
   * Positions a sample may occupy, >= length: each sample starts at a seeded
   * position in [0, positionRange - length]. Attention under RoPE depends on
   * relative positions only, so teacher and student are unchanged by the
   * shift; the gate, which also reads the key after RoPE, learns the angles
   * of positions up to the range (e.g. 8192 while training on 1024-token
   * samples). Default: length (every sample starts at 0, as the recipe).
   */
  readonly positionRange?: number;
  /** Names the data in errors (the --data flag's value). */
  readonly dataName: string;
}

export class TrainData {
  readonly #tokenizer: TextTokenizer;
  readonly #frame: ChatFrame;
  readonly #text: string;
  readonly #options: TrainDataOptions;
  readonly #tasks: readonly TaskGenerator[];
  readonly #context: TaskContext;
  readonly #prompt: number[];

  /** `text`: the training text (documents separated by \x1e become blank lines). Throws if it cannot fill one sample. */
  constructor(tokenizer: TextTokenizer, text: string, options: TrainDataOptions) {
    this.#tokenizer = tokenizer;
    this.#frame = chatFrame(tokenizer);
    this.#text = text.replaceAll(DOCUMENT_SEPARATOR, "\n\n");
    this.#options = options;
    this.#prompt = tokenizer.encode(SUMMARIZE_PROMPT);
    const budget = this.#textBudget();
    if (budget < 1) throw new InvalidInputError(`--length ${options.length} is too short: the chat frame and instruction alone take ${options.length - budget} tokens`);
    this.#tasks = NEEDLE_TASKS.map((spec) => parseTask(spec));
    let corpus: Haystack | null = null;
    this.#context = {
      tokenizer,
      frame: this.#frame,
      haystack: (kind) => (kind === "noise" ? noiseHaystack(tokenizer) : (corpus ??= corpusHaystack(tokenizer, this.#text))),
    };
    // fails now, with the data's name, if the text is too short for one sample
    this.#textSample(new Rng(options.seed));
  }

  /** Sample `index` of step `step`. */
  sample(step: number, index: number): TrainSample {
    const rng = Rng.derive(this.#options.seed, "train-sample", step, index);
    const needle = rng.next() < this.#options.needleMix;
    const { length, positionRange = length } = this.#options;
    const positionOffset = positionRange > length ? rng.int(0, positionRange - length) : 0;
    return { ...(needle ? this.#needleSample(rng) : this.#textSample(rng)), positionOffset };
  }

  /** A fixed, held-out set of samples (for the final gate-score report): half text, half needles. */
  heldOut(count: number): TrainSample[] {
    return Array.from({ length: count }, (_, i) => {
      const rng = Rng.derive(this.#options.seed, "held-out", i);
      return i % 2 === 1 ? this.#needleSample(rng) : this.#textSample(rng);
    });
  }

  /** Content tokens of a text sample. */
  #textBudget(): number {
    return this.#options.length - frameOverhead(this.#frame) - this.#prompt.length;
  }

  #textSample(rng: Rng): TrainSample {
    const budget = this.#textBudget();
    const text = this.#text;
    // NOTE: byte-level BPE averages 3-4 characters per token on prose and code; 6 leaves room.
    for (let chars = budget * 6 + 64; ; chars *= 2) {
      const span = Math.min(chars, text.length);
      let start = rng.int(0, text.length - span);
      if (isLowSurrogate(text.charCodeAt(start))) start++;
      // the window's first token may be a fragment of a word: it is dropped
      const ids = this.#tokenizer.encode(text.slice(start, start + span)).slice(1);
      if (ids.length >= budget) {
        const all = [...this.#frame.userPrefix, ...this.#prompt, ...ids.slice(0, budget), ...this.#frame.assistantPrefix];
        return { ids: Int32Array.from(all), kind: "text", positionOffset: 0 };
      }
      if (span === text.length) {
        throw new InvalidInputError(`--data ${this.#options.dataName}: the text holds about ${ids.length} tokens, fewer than the ${budget} of text that --length ${this.#options.length} needs per sample`);
      }
    }
  }

  #needleSample(rng: Rng): TrainSample {
    const task = this.#tasks[rng.int(0, this.#tasks.length - 1)]!;
    const c = task.generate(this.#context, this.#options.length, rng);
    const ids = [...c.promptIds, ...c.answerIds];
    if (ids.length !== this.#options.length) throw new Error(`needle task ${task.spec} made ${ids.length} tokens for --length ${this.#options.length}`);
    return { ids: Int32Array.from(ids), kind: "needle", positionOffset: 0 };
  }
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
