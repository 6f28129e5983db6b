/**
 * @module dev/kernelBench
 *
 * Kernel lab: GFLOP/s of matmul and paged attention for the reference kernels and
 * the wasm kernels on 1 and on 2+ threads, on the default model's shapes
 * (hidden 384, 6 heads × 64, 2 KV heads, MLP 1024, vocab 8192).
 *
 *   node dist/dev/kernelBench.js [--no-ref] [--only=matmul|paged] [--m=1,64,256,512] [--window=ms] [--variant=auto|relaxed|baseline]
 *
 * Timings are the best of several batches over --window ms per cell (default 400; longer windows
 * ride out other processes on a shared machine). The reference is slow: it is timed only for M <= 256 and decode-sized attention.
 * Paged attention (pagedAttentionBench.ts: batched calls, one record per sequence) compares the TypeScript
 * fallback ("ref JS" column) with the wasm kernel; decode-sized calls are checked against the TypeScript kernel first.
 */
import type { CpuKernels, WeightDType } from "../backends/cpu/kernels.js";
import { createReferenceKernels } from "../backends/cpu/referenceKernels.js";
import { jsPagedAttention } from "../backends/cpu/pagedAttentionJs.js";
import { createRandom } from "../util/random.js";
import { setUpPagedCall, type PagedShape } from "./pagedAttentionBench.js";
import { createWasmKernels } from "../backends/cpu/wasm/wasmKernels.js";
import { createNodeWasmKernels } from "../platform/node/kernelWorkers.js";
import { availableParallelism } from "node:os";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const withRef = !args.includes("--no-ref");
const only = flag("only");
const Ms = (flag("m") ?? "1,64,256,512").split(",").map(Number);
const windowMs = Number(flag("window") ?? 400);
const variant = (flag("variant") ?? "auto") as "auto" | "relaxed" | "baseline";
const NKs: readonly (readonly [number, number, string])[] = [
  [384, 384, "q/o proj"], [128, 384, "k/v proj"], [1024, 384, "mlp up"], [384, 1024, "mlp down"], [8192, 384, "lm head"],
];

const PAGED: readonly (PagedShape & { what: string })[] = [
  { numQueries: 1, context: 256, kvDType: "f32", what: "decode 256" },
  { numQueries: 1, context: 1024, kvDType: "f32", what: "decode 1K" },
  { numQueries: 1, context: 4096, kvDType: "f32", what: "decode 4K" },
  { numQueries: 1, context: 8192, kvDType: "f32", what: "decode 8K" },
  { numQueries: 1, context: 8192, kvDType: "bf16", what: "decode 8K bf16" },
  { numQueries: 1, context: 8192, kvDType: "f16", what: "decode 8K f16" },
  { numQueries: 1, context: 8192, kvDType: "f32", numGlobal: [100, 7900], what: "decode 8K ragged" },
  { numQueries: 1, context: 2048, kvDType: "f32", numSeqs: 4, what: "decode 4 x 2K" },
  { numQueries: 256, context: 768, kvDType: "f32", what: "prefill 256 @ 768" },
  { numQueries: 256, context: 3840, kvDType: "f32", what: "prefill 256 @ 3840" },
  { numQueries: 256, context: 3840, kvDType: "f16", what: "prefill 256 @ 3840 f16" },
];

interface Impl { readonly name: string; readonly kernels: CpuKernels; readonly isReference: boolean; readonly canRun: (flops: number) => boolean }

/**
 * Seconds per call: the best batch mean over windowMs of batches of >= 5 ms each.
 * NOTE: the best, not the mean, because other processes share the cores.
 */
function time(fn: () => void): number {
  let t0 = performance.now();
  fn(); // warm-up
  const first = (performance.now() - t0) / 1000;
  if (first > 1) return first;
  const batch = Math.max(1, Math.ceil(0.005 / Math.max(first, 1e-7)));
  let best = Infinity;
  const start = performance.now();
  for (let n = 0; n < 3 || performance.now() - start < windowMs; n++) {
    t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    best = Math.min(best, (performance.now() - t0) / 1000 / batch);
  }
  return best;
}

const random = createRandom(7);

function fillRandom(k: CpuKernels, ptr: number, numBytes: number): void {
  const words = new Uint32Array(k.buffer(), ptr, numBytes >> 2);
  // Keep values finite and modest: a random exponent near 1, random sign and mantissa.
  for (let i = 0; i < words.length; i++) words[i] = (((random() * 0x7fffff) | 0) | (random() < 0.5 ? 0x3f000000 : 0xbf000000)) >>> 0;
}

