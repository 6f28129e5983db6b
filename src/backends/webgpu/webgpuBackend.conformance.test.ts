/**
 * The backend conformance suite (backend.conformance.ts) on the WebGPU
 * backend with every optional feature the adapter offers (in CI: lavapipe,
 * shader-f16 and subgroups). webgpuBaseline.conformance.test.ts runs it with none.
 */
import { createBackend } from "../../platform/node/backend.js";
import { runBackendConformance } from "../backend.conformance.js";
import type { WebGpuBackend } from "./webgpuBackend.js";

/**
 * The suite's f32 tolerances hold for the f32 paths: where the device has
 * tensor cores, their f16 matmul and prefill attention are set aside here
 * (webgpuMatmul.test.ts and webgpuAttentionSg.test.ts check them within
 * their bounds, webgpuFixtures.test.ts the engine on them).
 */
async function f32Paths(): Promise<WebGpuBackend> {
  const b = (await createBackend({ backend: "webgpu" })) as WebGpuBackend;
  Object.assign(b.kernels, { sgMatrix: null, sgAttentionKeys: 0 });
  return b;
}

// NOTE: WGSL lets float arithmetic flush subnormals (NVIDIA does); webgpuPages.test.ts checks the page bits exactly
runBackendConformance("webgpu", f32Paths, { subnormalsMayFlush: true });
