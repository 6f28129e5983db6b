/**
 * @module backends/webgpu/kernelChoice
 *
 * Which kernel variants the WebGPU backend's ops run (kernelVariants.ts
 * lists them): the defaults a device's features allow, and the check at
 * creation that turns off a feature path this device computes wrongly.
 */
import type { Backend } from "../backend.js";
import type { WebGpuBackendOptions } from "./gpuContext.js";
import { PORTABLE_MATVEC, PORTABLE_TILED, type MatvecVariant, type TiledVariant } from "./kernels/matmulKernels.js";
import { DEFAULT_SG_MATRIX, type SgMatrixVariant } from "./kernels/matmulSgKernels.js";

/**
 * The kernel variants ops use (chosen from the device's features at
 * creation; benchmarks and tests set them to compare). sgMatrix null: no
 * tensor-core tiles.
 */
export interface KernelChoice {
  matvec: MatvecVariant;
  tiled: TiledVariant;
  sgMatrix: SgMatrixVariant | null;
  /** Rows from which the subgroup-matrix tiles run (fewer: the f32 tiles). */
  sgMatrixMinRows: number;
  /** Merge ops into fewer dispatches (see transformerOps.ts Pending); off: one dispatch per op. */
  fuse: boolean;
  /** Blocks of at most this many query rows (decode: 1) run a kernel shaped for them (0: none). */
  attentionSmallRows: number;
  /** Attention work items wanted per call at least (split-K below it). */
  attentionItems: number;
}

/** What the f16 subgroup-matrix matmul may differ by (max |error| / max |output|; matmulSgKernels.ts). */
export const SG_MATRIX_TOLERANCE = 4e-3;

/** The kernels a device with these options runs by default. */
export function defaultKernels(options: WebGpuBackendOptions): KernelChoice {
  const f = options.features ?? new Set<string>();
  const sg = options.subgroupSizes;
  // NOTE: a team of 32 threads per row is whole subgroups where subgroups have at most 32 invocations
  const subgroups = f.has("subgroups") && sg !== undefined && sg.max <= 32 && 32 % sg.max === 0 && 32 % sg.min === 0;
  const sgMatrix = f.has("chromium-experimental-subgroup-matrix") && f.has("shader-f16") && sg?.min === 32 && sg.max === 32 && options.subgroupMatrixSyntax !== undefined;
  return {
    matvec: subgroups ? { tpr: 32, unroll: 4, subgroups: true } : PORTABLE_MATVEC,
    tiled: PORTABLE_TILED,
    sgMatrix: sgMatrix ? DEFAULT_SG_MATRIX : null,
    sgMatrixMinRows: 64,
    fuse: true,
    attentionSmallRows: 1,
    attentionItems: options.targetWorkgroups ?? 512,
  };
}

/**
 * Checks the feature paths chosen at creation against the portable ones on
 * this device, once, and turns off any that disagrees (a driver or
 * compiler that mishandles an experimental feature): the subgroup-matrix
 * matmul against the f32 tiles on a case with tails, within its bound.
 * `kernels` is the backend's own choice; returns a note of what was turned
 * off and why, or null.
 */
export async function checkKernels(backend: Backend, kernels: KernelChoice): Promise<string | null> {
  const sg = kernels.sgMatrix;
  if (!sg) return null;
  const [rows, N, K] = [kernels.sgMatrixMinRows + 37, 2 * sg.bn + 19, 3 * sg.bk + 5];
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const wBits = new Uint16Array(N * K).map(() => (new Uint32Array(Float32Array.of(random() * 0.1).buffer)[0] >>> 16));
  const w = backend.uploadWeight({ dtype: "BF16", shape: [N, K], bytes: new Uint8Array(wBits.buffer) }, "matrix");
  const x = backend.createTensor([rows, K], "f32", "check x");
  backend.write(x, Float32Array.from({ length: rows * K }, random));
  const [got, want] = [backend.createTensor([rows, N], "f32", "check out"), backend.createTensor([rows, N], "f32", "check reference")];
  let error = "";
  try {
    backend.matmul(got, x, w, null, rows);
    kernels.sgMatrix = null;
    backend.matmul(want, x, w, null, rows);
    kernels.sgMatrix = sg;
    const [a, b] = (await backend.read([{ tensor: got }, { tensor: want }])) as Float32Array[];
    let maxErr = 0, maxRef = 0;
    for (let i = 0; i < a.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
      maxRef = Math.max(maxRef, Math.abs(b[i]));
    }
    if (!(maxErr <= SG_MATRIX_TOLERANCE * maxRef)) error = `error ${(maxErr / maxRef).toExponential(1)} of the largest output`;
  } catch (err) {
    error = String((err as Error).message).split("\n")[0];
  } finally {
    for (const t of [w, x, got, want]) backend.destroyTensor(t);
  }
  if (!error) return null;
  kernels.sgMatrix = null;
  return `subgroup-matrix matmul off (${error})`;
}
