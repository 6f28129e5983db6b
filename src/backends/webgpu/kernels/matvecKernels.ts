/**
 * @module backends/webgpu/kernels/matvecKernels
 *
 * Decode-sized matmuls (rows <= 8; matmulKernels.ts has the contract):
 * bound by reading the weights once for all rows. A team of `tpr` threads
 * takes one output row; each thread reads 8 bf16 (or 4 f32) weights per
 * vec4 load, `unroll` loads issued before they are used (bytes in flight
 * are what a bandwidth-bound kernel needs); the team's sum by a
 * shared-memory tree, or with subgroups by subgroupAdd and one shared step
 * (teams are whole subgroups). With `outRows` > 1 (subgroups only) a team
 * takes that many consecutive rows, each load of x serving them all, the sums
 * in the single-row order (the same bits); on the H200 no setting of it beat
 * one row per team in whole decode steps (bench-only variants).
 *
 * Forms (fewer dispatches per decode step; transformerOps.ts fuses the ops):
 * - "segments" (1 to 3): matmuls of one x into their own outputs, their
 *   rows concatenated over the dispatch (q, k and v projections);
 * - "silu pair": gate and up of one x, a team computing row n of both, then
 *   up[n] = x . wUp[n] + b, gate[n] = silu(x . wGate[n] + b) * up[n]
 *   (the siluMul that follows them in the MLP).
 *
 * Fused with the ops around it (transformerOps.ts):
 * - `normK` > 0: x is rmsNorm(xr) of the norm weight `nw` (the rows of
 *   [rows, normK] normed in each workgroup's memory first, with
 *   rmsNormKernel's bits; workgroup 0 stores them to `xn`, the norm's output);
 * - `residual` (one segment): res += out after out is stored (the residual
 *   add after the o and down projections, with addKernel's bits);
 * - `ropeHalf` > 0: the first `ropeSegs` segments (q, k: heads of
 *   2 * ropeHalf rows) rotated by RoPE's cos/sin `cs` f32 [rows, 2, half]
 *   (ropeKernel's arithmetic) as they are stored: the teams of a workgroup
 *   take rows in pairs (j, j + half) of a head, each reading its partner's
 *   sum from the workgroup's slots (one output row per team).
 *
 * Bindings: out_0..out_{S-1} (rw), x (or xr), w_0..w_{S-1}, bias_0..bias_{S-1},
 * then nw (ro) and xn (rw) with the norm, res (rw) with the residual, cs (ro) with RoPE.
 * args: rows, K, n0, Nout0, then per segment (Np, hasBias), then eps (f32)
 * with the norm; segment s > 0 writes [rows, Np_s] at column 0 (only a
 * single segment is a row part).
 */
import type { Kernel } from "../gpuRuntime.js";
import type { MatvecVariant, WeightType } from "./matmulKernels.js";
import { MAIN_ARGS, memoKernel, range, WG_INDEX } from "./wgslCommon.js";
import { normPrologueWgsl } from "./transformerKernels.js";

export type MatvecForm = "segments" | "silu pair";

