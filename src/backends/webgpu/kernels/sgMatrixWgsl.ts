/**
 * @module backends/webgpu/kernels/sgMatrixWgsl
 *
 * The WGSL of subgroup-matrix operations (16 x 16 fragments: left f16 M x K,
 * right f16 K x N, result f32 M x N) in each dialect a device speaks, so one
 * kernel generator serves them all:
 *
 * - "new" / "legacy": `chromium_experimental_subgroup_matrix` as this Dawn
 *   spells its loads and stores (older Tint takes a bool column-major argument).
 * - "emulated": every invocation holds a whole fragment (array<f32, 256>)
 *   and computes it alone. Slow, and needs only `shader-f16` (for the
 *   kernels' f16 tiles): the kernels' indexing, tails and epilogues run on
 *   lavapipe in CI through it, where no tensor cores exist; the H200 runs
 *   the same generator's real dialect. (Spreading fragments over lanes,
 *   meeting in workgroup memory, needs barriers in every product, and
 *   lavapipe compiled such kernels for minutes.)
 *
 * Fragment element (r, c) lives at p[off + r * stride + c] (row-major) or
 * p[off + c * stride + r] (column-major).
 */

export type SgMatrixSyntax = "new" | "legacy" | "emulated";

/** WGSL that checks which real syntax compiles. */
export const SG_MATRIX_SYNTAX_PROBE = `enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(32) fn main() { let m = subgroupMatrixLoad<subgroup_matrix_result<f32, 8, 8>, row_major>(&v, 0u, 8u); subgroupMatrixStore<row_major>(&v, 64u, m, 8u); }`;

/**
 * Directives that let a workgroup of several subgroups give each its own
 * fragment offsets: Tint's uniformity analysis wants subgroup-matrix
 * operands workgroup-uniform, though the hardware needs them uniform only per
 * subgroup. Tried in this order; the first that compiles is used.
 */
export const SG_MATRIX_NONUNIFORM_DIRECTIVES = ["diagnostic(off, chromium.subgroup_matrix_uniformity);", "enable chromium_disable_uniformity_analysis;"] as const;

/** A kernel whose load offset depends on the subgroup index (under `directive`). */
export function sgMatrixNonUniformProbe(syntax: "new" | "legacy", directive: string): string {
  const ops = new SgMatrixWgsl(syntax);
  return `${ops.enables(directive)}
@group(0) @binding(0) var<storage, read_write> v: array<f32>;
var<workgroup> t: array<f16, 1024>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) lid: u32) {
  let sg = lid / 32u;
  var c = ${ops.zero()};
  let a = ${ops.load("left", "t", "sg * 256u", false, "16u")};
  let b = ${ops.load("right", "t", "512u + sg * 256u", true, "16u")};
  c = ${ops.mma("a", "b", "c")};
  ${ops.store("v", "sg * 256u", "c", "16u")};
}`;
}

/**
 * WGSL of f32 -> f16 for fragments, whole or split in two (x = toF16(x) + lowF16(x) within f32's rounding, for
 * |x| <= 65504; below 2^-14, f16 values are 2^-24 apart). Beyond f16's range x is clamped (f16(x) of a finite x
 * there is not defined to saturate). The high half is rounded by bits, nearest even: compilers fold f32(f16(x))
 * to x (lavapipe does), which would leave every low half 0.
 */
export const F16_SPLIT_WGSL = `fn highOf(x: f32) -> f32 { let b = bitcast<u32>(clamp(x, -65504.0, 65504.0)); return bitcast<f32>((b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u); }
fn toF16(x: f32) -> f16 { return f16(highOf(x)); }
fn lowF16(x: f32) -> f16 { return f16(clamp(x, -65504.0, 65504.0) - highOf(x)); }`;

type Fragment = "left" | "right" | "result";

/** WGSL builders of one dialect; for "emulated", `helpers()` holds the functions the builders called. */
export class SgMatrixWgsl {
  readonly #used = new Map<string, string>();

  constructor(readonly syntax: SgMatrixSyntax) {}

  /** The module's enable lines (the real dialects also take `nonUniform`, the directive allowing per-subgroup offsets, or ""). */
  enables(nonUniform = ""): string {
    if (this.syntax === "emulated") return "enable f16;";
    return `enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n${nonUniform}`;
  }

  type(kind: Fragment): string {
    if (this.syntax === "emulated") return "array<f32, 256>";
    return kind === "result" ? "subgroup_matrix_result<f32, 16, 16>" : `subgroup_matrix_${kind}<f16, 16, 16>`;
  }

  /** An all-zero result fragment. */
  zero(): string {
    return `${this.type("result")}()`;
  }

  /** A fragment read from the module-scope array `array` (workgroup or storage). */
  load(kind: Fragment, array: string, off: string, colMajor: boolean, stride: string): string {
    if (this.syntax === "emulated") {
      const fn = `emuLoad_${array}`;
      this.#used.set(fn, `fn ${fn}(off: u32, stride: u32, colMajor: bool) -> array<f32, 256> {
  var m: array<f32, 256>;
  for (var i = 0u; i < 256u; i++) { m[i] = f32(${array}[off + select((i / 16u) * stride + i % 16u, (i % 16u) * stride + i / 16u, colMajor)]); }
  return m;
}`);
      return `${fn}(${off}, ${stride}, ${colMajor})`;
    }
    const layout = colMajor ? "col_major" : "row_major";
    return this.syntax === "new" ? `subgroupMatrixLoad<${this.type(kind)}, ${layout}>(&${array}, ${off}, ${stride})` : `subgroupMatrixLoad<${this.type(kind)}>(&${array}, ${off}, ${colMajor}, ${stride})`;
  }

  /** A statement storing a result fragment row-major into the module-scope f32 array `array`. */
  store(array: string, off: string, value: string, stride: string): string {
    if (this.syntax === "emulated") {
      const fn = `emuStore_${array}`;
      // NOTE: every invocation of the subgroup stores the same values
      this.#used.set(fn, `fn ${fn}(off: u32, m: array<f32, 256>, stride: u32) {
  for (var i = 0u; i < 256u; i++) { ${array}[off + (i / 16u) * stride + i % 16u] = m[i]; }
}`);
      return `${fn}(${off}, ${value}, ${stride})`;
    }
    return this.syntax === "new" ? `subgroupMatrixStore<row_major>(&${array}, ${off}, ${value}, ${stride})` : `subgroupMatrixStore(&${array}, ${off}, ${value}, false, ${stride})`;
  }

  /** c + a b. */
  mma(a: string, b: string, c: string): string {
    if (this.syntax !== "emulated") return `subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c})`;
    this.#used.set("emuMma", `fn emuMma(a: array<f32, 256>, b: array<f32, 256>, c: array<f32, 256>) -> array<f32, 256> {
  var r = c;
  for (var i = 0u; i < 256u; i++) {
    var s = r[i];
    for (var k = 0u; k < 16u; k++) { s += a[(i / 16u) * 16u + k] * b[k * 16u + i % 16u]; }
    r[i] = s;
  }
  return r;
}`);
    return `emuMma(${a}, ${b}, ${c})`;
  }

  /** The emulation's functions the builders called (empty for the real dialects); place at module scope. */
  helpers(): string {
    return [...this.#used.values()].join("\n");
  }
}
