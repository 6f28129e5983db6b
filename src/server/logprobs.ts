/**
 * @module server/logprobs
 *
 * Log-probabilities of generated tokens, from the engine's logits rows
 * (generate's `logitsFrom` at the prompt's last position: that row predicts
 * the first generated token, each later row the next). Computed on the host
 * as a log-softmax over the raw logits, as OpenAI and vLLM report them:
 * before temperature, top-k or top-p.
 */
import type { TextTokenizer } from "../tokenizer/tokenizer.js";

export interface TokenLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: number[];
  readonly top: { token: string; logprob: number; bytes: number[] }[];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A token as logprobs show it: its bytes, and its text where they are whole UTF-8; a token holding part
 * of a character is spelled `bytes:\xe6\x9d` as vLLM does (so top_logprobs' keys stay distinct).
 */
export function tokenEntry(tokenizer: TextTokenizer, id: number): { token: string; bytes: number[] } {
  const bytes = tokenizer.tokenBytes(id);
  let token: string;
  try {
    token = utf8.decode(bytes);
  } catch {
    token = "bytes:" + Array.from(bytes, (b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");
  }
  return { token, bytes: Array.from(bytes) };
}

/** Holds logits rows until their sampled token arrives, then reports that token's logprob and the top alternatives. */
export class LogprobTracker {
  readonly #rows: Float32Array[] = [];

  constructor(
    readonly tokenizer: TextTokenizer,
    readonly numTop: number,
  ) {}

  /** generate()'s onLogits: rows arrive in position order, before their sampled token. */
  onLogits = (_pos0: number, logits: Float32Array, n: number): void => {
    const V = logits.length / n;
    for (let t = 0; t < n; t++) this.#rows.push(logits.slice(t * V, (t + 1) * V));
  };

  /** The logprob entry of the next sampled token (its row is dropped). */
  take(tokenId: number): TokenLogprob | null {
    const row = this.#rows.shift();
    if (!row) return null;
    const lse = logSumExp(row);
    const entry = (id: number) => ({ ...tokenEntry(this.tokenizer, id), logprob: row[id] - lse });
    const self = entry(tokenId);
    return { ...self, top: topIds(row, this.numTop).map(entry) };
  }
}

export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return max + Math.log(sum);
}

/** The ids of the k largest values, largest first (ties: lower id first). */
export function topIds(row: Float32Array, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < row.length && k > 0; i++) {
    if (top.length === k && row[i] <= row[top[k - 1]]) continue;
    let j = Math.min(top.length, k - 1);
    top[j] = i;
    while (j > 0 && row[top[j - 1]] < row[i]) {
      top[j] = top[j - 1];
      top[--j] = i;
    }
  }
  return top;
}
