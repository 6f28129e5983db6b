/**
 * @module backends/webgpu/kernels/wgslCommon
 *
 * WGSL shared by the kernels: the linear workgroup index, exact 16-bit float
 * conversions in integer arithmetic (so subnormals, infinities and NaN
 * behave as util/halfFloat.ts, whatever the GPU's float modes), and readers
 * of packed element types.
 */
import type { KvDType } from "../../backend.js";
import type { Kernel } from "../gpuRuntime.js";

/**
 * A kernel factory memoized by its arguments: recording an op looks its
 * kernel up without building WGSL source (the source is the pipeline key,
 * built once per argument list; decode records hundreds of ops a step).
 * The lookup walks one map per argument, objects (variants) keyed by their
 * JSON, which is computed once per object: the JSON of every argument list
 * at every op was host time on the decode path.
 */
export function memoKernel<A extends readonly unknown[]>(make: (...args: A) => Kernel): (...args: A) => Kernel {
  const root: MemoNode = new Map();
  return (...args: A) => {
    let node = root;
    for (const a of args) {
      const key = typeof a === "object" && a !== null ? jsonOf(a) : a;
      let next = node.get(key) as MemoNode | undefined;
      if (!next) node.set(key, (next = new Map()));
      node = next;
    }
    let k = node.get(MADE) as Kernel | undefined;
    if (!k) node.set(MADE, (k = make(...args)));
    return k;
  };
}

type MemoNode = Map<unknown, MemoNode | Kernel>;
/** The key of a node's kernel (no argument equals it). */
const MADE = Symbol("kernel");
const jsons = new WeakMap<object, string>();
/** An object argument's JSON, once per object (variants are not mutated after they are made). */
function jsonOf(a: object): string {
  let j = jsons.get(a);
  if (j === undefined) jsons.set(a, (j = JSON.stringify(a)));
  return j;
}

/** [0, n): the indices kernels unroll over when they generate WGSL. */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** `let wg = ...` for a dispatch laid out by GpuRuntime.dispatch. */
export const WG_INDEX = "let wg = wid.x + wid.y * nwg.x;";
export const MAIN_ARGS = "@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32";

const bySource = new Map<string, Kernel>();

/**
 * The one Kernel object of this WGSL source: kernels generated again with the
 * same source (a shape seen before) are the same object, as the pipeline the
 * runtime keeps for that source (gpuRuntime.ts) is the same.
 */
export function kernelOf(label: string, bindings: Kernel["bindings"], code: string): Kernel {
  let k = bySource.get(code);
  if (!k) bySource.set(code, (k = { label, bindings, code }));
  return k;
}

/**
 * `fn reduceSum(lid, v) -> f32`: the sum of v over a workgroup of `threads`
 * (a power of two) by a tree in workgroup memory `red` (declared here); the
 * result is uniform and `red` is free again on return.
 */
export function workgroupSumWgsl(threads: number): string {
  return /* wgsl */ `
var<workgroup> red: array<f32, ${threads}>;
fn reduceSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = ${threads / 2}u; k > 0u; k >>= 1u) { if (lid < k) { red[lid] += red[lid + k]; } workgroupBarrier(); }
  return workgroupUniformLoad(&red[0]);
}`;
}

export const HALF_WGSL = /* wgsl */ `
fn f16ToF32(h: u32) -> f32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    // NOTE: m * 2^-24 is exact and a normal f32
    let v = f32(m) * 5.9604644775390625e-8;
    return select(v, -v, s != 0u);
  }
  if (e == 31u) { return bitcast<f32>(s | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}
fn bf16ToF32(h: u32) -> f32 { return bitcast<f32>(h << 16u); }
fn f32BitsToF16(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let ex = i32((b >> 23u) & 0xffu);
  var mant = b & 0x7fffffu;
  if (ex == 255) { return sign | 0x7c00u | select(0u, 0x200u, mant != 0u); }
  let e = ex - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    let halfway = 1u << (shift - 1u);
    let rest = mant & ((1u << shift) - 1u);
    var h = mant >> shift;
    if (rest > halfway || (rest == halfway && (h & 1u) != 0u)) { h = h + 1u; }
    return sign | h;
  }
  var h = sign | (u32(e) << 10u) | (mant >> 13u);
  let rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0u)) { h = h + 1u; }
  return h;
}
fn f32BitsToBf16(b: u32) -> u32 {
  if ((b & 0x7fffffffu) > 0x7f800000u) { return (b >> 16u) | 0x40u; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}
`;

/** Elements per 32-bit word of a page dtype. */
export function perWord(dtype: KvDType): number {
  return dtype === "f32" ? 1 : 2;
}

/**
 * WGSL `fn NAME(i: u32) -> f32` reading element i of the u32 array `buf`
 * holding `dtype` (16-bit types packed little-endian).
 */
export function elementReader(name: string, buf: string, dtype: KvDType | "bf16w"): string {
  if (dtype === "f32") return `fn ${name}(i: u32) -> f32 { return bitcast<f32>(${buf}[i]); }`;
  const half = `(${buf}[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu`;
  if (dtype === "f16") return `fn ${name}(i: u32) -> f32 { return f16ToF32(${half}); }`;
  return `fn ${name}(i: u32) -> f32 { return bitcast<f32>((${buf}[i >> 1u] << ((1u - (i & 1u)) * 16u)) & 0xffff0000u); }`;
}

/** WGSL that encodes f32 bits into the page dtype's bits. */
export function encodeBits(dtype: KvDType, bits: string): string {
  return dtype === "f32" ? bits : dtype === "f16" ? `f32BitsToF16(${bits})` : `f32BitsToBf16(${bits})`;
}
