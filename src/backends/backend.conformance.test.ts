/**
 * The backend conformance suite (backend.conformance.ts) on the CPU
 * backends: the TypeScript reference kernels, and the wasm kernels in both
 * builds on one and two threads (two threads run the threaded paths: split
 * matmuls, split-K attention, shared light ops).
 */
import { createBackend } from "../platform/node/backend.js";
import { runBackendConformance } from "./backend.conformance.js";

runBackendConformance("cpu-reference", () => createBackend({ backend: "cpu-reference" }));
runBackendConformance("cpu (wasm SIMD, 1 thread)", () => createBackend({ backend: "cpu", threads: 1, simd: "baseline" }));
runBackendConformance("cpu (wasm relaxed SIMD, 1 thread)", () => createBackend({ backend: "cpu", threads: 1, simd: "relaxed" }));
runBackendConformance("cpu (wasm SIMD, 2 threads)", () => createBackend({ backend: "cpu", threads: 2, simd: "baseline" }));
runBackendConformance("cpu (wasm relaxed SIMD, 2 threads)", () => createBackend({ backend: "cpu", threads: 2, simd: "relaxed" }));
