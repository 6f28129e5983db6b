/**
 * @module backends/webgpu/kernels/tileLoopWgsl
 *
 * The tile origin, the k loop and the store of the tensor-core matmuls whose slices go
 * through workgroup tiles (matmulSgKernels.ts, matmulF16Kernels.ts): the next
 * slice's loads are in flight in registers while this slice's products run;
 * whole tiles without bias are stored straight from the fragments, the rest
 * through workgroup memory (`cs`, 256 floats a subgroup), element by element.
 */
import type { SgMatrixWgsl } from "./sgMatrixWgsl.js";

/** What a generator supplies: WGSL statements, each placed as the loop needs it. */
export interface TileLoopParts {
  /** Slice depth: k advances by it. */
  readonly bk: number;
  /** Tiles in workgroup memory: 1, or 2 (the next slice put in the other during this one's products, one barrier a slice). */
  readonly buffers: 1 | 2;
  /** Declares the registers and fetches the slice at k = 0 into them. */
  readonly registers: string;
  /** Fetches the slice at `k` (a WGSL u32 expression) into the registers. */
  readonly fetch: (k: string) => string;
  /** Puts the registers into the tiles at element offsets `xo`, `wo`. */
  readonly put: (xo: string, wo: string) => string;
  /** The slice's products from the tiles at `xo`, `wo`. */
  readonly products: (xo: string, wo: string) => string;
  /** Elements of one buffer of the x tiles and of the w tiles (the second buffer's offsets). */
  readonly xTile: number;
  readonly wTile: number;
}

export function tileLoopWgsl(p: TileLoopParts): string {
  const { bk: BK } = p;
  if (p.buffers === 1) {
    return `${p.registers}
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
${p.put("0u", "0u")}
    workgroupBarrier();
    if (k0 + ${BK}u < K) {
${p.fetch(`k0 + ${BK}u`)}
    }
${p.products("0u", "0u")}
    workgroupBarrier();
  }`;
  }
  // NOTE: while the products read buffer `cur`, the next slice goes into the other; the one barrier a slice
  // both shows it and keeps the next put from overwriting a buffer still being read
  return `${p.registers}
${p.put("0u", "0u")}
  workgroupBarrier();
  var cur = 0u;
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    let more = k0 + ${BK}u < K;
    if (more) {
${p.fetch(`k0 + ${BK}u`)}
    }
${p.products(`cur * ${p.xTile}u`, `cur * ${p.wTile}u`)}
    if (more) {
${p.put(`(1u - cur) * ${p.xTile}u`, `(1u - cur) * ${p.wTile}u`)}
    }
    workgroupBarrier();
    cur = 1u - cur;
  }`;
}

/**
 * Stores fragments c{i}_{j} (16 x 16 each) to out f32 [rows, Nout] at columns n0 + ...: `row` and `col` are
 * WGSL expressions of this subgroup's first output row and column (less n0); adds the bias where au(3) is 1.
 * Edge tiles and biased ones pass through `cs`: 256 floats per subgroup, or with `subgroupsTakeTurns` (of
 * `numSubgroups`) 256 floats in all, the subgroups storing one after another. Why the second: on the H200 the
 * workgroup memory a kernel declares bounds how many of its workgroups an SM runs, and staging is rare.
 */
export function tileStoreWgsl(ops: SgMatrixWgsl, frags: readonly (readonly [number, number])[], row: string, col: string, bm: number, bn: number, subgroupsTakeTurns = 0): string {
  return `  let hasBias = au(3u) == 1u;
  if (m0 + ${bm}u <= rows && c0 + ${bn}u <= Np && !hasBias) {
${frags.map(([i, j]) => `    ${ops.store("outp", `(${row} + ${i * 16}u) * Nout + n0 + ${col} + ${j * 16}u`, `c${i}_${j}`, "Nout")};`).join("\n")}
  } else {
${frags.map(([i, j]) => staged(ops, `c${i}_${j}`, `${row} + ${i * 16}u`, `${col} + ${j * 16}u`, subgroupsTakeTurns)).join("\n")}
  }`;
}

/** Workgroup memory (bytes) of `cs` for tileStoreWgsl's staging. */
export function tileStageBytes(numSubgroups: number, subgroupsTakeTurns: boolean): number {
  return 4 * 256 * (subgroupsTakeTurns ? 1 : numSubgroups);
}

// NOTE: one fragment through this subgroup's 256 floats of cs, copied out by the subgroup's lanes with guards
const copyOut = (at: string, row: string, col: string) => `for (var e = lid % 32u; e < 256u; e += 32u) {
      let m = ${row} + e / 16u; let n = ${col} + e % 16u;
      if (m < rows && n < Np) { outp[m * Nout + n0 + n] = cs[${at} + e] + select(0.0, bias[n0 + n], hasBias); }
    }`;

/** One fragment through cs: each subgroup through its own 256 floats, or (`turns` > 1) through one 256 in turns. */
function staged(ops: SgMatrixWgsl, frag: string, row: string, col: string, turns: number): string {
  if (turns <= 1) {
    return `    ${ops.store("cs", "sg * 256u", frag, "16u")};
    workgroupBarrier();
    ${copyOut("sg * 256u", row, col)}
    workgroupBarrier();`;
  }
  return `    for (var turn = 0u; turn < ${turns}u; turn++) {
      if (sg == turn) { ${ops.store("cs", "0u", frag, "16u")}; }
      workgroupBarrier();
      if (sg == turn) { ${copyOut("0u", row, col)} }
      workgroupBarrier();
    }`;
}

/**
 * The kernel's first statements: the args (rows, Np, K, Nout, n0), the workgroup's tile origin (m0, c0) and
 * this subgroup's block of it (am, bn0: absolute, or `relative` to the tile's origin).
 */
export function tileOriginWgsl(bm: number, bn: number, sgm: number, sgn: number, relative: boolean): string {
  const [origin0, origin1] = relative ? ["", ""] : ["m0 + ", "c0 + "];
  return `  let rows = au(0u); let Np = au(1u); let K = au(2u); let Nout = au(4u); let n0 = au(5u);
  let tn = (Np + ${bn - 1}u) / ${bn}u;
  let m0 = (wg / tn) * ${bm}u; let c0 = (wg % tn) * ${bn}u;
  // NOTE: this subgroup's block of the tile (one subgroup: a constant, which Tint's uniformity analysis accepts)
  let sg = ${sgm * sgn > 1 ? "lid / 32u" : "0u"};
  let am = ${origin0}(sg / ${sgn}u) * ${bm / sgm}u; let bn0 = ${origin1}(sg % ${sgn}u) * ${bn / sgn}u;`;
}
