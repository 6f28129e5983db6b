// The rows of a paged-attention task (pagedAttention.ts) consume one key
// block: up to BLOCK_PAGES pages of 16 keys, each page's K and V rows dense
// f32 [16, d] at kPtrs[k], vPtrs[k]. Rows go two at a time (attentionBlock.ts:
// the pair shares every K and V load); a row's scores for the whole block sit
// at s[16k + j], so the online-softmax step and the rescale of its running
// sums happen once per block, not once per page.
import { accumulate1, accumulate2, accumulateSafe1, scores1, scores2 } from "./attentionBlock";
import { PAGE, softmaxMasked } from "./pagedBlock";

/** Scores per row and block. */
export const BLOCK_KEYS: i32 = 64;

/** The bits of page k in a block mask. */
@inline function pageBits(mask: u64, k: i32): u32 {
  return <u32>(mask >> <u64>(k * PAGE)) & 0xffff;
}

/** Keys up to the last visible one: scoring stops there. */
@inline function keysUpTo(bits: u64): i32 {
  return 64 - <i32>clz(bits);
}

/**
 * masks: u64 [nq] per query of the task; rowQuery: i32 [rows]; rowQ: u32 [rows]
 * (q row pointers); states: f32 [rows, 2] (m, l); accs: f32 [rows, d];
 * sa, sb: f32 [BLOCK_KEYS] scores of a row pair. safe: V rows may hold infinities or
 * NaN, so a key a row does not see must add exactly nothing (accumulateSafe1).
 */
export function attendBlock(
  kPtrs: usize, vPtrs: usize, numPages: i32, d: i32, scale: f32, rows: i32,
  masks: usize, rowQuery: usize, rowQ: usize, states: usize, accs: usize, sa: usize, sb: usize, safe: bool,
): void {
  const rowBytes = <usize>d << 2;
  for (let i = 0; i < rows; i += 2) {
    const ma = load<u64>(masks + (<usize>load<i32>(rowQuery + (<usize>i << 2)) << 3));
    const mb = i + 1 < rows ? load<u64>(masks + (<usize>load<i32>(rowQuery + (<usize>(i + 1) << 2)) << 3)) : 0;
    // NOTE: a row skips a block it sees nothing of: its first block must not be all -inf
    if (ma != 0 && mb != 0) {
      const qa = <usize>load<u32>(rowQ + (<usize>i << 2)), qb = <usize>load<u32>(rowQ + (<usize>(i + 1) << 2));
      // pages nobody of the pair sees are skipped; the other row's extra keys get p = 0
      for (let k = 0; k < numPages; k++) {
        const bits = pageBits(ma | mb, k);
        if (bits == 0) continue;
        const at = <usize>(k * PAGE) << 2;
        scores2(sa + at, sb + at, qa, qb, <usize>load<u32>(kPtrs + (<usize>k << 2)), keysUpTo(bits), d, scale);
      }
      const numKeys = keysUpTo(ma | mb);
      let alphaA = softmaxMasked(sa, ma, numKeys, states + (<usize>i << 3));
      let alphaB = softmaxMasked(sb, mb, numKeys, states + (<usize>(i + 1) << 3));
      const accA = accs + <usize>i * rowBytes, accB = accA + rowBytes;
      for (let k = 0; k < numPages; k++) {
        const bits = pageBits(ma | mb, k);
        if (bits == 0) continue;
        const at = <usize>(k * PAGE) << 2;
        const vRows = <usize>load<u32>(vPtrs + (<usize>k << 2));
        if (safe) {
          accumulateSafe1(accA, vRows, sa + at, keysUpTo(bits), d, alphaA);
          accumulateSafe1(accB, vRows, sb + at, keysUpTo(bits), d, alphaB);
        } else accumulate2(accA, accB, vRows, sa + at, sb + at, keysUpTo(bits), d, alphaA, alphaB);
        alphaA = 1; // the running sums are rescaled once, with the first page
        alphaB = 1;
      }
    } else if (ma != 0 || mb != 0) {
      const r = ma != 0 ? i : i + 1, m = ma | mb;
      const q = <usize>load<u32>(rowQ + (<usize>r << 2));
      for (let k = 0; k < numPages; k++) {
        const bits = pageBits(m, k);
        if (bits != 0) scores1(sa + (<usize>(k * PAGE) << 2), q, <usize>load<u32>(kPtrs + (<usize>k << 2)), keysUpTo(bits), d, scale);
      }
      let alpha = softmaxMasked(sa, m, keysUpTo(m), states + (<usize>r << 3));
      const acc = accs + <usize>r * rowBytes;
      for (let k = 0; k < numPages; k++) {
        const bits = pageBits(m, k);
        if (bits == 0) continue;
        const vRows = <usize>load<u32>(vPtrs + (<usize>k << 2)), p = sa + (<usize>(k * PAGE) << 2);
        if (safe) accumulateSafe1(acc, vRows, p, keysUpTo(bits), d, alpha);
        else accumulate1(acc, vRows, p, keysUpTo(bits), d, alpha);
        alpha = 1;
      }
    }
  }
}
