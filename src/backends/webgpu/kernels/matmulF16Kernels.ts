/**
 * @module backends/webgpu/kernels/matmulF16Kernels
 *
 * Prefill matmul on tensor cores with x already f16 in storage: x f16
 * [rows, K] (converted once per matmul input by `f16RowsKernel`, not once
 * per tile as matmulSgKernels.ts does) and w [Np, K] as stored: bf16 (the
 * engine's weights: each pair widened and narrowed to f16 in the tile fill,
 * exact in f16's normal range) or f16. The matmulKernels.ts contract otherwise (args rows,
 * Np, K, hasBias, Nout, n0; out f32 [rows, Nout]).
 *
 * Why: matmulSgKernels.ts converts each x element to f16 once for every
 * column tile (gate/up of an 8B model: 112 times) and each weight once for
 * every row tile, with exact rounding in integer arithmetic; on the H200 that
 * ALU work, not the tensor cores, bounds it.
 *
 * BK-deep slices of x and w are copied into workgroup tiles (8 halves per
 * vec4 load), the next slice's loads in flight during this one's products,
 * as matmulSgKernels.ts does.
 *
 * Loads past the end of x or w (a partial last tile) read zeros or stale
 * rows under robust access; they reach only outputs that are not stored.
 * K must be a multiple of BK.
 */
import type { Kernel } from "../gpuRuntime.js";
import { MATMUL_BINDINGS, matmulKernelOf } from "./matmulKernels.js";
import type { SgMatrixDialect } from "./matmulSgKernels.js";
import { F16_SPLIT_WGSL, SgMatrixWgsl } from "./sgMatrixWgsl.js";
import { tileLoopWgsl, tileOriginWgsl, tileStageBytes, tileStoreWgsl } from "./tileLoopWgsl.js";
import { MAIN_ARGS, WG_INDEX, kernelOf, memoKernel, range } from "./wgslCommon.js";

export interface F16MatmulVariant {
  readonly bm: number;
  readonly bn: number;
  /** Slice depth. */
  readonly bk: number;
  readonly sgm: number;
  readonly sgn: number;
  /** Halves each tile row is padded by (default 8). */
  readonly pad?: number;
  /** Tiles in workgroup memory (default 1); with 2 the next slice is put in the other during this one's products, one barrier a slice. */
  readonly buffers?: 1 | 2;
  /** Edge tiles staged through one subgroup's 256 floats, subgroups taking turns (tileLoopWgsl.ts), instead of 256 each. */
  readonly stageInTurns?: boolean;
}

/** How w is stored: f16, or bf16 (each pair widened and narrowed to f16 in the tile fill: exact in f16's normal range). */
export type F16MatmulWeights = "f16" | "bf16";

/** Workgroup memory a variant declares: its f16 tiles and the f32 staging of one fragment per subgroup. */
export function f16MatmulSharedBytes(v: F16MatmulVariant): number {
  const tiles = 2 * (v.bk + (v.pad ?? 8)) * (v.buffers ?? 1) * (v.bm + v.bn);
  return tiles + tileStageBytes(v.sgm * v.sgn, v.stageInTurns ?? false);
}

/** The K step a variant's loop takes (K must be a multiple). */
export function f16MatmulKStep(v: F16MatmulVariant): number {
  return v.bk;
}

export const f16MatmulKernel = memoKernel(function f16MatmulKernel(wType: F16MatmulWeights, v: F16MatmulVariant, dialect: SgMatrixDialect): Kernel {
  const { bm: BM, bn: BN, sgm: SM, sgn: SN } = v;
  const NSG = SM * SN, NT = 32 * NSG;
  const [WM, WN] = [BM / SM, BN / SN];
  const [FM, FN] = [WM / 16, WN / 16];
  if (!Number.isInteger(FM) || !Number.isInteger(FN) || FM < 1 || FN < 1) throw new Error(`f16 matmul: tile ${BM}x${BN} over ${SM}x${SN} subgroups is not whole 16 x 16 fragments`);
  if (NSG > 1 && dialect.syntax !== "emulated" && !dialect.nonUniform) throw new Error("f16 matmul: this device's WGSL compiler allows one subgroup per workgroup only");
  const ops = new SgMatrixWgsl(dialect.syntax);
  const frags = range(FM).flatMap((i) => range(FN).map((j) => [i, j] as const));
  const body = workgroupLoop(wType, v, ops, NT, FM, FN);
  const turns = v.stageInTurns && NSG > 1;
  const epilogue = tileStoreWgsl(ops, frags, "am", "bn0", BM, BN, turns ? NSG : 0);
  const name = `matmul f16 ${BM}x${BN}x${v.bk} pad${v.pad ?? 8}${v.buffers === 2 ? " db" : ""}${turns ? " turns" : ""} ${SM}x${SN} w ${wType}${dialect.syntax === "emulated" ? " emulated" : ""}`;
  return matmulKernelOf(name, /* wgsl */ `${ops.enables(NSG > 1 ? dialect.nonUniform : "")}
${MATMUL_BINDINGS("array<vec4<u32>>", "array<vec4<u32>>")}
${body.decls}
var<workgroup> cs: array<f32, ${turns ? 256 : NSG * 256}>;
@compute @workgroup_size(${NT}) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
${tileOriginWgsl(BM, BN, SM, SN, false)}
${frags.map(([i, j]) => `  var c${i}_${j} = ${ops.zero()};`).join("\n")}
${body.loop}
${epilogue}
}
${ops.helpers()}`);
});

