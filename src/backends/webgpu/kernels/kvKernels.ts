/**
 * @module backends/webgpu/kernels/kvKernels
 *
 * The dual cache's data movement on the GPU. A pool part (gpuPool.ts) is
 * one buffer of u32 words: K pages, then V pages at word `vBase`; the
 * part's local slot s (global slot - firstSlot) holds a row of d elements
 * (f32, or f16/bf16 packed two per word) at word s * wordsPerRow. Slots
 * outside the part are left to the dispatch of their own part. Every move
 * is on u32 bits and rounding to 16 bits is util/halfFloat.ts's in integer
 * arithmetic (wgslCommon.ts): GPUs that flush subnormals in float
 * arithmetic (NVIDIA) keep them bit for bit.
 */
import type { KvDType } from "../../backend.js";
import type { Kernel } from "../gpuRuntime.js";
import { errorWgsl } from "../kernelAbi.js";
import { encodeBits, HALF_WGSL, MAIN_ARGS, WG_INDEX, memoKernel, kernelOf } from "./wgslCommon.js";


/**
 * writeKv's item j (word j % wpr of row (t, h) of k, v f32 [T, H, d]) into its slot
 * slots[offset + h * T + t] of the part, K and V; -1 or outside the part: skipped, and with
 * `skipCopied` rows whose slot is a source or destination of copies [first, first + count) too
 * (their copy writes them). Bindings pool, k, v, slots (copies); args T, H, wordsPerRow, d, offset,
 * vBase, firstSlot, numSlots (first, count).
 */
function writeKvItemWgsl(dtype: KvDType, skipCopied: boolean): string {
  const store =
    dtype === "f32"
      ? "pool[dst] = k[src + word]; pool[au(5u) + dst] = v[src + word];"
      : `let e = src + 2u * word;
  pool[dst] = ${encodeBits(dtype, "k[e]")} | (${encodeBits(dtype, "k[e + 1u]")} << 16u);
  pool[au(5u) + dst] = ${encodeBits(dtype, "v[e]")} | (${encodeBits(dtype, "v[e + 1u]")} << 16u);`;
  const skip = skipCopied
    ? `
  for (var c = au(8u); c < au(8u) + au(9u); c++) {
    if (slot == copies[2u * c] || slot == copies[2u * c + 1u]) { return; }
  }`
    : "";
  return `fn writeRowWord(t: u32, h: u32, local: u32, word: u32) {
  let src = (t * au(1u) + h) * au(3u);
  let dst = local * au(2u) + word;
  ${store}
}
fn writeKvItem(j: u32) {
  let T = au(0u); let H = au(1u); let wpr = au(2u);
  if (j >= T * H * wpr) { return; }
  let word = j % wpr; let ht = j / wpr; let t = ht % T; let h = ht / T;
  let slot = slots[au(4u) + h * T + t];
  let local = u32(slot) - au(6u);
  if (slot < 0 || local >= au(7u)) { return; }${skip}
  writeRowWord(t, h, local, word);
}`;
}

const WRITE_KV_BINDINGS = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> pool: array<u32>;
@group(0) @binding(1) var<storage, read> k: array<u32>;
@group(0) @binding(2) var<storage, read> v: array<u32>;
@group(0) @binding(3) var<storage, read> slots: array<i32>;`;

/**
 * Rows (t, h) of k, v f32 [T, H, d] to slots slots[offset + h * T + t] (-1, or outside the part: skipped).
 * args: T, H, wordsPerRow, d, offset, vBase, firstSlot, numSlots (of the part)
 */
export const writeKvKernel = memoKernel(function writeKvKernel(dtype: KvDType): Kernel {
  return kernelOf(`writeKv ${dtype}`, ["rw", "ro", "ro", "ro"], /* wgsl */ `${WRITE_KV_BINDINGS}
