/**
 * @module backends/cpu/sampleRow
 *
 * Picking a token from one row of logits: the CPU backend's sample op and
 * the reference other backends are checked against.
 *
 * Greedy (temperature 0) is the argmax, the lowest id on ties (as
 * torch.argmax). Otherwise: the candidates are the ids sorted by logit
 * (descending, ties by id), cut to the top k when k > 0; their weights are
 * e^((logit - max) / temperature); top-p keeps the shortest head of that
 * list whose share of the candidates' mass reaches p (at least one id), after
 * min-p dropped the ids whose weight is below min_p times the largest (as
 * vLLM and llama.cpp's min_p, on the tempered distribution); and
 * the draw u in [0, 1) picks from the kept head renormalised, by inverse CDF.
 */
import { argmax } from "../../util/argmax.js";
import { SAMPLE_FIELDS, SAMPLE_MIN_P, SAMPLE_ROW, SAMPLE_TEMPERATURE, SAMPLE_TOP_K, SAMPLE_TOP_P, SAMPLE_UNIFORM } from "../stepLayout.js";

export { argmax };

/** True when the row holds a NaN (then no token can be chosen). */
export function hasNaN(logits: ArrayLike<number>): boolean {
  for (let i = 0; i < logits.length; i++) if (logits[i] !== logits[i]) return true;
  return false;
}

/**
 * The sample op over rows: ids[i] from the logits row params[i] names
 * (stepLayout.ts SAMPLE_*), -1 when that row holds a NaN.
 * logits: f32 [R, vocab]; params: f32 [n, SAMPLE_FIELDS]; ids: i32 [n].
 */
export function sampleRows(ids: Int32Array, logits: Float32Array, vocab: number, params: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const a = i * SAMPLE_FIELDS;
    const row = logits.subarray(params[a + SAMPLE_ROW] * vocab, (params[a + SAMPLE_ROW] + 1) * vocab);
    ids[i] = hasNaN(row) ? -1 : sampleRow(row, params[a + SAMPLE_TEMPERATURE], params[a + SAMPLE_TOP_K], params[a + SAMPLE_TOP_P], params[a + SAMPLE_UNIFORM], params[a + SAMPLE_MIN_P]);
  }
}

export function sampleRow(logits: ArrayLike<number>, temperature: number, topK: number, topP: number, u: number, minP = 0): number {
  if (temperature === 0) return argmax(logits);
  const order = candidateOrder(logits, topK);
  const max = logits[order[0]];
  const weights = new Float64Array(order.length);
  let total = 0;
  for (let i = 0; i < order.length; i++) {
    weights[i] = Math.exp((logits[order[i]] - max) / temperature);
    total += weights[i];
  }
  let keep = order.length;
  if (minP > 0) {
    // NOTE: weights are sorted descending and weights[0] = 1 (the max), so the cut is a prefix
    while (keep > 1 && weights[keep - 1] < minP) total -= weights[--keep];
  }
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += weights[i] / total;
      if (mass >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += weights[i];
  let r = u * kept;
  for (let i = 0; i < keep; i++) {
    r -= weights[i];
    if (r < 0) return order[i];
  }
  return order[keep - 1];
}

/** Token ids sorted by logit, descending (ties by id); only the top k when k > 0. */
function candidateOrder(logits: ArrayLike<number>, topK: number): number[] {
  const ids = Array.from({ length: logits.length }, (_, i) => i);
  if (topK > 0 && topK < logits.length) {
    // NOTE: a threshold pass keeps the sort to the few ids that can make the cut
    const threshold = kthLargest(logits, topK);
    const head = ids.filter((i) => logits[i] >= threshold);
    head.sort((a, b) => logits[b] - logits[a] || a - b);
    return head.slice(0, topK);
  }
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  return ids;
}

/** The k-th largest value (k >= 1) by quickselect on a copy. */
function kthLargest(values: ArrayLike<number>, k: number): number {
  const a = Float64Array.from(values);
  let lo = 0, hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}
