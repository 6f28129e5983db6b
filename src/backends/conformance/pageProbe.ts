/**
 * @module backends/conformance/pageProbe
 *
 * Reads what page slots hold through the interface alone: one decode row
 * per slot whose only cached token is that slot (a global list of one token,
 * so the slot must be the first of its page), plus the row's own key, which
 * the query makes negligible. With q = a e0, the row's key -a e0 and its
 * value 0, the slot's weight is exactly 1 and the output is the slot's V,
 * bit for bit as stored (infinities and NaN included; -0 reads as +0), as
 * long as the slot's K is finite with |K[0]| <= 4.
 *
 * The "key" mode weighs the slot's value by its key instead: q = sqrt(d) e0
 * and a zero key and value of the row's own give out = V * sigmoid(K[0]),
 * which shows whether K moved along with V.
 */
import type { Backend, KvPool } from "../backend.js";
import { PAGE_SIZE, SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS, SEQ_WINDOW } from "../stepLayout.js";
import { destroyAll, f32Tensor, filledF32, i32Tensor, readF32, tensorFrom } from "./context.js";

/** Per slot, its d values: f32 [slots.length * d]. */
export async function probeSlots(b: Backend, pool: KvPool, slots: readonly number[], mode: "value" | "key" = "value"): Promise<Float32Array> {
  const n = slots.length, d = pool.headDim;
  if (slots.some((s) => s % PAGE_SIZE !== 0)) throw new RangeError("probeSlots reads the first slot of a page only");
  const dims = { numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: d };
  const fields = new Int32Array(n * SEQ_FIELDS);
  for (let i = 0; i < n; i++) {
    const f = i * SEQ_FIELDS;
    fields[f + SEQ_ROW_START] = i;
    fields[f + SEQ_NUM_ROWS] = 1;
    fields[f + SEQ_START_POS] = 0;
    fields[f + SEQ_WINDOW] = PAGE_SIZE;
    fields[f + SEQ_SLOT] = i;
  }
  // table rows [ring page (unused: nothing is in the ring), the slot's page]
  const table = new Int32Array(2 * n);
  slots.forEach((s, i) => (table[2 * i + 1] = s / PAGE_SIZE));
  const a = mode === "value" ? 4 * Math.sqrt(d) : Math.sqrt(d);
  const e0 = (scale: number) => Float32Array.from({ length: n * d }, (_, i) => (i % d === 0 ? scale : 0));
  const tensors = [
    i32Tensor(b, [n, SEQ_FIELDS], fields, "probe sequences"),
    i32Tensor(b, [n, 1, 1], new Int32Array(n).fill(1), "probe global counts"),
    i32Tensor(b, [n, 1, 1, 2], table, "probe tables"),
    tensorFrom(b, [n, 1, 1, PAGE_SIZE], "u8", new Uint8Array(n * PAGE_SIZE), "probe ring flags"),
    f32Tensor(b, [n, d], e0(a), "probe q"),
    f32Tensor(b, [n, d], e0(mode === "value" ? -a : 0), "probe k"),
    f32Tensor(b, [n, d], new Float32Array(n * d), "probe v"),
    filledF32(b, [n, d], NaN, "probe out"),
  ];
  const [seqs, numGlobal, blockTables, ringFlags, q, k, v, out] = tensors;
  const tables = { blockTables, ringFlags, numSlots: n, rowStride: 2, maxWindow: PAGE_SIZE };
  b.pagedAttention(out, q, k, v, pool, 0, { seqs, numSeqs: n, numGlobal, tables, selection: null }, dims);
  const got = await readF32(b, out);
  destroyAll(b, tensors);
  return got;
}
