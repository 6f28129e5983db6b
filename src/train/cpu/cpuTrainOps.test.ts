import { setFlagsFromString } from "node:v8";
import { trainOpsSuite } from "../trainOps.conformance.js";
import { createTrainKernels } from "../wasm/trainKernels.js";
import { CpuTrainOps } from "./cpuTrainOps.js";

// Node 20 has relaxed SIMD behind a flag (Node 22 on by default); set before the first compile.
setFlagsFromString("--experimental-wasm-relaxed-simd");

for (const variant of ["baseline", "relaxed"] as const) {
  trainOpsSuite(`cpu train ops (${variant})`, async () => new CpuTrainOps(await createTrainKernels({ variant, maxBytes: 256 << 20 })));
}
