// The per-key-block math of the paged attention (pagedAttend.ts), for one row
// or a pair of rows that share the block's K/V rows. Pairing halves the loads per flop: the QK step
// keeps 2 rows × 4 keys = 8 accumulators in registers, the PV step 2 rows ×
// 16 lanes of d; both fit the 16 xmm registers V8 allocates.
//
// scores: f32 [BLOCK_KEYS] per row; kBlock, vBlock: f32 [numKeys, d] (row stride d).
import { expF32, expF32x4, hsum, hsum4, madd } from "./simdMath";

/** Scalar part of a·b over [d4, d) (only when d is not a multiple of 4). */
@inline function dotTail(a: usize, b: usize, d4: i32, d: i32): f32 {
  let acc: f32 = 0;
  for (let i = d4; i < d; i++) acc += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return acc;
}

/** Adds the d-tail of q·k_j to each lane of s (lane i is key j + i). */
@inline function addDotTails(s: v128, qRow: usize, k0: usize, rowBytes: usize, d4: i32, d: i32): v128 {
  if (d4 == d) return s;
  s = f32x4.replace_lane(s, 0, f32x4.extract_lane(s, 0) + dotTail(qRow, k0, d4, d));
  s = f32x4.replace_lane(s, 1, f32x4.extract_lane(s, 1) + dotTail(qRow, k0 + rowBytes, d4, d));
  s = f32x4.replace_lane(s, 2, f32x4.extract_lane(s, 2) + dotTail(qRow, k0 + 2 * rowBytes, d4, d));
  return f32x4.replace_lane(s, 3, f32x4.extract_lane(s, 3) + dotTail(qRow, k0 + 3 * rowBytes, d4, d));
}

/** One key's score for one row. */
@inline function score1(qRow: usize, kRow: usize, d4: i32, d: i32, scale: f32): f32 {
  let a = f32x4.splat(0);
  for (let i = 0; i < d4; i += 4) a = madd(v128.load(qRow + (<usize>i << 2)), v128.load(kRow + (<usize>i << 2)), a);
  return (hsum(a) + dotTail(qRow, kRow, d4, d)) * scale;
}

/** s[j] = scale * q·k_j for j < numKeys, four keys at a time. */
export function scores1(s: usize, q: usize, kBlock: usize, numKeys: i32, d: i32, scale: f32): void {
  const d4 = d & ~3, rowBytes = <usize>d << 2, sv = f32x4.splat(scale);
  let j = 0;
  for (; j + 4 <= numKeys; j += 4) {
    const k0 = kBlock + <usize>j * rowBytes, k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2, qv = v128.load(q + o);
      a0 = madd(qv, v128.load(k0 + o), a0);
      a1 = madd(qv, v128.load(k1 + o), a1);
      a2 = madd(qv, v128.load(k2 + o), a2);
      a3 = madd(qv, v128.load(k3 + o), a3);
    }
    v128.store(s + (<usize>j << 2), f32x4.mul(addDotTails(hsum4(a0, a1, a2, a3), q, k0, rowBytes, d4, d), sv));
  }
  for (; j < numKeys; j++) store<f32>(s + (<usize>j << 2), score1(q, kBlock + <usize>j * rowBytes, d4, d, scale));
}

/** scores1 for two rows (qa → sa, qb → sb) over the same keys. */
export function scores2(sa: usize, sb: usize, qa: usize, qb: usize, kBlock: usize, numKeys: i32, d: i32, scale: f32): void {
  const d4 = d & ~3, rowBytes = <usize>d << 2, sv = f32x4.splat(scale);
  let j = 0;
  for (; j + 4 <= numKeys; j += 4) {
    const k0 = kBlock + <usize>j * rowBytes, k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (let i = 0; i < d4; i += 4) {
      const o = <usize>i << 2, qva = v128.load(qa + o), qvb = v128.load(qb + o);
      let kv = v128.load(k0 + o);
      a0 = madd(qva, kv, a0); b0 = madd(qvb, kv, b0);
      kv = v128.load(k1 + o);
      a1 = madd(qva, kv, a1); b1 = madd(qvb, kv, b1);
      kv = v128.load(k2 + o);
      a2 = madd(qva, kv, a2); b2 = madd(qvb, kv, b2);
      kv = v128.load(k3 + o);
      a3 = madd(qva, kv, a3); b3 = madd(qvb, kv, b3);
    }
    v128.store(sa + (<usize>j << 2), f32x4.mul(addDotTails(hsum4(a0, a1, a2, a3), qa, k0, rowBytes, d4, d), sv));
    v128.store(sb + (<usize>j << 2), f32x4.mul(addDotTails(hsum4(b0, b1, b2, b3), qb, k0, rowBytes, d4, d), sv));
  }
  for (; j < numKeys; j++) {
    const kRow = kBlock + <usize>j * rowBytes;
    store<f32>(sa + (<usize>j << 2), score1(qa, kRow, d4, d, scale));
    store<f32>(sb + (<usize>j << 2), score1(qb, kRow, d4, d, scale));
  }
}