export const matvecFamilyKernel = memoKernel(function matvecFamilyKernel(wType: WeightType, rows: number, vectorised: boolean, variant: MatvecVariant, numSegs: number, form: MatvecForm, normK: number, normRounds: number, residual: boolean, ropeHalf: number, ropeSegs: number): Kernel {
  if (residual && (numSegs !== 1 || form !== "segments")) throw new Error("matvec: the residual add takes one segment");
  const { tpr: TPR, subgroups } = variant;
  const U = vectorised ? variant.unroll : 1;
  const O = teamRows(variant, vectorised);
  if (ropeHalf > 0 && (O !== 1 || form !== "segments" || (256 / TPR) % 2 !== 0 || ropeSegs > numSegs)) throw new Error("matvec: RoPE's pairs need one row per team, an even number of teams per workgroup and its segments");
  if (O > 1 && !subgroups) throw new Error(`matvec: ${O} output rows per team need subgroup sums`);
  const RPW = 256 / TPR;
  const R = range(rows), S = range(numSegs), OR = range(O);
  const sets = form === "silu pair" ? ["A", "B"] : ["A"];
  // NOTE: with one output row per team the names (and the WGSL) are those of the single-row kernel
  const acc = (a: string, r: number, o: number) => (O === 1 ? `acc${a}${r}` : `acc${a}${r}_${o}`);
  const sum = (a: string, r: number, o: number) => (O === 1 ? `sum${a}${r}` : `sum${a}${r}_${o}`);
  const slot = (i: number, r: number, o: number) => (O === 1 ? (i * rows + r) * 256 : ((i * rows + r) * O + o) * MAX_SUBGROUPS);
  // ---- the vectorised loop over K: `unroll` steps' loads issued before their use, then the tail a step at a time
  const kLoop = (prologue: string, loads: (us: number[]) => string, use: (u: number) => string) => `
${prologue}
    var j = t;
    for (; j + ${(U - 1) * TPR}u < nj; j += ${U * TPR}u) {
${loads(range(U))}
${range(U).map(use).join("\n")}
    }
    for (; j < nj; j += ${TPR}u) {
${loads([0])}
${use(0)}
    }`;
  // ---- the team's loop over K for segment s (or both weights of the pair)
  const loop = (ws: string[], np: string) => {
    if (O > 1) return teamRowsLoop(ws, np);
    if (!vectorised) {
      return `
    for (var k = t; k < K; k += ${TPR}u) {
${ws.map((w, i) => `      let wv${i} = wAt_${w}(n * K + k);`).join("\n")}
${ws.map((_, i) => R.map((r) => `      acc${sets[i]}${r} += x[${r}u * K + k] * wv${i};`).join("\n")).join("\n")}
    }`;
    }
    const per = wType === "bf16" ? 8 : 4;
    const use = (u: number) => {
      const jj = `j + ${u * TPR}u`;
      return ws
        .map((_, i) => {
          const q = `q${i}_${u}`;
          if (wType === "bf16") {
            return `      {
${bf16Halves(q)}
${R.map((r) => `        acc${sets[i]}${r} += dot(lo, x[${r}u * K4 + 2u * (${jj})]) + dot(hi, x[${r}u * K4 + 2u * (${jj}) + 1u]);`).join("\n")}
      }`;
          }
          return R.map((r) => `      acc${sets[i]}${r} += dot(${q}, x[${r}u * K4 + ${jj}]);`).join("\n");
        })
        .join("\n");
    };
    const loads = (us: number[]) => us.map((u) => ws.map((w, i) => `      let q${i}_${u} = ${w}[wb + j + ${u * TPR}u];`).join("\n")).join("\n");
    return kLoop(`    let K4 = K / 4u; let nj = K / ${per}u; let wb = n * nj;`, loads, use);
  };
  // ---- O output rows per team (vectorised): each x load serves every row; rows past np load the last row, not stored
  const teamRowsLoop = (ws: string[], np: string) => {
    const per = wType === "bf16" ? 8 : 4;
    const use = (u: number) => {
      const jj = `j + ${u * TPR}u`;
      const xs = R.map((r) => (wType === "bf16" ? `      let xa${r}_${u} = x[${r}u * K4 + 2u * (${jj})]; let xb${r}_${u} = x[${r}u * K4 + 2u * (${jj}) + 1u];` : `      let xa${r}_${u} = x[${r}u * K4 + ${jj}];`)).join("\n");
      const math = ws
        .flatMap((_, i) =>
          OR.map((o) => {
            const q = `q${i}_${o}_${u}`;
            if (wType === "bf16") {
              return `      {
${bf16Halves(q)}
${R.map((r) => `        ${acc(sets[i], r, o)} += dot(lo, xa${r}_${u}) + dot(hi, xb${r}_${u});`).join("\n")}
      }`;
            }
            return R.map((r) => `      ${acc(sets[i], r, o)} += dot(${q}, xa${r}_${u});`).join("\n");
          }),
        )
        .join("\n");
      return `${xs}\n${math}`;
    };
    const loads = (us: number[]) => us.map((u) => ws.map((w, i) => OR.map((o) => `      let q${i}_${o}_${u} = ${w}[wb${o} + j + ${u * TPR}u];`).join("\n")).join("\n")).join("\n");
    return kLoop(`    let K4 = K / 4u; let nj = K / ${per}u;
${OR.map((o) => `    let wb${o} = min(n + ${o}u, ${np} - 1u) * nj;`).join("\n")}`, loads, use);
  };
  const body =
    form === "silu pair"
      ? `if (n < np0) {${loop(["w0", "w1"], "np0")}
  }`
      : S.map((s) => `${s === 0 ? "" : " else "}if (seg == ${s}u && n < np${s}) {${loop([`w${s}`], `np${s}`)}
  }`).join("");
  // ---- team sums into sumA/sumB (valid in the team's first thread)
  const reduce = subgroups
    ? `
${sets.map((a) => R.map((r) => OR.map((o) => `  let s${a}${r}${O === 1 ? "" : `_${o}`} = subgroupAdd(${acc(a, r, o)});`).join("\n")).join("\n")).join("\n")}
  if (sid == 0u) {
${sets.map((a, i) => R.map((r) => OR.map((o) => `    red[${slot(i, r, o)}u + lid / sgs] = s${a}${r}${O === 1 ? "" : `_${o}`};`).join("\n")).join("\n")).join("\n")}
  }
  workgroupBarrier();
  let first = lid / sgs; let count = ${TPR}u / sgs;
${sets.map((a, i) => R.map((r) => OR.map((o) => `  var ${sum(a, r, o)} = 0.0;\n  for (var i = 0u; i < count; i++) { ${sum(a, r, o)} += red[${slot(i, r, o)}u + first + i]; }`).join("\n")).join("\n")).join("\n")}${
        ropeHalf > 0
          ? `
  let pfirst = ((lid / ${TPR}u) ^ 1u) * count;
${R.map((r) => `  var psum${r} = 0.0;\n  for (var i = 0u; i < count; i++) { psum${r} += red[${slot(0, r, 0)}u + pfirst + i]; }`).join("\n")}`
          : ""
      }`
    : `
${sets.map((a, i) => R.map((r) => `  red[${(i * rows + r) * 256}u + lid] = acc${a}${r};`).join("\n")).join("\n")}
  workgroupBarrier();
  for (var s = ${TPR / 2}u; s > 0u; s >>= 1u) {
    if (t < s) {
${sets.map((_, i) => R.map((r) => `      red[${(i * rows + r) * 256}u + lid] += red[${(i * rows + r) * 256}u + lid + s];`).join("\n")).join("\n")}
    }
    workgroupBarrier();
  }
${sets.map((a, i) => R.map((r) => `  let sum${a}${r} = red[${(i * rows + r) * 256}u + lid];`).join("\n")).join("\n")}
${ropeHalf > 0 ? R.map((r) => `  let psum${r} = red[${r * 256}u + (lid ^ ${TPR}u)];`).join("\n") : ""}`;
  // NOTE: row n + o of the team (o = 0 alone with one row per team, whose WGSL it keeps)
  const rowAt = (o: number) => (O === 1 ? "n" : `(n + ${o}u)`);
  const store =
    form === "silu pair"
      ? `
  if (t == 0u && n < np0) {
${OR.map((o) => {
      const n = rowAt(o);
      const inner = `let bg = select(0.0, bias0[n0 + ${n}], au(5u) == 1u);
    let bu = select(0.0, bias1[n0 + ${n}], au(7u) == 1u);
${R.map((r) => `    { let u = ${sum("B", r, o)} + bu; let g = ${sum("A", r, o)} + bg; out1[${r}u * nout + n0 + ${n}] = u; out0[${r}u * nout + n0 + ${n}] = (g / (1.0 + exp(-g))) * u; }`).join("\n")}`;
      return O === 1 ? `    ${inner}` : `    if (n + ${o}u < np0) {\n    ${inner}\n    }`;
    }).join("\n")}
  }`
      : `
  if (t == 0u) {
${S.map((s) => `    ${s === 0 ? "" : "else "}if (seg == ${s}u && n < np${s}) {
${OR.map((o) => {
  const n = rowAt(o);
  const at = (r: number) => `${r}u * ${s === 0 ? "nout" : `np${s}`} + ${s === 0 ? "n0 + " : ""}${n}`;
  if (s < ropeSegs) return ropeStore(s, at, ropeHalf, rows);
  const inner = `      let b = select(0.0, bias${s}[${s === 0 ? "n0 + " : ""}${n}], au(${5 + 2 * s}u) == 1u);
${R.map((r) => (residual ? `      { let v = ${sum("A", r, o)} + b; out${s}[${at(r)}] = v; res[${at(r)}] = res[${at(r)}] + v; }` : `      out${s}[${at(r)}] = ${sum("A", r, o)} + b;`)).join("\n")}`;
  return O === 1 ? inner : `      if (n + ${o}u < np${s}) {\n${inner}\n      }`;
}).join("\n")}
    }`).join("\n")}
  }`;
  const wArray = vectorised ? (wType === "bf16" ? "array<vec4<u32>>" : "array<vec4<f32>>") : "array<u32>";
  const xArray = vectorised ? "array<vec4<f32>>" : "array<f32>";
  const numW = form === "silu pair" ? 2 : numSegs;
  const W = range(numW);
  const wAts = vectorised
    ? ""
    : W.map((i) =>
        wType === "f32"
          ? `fn wAt_w${i}(e: u32) -> f32 { return bitcast<f32>(w${i}[e]); }`
          : `fn wAt_w${i}(e: u32) -> f32 { return bitcast<f32>((w${i}[e >> 1u] << ((1u - (e & 1u)) * 16u)) & 0xffff0000u); }`,
      ).join("\n");
  let b = 0;
  const bindings = [
    ...W.map((i) => `@group(0) @binding(${b++}) var<storage, read_write> out${i}: array<f32>;`),
    normK > 0 ? `@group(0) @binding(${b++}) var<storage, read> xr: array<f32>;` : `@group(0) @binding(${b++}) var<storage, read> x: ${xArray};`,
    ...W.map((i) => `@group(0) @binding(${b++}) var<storage, read> w${i}: ${wArray};`),
    ...W.map((i) => `@group(0) @binding(${b++}) var<storage, read> bias${i}: array<f32>;`),
    ...(normK > 0 ? [`@group(0) @binding(${b++}) var<storage, read> nw: array<f32>;`, `@group(0) @binding(${b++}) var<storage, read_write> xn: array<f32>;`] : []),
    ...(residual ? [`@group(0) @binding(${b++}) var<storage, read_write> res: array<f32>;`] : []),
    ...(ropeHalf > 0 ? [`@group(0) @binding(${b++}) var<storage, read> cs: array<f32>;`] : []),
  ];
  // NOTE: with the norm, x is the workgroup's normed copy, so the loops read it by the same names
  const xWorkgroup = normK > 0 ? `var<workgroup> x: array<${vectorised ? "vec4<f32>" : "f32"}, ${(rows * normK) / (vectorised ? 4 : 1)}>;` : "";
  const redSize = Math.max(O === 1 ? 256 * rows * sets.length : MAX_SUBGROUPS * rows * sets.length * O, normK > 0 ? 256 : 0);
  const prologue = normK > 0 ? `  let dim = ${normK}u;\n${normPrologueWgsl(rows, normRounds, vectorised, 4 + 2 * numW)}` : "";
  // NOTE: teams per segment (O rows each); with one row per team, its rows
  const tn = (s: number) => (O === 1 ? `np${s}` : `tn${s}`);
  const total = form === "silu pair" ? tn(0) : S.map(tn).join(" + ");
  const sgArgs = subgroups ? ", @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) sgs: u32" : "";
  const code = /* wgsl */ `${subgroups ? "enable subgroups;" : ""}
${bindings.join("\n")}
${wAts}
${xWorkgroup}
var<workgroup> red: array<f32, ${redSize}>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}${sgArgs}) {
  ${WG_INDEX}
  let K = au(1u); let n0 = au(2u); let nout = au(3u);
${(form === "silu pair" ? [0] : S).map((s) => `  let np${s} = au(${4 + 2 * s}u);${O === 1 ? "" : ` let tn${s} = (np${s} + ${O - 1}u) / ${O}u;`}`).join("\n")}
  let gi = wg * ${RPW}u + lid / ${TPR}u; let t = lid % ${TPR}u;
  var seg = 0u; var n = gi;
${form === "silu pair" ? "" : S.slice(1).map((s) => `  if (gi >= ${range(s).map(tn).join(" + ")}) { n = gi - (${range(s).map(tn).join(" + ")}); seg = ${s}u; }`).join("\n")}
  if (gi >= ${total}) { n = 0xffffffffu; }${O === 1 ? "" : ` else { n = n * ${O}u; }`}${
    ropeHalf > 0
      ? `
  // NOTE: RoPE's pairs: teams 2i and 2i + 1 of a head take its rows i and i + half
  if (seg < ${ropeSegs}u && n != 0xffffffffu) { let k = n % ${2 * ropeHalf}u; n = n - k + (k & 1u) * ${ropeHalf}u + k / 2u; }`
      : ""
  }
${prologue}
${sets.map((a) => R.map((r) => OR.map((o) => `  var ${acc(a, r, o)} = 0.0;`).join("\n")).join("\n")).join("\n")}
  ${body}
${reduce}
${store}
}`;
  const fused = `${normK > 0 ? " +norm" : ""}${residual ? " +residual" : ""}${ropeHalf > 0 ? ` +rope${ropeSegs}` : ""}`;
  const label = `matvec ${form === "silu pair" ? "gate-up-silu" : `x${numSegs}`} ${wType} x${rows} t${TPR} u${U}${O === 1 ? "" : ` o${O}`}${subgroups ? " sg" : ""}${fused}`;
  const bind: Kernel["bindings"] = [...W.map(() => "rw" as const), "ro", ...W.map(() => "ro" as const), ...W.map(() => "ro" as const), ...(normK > 0 ? (["ro", "rw"] as const) : []), ...(residual ? (["rw"] as const) : []), ...(ropeHalf > 0 ? (["ro"] as const) : [])];
  return { label, bindings: bind, code };
});

