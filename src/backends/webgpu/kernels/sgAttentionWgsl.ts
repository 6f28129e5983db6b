/**
 * @module backends/webgpu/kernels/sgAttentionWgsl
 *
 * The WGSL both tensor-core prefill attentions share (attentionSgKernel.ts,
 * staged in workgroup memory for 64 query vectors; attentionDirectKernel.ts,
 * straight from f16 pages for 16): the item's logical key list, each key's
 * visibility rule once per step, the online softmax with its lazy running
 * max, and the partial rows. They differ in how many subgroups a workgroup
 * has, so each piece takes the names of its subgroup's offsets:
 * `q0` (its first query vector), `lane` and `at` (its 256 floats of `ss`).
 */
import { NO_ADMIT } from "./attentionKernels.js";
import type { SgMatrixWgsl } from "./sgMatrixWgsl.js";
import { range } from "./wgslCommon.js";

/** Where a kernel's subgroup works: WGSL expressions of its first query vector, lane, and its 256 floats of `ss`. */
export interface SubgroupPlace {
  readonly q0: string;
  readonly lane: string;
  readonly at: string;
}

/** `fn tileOf`: tile tj of an item's logical key list (ring, global, the chunk's own tiles of TK keys). */
export const TILE_OF_WGSL = /* wgsl */ `/** Tile tj of the item's logical key list: kind (0 ring, 1 global, 2 the chunk's own), first key, keys. */
fn tileOf(tj: u32, ringTiles: u32, globalTiles: u32, numRing: u32, nG: u32, T: u32) -> vec3<u32> {
  if (tj < ringTiles) { return vec3<u32>(0u, tj * TK, min(TK, numRing - tj * TK)); }
  if (tj < ringTiles + globalTiles) { let f = (tj - ringTiles) * TK; return vec3<u32>(1u, f, min(TK, nG - f)); }
  let f = (tj - ringTiles - globalTiles) * TK;
  return vec3<u32>(2u, f, min(TK, T - f));
}`;

/**
 * Each of the step's KT keys' visibility rule into `kmode`/`kposs` (invocations lid < KT): 0 hidden, 1 seen,
 * 2 seen within the window (ring, not admitted), 3 causal (the chunk's own), 4 causal within the window (the
 * chunk's own, not admitted). `globalTiles` and `nG` name the item's global tiles and tokens.
 */
export function keyModesWgsl(globalTiles: string, nG: string): string {
  return `    if (lid < KT) {
      let tj = tile + lid / TK;
      var mode = 0u; var kpos = 0u;
      if (tj < tile1) {
        let tl = tileOf(tj, ringTiles, ${globalTiles}, numRing, ${nG}, T);
        let t = tl.y + lid % TK;
        if (lid % TK < tl.z) {
          if (tl.x == 0u) { kpos = t + W * ((P - 1u - t) / W); mode = select(2u, 1u, flagAt(fl + t) != 0u); }
          else if (tl.x == 1u) { mode = 1u; }
          else {
            kpos = t;
            // NOTE: the flag is read only where the block's last row is past the window from the key (never in a chunk within it)
            let pastWindow = adm != ${NO_ADMIT}u && qr0 + qn - 1u >= t + W;
            mode = select(3u, 4u, pastWindow && stepFlagAt(adm + t) == 0u);
          }
        }
      }
      kmode[lid] = mode; kposs[lid] = kpos;
    }`;
}

/** A statement passing output fragment o{i} through the subgroup's 256 floats of `ss`, `body` run per element e (row v). */
export function throughSharedWgsl(ops: SgMatrixWgsl, place: SubgroupPlace, i: number, body: string): string {
  return `  ${ops.store("ss", place.at, `o${i}`, "16u")};
  workgroupBarrier();
  for (var e = ${place.lane}; e < 256u; e += 32u) { let v = ${place.q0 === "0u" ? "" : `${place.q0} + `}e / 16u; ${body} }
  workgroupBarrier();`;
}

