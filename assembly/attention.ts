// Causal grouped-query attention with an online (flash-style) softmax.
//
// q:   f32 [numQueries, numHeads, d]      out: same shape
// k,v: f32 [numKvHeads, kvCapacity, d]
// Query r of head h attends keys 0 ..= qPos0 + r of KV head h / group.
//
// Work is cut into tasks of (block of queries) × (KV head) × (chunk of that KV
// head's query heads); a thread takes tasks task0, task0 + taskStep, ... so
// that the cheap early and costly late query blocks of a causal prefill are
// dealt out evenly. Within a task, keys are visited in blocks of KEY_BLOCK so
// the block's K/V rows stay in L1 while every (query, head) row of the task
// uses them. Each row keeps its running max m, sum l and accumulator acc[d]
// in the thread's scratch; the block's scores live in a KEY_BLOCK scratch.
import { expF32, expF32x4, hsum, hsum4 } from "./simdMath";

export const KEY_BLOCK: i32 = 128;

export function attention(
  out: usize, q: usize, k: usize, v: usize,
  numQueries: i32, qPos0: i32, numHeads: i32, numKvHeads: i32, d: i32, kvCapacity: i32, scale: f32,
  queriesPerTask: i32, headsPerTask: i32, task0: i32, taskStep: i32, scratch: usize,
): void {
  const group = numHeads / numKvHeads;
  const headChunks = (group + headsPerTask - 1) / headsPerTask;
  const tasksPerBlock = numKvHeads * headChunks;
  const numTasks = ((numQueries + queriesPerTask - 1) / queriesPerTask) * tasksPerBlock;
  for (let t = task0; t < numTasks; t += taskStep) {
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

/** Bytes of scratch attendTask needs for `rows` (query, head) rows of width d. */
export function attentionScratchBytes(rows: i32, d: i32): i32 {
  const rows4 = (rows + 3) & ~3;
  return (KEY_BLOCK + 2 * rows4 + rows * d) << 2;
}

function attendTask(
  out: usize, q: usize, k: usize, v: usize, qPos0: i32, numHeads: i32, d: i32, scale: f32,
  r0: i32, r1: i32, h0: i32, h1: i32, scratch: usize,
): void {
  const numHeadsHere = h1 - h0;
  const rows = (r1 - r0) * numHeadsHere;
  const rows4 = (rows + 3) & ~3;
  const rowBytes = <usize>d << 2;
  const scores = scratch;                                  // f32 [KEY_BLOCK]
  const maxes = scores + (<usize>KEY_BLOCK << 2);          // f32 [rows]
  const sums = maxes + (<usize>rows4 << 2);                // f32 [rows]
  const accs = sums + (<usize>rows4 << 2);                 // f32 [rows, d]
  for (let i = 0; i < rows; i++) {
    store<f32>(maxes + (<usize>i << 2), -Infinity);
    store<f32>(sums + (<usize>i << 2), 0);
  }
  memory.fill(accs, 0, <usize>rows * rowBytes);

  const keysEnd = qPos0 + r1; // the last query sees keys [0, qPos0 + r1)
  for (let j0 = 0; j0 < keysEnd; j0 += KEY_BLOCK) {
    const kBlock = k + <usize>j0 * rowBytes, vBlock = v + <usize>j0 * rowBytes;
    for (let r = r0; r < r1; r++) {
      const numKeys = min(KEY_BLOCK, qPos0 + r + 1 - j0);
      if (numKeys <= 0) continue;
      for (let h = h0; h < h1; h++) {
        const row = (r - r0) * numHeadsHere + (h - h0);
        const mp = maxes + (<usize>row << 2), lp = sums + (<usize>row << 2);
        const qRow = q + (<usize>(r * numHeads + h)) * rowBytes;
        const mOld = load<f32>(mp);
        const mNew = max(mOld, blockScores(scores, qRow, kBlock, numKeys, d, scale));
        const alpha = expF32(mOld - mNew); // rescales what was summed under mOld
        const blockSum = softmaxWeights(scores, numKeys, mNew);
        store<f32>(lp, load<f32>(lp) * alpha + blockSum);
        store<f32>(mp, mNew);
        accumulate(accs + <usize>row * rowBytes, vBlock, scores, numKeys, d, alpha);
      }
    }
  }

  for (let r = r0; r < r1; r++) {
    for (let h = h0; h < h1; h++) {
      const row = (r - r0) * numHeadsHere + (h - h0);
      const inv = f32x4.splat(1 / load<f32>(sums + (<usize>row << 2)));
      const src = accs + <usize>row * rowBytes, dst = out + (<usize>(r * numHeads + h)) * rowBytes;
      let i = 0;
      for (; i + 4 <= d; i += 4) v128.store(dst + (<usize>i << 2), f32x4.mul(v128.load(src + (<usize>i << 2)), inv));
      for (; i < d; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)) * f32x4.extract_lane(inv, 0));
    }
  }
}

/** Scalar part of q·k over [d4, d) (only when d is not a multiple of 4). */
@inline function dotTail(qRow: usize, kRow: usize, d4: i32, d: i32): f32 {
  let acc: f32 = 0;
  for (let i = d4; i < d; i++) acc += load<f32>(qRow + (<usize>i << 2)) * load<f32>(kRow + (<usize>i << 2));
  return acc;
}

