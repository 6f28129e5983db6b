/**
 * @module backends/webgpu/kernels/matvecKernels
 *
 * Decode-sized matmuls (rows <= 8; matmulKernels.ts has the contract):
 * bound by reading the weights once for all rows. A team of `tpr` threads
 * takes one output row; each thread reads 8 bf16 (or 4 f32) weights per
 * vec4 load, `unroll` loads issued before they are used (bytes in flight
 * are what a bandwidth-bound kernel needs); the team's sum by a
 * shared-memory tree, or with subgroups by subgroupAdd and one shared step
 * (teams are whole subgroups).
 *
 * Forms (fewer dispatches per decode step; transformerOps.ts fuses the ops):
 * - "segments" (1 to 3): matmuls of one x into their own outputs, their
 *   rows concatenated over the dispatch (q, k and v projections);
 * - "silu pair": gate and up of one x, a team computing row n of both, then
 *   up[n] = x . wUp[n] + b, gate[n] = silu(x . wGate[n] + b) * up[n]
 *   (the siluMul that follows them in the MLP).
 *
 * Bindings: out_0..out_{S-1} (rw), x, w_0..w_{S-1}, bias_0..bias_{S-1}.
 * args: rows, K, n0, Nout0, then per segment (Np, hasBias); segment s > 0
 * writes [rows, Np_s] at column 0 (only a single segment is a row part).
 */
import type { Kernel } from "../gpuRuntime.js";
import type { MatvecVariant, WeightType } from "./matmulKernels.js";
import { MAIN_ARGS, memoKernel, range, WG_INDEX } from "./wgslCommon.js";

export type MatvecForm = "segments" | "silu pair";