/**
 * One step's softmax over the KT scores in `ss` (row-major, stride KT), two lanes per query vector: masked by
 * each key's mode, scaled, the running max moved lazily (only past `lazyMax` above it, so P <= e^8 stays within
 * f16), P into `ps` (split: high halves, then low at NQ * KT), the row sums, and the output fragments o0..o{DF-1}
 * rescaled where a max moved. `skew`: each lane starts at another key (v mod KT/2), against bank conflicts where
 * one subgroup's rows share banks.
 */
export function softmaxStepWgsl(ops: SgMatrixWgsl, place: SubgroupPlace, s: { NQ: number; KT: number; DF: number; split: boolean; skew: boolean }): string {
  const { NQ, KT, DF, split, skew } = s;
  const key = `let j = h * ${KT / 2}u + ${skew ? `(jj + v) % ${KT / 2}u` : "jj"};`;
  return `    let v = ${place.q0 === "0u" ? "" : `${place.q0} + `}${place.lane} / 2u; let h = ${place.lane} % 2u;
    let r = qr0 + v / G;
    var mt = MASKED;
    for (var jj = 0u; jj < ${KT / 2}u; jj++) {
      ${key}
      let mode = kmode[j]; let kp = kposs[j];
      let visible = v < nv && (mode == 1u || (mode == 2u && P + r - kp < W) || (mode == 3u && kp <= r) || (mode == 4u && kp <= r && r - kp < W));
      let sc = select(MASKED, ss[v * KT + j] * scale, visible);
      ss[v * KT + j] = sc;
      mt = max(mt, sc);
    }
    pairs[lid] = mt;
    workgroupBarrier();
    mt = max(mt, pairs[lid ^ 1u]);
    // NOTE: the running max moves only past lazyMax above it (8: p <= e^8 holds in f16, and O is rarely rescaled)
    let mOld = mrow[v];
    var m = mOld; var a = 1.0;
    if (mt > MASKED && (mOld == MASKED || mt > mOld + lazyMax)) { m = mt; a = select(exp(mOld - mt), 0.0, mOld == MASKED); }
    var sum = 0.0;
    for (var jj = 0u; jj < ${KT / 2}u; jj++) {
      ${key}
      let sc = ss[v * KT + j];
      let p = select(exp(sc - m), 0.0, sc == MASKED);
      ps[v * KT + j] = toF16(p);${split ? `\n      ps[${NQ * KT}u + v * KT + j] = lowF16(p);` : ""}
      sum += p;
    }
    workgroupBarrier();
    pairs[lid] = sum;
    workgroupBarrier();
    if (h == 0u) {
      mrow[v] = m; lrow[v] = lrow[v] * a + sum + pairs[lid + 1u]; arow[v] = a;
      // NOTE: a row's first visible keys need no rescale (its output is still 0)
      if (a != 1.0 && mOld != MASKED) { rescale[0] = 1u; }
    }
    // ---- where a running max moved, every subgroup rescales its output rows (workgroupUniformLoad: a barrier)
    if (workgroupUniformLoad(&rescale[0]) != 0u) {
${range(DF)
  .map((i) => `${throughSharedWgsl(ops, place, i, `ss[${place.at === "0u" ? "" : `${place.at} + `}e] *= arow[v];`)}
  o${i} = ${ops.load("result", "ss", place.at, false, "16u")};
  workgroupBarrier();`)
  .join("\n")
  .replace(/^/gm, "    ")}
      if (lid == 0u) { rescale[0] = 0u; }
    }`;
}

/** The item's partial rows (max, sum, acc[D]) into scratch from `mrow`, `lrow` and the output fragments. */
export function partialRowsWgsl(ops: SgMatrixWgsl, place: SubgroupPlace, DF: number, partial: string): string {
  const at = place.at === "0u" ? "" : `${place.at} + `;
  return `  let base = au(ib + ${partial}u);
${range(DF)
  .map((i) => throughSharedWgsl(ops, place, i, `if (v < nv) { scratch[(base + v) * (D + 2u) + ${2 + i * 16}u + e % 16u] = bitcast<u32>(ss[${at}e]); }`))
  .join("\n")}
  if (lid < nv) {
    scratch[(base + lid) * (D + 2u)] = bitcast<u32>(mrow[lid]);
    scratch[(base + lid) * (D + 2u) + 1u] = bitcast<u32>(lrow[lid]);
  }`;
}
