// Times the prefill matmul kernels on the device (the H200): the f32 tiles
// and every subgroup-matrix variant (kernelVariants.ts), on Llama-3.1-8B's
// shapes at the row counts prefill runs (a WG-KV chunk of W = 256 rows, the
// default 512, and 2048), and checks each variant's output against the f32
// tiles' on the same inputs (max error / max output; the tests check them
// against f64 on small shapes). One JSON line per measurement, then a table.
//
//   [MATMUL_ROWS=512,2048] [MATMUL_VARIANTS=5,14] [MATMUL_SPLIT=1] node scripts/device/matmul-bench.mjs [--quick]
import { appendFileSync } from "node:fs";
import { createNodeWebGpuBackend } from "../../dist/platform/node/webgpu.js";
import { SG_MATRIX_VARIANTS } from "../../dist/backends/webgpu/kernelVariants.js";
import { sgMatrixMatmulKernel } from "../../dist/backends/webgpu/kernels/matmulSgKernels.js";
import { randomBf16Weight } from "./randomWeights.mjs";

const QUICK = process.argv.includes("--quick");
const OUT = process.env.OUT ?? "bench-out";
const ROWS = (process.env.MATMUL_ROWS ?? "256,512,2048").split(",").map(Number);
const REPS = QUICK ? 3 : 10;

let seed = 7;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

// NOTE: GPU timestamps, not wall time: between bursts of small calls the governor lowers the clock (design §9)
const b = await createNodeWebGpuBackend({ profile: true });
console.log(`device: ${b.description}; subgroup matrix ${JSON.stringify(b.subgroupMatrixDialect)}`);
const base = { ...b.kernels };
b.kernels.fuse = false;
const shapes = [["q/o 4096x4096", 4096, 4096], ["k/v 1024x4096", 1024, 4096], ["gate/up 14336x4096", 14336, 4096], ["down 4096x14336", 4096, 14336]];
// NOTE: a kernel that does not compile would abort the process at pipeline creation: such variants are left out
const variants = [["f32 tiles", null]];
// NOTE: MATMUL_VARIANTS=5,14 times only those of SG_MATRIX_VARIANTS (by index)
const only = process.env.MATMUL_VARIANTS?.split(",").map(Number);
for (const v of b.subgroupMatrixUsable ? SG_MATRIX_VARIANTS.filter((_, i) => !only || only.includes(i)) : []) {
  const error = await b.kernelCompileError(sgMatrixMatmulKernel("bf16", v, b.subgroupMatrixDialect, true));
  if (error) console.log(JSON.stringify({ variant: v, error }));
  else {
    variants.push([JSON.stringify(v), v, false]);
    // NOTE: MATMUL_SPLIT=1 times each variant with its inputs split into two f16 as well (sgMatrixSplit)
    if (process.env.MATMUL_SPLIT === "1") variants.push([`${JSON.stringify(v)} split`, v, true]);
  }
}
const table = new Map();
for (const [name, N, K] of shapes) {
  const w = randomBf16Weight(b, N, K, true);
  const maxRows = Math.max(...ROWS);
  const x = b.createTensor([maxRows, K], "f32", "x");
  b.write(x, Float32Array.from({ length: maxRows * K }, random));
  const out = b.createTensor([maxRows, N], "f32", "out");
  for (const rows of ROWS) {
    let reference = null;
    for (const [vname, v, split] of variants) {
      Object.assign(b.kernels, { sgMatrix: v, sgMatrixSmall: null, sgMatrixMinRows: 9, sgMatrixSplit: split ?? false });
      try {
        b.matmul(out, x, w, null, rows);
        const [got] = await b.read([{ tensor: out }]);
        let error = 0;
        if (!reference) reference = got.slice(0, rows * N);
        else {
          let maxErr = 0, maxRef = 0;
          for (let i = 0; i < rows * N; i++) { maxErr = Math.max(maxErr, Math.abs(got[i] - reference[i])); maxRef = Math.max(maxRef, Math.abs(reference[i])); }
          error = maxErr / maxRef;
        }
        // GPU ms per matmul over a burst of n back to back
        const burst = async (n) => {
          for (let i = 0; i < n; i++) b.matmul(out, x, w, null, rows);
          await b.read([{ tensor: out }]);
          const profile = await b.takeProfile();
          return profile.kernels.filter((k) => k.label.startsWith("matmul")).reduce((sum, k) => sum + k.ms, 0) / n;
        };
        await b.takeProfile();
        // NOTE: the GPU busy for ~0.3 s first: in the idle gaps (the check above) the governor lowers the clock, which
        // timestamps measure as well as wall time does (the first run of this bench mixed 345 and 1980 MHz)
        const first = await burst(2);
        await burst(Math.min(2000, Math.ceil(300 / first)));
        const times = [];
        for (let r = 0; r < 3; r++) times.push(await burst(REPS));
        const ms = median(times);
        const rec = { part: "matmul", shape: name, rows, variant: vname, ms, TFLOPs: (2 * rows * N * K) / ms / 1e9, error };
        console.log(JSON.stringify(rec));
        appendFileSync(`${OUT}/matmul.jsonl`, JSON.stringify(rec) + "\n");
        table.set(`${vname}|${name}|${rows}`, `${rec.TFLOPs.toFixed(0)}${error > 4e-3 ? " (wrong)" : ""}`);
      } catch (err) {
        console.log(JSON.stringify({ shape: name, rows, variant: vname, error: String(err.message).split("\n")[0] }));
        table.set(`${vname}|${name}|${rows}`, "error");
      }
    }
  }
  for (const t of [w, x, out]) b.destroyTensor(t);
}
Object.assign(b.kernels, base);
b.dispose();
const cols = shapes.flatMap(([name]) => ROWS.map((rows) => [name, rows]));
console.log(`\n| TFLOP/s | ${cols.map(([n, r]) => `${n.split(" ")[0]} ${r}`).join(" | ")} |`);
console.log(`|---|${cols.map(() => "---").join("|")}|`);
for (const [vname] of variants) console.log(`| ${vname} | ${cols.map(([n, r]) => table.get(`${vname}|${n}|${r}`) ?? "").join(" | ")} |`);
process.exit(0);