/**
 * The store of row n of a roped segment s (one row per team): its value and
 * its partner's (row n -+ half of the head), bias added, rotated as
 * ropeKernel does: x[j] = a * c - b * s, x[j + half] = b * c + a * s.
 */
function ropeStore(s: number, at: (r: number) => string, half: number, rows: number): string {
  const bias = (row: string) => `select(0.0, bias${s}[${s === 0 ? "n0 + " : ""}${row}], au(${5 + 2 * s}u) == 1u)`;
  return `      let upper = (n % ${2 * half}u) >= ${half}u; let j = n % ${half}u;
      let pn = select(n + ${half}u, n - ${half}u, upper);
      let b = ${bias("n")}; let pb = ${bias("pn")};
${range(rows).map((r) => `      { let v = sumA${r} + b; let vp = psum${r} + pb; let c = cs[${r * 2 * half}u + j]; let sn = cs[${r * 2 * half + half}u + j];
        out${s}[${at(r)}] = select(v * c - vp * sn, v * c + vp * sn, upper); }`).join("\n")}`;
}

/** Most bytes of workgroup memory a matvec of `rows` rows takes besides the norm prologue's copy of x (its sums' slots). */
export function matvecScratchBytes(rows: number): number {
  return 4 * 256 * rows * 2;
}

