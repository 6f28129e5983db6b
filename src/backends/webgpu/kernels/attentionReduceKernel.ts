/**
 * @module backends/webgpu/kernels/attentionReduceKernel
 *
 * The reduce pass of paged attention (attentionKernels.ts and
 * decodeAttentionKernel.ts write the split partials it merges).
 */
import type { Kernel } from "../gpuRuntime.js";
import { REDUCE_WORDS } from "./attentionKernels.js";
import { kernelOf, MAIN_ARGS, memoKernel, WG_INDEX } from "./wgslCommon.js";

/**
 * out[row, head, :] from a block's split partials, one workgroup per
 * (block, query vector). The splits are read in parallel: the largest max
 * first (a workgroup max), then REDUCE_LANES groups of invocations each sum
 * every REDUCE_LANES-th split's weighted sum and columns (four columns per
 * invocation), and the groups' sums are added in workgroup memory. (Long
 * contexts split a block 64 ways and more; one pass over the splits, each
 * waiting on the last, took ~80 us on the H200.) Reduce record (args from
 * word 5): [first partial, splits, partials per split, batch row, rows, KV head].
 * args: numRecords, Hq, d, group, vectors per record at most.
 */
const REDUCE_LANES = 4;
export const attentionReduceKernel = memoKernel(function attentionReduceKernel(): Kernel {
  const NT = 128, COLS = (NT / REDUCE_LANES) * 4; // columns a pass of the workgroup covers
  return kernelOf("paged attention reduce", ["ro", "rw"], /* wgsl */ `
@group(0) @binding(0) var<storage, read> scratch: array<u32>;
@group(0) @binding(1) var<storage, read_write> outp: array<f32>;
var<workgroup> red: array<f32, ${NT}>;
var<workgroup> part: array<vec4<f32>, ${NT}>;
var<workgroup> partL: array<f32, ${REDUCE_LANES}>;
fn sf(i: u32) -> f32 { return bitcast<f32>(scratch[i]); }
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let vmax = au(4u);
  let r = wg / vmax; let v = wg % vmax;
  // NOTE: whole workgroups leave together (the barriers below)
  if (r >= au(0u)) { return; }
  let Hq = au(1u); let D = au(2u); let G = au(3u);
  let rec = 5u + r * ${REDUCE_WORDS}u;
  let first = au(rec); let splits = au(rec + 1u); let per = au(rec + 2u); let row0 = au(rec + 3u); let qn = au(rec + 4u); let g = au(rec + 5u);
  if (v >= qn * G) { return; }
  let stride = D + 2u;
  // ---- the largest of the splits' maxima
  var mm = -3.0e38;
  for (var s = lid; s < splits; s += ${NT}u) { mm = max(mm, sf((first + s * per + v) * stride)); }
  red[lid] = mm;
  workgroupBarrier();
  for (var k = ${NT / 2}u; k > 0u; k >>= 1u) { if (lid < k) { red[lid] = max(red[lid], red[lid + k]); } workgroupBarrier(); }
  let M = red[0];
  // ---- lane group sl sums splits sl, sl + REDUCE_LANES, ...; invocation col of it four columns
  let sl = lid / ${NT / REDUCE_LANES}u; let col = (lid % ${NT / REDUCE_LANES}u) * 4u;
  var l = 0.0;
  for (var s = sl; s < splits; s += ${REDUCE_LANES}u) {
    let ms = sf((first + s * per + v) * stride);
    l += select(0.0, sf((first + s * per + v) * stride + 1u) * exp(ms - M), ms > -3.0e38);
  }
  if (lid % ${NT / REDUCE_LANES}u == 0u) { partL[sl] = l; }
  workgroupBarrier();
  let L = ${Array.from({ length: REDUCE_LANES }, (_, i) => `partL[${i}]`).join(" + ")};
  for (var c0 = 0u; c0 < D; c0 += ${COLS}u) {
    let c = c0 + col;
    var a = vec4<f32>(0.0);
    for (var s = sl; s < splits; s += ${REDUCE_LANES}u) {
      let at = (first + s * per + v) * stride;
      let ms = sf(at);
      let f = select(0.0, exp(ms - M), ms > -3.0e38);
      // columns past D read the next partial's words (robust access past the buffer's end): their sums are not written
      let e = at + 2u + c;
      a += f * vec4<f32>(sf(e), sf(e + 1u), sf(e + 2u), sf(e + 3u));
    }
    part[lid] = a;
    workgroupBarrier();
    if (sl == 0u && c < D) {
      var t = part[lid];
${Array.from({ length: REDUCE_LANES - 1 }, (_, i) => `      t += part[lid + ${(i + 1) * (NT / REDUCE_LANES)}u];`).join("\n")}
      let o = ((row0 + v / G) * Hq + g * G + v % G) * D + c;
      outp[o] = t.x / L;
      if (c + 1u < D) { outp[o + 1u] = t.y / L; }
      if (c + 2u < D) { outp[o + 2u] = t.z / L; }
      if (c + 3u < D) { outp[o + 3u] = t.w / L; }
    }
    workgroupBarrier();
  }
}`);
});
