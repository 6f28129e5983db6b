// Times the tensor-core matmuls on the device (the H200), side by side in one
// process: the f16-operand kernels (kernels/matmulF16Kernels.ts: fragments
// through workgroup tiles, f16 or bf16 weights) against the per-tile-converting
// kernel the backend ran before (matmulSgKernels.ts, f32 x and bf16 w), on
// Llama-3.1-8B's shapes (q/k/v and gate/up also as one matmul each), and
// the f32 -> f16 pass of x they need. Each f16 kernel is checked against
// f64 sums of the same f16 inputs on sampled outputs (at the first row count). Raw WebGPU dispatches
// (no engine), wall time over bursts after a warm-up (clocks up).
//
//   [ROWS=512,2048,8192] [ONLY=f16|old] [SHAPES=q/o,down] [F16_VARIANTS='[["bf16",{...}]]'] node scripts/device/matmul-f16-bench.mjs
import { appendFileSync, mkdirSync } from "node:fs";
import { createNodeWebGpuBackend, createNodeWebGpuDevice } from "../../dist/platform/node/webgpu.js";
import { f16MatmulKernel, f16MatmulKStep, f16MatmulSharedBytes, f16RowsKernel } from "../../dist/backends/webgpu/kernels/matmulF16Kernels.js";
import { sgMatrixMatmulKernel } from "../../dist/backends/webgpu/kernels/matmulSgKernels.js";
import { TENSOR_CORE_TILES, TENSOR_CORE_SMALL_TILES } from "../../dist/backends/webgpu/kernelChoice.js";
import { moduleSource } from "../../dist/backends/webgpu/kernelAbi.js";

const OUT = process.env.OUT ?? "bench-out";
mkdirSync(OUT, { recursive: true });
const ROWS = (process.env.ROWS ?? "512,2048,8192").split(",").map(Number);
const ONLY = process.env.ONLY ?? "";

// the dialect as the backend detects it
const probe = await createNodeWebGpuBackend({});
const dialect = probe.subgroupMatrixDialect;
console.log(`device: ${probe.description}; dialect ${JSON.stringify(dialect)}`);
if (!dialect) process.exit(1);

// NOTE: the device on the backend's own Dawn instance (a second instance in one process crashed at start on the H200)
const { device } = await createNodeWebGpuDevice({ requireHardware: false });
console.log(`workgroup memory limit ${device.limits.maxComputeWorkgroupStorageSize}`);
device.onuncapturederror = (e) => console.log(`uncaptured: ${e.error.message.split("\n")[0]}`);
const U = GPUBufferUsage;
const buffer = (bytes, data) => {
  const b = device.createBuffer({ size: Math.ceil(bytes / 16) * 16, usage: U.STORAGE | U.COPY_DST | U.COPY_SRC });
  if (data) device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  return b;
};
const pipelines = new Map();
async function pipeline(k) {
  if (pipelines.has(k)) return pipelines.get(k);
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code: moduleSource(k) });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  let p = null;
  if (errors.length === 0) p = await device.createComputePipelineAsync({ layout: "auto", compute: { module, entryPoint: "main" } }).catch((e) => ({ error: String(e.message).split("\n")[0] }));
  const scope = await device.popErrorScope();
  const result = errors.length ? { error: errors[0].message } : scope ? { error: scope.message.split("\n")[0] } : p;
  pipelines.set(k, result);
  return result;
}
function encode(p, buffers, args, groups, n) {
  const argBuf = buffer(args.length * 4, Uint32Array.from(args));
  // NOTE: the arguments are the binding after the kernel's own (kernelAbi.ts)
  const bg0 = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [...buffers, argBuf].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, bg0);
  for (let i = 0; i < n; i++) pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
  pass.end();
  device.queue.submit([enc.finish()]);
  return device.queue.onSubmittedWorkDone();
}
async function timeIt(p, buffers, args, groups) {
  let t = performance.now();
  await encode(p, buffers, args, groups, 2);
  const once = (performance.now() - t) / 2;
  const n = Math.max(3, Math.min(500, Math.ceil(60 / once)));
  await encode(p, buffers, args, groups, n);
  const times = [];
  for (let r = 0; r < 3; r++) {
    t = performance.now();
    await encode(p, buffers, args, groups, n);
    times.push((performance.now() - t) / n);
  }
  return times.sort((a, b) => a - b)[1];
}
async function readF32(b, count) {
  const staging = device.createBuffer({ size: count * 4, usage: U.MAP_READ | U.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(b, 0, staging, 0, count * 4);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

// random f16 bit patterns: |x| in [2^-3, 1), |w| in [2^-7, 2^-4)
let seed = 11;
const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
function randomHalves(n, e0) {
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) { const s = next(); h[i] = ((s >>> 31) << 15) | ((e0 + ((s >>> 10) % 3)) << 10) | (s & 0x3ff); }
  return h;
}
const halfValue = (h) => (h & 0x8000 ? -1 : 1) * 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 0x3ff) / 1024);

