/**
 * @module backends/webgpu/kernelAbi
 *
 * What every WebGPU kernel shares with the runtime (gpuRuntime.ts): its
 * arguments, read from the binding after its own (group 0) at the
 * dispatch's dynamic offset, and the error buffer that validating kernels
 * (embed's ids, scatter's indices) record their first failure in. One bind
 * group per dispatch, not two: each setBindGroup is host time per dispatch
 * (dawn.node's call and Dawn's recording), which bounds decode.
 */

/** WGSL every kernel starts with: its arguments, at `binding` (the kernel's own bindings' count). */
export const argsWgsl = (binding: number): string => /* wgsl */ `
@group(0) @binding(${binding}) var<storage, read> args: array<u32>;
fn au(i: u32) -> u32 { return args[i]; }
fn ai(i: u32) -> i32 { return bitcast<i32>(args[i]); }
fn af(i: u32) -> f32 { return bitcast<f32>(args[i]); }
`;

/** Error codes kernels record (first word of the error buffer); the second word holds the bad value. */
export const ERROR_MESSAGES: Record<number, (value: number) => string> = {
  1: (v) => `embed: token id ${v} outside the vocabulary`,
  2: (v) => `scatter: index ${v} outside the destination`,
};

/** WGSL of the error buffer, for kernels that validate (binding given by the kernel). */
export function errorWgsl(binding: number): string {
  return `@group(0) @binding(${binding}) var<storage, read_write> errs: array<atomic<u32>, 4>;
fn fail(code: u32, value: u32) { if (atomicMax(&errs[0], code) == 0u) { atomicStore(&errs[1], value); } }`;
}

/** A kernel's whole module: directives (enable f16; diagnostic(...);) must precede every declaration, the arguments' included. */
export function moduleSource(k: { readonly code: string; readonly bindings: readonly unknown[] }): string {
  const directives = k.code.match(/^\s*(enable|diagnostic)\b[^;]+;/gm) ?? [];
  const body = directives.reduce((code, d) => code.replace(d, ""), k.code);
  return directives.map((d) => d.trim()).join("\n") + argsWgsl(k.bindings.length) + body;
}