/** acc = alpha * acc + sum_j p[j] v_j over numKeys keys, 16 lanes of d at a time. */
export function accumulate1(acc: usize, vBlock: usize, p: usize, numKeys: i32, d: i32, alpha: f32): void {
  const rowBytes = <usize>d << 2;
  let i = 0;
  for (; i + 16 <= d; i += 16) {
    let t0 = f32x4.splat(0), t1 = t0, t2 = t0, t3 = t0;
    let vp = vBlock + (<usize>i << 2);
    for (let j = 0; j < numKeys; j++, vp += rowBytes) {
      const pj = v128.load32_splat(p + (<usize>j << 2));
      t0 = madd(pj, v128.load(vp), t0);
      t1 = madd(pj, v128.load(vp, 16), t1);
      t2 = madd(pj, v128.load(vp, 32), t2);
      t3 = madd(pj, v128.load(vp, 48), t3);
    }
    rescaleAdd(acc + (<usize>i << 2), alpha, t0, t1, t2, t3);
  }
  accumulateRest(acc, vBlock, p, numKeys, d, alpha, i);
}

/** accumulate1 for two rows (pa → acca, pb → accb) over the same V rows. */
export function accumulate2(acca: usize, accb: usize, vBlock: usize, pa: usize, pb: usize, numKeys: i32, d: i32, alphaA: f32, alphaB: f32): void {
  const rowBytes = <usize>d << 2;
  let i = 0;
  for (; i + 16 <= d; i += 16) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    let vp = vBlock + (<usize>i << 2);
    for (let j = 0; j < numKeys; j++, vp += rowBytes) {
      const paj = v128.load32_splat(pa + (<usize>j << 2)), pbj = v128.load32_splat(pb + (<usize>j << 2));
      let v = v128.load(vp);
      a0 = madd(paj, v, a0); b0 = madd(pbj, v, b0);
      v = v128.load(vp, 16);
      a1 = madd(paj, v, a1); b1 = madd(pbj, v, b1);
      v = v128.load(vp, 32);
      a2 = madd(paj, v, a2); b2 = madd(pbj, v, b2);
      v = v128.load(vp, 48);
      a3 = madd(paj, v, a3); b3 = madd(pbj, v, b3);
    }
    rescaleAdd(acca + (<usize>i << 2), alphaA, a0, a1, a2, a3);
    rescaleAdd(accb + (<usize>i << 2), alphaB, b0, b1, b2, b3);
  }
  accumulateRest(acca, vBlock, pa, numKeys, d, alphaA, i);
  accumulateRest(accb, vBlock, pb, numKeys, d, alphaB, i);
}

/**
 * accumulate1 where V rows may hold infinities or NaN (the pool saw one
 * written): a key the row does not see (p = 0) adds exactly nothing, where
 * 0 * inf would add NaN. Slower; used only then.
 */
export function accumulateSafe1(acc: usize, vBlock: usize, p: usize, numKeys: i32, d: i32, alpha: f32): void {
  const rowBytes = <usize>d << 2, av = f32x4.splat(alpha), zero = f32x4.splat(0);
  for (let i = 0; i + 4 <= d; i += 4) {
    let t = zero;
    let vp = vBlock + (<usize>i << 2);
    for (let j = 0; j < numKeys; j++, vp += rowBytes) {
      const pj = v128.load32_splat(p + (<usize>j << 2));
      t = madd(pj, v128.and(v128.load(vp), f32x4.ne(pj, zero)), t);
    }
    const a = acc + (<usize>i << 2);
    v128.store(a, f32x4.add(f32x4.mul(v128.load(a), av), t));
  }
  for (let i = d & ~3; i < d; i++) {
    let t: f32 = 0;
    for (let j = 0; j < numKeys; j++) {
      const pj = load<f32>(p + (<usize>j << 2));
      if (pj != 0) t += pj * load<f32>(vBlock + <usize>j * rowBytes + (<usize>i << 2));
    }
    const a = acc + (<usize>i << 2);
    store<f32>(a, load<f32>(a) * alpha + t);
  }
}

/** acc[0..16) = alpha * acc[0..16) + [t0 t1 t2 t3]. */
@inline function rescaleAdd(a: usize, alpha: f32, t0: v128, t1: v128, t2: v128, t3: v128): void {
  const av = f32x4.splat(alpha);
  v128.store(a, f32x4.add(f32x4.mul(v128.load(a), av), t0));
  v128.store(a, f32x4.add(f32x4.mul(v128.load(a, 16), av), t1), 16);
  v128.store(a, f32x4.add(f32x4.mul(v128.load(a, 32), av), t2), 32);
  v128.store(a, f32x4.add(f32x4.mul(v128.load(a, 48), av), t3), 48);
}

/** The lanes of d from i on that the 16-lane loops left: 4 at a time, then one by one. */
function accumulateRest(acc: usize, vBlock: usize, p: usize, numKeys: i32, d: i32, alpha: f32, i: i32): void {
  const rowBytes = <usize>d << 2, av = f32x4.splat(alpha);
  for (; i + 4 <= d; i += 4) {
    let t = f32x4.splat(0);
    let vp = vBlock + (<usize>i << 2);
    for (let j = 0; j < numKeys; j++, vp += rowBytes) t = madd(v128.load32_splat(p + (<usize>j << 2)), v128.load(vp), t);
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