/** scores[j] = scale * q·k_j for j < numKeys, four keys at a time; returns their max. */
function blockScores(scores: usize, qRow: usize, kBlock: usize, numKeys: i32, d: i32, scale: f32): f32 {
  const d4 = d & ~3, rowBytes = <usize>d << 2, sv = f32x4.splat(scale);
  let maxv = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= numKeys; j += 4) {
    const k0 = kBlock + <usize>j * rowBytes, k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2, qv = v128.load(qRow + o);
      a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(k0 + o)));
      a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(k1 + o)));
      a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(k2 + o)));
      a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(k3 + o)));
    }
    let s = hsum4(a0, a1, a2, a3);
    if (d4 < d) {
      s = f32x4.replace_lane(s, 0, f32x4.extract_lane(s, 0) + dotTail(qRow, k0, d4, d));
      s = f32x4.replace_lane(s, 1, f32x4.extract_lane(s, 1) + dotTail(qRow, k1, d4, d));
      s = f32x4.replace_lane(s, 2, f32x4.extract_lane(s, 2) + dotTail(qRow, k2, d4, d));
      s = f32x4.replace_lane(s, 3, f32x4.extract_lane(s, 3) + dotTail(qRow, k3, d4, d));
    }
    s = f32x4.mul(s, sv);
    v128.store(scores + (<usize>j << 2), s);
    maxv = f32x4.max(maxv, s);
  }
  let m = max(max(f32x4.extract_lane(maxv, 0), f32x4.extract_lane(maxv, 1)), max(f32x4.extract_lane(maxv, 2), f32x4.extract_lane(maxv, 3)));
  for (; j < numKeys; j++) {
    const kRow = kBlock + <usize>j * rowBytes;
    let a = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(qRow + (<usize>i << 2)), v128.load(kRow + (<usize>i << 2))));
    const s = (hsum(a) + dotTail(qRow, kRow, d4, d)) * scale;
    store<f32>(scores + (<usize>j << 2), s);
    m = max(m, s);
  }
  return m;
}

/** scores[j] = e^(scores[j] - m) in place; returns their sum. */
function softmaxWeights(scores: usize, numKeys: i32, m: f32): f32 {
  const mv = f32x4.splat(m);
  let sumv = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= numKeys; j += 4) {
    const p = expF32x4(f32x4.sub(v128.load(scores + (<usize>j << 2)), mv));
    v128.store(scores + (<usize>j << 2), p);
    sumv = f32x4.add(sumv, p);
  }
  let sum = hsum(sumv);
  for (; j < numKeys; j++) {
    const p = expF32(load<f32>(scores + (<usize>j << 2)) - m);
    store<f32>(scores + (<usize>j << 2), p);
    sum += p;
  }
  return sum;
}

/** acc = alpha * acc + sum_j p_j v_j, 16 lanes of d at a time held in registers over the keys. */
function accumulate(acc: usize, vBlock: usize, p: usize, numKeys: i32, d: i32, alpha: f32): void {
  const rowBytes = <usize>d << 2, av = f32x4.splat(alpha);
  let i = 0;
  for (; i + 16 <= d; i += 16) {
    let t0 = f32x4.splat(0), t1 = t0, t2 = t0, t3 = t0;
    let vp = vBlock + (<usize>i << 2);
    for (let j = 0; j < numKeys; j++, vp += rowBytes) {
      const pj = v128.load32_splat(p + (<usize>j << 2));
      t0 = f32x4.add(t0, f32x4.mul(pj, v128.load(vp)));
      t1 = f32x4.add(t1, f32x4.mul(pj, v128.load(vp, 16)));
      t2 = f32x4.add(t2, f32x4.mul(pj, v128.load(vp, 32)));
      t3 = f32x4.add(t3, f32x4.mul(pj, v128.load(vp, 48)));
    }
    const a = acc + (<usize>i << 2);
    v128.store(a, f32x4.add(f32x4.mul(v128.load(a), av), t0));
    v128.store(a, f32x4.add(f32x4.mul(v128.load(a, 16), av), t1), 16);
    v128.store(a, f32x4.add(f32x4.mul(v128.load(a, 32), av), t2), 32);
    v128.store(a, f32x4.add(f32x4.mul(v128.load(a, 48), av), t3), 48);
  }
  for (; i + 4 <= d; i += 4) {
    let t = f32x4.splat(0);
    let vp = vBlock + (<usize>i << 2);
    for (let j = 0; j < numKeys; j++, vp += rowBytes) t = f32x4.add(t, f32x4.mul(v128.load32_splat(p + (<usize>j << 2)), v128.load(vp)));
    const a = acc + (<usize>i << 2);
    v128.store(a, f32x4.add(f32x4.mul(v128.load(a), av), t));
  }
  for (; i < d; i++) {
    let t: f32 = 0;
    for (let j = 0; j < numKeys; j++) t += load<f32>(p + (<usize>j << 2)) * load<f32>(vBlock + <usize>j * rowBytes + (<usize>i << 2));
    const a = acc + (<usize>i << 2);
    store<f32>(a, load<f32>(a) * alpha + t);
  }
}
