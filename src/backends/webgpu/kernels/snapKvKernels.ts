/**
 * @module backends/webgpu/kernels/snapKvKernels
 *
 * SnapKV's ops (docs/design.md §3) on the GPU: the observation queries (the
 * last rows of q of sequences that observe, kept per slot and layer) and the
 * attention-mass scores of a sequence's global and ring keys under them.
 * cpu/cpuPolicyOps.ts is the reference.
 */
import type { KvDType } from "../../backend.js";
import { SEQ_FIELDS, SEQ_NUM_ROWS, SEQ_OBSERVE, SEQ_ROW_START, SEQ_SLOT, SEQ_START_POS } from "../../stepLayout.js";
import type { Kernel } from "../gpuRuntime.js";
import { elementReader, HALF_WGSL, MAIN_ARGS, WG_INDEX, memoKernel, kernelOf } from "./wgslCommon.js";


/** obs f32 [slots, L, O, width] row pos mod O = q row, for the last min(T, O) rows of observing sequences. args: L, O, width, layer */
export const storeObservationsKernel = memoKernel(function storeObservationsKernel(): Kernel {
  return kernelOf("storeObservations", ["rw", "ro", "ro"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> obs: array<u32>;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read> seqs: array<i32>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let L = au(0u); let O = au(1u); let width = au(2u);
  let s = wg / O; let k = wg % O;
  let f = s * ${SEQ_FIELDS}u;
  if (seqs[f + ${SEQ_OBSERVE}u] == 0) { return; }
  let n = u32(seqs[f + ${SEQ_NUM_ROWS}u]);
  let t = select(0u, n - O, n > O) + k;
  if (t >= n) { return; }
  let row = u32(seqs[f + ${SEQ_ROW_START}u]) + t;
  let at = ((u32(seqs[f + ${SEQ_SLOT}u]) * L + au(3u)) * O + (u32(seqs[f + ${SEQ_START_POS}u]) + t) % O) * width;
  for (var c = lid; c < width; c += 256u) { obs[at + c] = q[row * width + c]; }
}`);
});

/**
 * SnapKV: one workgroup per request (stepLayout.ts SNAP_*), its logits in
 * scratch at the word the host planned (args from word 8: per request, its
 * scratch word). Requests of layers outside [layer0, layer1) are left to
 * their pool part's dispatch. args: numRequests, L, Hq, Hkv, d, O, width,
 * rowStride, then per request its scratch word, then layer0, layer1, firstPage.
 */
export const snapKvKernel = memoKernel(function snapKvKernel(dtype: KvDType): Kernel {
  return kernelOf(`snapKv ${dtype}`, ["rw", "ro", "ro", "ro", "ro", "rw"], /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> outp: array<f32>;
@group(0) @binding(1) var<storage, read> req: array<i32>;
@group(0) @binding(2) var<storage, read> obs: array<f32>;
@group(0) @binding(3) var<storage, read> pool: array<u32>;
@group(0) @binding(4) var<storage, read> tables: array<i32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
${HALF_WGSL}
${elementReader("kAt", "pool", dtype)}
var<workgroup> redf: array<f32, 256>;
fn reduceMax(lid: u32, v: f32) -> f32 {
  redf[lid] = v;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { redf[lid] = max(redf[lid], redf[lid + k]); } workgroupBarrier(); }
  return workgroupUniformLoad(&redf[0]);
}
fn reduceSum(lid: u32, v: f32) -> f32 {
  redf[lid] = v;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) { if (lid < k) { redf[lid] += redf[lid + k]; } workgroupBarrier(); }
  return workgroupUniformLoad(&redf[0]);
}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  if (wg >= au(0u)) { return; }
  let L = au(1u); let Hq = au(2u); let H = au(3u); let d = au(4u); let O = au(5u); let width = au(6u); let rowStride = au(7u);
  let G = Hq / H;
  let r = wg * 8u;
  let slot = u32(req[r]); let layer = u32(req[r + 1u]); let g = u32(req[r + 2u]); let W = u32(req[r + 3u]);
  let nG = u32(req[r + 4u]); let nR = u32(req[r + 5u]); let nObs = u32(req[r + 6u]); let offset = u32(req[r + 7u]);
  let tail = 8u + au(0u);
  if (layer < au(tail) || layer >= au(tail + 1u)) { return; }
  let firstPage = au(tail + 2u);
  let sb = au(8u + wg);
  let mass = sb + nG + nR;
  let row = ((slot * L + layer) * H + g) * rowStride;
  let scale = 1.0 / sqrt(f32(d));
  for (var gh = 0u; gh < G; gh++) {
    for (var n = lid; n < nG; n += 256u) { scratch[mass + n] = 0.0; }
    for (var o = 0u; o < nObs; o++) {
      let qb = ((slot * L + layer) * O + o) * width + (g * G + gh) * d;
      var mx = -3.0e38;
      for (var n = lid; n < nG + nR; n += 256u) {
        var page = 0u; var off = 0u;
        if (n < nG) { page = u32(tables[row + W / 16u + n / 16u]); off = n % 16u; }
        else { let o2 = n - nG; page = u32(tables[row + o2 / 16u]); off = o2 % 16u; }
        var dotv = 0.0;
        for (var c = 0u; c < d; c++) { dotv += obs[qb + c] * kAt(((page - firstPage) * 16u + off) * d + c); }
        let l = dotv * scale;
        scratch[sb + n] = l;
        mx = max(mx, l);
      }
      let m = reduceMax(lid, mx);
      var s = 0.0;
      for (var n = lid; n < nG + nR; n += 256u) { let e = exp(scratch[sb + n] - m); scratch[sb + n] = e; s += e; }
      let sum = reduceSum(lid, s);
      for (var n = lid; n < nG; n += 256u) { scratch[mass + n] += scratch[sb + n] / sum; }
      workgroupBarrier();
    }
    for (var n = lid; n < nG; n += 256u) {
      let v = scratch[mass + n];
      outp[offset + n] = select(max(outp[offset + n], v), v, gh == 0u);
    }
    workgroupBarrier();
  }
}`);
});