const base = { bm: 128, bn: 128, bk: 32, sgm: 2, sgn: 2, pad: 8 };
const turns = { stageInTurns: true };
// NOTE: by the workgroup memory they declare (the H200 runs fewer workgroups per SM the more a kernel declares):
// the default (24.5 KiB), +8 KiB of padding, edge tiles staged in turns, 16-deep slices, 8 subgroups, 256-wide tiles
const f16Variants = (JSON.parse(process.env.F16_VARIANTS ?? "null") ?? [
  ["bf16", base],
  ["bf16", { ...base, pad: 24 }],
  ["bf16", { ...base, ...turns }],
  ["bf16", { ...base, bk: 16 }],
  ["bf16", { ...base, bk: 16, ...turns }],
  ["bf16", { ...base, sgm: 4, ...turns }],
  ["bf16", { ...base, sgm: 4, bk: 16, ...turns }],
  ["bf16", { ...base, bn: 256, sgn: 4, bk: 16, ...turns }],
  ["bf16", { ...base, bm: 256, sgm: 4, bk: 16, ...turns }],
  ["bf16", { ...base, bm: 64, ...turns }],
  ["bf16", { ...base, bm: 64, bk: 16, ...turns }],
]).filter(() => !ONLY || ONLY === "f16");
const oldVariants = !ONLY || ONLY === "old" ? [TENSOR_CORE_TILES, TENSOR_CORE_SMALL_TILES] : [];

