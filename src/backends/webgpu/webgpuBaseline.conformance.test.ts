/**
 * The backend conformance suite on the WebGPU backend without any optional
 * feature (no shader-f16, subgroups or subgroup matrices): the paths
 * browsers and other GPUs take.
 */
import { createBackend } from "../../platform/node/backend.js";
import { WEBGPU_FEATURES } from "../../platform/node/webgpu.js";
import { runBackendConformance } from "../backend.conformance.js";

// NOTE: WGSL lets float arithmetic flush subnormals (NVIDIA does); webgpuPages.test.ts checks the page bits exactly
runBackendConformance("webgpu (no optional features)", () => createBackend({ backend: "webgpu", disableGpuFeatures: [...WEBGPU_FEATURES] }), { subnormalsMayFlush: true });
