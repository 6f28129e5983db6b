/**
 * The backend conformance suite (backend.conformance.ts) on the WebGPU
 * backend with every optional feature the adapter offers (in CI: lavapipe,
 * shader-f16 and subgroups). webgpuBaseline.conformance.test.ts runs it with none.
 */
import { createBackend } from "../../platform/node/backend.js";
import { runBackendConformance } from "../backend.conformance.js";

// NOTE: WGSL lets float arithmetic flush subnormals (NVIDIA does); webgpuPages.test.ts checks the page bits exactly
runBackendConformance("webgpu", () => createBackend({ backend: "webgpu" }), { subnormalsMayFlush: true });