${HALF_WGSL}
${writeKvItemWgsl(dtype, false)}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  writeKvItem(wg * 256u + lid);
}`);
});

/**
 * copySlotsKernel then writeKvKernel in one dispatch (a decode layer's promotions and its new tokens'
 * rows, which usually land in the ring slots the promotions empty). Items [0, count * wpr) are the
 * copies' words: each copies its word, then writes the word of a row whose slot is the copy's source
 * or destination, in that order, as the two kernels one after the other would; items after them are
 * writeKv's, skipping rows a copy writes. So no two invocations touch one word (copies' slots
 * are distinct, as the copy kernel alone requires). Rows scan the copies and copies the rows: for
 * the short lists of decode steps (the caller bounds them).
 * args: T, H, wordsPerRow, d, offset, vBase, firstSlot, numSlots (writeKv's), first, count (the copies')
 */
export const copyThenWriteKvKernel = memoKernel(function copyThenWriteKvKernel(dtype: KvDType): Kernel {
  return kernelOf(`copySlots + writeKv ${dtype}`, ["rw", "ro", "ro", "ro", "ro"], /* wgsl */ `${WRITE_KV_BINDINGS}
@group(0) @binding(4) var<storage, read> copies: array<i32>;
${HALF_WGSL}
${writeKvItemWgsl(dtype, true)}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let T = au(0u); let H = au(1u); let wpr = au(2u); let vb = au(5u); let base = au(6u); let n = au(7u);
  let i = wg * 256u + lid;
  let count = au(9u);
  if (i >= count * wpr) {
    writeKvItem(i - count * wpr);
    return;
  }
  let c = au(8u) + i / wpr; let word = i % wpr;
  let src0 = u32(copies[2u * c]) - base; let dst0 = u32(copies[2u * c + 1u]) - base;
  if (src0 >= n || dst0 >= n) { return; }
  pool[dst0 * wpr + word] = pool[src0 * wpr + word];
  pool[vb + dst0 * wpr + word] = pool[vb + src0 * wpr + word];
  for (var r = 0u; r < T * H; r++) {
    let slot = slots[au(4u) + r];
    if (slot == copies[2u * c] || slot == copies[2u * c + 1u]) { writeRowWord(r % T, r / T, u32(slot) - base, word); }
  }
}`);
});

/** K and V of slot copies[i, 0] to slot copies[i, 1], i in [first, first + count), pairs in the part. args: first, count, wordsPerRow, vBase, firstSlot, numSlots */
export const copySlotsKernel = memoKernel(function copySlotsKernel(): Kernel {
  return kernelOf("copySlots", ["rw", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> pool: array<u32>;
@group(0) @binding(1) var<storage, read> copies: array<i32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let wpr = au(2u); let vb = au(3u);
  let i = wg * 256u + lid;
  if (i >= au(1u) * wpr) { return; }
  let c = au(0u) + i / wpr; let word = i % wpr;
  let src0 = u32(copies[2u * c]) - au(4u); let dst0 = u32(copies[2u * c + 1u]) - au(4u);
  if (src0 >= au(5u) || dst0 >= au(5u)) { return; }
  let src = src0 * wpr + word; let dst = dst0 * wpr + word;
  pool[dst] = pool[src];
  pool[vb + dst] = pool[vb + src];
}`);
});

/** dst[updates[i, 0]] = updates[i, 1], i < count; dst i32, or u8 (packed, through atomics). args: count, numel */
export const scatterKernel = memoKernel(function scatterKernel(u8: boolean): Kernel {
  const store = u8
    ? `let sh = (u32(at) & 3u) * 8u;
  atomicAnd(&dst[u32(at) >> 2u], ~(0xffu << sh));
  atomicOr(&dst[u32(at) >> 2u], (u32(value) & 0xffu) << sh);`
    : "atomicStore(&dst[u32(at)], bitcast<u32>(value));";
  return kernelOf(`scatter ${u8 ? "u8" : "i32"}`, ["rw", "ro", "rw"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> dst: array<atomic<u32>>;
@group(0) @binding(1) var<storage, read> updates: array<i32>;
${errorWgsl(2)}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  if (i >= au(0u)) { return; }
  let at = updates[2u * i]; let value = updates[2u * i + 1u];
  if (at < 0 || u32(at) >= au(1u)) { fail(2u, bitcast<u32>(at)); return; }
  ${store}
}`);
});
