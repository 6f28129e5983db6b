/**
 * @module eval/scoring
 *
 * How answers are scored. RULER's string match looks for the expected values
 * in a greedy answer, case-insensitively: "all" averages over the values
 * (every value must be there for a full point), "part" gives the point when
 * any is there. Teacher-forced exact match (what reference/gate-recipe.md
 * reports) asks whether every answer token is the argmax at its position when
 * the prompt and the answer are fed together.
 */
import { argmax } from "../util/argmax.js";

/** Fraction of `expected` found in `answer` (RULER string_match_all, one case). */
export function stringMatchAll(answer: string, expected: readonly string[]): number {
  if (expected.length === 0) return 0;
  const text = answer.toLowerCase();
  return expected.filter((e) => text.includes(e.toLowerCase())).length / expected.length;
}

/** 1 if any of `expected` is in `answer`, else 0 (RULER string_match_part, one case). */
export function stringMatchPart(answer: string, expected: readonly string[]): number {
  const text = answer.toLowerCase();
  return expected.some((e) => text.includes(e.toLowerCase())) ? 1 : 0;
}

export { argmax };

/**
 * Collects teacher-forced predictions of an answer from all-position logits.
 * Position p's argmax predicts token p + 1, so answer token i is checked
 * against position `promptLength - 1 + i`.
 */
export class TeacherForcing {
  /** predicted[i]: the argmax that should equal answer token i (-1 until seen). */
  readonly predicted: number[];

  constructor(
    readonly promptLength: number,
    readonly answerIds: readonly number[],
    readonly vocabSize: number,
  ) {
    this.predicted = new Array<number>(answerIds.length).fill(-1);
  }

  /** Takes one chunk of logits [numTokens, vocab] whose first row is position `firstPosition`. */
  addLogits(logits: Float32Array, firstPosition: number, numTokens: number): void {
    for (let t = 0; t < numTokens; t++) this.addRow(logits, t * this.vocabSize, firstPosition + t);
  }

  /** Takes the logits [vocab] of one position (at `offset` in `logits`). */
  addRow(logits: Float32Array, offset: number, position: number): void {
    const i = position - (this.promptLength - 1);
    if (i >= 0 && i < this.answerIds.length) this.predicted[i] = argmax(logits, offset, this.vocabSize);
  }

  /** Answer tokens predicted correctly before the first miss. */
  get numCorrectPrefix(): number {
    let n = 0;
    while (n < this.answerIds.length && this.predicted[n] === this.answerIds[n]) n++;
    return n;
  }

  /** True iff every answer token was the argmax at its position. */
  get isExactMatch(): boolean {
    return this.numCorrectPrefix === this.answerIds.length;
  }
}