/** Subgroups of a 256-invocation workgroup at the smallest subgroup size the matvec runs with (4): the team sums' slots. */
const MAX_SUBGROUPS = 64;

/** Output rows each team of `variant` takes (1 unless vectorised with `outRows`). */
export function teamRows(variant: MatvecVariant, vectorised: boolean): number {
  return vectorised ? (variant.outRows ?? 1) : 1;
}

/** Workgroups of a matvec dispatch over segments of `rowCounts` output rows (concatenated, or one for the pair). */
export function matvecWorkgroups(variant: MatvecVariant, vectorised: boolean, rowCounts: readonly number[]): number {
  const o = teamRows(variant, vectorised);
  const teams = rowCounts.reduce((n, r) => n + Math.ceil(r / o), 0);
  return Math.ceil(teams / (256 / variant.tpr));
}

/** WGSL of the 8 bf16 weights of vec4<u32> `q` as two vec4<f32>, lo and hi (a bf16 is an f32's high half). */
function bf16Halves(q: string): string {
  return `        let lo = vec4<f32>(bitcast<f32>(${q}.x << 16u), bitcast<f32>(${q}.x & 0xffff0000u), bitcast<f32>(${q}.y << 16u), bitcast<f32>(${q}.y & 0xffff0000u));
        let hi = vec4<f32>(bitcast<f32>(${q}.z << 16u), bitcast<f32>(${q}.z & 0xffff0000u), bitcast<f32>(${q}.w << 16u), bitcast<f32>(${q}.w & 0xffff0000u));`;
}