export const matvecFamilyKernel = memoKernel(function matvecFamilyKernel(wType: WeightType, rows: number, vectorised: boolean, variant: MatvecVariant, numSegs: number, form: MatvecForm): Kernel {
  const { tpr: TPR, subgroups } = variant;
  const U = vectorised ? variant.unroll : 1;
  const RPW = 256 / TPR;
  const R = range(rows), S = range(numSegs);
  const sets = form === "silu pair" ? ["A", "B"] : ["A"];
  // ---- the team's loop over K for segment s (or both weights of the pair)
  const loop = (ws: string[]) => {
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
        let lo = vec4<f32>(bitcast<f32>(${q}.x << 16u), bitcast<f32>(${q}.x & 0xffff0000u), bitcast<f32>(${q}.y << 16u), bitcast<f32>(${q}.y & 0xffff0000u));
        let hi = vec4<f32>(bitcast<f32>(${q}.z << 16u), bitcast<f32>(${q}.z & 0xffff0000u), bitcast<f32>(${q}.w << 16u), bitcast<f32>(${q}.w & 0xffff0000u));
${R.map((r) => `        acc${sets[i]}${r} += dot(lo, x[${r}u * K4 + 2u * (${jj})]) + dot(hi, x[${r}u * K4 + 2u * (${jj}) + 1u]);`).join("\n")}
      }`;
          }
          return R.map((r) => `      acc${sets[i]}${r} += dot(${q}, x[${r}u * K4 + ${jj}]);`).join("\n");
        })
        .join("\n");
    };
    const loads = (us: number[]) => us.map((u) => ws.map((w, i) => `      let q${i}_${u} = ${w}[wb + j + ${u * TPR}u];`).join("\n")).join("\n");
    return `
    let K4 = K / 4u; let nj = K / ${per}u; let wb = n * nj;
    var j = t;
    for (; j + ${(U - 1) * TPR}u < nj; j += ${U * TPR}u) {
${loads(range(U))}
${range(U).map(use).join("\n")}
    }
    for (; j < nj; j += ${TPR}u) {
${loads([0])}
${use(0)}
    }`;
  };
  const body =
    form === "silu pair"
      ? `if (n < np0) {${loop(["w0", "w1"])}
  }`
      : S.map((s) => `${s === 0 ? "" : " else "}if (seg == ${s}u && n < np${s}) {${loop([`w${s}`])}
  }`).join("");
  // ---- team sums into sumA/sumB (valid in the team's first thread)
  const reduce = subgroups
    ? `
${sets.map((a) => R.map((r) => `  let s${a}${r} = subgroupAdd(acc${a}${r});`).join("\n")).join("\n")}
  if (sid == 0u) {
${sets.map((a, i) => R.map((r) => `    red[${(i * rows + r) * 256}u + lid / sgs] = s${a}${r};`).join("\n")).join("\n")}
  }
  workgroupBarrier();
  let first = lid / sgs; let count = ${TPR}u / sgs;
${sets.map((a, i) => R.map((r) => `  var sum${a}${r} = 0.0;\n  for (var i = 0u; i < count; i++) { sum${a}${r} += red[${(i * rows + r) * 256}u + first + i]; }`).join("\n")).join("\n")}`
    : `
${sets.map((a, i) => R.map((r) => `  red[${(i * rows + r) * 256}u + lid] = acc${a}${r};`).join("\n")).join("\n")}
  workgroupBarrier();
  for (var s = ${TPR / 2}u; s > 0u; s >>= 1u) {
    if (t < s) {
${sets.map((_, i) => R.map((r) => `      red[${(i * rows + r) * 256}u + lid] += red[${(i * rows + r) * 256}u + lid + s];`).join("\n")).join("\n")}
    }
    workgroupBarrier();
  }
${sets.map((a, i) => R.map((r) => `  let sum${a}${r} = red[${(i * rows + r) * 256}u + lid];`).join("\n")).join("\n")}`;
  const store =
    form === "silu pair"
      ? `
  if (t == 0u && n < np0) {
    let bg = select(0.0, bias0[n0 + n], au(5u) == 1u);
    let bu = select(0.0, bias1[n0 + n], au(7u) == 1u);
${R.map((r) => `    { let u = sumB${r} + bu; let g = sumA${r} + bg; out1[${r}u * nout + n0 + n] = u; out0[${r}u * nout + n0 + n] = (g / (1.0 + exp(-g))) * u; }`).join("\n")}
  }`
      : `
  if (t == 0u) {
${S.map((s) => `    ${s === 0 ? "" : "else "}if (seg == ${s}u && n < np${s}) {
      let b = select(0.0, bias${s}[${s === 0 ? "n0 + " : ""}n], au(${5 + 2 * s}u) == 1u);
${R.map((r) => `      out${s}[${r}u * ${s === 0 ? "nout" : `np${s}`} + ${s === 0 ? "n0 + " : ""}n] = sumA${r} + b;`).join("\n")}
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
    `@group(0) @binding(${b++}) var<storage, read> x: ${xArray};`,
    ...W.map((i) => `@group(0) @binding(${b++}) var<storage, read> w${i}: ${wArray};`),
    ...W.map((i) => `@group(0) @binding(${b++}) var<storage, read> bias${i}: array<f32>;`),
  ];
  const total = form === "silu pair" ? "np0" : S.map((s) => `np${s}`).join(" + ");
  const sgArgs = subgroups ? ", @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) sgs: u32" : "";
  const code = /* wgsl */ `${subgroups ? "enable subgroups;" : ""}
${bindings.join("\n")}
${wAts}
var<workgroup> red: array<f32, ${256 * rows * sets.length}>;
@compute @workgroup_size(256) fn main(${MAIN_ARGS}${sgArgs}) {
  ${WG_INDEX}
  let K = au(1u); let n0 = au(2u); let nout = au(3u);
${(form === "silu pair" ? [0] : S).map((s) => `  let np${s} = au(${4 + 2 * s}u);`).join("\n")}
  let gi = wg * ${RPW}u + lid / ${TPR}u; let t = lid % ${TPR}u;
  var seg = 0u; var n = gi;
${form === "silu pair" ? "" : S.slice(1).map((s) => `  if (gi >= ${range(s).map((p) => `np${p}`).join(" + ")}) { n = gi - (${range(s).map((p) => `np${p}`).join(" + ")}); seg = ${s}u; }`).join("\n")}
  if (gi >= ${total}) { n = 0xffffffffu; }
${sets.map((a) => R.map((r) => `  var acc${a}${r} = 0.0;`).join("\n")).join("\n")}
  ${body}
${reduce}
${store}
}`;
  const label = `matvec ${form === "silu pair" ? "gate-up-silu" : `x${numSegs}`} ${wType} x${rows} t${TPR} u${U}${subgroups ? " sg" : ""}`;
  const bind: Kernel["bindings"] = [...W.map(() => "rw" as const), "ro", ...W.map(() => "ro" as const), ...W.map(() => "ro" as const)];
  return { label, bindings: bind, code };
});
