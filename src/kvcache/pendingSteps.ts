/**
 * @module kvcache/pendingSteps
 *
 * A head's appends whose admit flags are not known yet, oldest first
 * (headCache.ts): at most two, the second a step recorded while the first
 * runs (engine/stepChain.ts); and what the last one-token append changed, so
 * that a step recorded for a sequence that ended before it can be taken back.
 */
export class PendingSteps {
  /** Tokens of each pending append, oldest first. */
  readonly #counts: number[] = [];
  #numTokens = 0;
  /** The head's fields before the last append, when it appended one token (the head names them). */
  readonly before = new Int32Array(7);
  #canUndo = false;

  get numSteps(): number { return this.#counts.length; }
  get numTokens(): number { return this.#numTokens; }
  /** Tokens of the oldest pending append (0: none). */
  get oldest(): number { return this.#counts[0] ?? 0; }
  /** Whether the last change was a one-token append whose flags are pending. */
  get canUndo(): boolean { return this.#canUndo; }

  push(numNew: number, before: readonly number[]): void {
    this.#counts.push(numNew);
    this.#numTokens += numNew;
    this.#canUndo = numNew === 1;
    if (numNew === 1) this.before.set(before);
  }

  /** The oldest append's flags are known. */
  shift(): void {
    this.#numTokens -= this.#counts.shift() ?? 0;
  }

  /** The last append is taken back. */
  pop(): void {
    this.#numTokens -= this.#counts.pop() ?? 0;
    this.#canUndo = false;
  }

  /** Something other than an append changed the head: the last append can no longer be taken back. */
  forgetUndo(): void {
    this.#canUndo = false;
  }

  clear(): void {
    this.#counts.length = 0;
    this.#numTokens = 0;
    this.#canUndo = false;
  }
}
