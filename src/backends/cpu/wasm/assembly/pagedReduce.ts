// The second pass of a split-K paged attention (pagedAttention.ts): each
// split of a row left its partial (m, l, acc[d]) in the partials area; one
// call combines the splits of every row of a reduce entry and writes `out`:
// M = max m_s, L = sum l_s e^(m_s - M), out = sum acc_s e^(m_s - M) / L.
import { D, entryAt, HQ, NUM_TASKS, OUT, PARTIAL_HEAD, PARTIALS, S_ROW0, seqField, slot } from "./pagedDescriptor";
import { expF32 } from "./simdMath";

export function pagedAttentionReduce(desc: usize, entry: i32): void {
  const e = entryAt(desc, slot(desc, NUM_TASKS) + entry);
  const seq = load<i32>(e), h0 = load<i32>(e, 4), h1 = load<i32>(e, 8);
  const row0 = seqField(desc, seq, S_ROW0), r0 = row0 + load<i32>(e, 12), r1 = row0 + load<i32>(e, 16);
  const first = load<i32>(e, 20), numSplits = load<i32>(e, 24);
  const d = slot(desc, D), numHeads = slot(desc, HQ), nh = h1 - h0, rows = (r1 - r0) * nh;
  const stride = <usize>(d + PARTIAL_HEAD) << 2, rowBytes = <usize>d << 2;
  const partials = <usize>slot(desc, PARTIALS) + <usize>first * stride; // split s of row i: partial row s * rows + i
  const out = <usize>slot(desc, OUT);
  for (let i = 0; i < rows; i++) {
    const dst = out + <usize>((r0 + i / nh) * numHeads + h0 + i % nh) * rowBytes;
    let M: f32 = -Infinity;
    for (let s = 0; s < numSplits; s++) M = max(M, load<f32>(partials + <usize>(s * rows + i) * stride));
    memory.fill(dst, 0, rowBytes);
    let L: f32 = 0;
    for (let s = 0; s < numSplits; s++) {
      const p = partials + <usize>(s * rows + i) * stride;
      const m = load<f32>(p);
      if (m == -Infinity) continue; // a split that held no key this row sees
      const w = expF32(m - M);
      L += load<f32>(p, 4) * w;
      addScaled(dst, p + (<usize>PARTIAL_HEAD << 2), w, d);
    }
    scaleRow(dst, dst, 1 / L, d);
  }
}

/** dst += w * src over d floats. */
@inline function addScaled(dst: usize, src: usize, w: f32, d: i32): void {
  const wv = f32x4.splat(w);
  let c = 0;
  for (; c + 4 <= d; c += 4) {
    const o = <usize>c << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(v128.load(src + o), wv)));
  }
  for (; c < d; c++) store<f32>(dst + (<usize>c << 2), load<f32>(dst + (<usize>c << 2)) + load<f32>(src + (<usize>c << 2)) * w);
}

/** dst = factor * src over d floats (dst may be src). */
@inline export function scaleRow(dst: usize, src: usize, factor: f32, d: i32): void {
  const fv = f32x4.splat(factor);
  let c = 0;
  for (; c + 4 <= d; c += 4) v128.store(dst + (<usize>c << 2), f32x4.mul(v128.load(src + (<usize>c << 2)), fv));
  for (; c < d; c++) store<f32>(dst + (<usize>c << 2), load<f32>(src + (<usize>c << 2)) * factor);
}