// NOTE: SMALL=1 divides the shapes by 32 (a check of the script on a software adapter)
const scale = process.env.SMALL === "1" ? 32 : 1;
const SHAPES = process.env.SHAPES ? process.env.SHAPES.split(",") : null;
const shapes = [["q/o", 4096, 4096], ["k/v", 1024, 4096], ["qkv", 6144, 4096], ["gate/up", 14336, 4096], ["gate+up", 28672, 4096], ["down", 4096, 14336]].filter(([n]) => !SHAPES || SHAPES.includes(n)).map(([n, N, K]) => [n, N / scale, K / scale]);
const maxRows = Math.max(...ROWS);
const table = new Map();
const record = (rec) => {
  console.log(JSON.stringify(rec));
  appendFileSync(`${OUT}/matmul-f16.jsonl`, JSON.stringify(rec) + "\n");
  table.set(`${rec.variant}|${rec.shape}|${rec.rows}`, rec.error === undefined || rec.error < 1e-3 ? rec.TFLOPs.toFixed(0) : typeof rec.error === "string" ? "error" : `${rec.TFLOPs.toFixed(0)} (wrong ${rec.error.toExponential(1)})`);
};
for (const [name, N, K] of shapes) {
  const xh = randomHalves(maxRows * K, 12), wh = randomHalves(N * K, 8);
  // weights exact in bf16 too (3 low mantissa bits cleared), and their bf16 bits
  const wbf = new Uint16Array(wh.length);
  for (let i = 0; i < wh.length; i++) { const h = (wh[i] &= 0xfff8); wbf[i] = (h & 0x8000) | ((((h >> 10) & 31) + 112) << 7) | ((h & 0x3ff) >> 3); }
  const xf = new Float32Array(xh.length);
  for (let i = 0; i < xh.length; i++) xf[i] = halfValue(xh[i]);
  const [xB, wB, wbfB, xfB] = [buffer(xh.byteLength, xh), buffer(wh.byteLength, wh), buffer(wbf.byteLength, wbf), buffer(xf.byteLength, xf)];
  const outB = buffer(maxRows * N * 4), dummy = buffer(16), xConv = buffer(maxRows * K * 2);
  for (const rows of ROWS) {
    const flops = 2 * rows * N * K;
    const args = [rows, N, K, 0, N, 0];
    const samples = Array.from({ length: 48 }, () => [next() % rows, next() % N]);
    const reference = samples.map(([r, n]) => { let s = 0; for (let k = 0; k < K; k++) s += xf[r * K + k] * halfValue(wh[n * K + k]); return s; });
    const maxRef = Math.max(...reference.map(Math.abs));
    // the x pass the f16 kernels need (once per matmul input)
    const conv = await pipeline(f16RowsKernel());
    const convMs = await timeIt(conv, [xConv, xfB], [(rows * K) / 2], Math.ceil((rows * K) / 2 / 256));
    console.log(JSON.stringify({ part: "f16 of x", shape: name, rows, ms: convMs }));
    for (const [kind, variant] of [...f16Variants, ...oldVariants.map((v) => ["old", v])]) {
      const label = kind === "old" ? `old ${variant.bm}x${variant.bn}x${variant.bk}` : `${kind} ${variant.bm}x${variant.bn} ${variant.sgm}x${variant.sgn} k${variant.bk} p${variant.pad}${variant.buffers === 2 ? " db" : ""}${variant.stageInTurns ? " turns" : ""} ${f16MatmulSharedBytes(variant)}B`;
      if (kind !== "old" && K % f16MatmulKStep(variant) !== 0) continue;
      // NOTE: without validation (hardware adapters) a kernel over the limit aborts the process at pipeline creation
      if (kind !== "old" && f16MatmulSharedBytes(variant) > device.limits.maxComputeWorkgroupStorageSize) { record({ shape: name, rows, variant: label, error: `${f16MatmulSharedBytes(variant)} bytes of workgroup memory`, TFLOPs: 0 }); continue; }
      let k;
      try { k = kind === "old" ? sgMatrixMatmulKernel("bf16", variant, dialect, true, false) : f16MatmulKernel(kind, variant, dialect); }
      catch (err) { record({ shape: name, rows, variant: label, error: String(err.message) }); continue; }
      const p = await pipeline(k);
      if (p.error) { record({ shape: name, rows, variant: label, error: p.error, TFLOPs: 0 }); continue; }
      const buffers = kind === "old" ? [outB, xfB, wbfB, dummy] : [outB, xB, kind === "bf16" ? wbfB : wB, dummy];
      const groups = Math.ceil(rows / variant.bm) * Math.ceil(N / variant.bn);
      let error;
      if (rows === ROWS[0]) {
        await encode(p, buffers, args, groups, 1);
        const got = await readF32(outB, rows * N);
        error = Math.max(...samples.map(([r, n], i) => Math.abs(got[r * N + n] - reference[i]))) / maxRef;
      }
      const ms = await timeIt(p, buffers, args, groups);
      record({ part: "matmul", shape: name, rows, variant: label, ms, TFLOPs: flops / ms / 1e9, error, convMs });
    }
  }
  for (const b of [xB, wB, wbfB, xfB, outB, dummy, xConv]) b.destroy();
}
const cols = shapes.flatMap(([name]) => ROWS.map((rows) => [name, rows]));
const names = [...new Set([...table.keys()].map((k) => k.split("|")[0]))];
const lines = [`| TFLOP/s | ${cols.map(([n, r]) => `${n} ${r}`).join(" | ")} |`, `|---|${cols.map(() => "---").join("|")}|`];
for (const v of names) lines.push(`| ${v} | ${cols.map(([n, r]) => table.get(`${v}|${n}|${r}`) ?? "").join(" | ")} |`);
console.log("\n" + lines.join("\n"));
appendFileSync(`${OUT}/matmul-f16.md`, lines.join("\n") + "\n");
process.exit(0);
