/**
 * The wasm kernels on Node's worker threads: the kernel suites on the
 * relaxed-SIMD build (1 and 2 threads) and the baseline build (2 threads),
 * relaxed SIMD on by default, and workers that never keep node alive.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { runKernelConformance } from "../../backends/cpu/kernels.conformance.js";
import { runLightOpConformance } from "../../backends/cpu/lightOps.conformance.js";
import { createNodeWasmKernels } from "./kernelWorkers.js";

const relaxed = (numThreads: number) => () => createNodeWasmKernels({ numThreads, initialBytes: 1 << 20, variant: "relaxed" });
runKernelConformance("wasm relaxed SIMD, 1 thread", relaxed(1));
runLightOpConformance("wasm relaxed SIMD, 1 thread", relaxed(1));
runKernelConformance("wasm relaxed SIMD, 2 threads", relaxed(2));
runLightOpConformance("wasm relaxed SIMD, 2 threads", relaxed(2));
runLightOpConformance("wasm SIMD, 2 threads", () => createNodeWasmKernels({ numThreads: 2, initialBytes: 1 << 20, variant: "baseline" }));

test("Node runs the relaxed-SIMD build by default (it enables the V8 flag where needed)", async () => {
  const k = await createNodeWasmKernels({ numThreads: 1 });
  try {
    assert.match(k.description, /relaxed SIMD/);
  } finally {
    k.dispose();
  }
});

test("forgotten kernel workers do not keep node alive", async () => {
  const url = new URL("./kernelWorkers.js", import.meta.url).href;
  const script = `const { createNodeWasmKernels } = await import(${JSON.stringify(url)});
    const k = await createNodeWasmKernels({ numThreads: 2 });
    const p = k.alloc(64 * 64 * 4);
    k.matmul(p, p, p, "f32", 0, 1, 64, 63); // touch the workers once, then never dispose
    console.log(k.numThreads);`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 10_000 });
  assert.equal(stdout.trim(), "2");
});
