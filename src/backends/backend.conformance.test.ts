import { runBackendConformance } from "./backend.conformance.js";
import { createBackend } from "../platform/node/backend.js";

runBackendConformance("cpu-reference", () => createBackend({ backend: "cpu-reference" }));
runBackendConformance("cpu (wasm, 2 threads)", () => createBackend({ backend: "cpu", threads: 2 }));