function workgroupLoop(wType: F16MatmulWeights, v: F16MatmulVariant, ops: SgMatrixWgsl, NT: number, FM: number, FN: number): { decls: string; loop: string } {
  const { bm: BM, bn: BN, bk: BK } = v;
  const S = BK + (v.pad ?? 8);
  const frags = range(FM).flatMap((i) => range(FN).map((j) => [i, j] as const));
  const V = BK / 8; // vec4<u32> (8 halves) per tile row
  const slots = (total: number) => range(Math.ceil(total / NT)).map((s) => ({ s, guard: (s + 1) * NT > total ? `if (lid + ${s * NT}u < ${total}u) ` : "" }));
  const [xSlots, wSlots] = [slots(BM * V), slots(BN * V)];
  // NOTE: tile rows are the subgroup's absolute row / column less the tile's origin
  const fetch = (k: string) =>
    [
      ...xSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let r = m0 + e / ${V}u; xr[${s}] = select(vec4<u32>(0u), x[(r * K + ${k}) / 8u + e % ${V}u], r < rows); }`),
      ...wSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let r = c0 + e / ${V}u; wr[${s}] = select(vec4<u32>(0u), w[(r * K + ${k}) / 8u + e % ${V}u], r < Np); }`),
    ].join("\n");
  const halves = (tile: string, at: string, value: string) =>
    ["x", "y", "z", "w"].map((c, i) => `let h${i} = bitcast<vec2<f16>>(${value}.${c}); ${tile}[${at} + ${2 * i}u] = h${i}.x; ${tile}[${at} + ${2 * i + 1}u] = h${i}.y;`).join(" ");
  // NOTE: bf16 pairs widen exactly to f32; clamped, f16() is exact for normal f16 values (bf16 has fewer mantissa bits)
  const bf16Halves = (tile: string, at: string, value: string) =>
    ["x", "y", "z", "w"]
      .map((c, i) => `let h${i} = vec2<f16>(clamp(vec2<f32>(bitcast<f32>(${value}.${c} << 16u), bitcast<f32>(${value}.${c} & 0xffff0000u)), vec2<f32>(-65504.0), vec2<f32>(65504.0))); ${tile}[${at} + ${2 * i}u] = h${i}.x; ${tile}[${at} + ${2 * i + 1}u] = h${i}.y;`)
      .join(" ");
  const put = (xo: string, wo: string) =>
    [
      ...xSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let at = ${xo} + (e / ${V}u) * ${S}u + (e % ${V}u) * 8u; ${halves("as_", "at", `xr[${s}]`)} }`),
      ...wSlots.map(({ s, guard }) => `    ${guard}{ let e = lid + ${s * NT}u; let at = ${wo} + (e / ${V}u) * ${S}u + (e % ${V}u) * 8u; ${(wType === "bf16" ? bf16Halves : halves)("bs", "at", `wr[${s}]`)} }`),
    ].join("\n");
  const products = (xo: string, wo: string) => `    for (var kk = 0u; kk < ${BK}u; kk += 16u) {
${range(FM).map((i) => `      let a${i} = ${ops.load("left", "as_", `${xo} + (am - m0 + ${i * 16}u) * ${S}u + kk`, false, `${S}u`)};`).join("\n")}
${range(FN).map((j) => `      let b${j} = ${ops.load("right", "bs", `${wo} + (bn0 - c0 + ${j * 16}u) * ${S}u + kk`, true, `${S}u`)};`).join("\n")}
${frags.map(([i, j]) => `      c${i}_${j} = ${ops.mma(`a${i}`, `b${j}`, `c${i}_${j}`)};`).join("\n")}
    }`;
  const BUFS = v.buffers ?? 1;
  const decls = `var<workgroup> as_: array<f16, ${BUFS * BM * S}>;\nvar<workgroup> bs: array<f16, ${BUFS * BN * S}>;`;
  const registers = `  var xr: array<vec4<u32>, ${xSlots.length}>;
  var wr: array<vec4<u32>, ${wSlots.length}>;
${fetch("0u")}`;
  const loop = tileLoopWgsl({ bk: BK, buffers: BUFS, registers, fetch, put, products, xTile: BM * S, wTile: BN * S });
  return { decls, loop };
}

/**
 * f32 -> f16 of `count` values (count even), two per u32 word of `out`, rounded as matmulSgKernels.ts rounds
 * (nearest, clamped to +-65504). Bindings out (u32), src (vec2<f32>). args: count / 2 (words).
 */
export const f16RowsKernel = memoKernel(function f16RowsKernel(): Kernel {
  return kernelOf("f16 of f32", ["rw", "ro"], /* wgsl */ `enable f16;
@group(0) @binding(0) var<storage, read_write> outw: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
${F16_SPLIT_WGSL}
@compute @workgroup_size(256) fn main(${MAIN_ARGS}) {
  ${WG_INDEX}
  let i = wg * 256u + lid;
  if (i >= au(0u)) { return; }
  let v = src[i];
  outw[i] = bitcast<u32>(vec2<f16>(toF16(v.x), toF16(v.y)));
}`);
});
