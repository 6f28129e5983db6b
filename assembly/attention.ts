// Causal grouped-query attention with an online (flash-style) softmax.
//
// q:   f32 [numQueries, numHeads, d]      out: same shape
// k,v: f32 [numKvHeads, kvCapacity, d]
// Query r of head h attends keys 0 ..= qPos0 + r of KV head h / group.
//
// Work is cut into tasks of (block of queries) × (KV head) × (chunk of that KV
// head's query heads), numbered query-block-major; a call runs the tasks
// [taskBegin, taskEnd) and the host deals tasks out to threads. A task's rows (query, head) all read the same K/V rows:
// keys are visited in blocks of KEY_BLOCK, and every row consumes a block
// while it is in L1, two rows at a time (attentionBlock.ts). Each row keeps
// its running max m, sum l and accumulator acc[d] in the thread's scratch.
import { accumulate1, accumulate2, scores1, scores2, softmaxStep } from "./attentionBlock";

/** Keys per block (32 and 128 measured the same). */
const KEY_BLOCK: i32 = 64;

export function attention(
  out: usize, q: usize, k: usize, v: usize,
  numQueries: i32, qPos0: i32, numHeads: i32, numKvHeads: i32, d: i32, kvCapacity: i32, scale: f32,
  queriesPerTask: i32, headsPerTask: i32, taskBegin: i32, taskEnd: i32, scratch: usize,
): void {
  const group = numHeads / numKvHeads;
  const headChunks = (group + headsPerTask - 1) / headsPerTask;
  const tasksPerBlock = numKvHeads * headChunks;
  for (let t = taskBegin; t < taskEnd; t++) {
    const r0 = (t / tasksPerBlock) * queriesPerTask;
    const g = (t % tasksPerBlock) / headChunks;
    const h0 = g * group + (t % headChunks) * headsPerTask;
    const kvOffset = (<usize>g * kvCapacity * d) << 2;
    attendTask(
      out, q, k + kvOffset, v + kvOffset, qPos0, numHeads, d, scale,
      r0, min(r0 + queriesPerTask, numQueries), h0, min(h0 + headsPerTask, (g + 1) * group), scratch,
    );
  }
}

/** Bytes of scratch a task of `rows` (query, head) rows of width d needs. */
export function attentionScratchBytes(rows: i32, d: i32): i32 {
  return (2 * KEY_BLOCK + 2 * ((rows + 1) & ~1) + rows * d) << 2;
}

function attendTask(
  out: usize, q: usize, k: usize, v: usize, qPos0: i32, numHeads: i32, d: i32, scale: f32,
  r0: i32, r1: i32, h0: i32, h1: i32, scratch: usize,
): void {
  const nh = h1 - h0;
  const rows = (r1 - r0) * nh; // row i is query r0 + i / nh, head h0 + i % nh
  const rowBytes = <usize>d << 2;
  const sa = scratch, sb = sa + (<usize>KEY_BLOCK << 2);  // f32 [2, KEY_BLOCK]: scores of a row pair
  const states = sb + (<usize>KEY_BLOCK << 2);           // f32 [rows, 2]: (m, l) per row
  const accs = states + (<usize>((rows + 1) & ~1) << 3);  // f32 [rows, d]
  for (let i = 0; i < rows; i++) {
    store<f32>(states + (<usize>i << 3), -Infinity);
    store<f32>(states + (<usize>i << 3), 0, 4);
  }
  memory.fill(accs, 0, <usize>rows * rowBytes);

  const keysEnd = qPos0 + r1; // the last query sees keys [0, qPos0 + r1)
  for (let j0 = 0; j0 < keysEnd; j0 += KEY_BLOCK) {
    const kBlock = k + <usize>j0 * rowBytes, vBlock = v + <usize>j0 * rowBytes;
    // Keys of this block row i sees (<= 0: none); rows are query-major, so counts never decrease.
    const firstKeys = qPos0 + r0 + 1 - j0;
    let i = 0;
    for (; i + 2 <= rows; i += 2) {
      const na = min(KEY_BLOCK, firstKeys + i / nh), nb = min(KEY_BLOCK, firstKeys + (i + 1) / nh);
      if (nb <= 0) continue;
      const qa = q + <usize>((r0 + i / nh) * numHeads + h0 + i % nh) * rowBytes;
      const qb = q + <usize>((r0 + (i + 1) / nh) * numHeads + h0 + (i + 1) % nh) * rowBytes;
      // NOTE: row a may see fewer keys than row b; its extra scores get weight 0.
      scores2(sa, sb, qa, qb, kBlock, nb, d, scale);
      const alphaA = softmaxStep(sa, max(na, 0), nb, states + (<usize>i << 3));
      const alphaB = softmaxStep(sb, nb, nb, states + (<usize>(i + 1) << 3));
      accumulate2(accs + <usize>i * rowBytes, accs + <usize>(i + 1) * rowBytes, vBlock, sa, sb, nb, d, alphaA, alphaB);
    }
    if (i < rows) {
      const n = min(KEY_BLOCK, firstKeys + i / nh);
      if (n <= 0) continue;
      const qa = q + <usize>((r0 + i / nh) * numHeads + h0 + i % nh) * rowBytes;
      scores1(sa, qa, kBlock, n, d, scale);
      const alpha = softmaxStep(sa, n, n, states + (<usize>i << 3));
      accumulate1(accs + <usize>i * rowBytes, vBlock, sa, n, d, alpha);
    }
  }

  for (let i = 0; i < rows; i++) {
    const inv = f32x4.splat(1 / load<f32>(states + (<usize>i << 3), 4));
    const src = accs + <usize>i * rowBytes;
    const dst = out + <usize>((r0 + i / nh) * numHeads + h0 + i % nh) * rowBytes;
    let c = 0;
    for (; c + 4 <= d; c += 4) v128.store(dst + (<usize>c << 2), f32x4.mul(v128.load(src + (<usize>c << 2)), inv));
    for (; c < d; c++) store<f32>(dst + (<usize>c << 2), load<f32>(src + (<usize>c << 2)) * f32x4.extract_lane(inv, 0));
  }
}