function benchMatmul(impl: Impl, M: number, N: number, K: number, dtype: WeightDType): number | null {
  const flops = 2 * M * N * K;
  if (!impl.canRun(flops)) return null;
  const k = impl.kernels;
  const x = k.alloc(M * K * 4), w = k.alloc(N * K * 4), out = k.alloc(M * N * 4);
  fillRandom(k, x, M * K * 4);
  fillRandom(k, w, N * K * 4);
  return flops / time(() => k.matmul(out, x, w, dtype, 0, M, N, K)) / 1e9;
}

function benchPaged(impl: Impl, shape: PagedShape): [number, number] | null {
  const k = impl.kernels;
  // NOTE: the TypeScript fallback is timed only on decode shapes: prefill ones take it seconds
  if (impl.isReference && (!withRef || shape.numQueries > 1)) return null;
  const call = setUpPagedCall(k, shape);
  try {
    // NOTE: checked on decode-sized calls only: the TypeScript kernel takes seconds on prefill ones
    if (call.flops <= 1e8) checkPaged(k, call, shape);
    const seconds = time(() => void k.pagedAttention(call.ptrs, call.params));
    return [call.flops / seconds / 1e9, seconds * 1e3];
  } finally {
    call.free();
  }
}

/** The kernel's output against the plain TypeScript kernel on the same memory (max |error| / max |value| <= 1e-5). */
function checkPaged(k: CpuKernels, call: ReturnType<typeof setUpPagedCall>, shape: PagedShape): void {
  const n = (shape.numSeqs ?? 1) * shape.numQueries * call.params.numHeads * call.params.headDim;
  const reference = k.alloc(n * 4);
  try {
    void k.pagedAttention(call.ptrs, call.params);
    jsPagedAttention(k.buffer(), { ...call.ptrs, out: reference }, call.params);
    const got = new Float32Array(k.buffer(), call.ptrs.out, n), want = new Float32Array(k.buffer(), reference, n);
    let err = 0, max = 0;
    for (let i = 0; i < n; i++) {
      err = Math.max(err, Math.abs(got[i] - want[i]));
      max = Math.max(max, Math.abs(want[i]));
    }
    if (!(err <= 1e-5 * max)) throw new Error(`paged attention ${JSON.stringify(shape)}: relative error ${err / max}`);
  } finally {
    k.free(reference);
  }
}

const fmt = (v: number | null): string => (v === null ? "-" : v.toFixed(2)).padStart(9);

async function main(): Promise<void> {
  const cores = availableParallelism();
  const refBudget = (flops: number): boolean => withRef && flops <= 2 * 256 * 8192 * 384;
  // NOTE: the Node kernels first: they enable relaxed SIMD in V8 where it sits behind a flag.
  const parallel = await createNodeWasmKernels({ numThreads: Math.max(2, cores), variant });
  const impls: Impl[] = [
    { name: "ref JS", kernels: createReferenceKernels(64 << 20), isReference: true, canRun: refBudget },
    { name: "wasm 1T", kernels: await createWasmKernels({ numThreads: 1, variant }), isReference: false, canRun: () => true },
    { name: `wasm ${Math.max(2, cores)}T`, kernels: parallel, isReference: false, canRun: () => true },
  ];
  console.log(`kernels: ${parallel.description}`);
  const header = impls.map((i) => i.name.padStart(9)).join("");
  if (only === undefined || only === "matmul") {
    console.log(`matmul out[M,N] = x[M,K]·w[N,K]^T, GFLOP/s (last column: ms per call, ${impls[2].name})`);
    console.log(`${"M".padStart(4)} ${"N".padStart(5)} ${"K".padStart(5)} ${"what".padEnd(9)} dtype${header}       ms`);
    for (const M of Ms) {
      for (const [N, K, what] of NKs) {
        for (const dtype of ["bf16", "f32"] as const) {
          const g = impls.map((impl) => benchMatmul(impl, M, N, K, dtype));
          const ms = g[2] ? (2 * M * N * K) / g[2] / 1e6 : null;
          console.log(`${String(M).padStart(4)} ${String(N).padStart(5)} ${String(K).padStart(5)} ${what.padEnd(9)} ${dtype.padEnd(5)}${g.map(fmt).join("")}${fmt(ms)}`);
        }
      }
    }
  }
  if (only === undefined || only === "paged") {
    console.log(`\npaged attention (6 heads, 2 KV heads, headDim 64, W 256, full attention), GFLOP/s (last column: ms per call, ${impls[2].name})`);
    console.log(`${"case".padEnd(26)}${header}       ms`);
    for (const shape of PAGED) {
      const r = impls.map((impl) => benchPaged(impl, shape));
      console.log(`${shape.what.padEnd(26)}${r.map((x) => fmt(x && x[0])).join("")}${fmt(r[2] && r[2][1])}`);
    }
  }
  for (const impl of impls) impl.kernels.dispose();
}

await main();
