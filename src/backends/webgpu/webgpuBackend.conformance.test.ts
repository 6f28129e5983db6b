/**
 * The backend conformance suite (backend.conformance.ts) on the WebGPU
 * backend, with every optional feature the adapter offers and with none
 * (the paths browsers and other GPUs take). In CI this is lavapipe.
 */
import { createBackend } from "../../platform/node/backend.js";
import { WEBGPU_FEATURES } from "../../platform/node/webgpu.js";
import { runBackendConformance } from "../backend.conformance.js";

runBackendConformance("webgpu", () => createBackend({ backend: "webgpu" }));
runBackendConformance("webgpu (no optional features)", () => createBackend({ backend: "webgpu", disableGpuFeatures: [...WEBGPU_FEATURES] }));
