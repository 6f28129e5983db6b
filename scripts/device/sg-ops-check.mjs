// Each subgroup-matrix operation the kernels use, alone on this device
// against the CPU: f16 fragments staged in workgroup memory, loaded as
// left / right (row- and column-major) or result, multiplied and stored,
// by one subgroup and by four with per-subgroup offsets. Prints the max
// error of each case (0.0x is f16 rounding; 1 and more is a wrong layout).
//   node scripts/device/sg-ops-check.mjs
import { create, globals } from "webgpu";
Object.assign(globalThis, globals);
const gpu = create(["enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia"]);
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({ requiredFeatures: ["shader-f16", "subgroups", "chromium-experimental-subgroup-matrix"], requiredLimits: { maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize } });
const N = 64 * 64;
const A = Float32Array.from({ length: N }, (_, i) => ((i * 37) % 17) / 8 - 1);
const B = Float32Array.from({ length: N }, (_, i) => ((i * 53) % 13) / 6 - 1);
async function run(name, body, want) {
  const code = `enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
var<workgroup> wa: array<f16, ${N}>;
var<workgroup> wb: array<f16, ${N}>;
var<workgroup> wc: array<f32, ${N}>;
@compute @workgroup_size(128) fn main(@builtin(local_invocation_index) lid: u32) {
  for (var i = lid; i < ${N}u; i += 128u) { wa[i] = f16(a[i]); wb[i] = f16(b[i]); wc[i] = a[i]; }
  workgroupBarrier();
  let sg = lid / 32u;
${body}
}`;
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const err = info.messages.find((m) => m.type === "error");
  if (err) { console.log(`${name}: compile error ${err.lineNum}: ${err.message}`); await device.popErrorScope(); return; }
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const mk = (data, usage) => { const buf = device.createBuffer({ size: N * 4, usage, mappedAtCreation: !!data }); if (data) { new Float32Array(buf.getMappedRange()).set(data); buf.unmap(); } return buf; };
  const ba = mk(A, GPUBufferUsage.STORAGE), bb = mk(B, GPUBufferUsage.STORAGE), bo = mk(new Float32Array(N).fill(NaN), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC), rd = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [ba, bb, bo].map((buffer, binding) => ({ binding, resource: { buffer } })) }));
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(bo, 0, rd, 0, N * 4);
  device.queue.submit([enc.finish()]);
  await rd.mapAsync(GPUMapMode.READ);
  const got = new Float32Array(rd.getMappedRange().slice(0));
  const e = await device.popErrorScope();
  let maxErr = 0, bad = -1;
  for (const [i, w] of want) { const d = Math.abs(got[i] - w); if (!(d <= maxErr)) { maxErr = Number.isNaN(d) ? Infinity : d; bad = i; } }
  console.log(`${name}: max error ${maxErr.toFixed(4)}${bad >= 0 && maxErr > 0.1 ? ` (first bad at ${bad}: got ${got[bad]}, want ${want.get(bad)})` : ""}${e ? ` [${e.message.split("\n")[0]}]` : ""}`);
}
const f16 = (x) => { const f = new Float32Array(1); f[0] = x; return Math.fround(x); };
// C[m][n] = sum_k A(m,k) B(k,n) with A(m,k) = a[aOff + m*as + k] etc.
function product(aAt, bAt, outAt, count = 1) {
  const want = new Map();
  for (let s = 0; s < count; s++) for (let m = 0; m < 16; m++) for (let n = 0; n < 16; n++) {
    let acc = 0; for (let k = 0; k < 16; k++) acc += A[aAt(s, m, k)] * B[bAt(s, k, n)];
    want.set(outAt(s, m, n), acc);
  }
  return want;
}
const L = (off, st, layout) => `subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, ${layout}>(&wa, ${off}, ${st})`;
const R = (off, st, layout) => `subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, ${layout}>(&wb, ${off}, ${st})`;
const ST = (off, st) => `subgroupMatrixStore<row_major>(&o, ${off}, c, ${st})`;
const one = (l, r, st) => `  if (true) { var c = subgroup_matrix_result<f32, 16, 16>(); c = subgroupMatrixMultiplyAccumulate(${l}, ${r}, c); ${st}; }`;
await run("left row, right col (the matmul's)", one(L("0u", "24u", "row_major"), R("0u", "40u", "col_major"), ST("0u", "16u")), product((s, m, k) => m * 24 + k, (s, k, n) => n * 40 + k, (s, m, n) => m * 16 + n));
await run("left row, right ROW (attention's V)", one(L("0u", "24u", "row_major"), R("0u", "40u", "row_major"), ST("0u", "16u")), product((s, m, k) => m * 24 + k, (s, k, n) => k * 40 + n, (s, m, n) => m * 16 + n));
await run("store stride 32", one(L("0u", "24u", "row_major"), R("0u", "40u", "col_major"), ST("16u", "32u")), product((s, m, k) => m * 24 + k, (s, k, n) => n * 40 + k, (s, m, n) => 16 + m * 32 + n));
await run("four subgroups, left at sg*16 rows", `  var c = subgroup_matrix_result<f32, 16, 16>(); c = subgroupMatrixMultiplyAccumulate(${L("sg * 16u * 24u", "24u", "row_major")}, ${R("0u", "40u", "col_major")}, c); ${ST("sg * 256u", "16u")};`, product((s, m, k) => (s * 16 + m) * 24 + k, (s, k, n) => n * 40 + k, (s, m, n) => s * 256 + m * 16 + n, 4));
await run("four subgroups, store to workgroup then copy", `  var c = subgroup_matrix_result<f32, 16, 16>(); c = subgroupMatrixMultiplyAccumulate(${L("sg * 16u * 24u", "24u", "row_major")}, ${R("0u", "40u", "col_major")}, c);
  subgroupMatrixStore<row_major>(&wc, sg * 512u, c, 32u);
  workgroupBarrier();
  for (var i = lid; i < 2048u; i += 128u) { o[i] = wc[i]; }`, product((s, m, k) => (s * 16 + m) * 24 + k, (s, k, n) => n * 40 + k, (s, m, n) => s * 512 + m * 32 + n, 4));
await run("result load from workgroup, store", `  let c = subgroupMatrixLoad<subgroup_matrix_result<f32, 16, 16>, row_major>(&wc, sg * 256u, 16u); ${ST("sg * 256u", "16u")};`, new Map(Array.from({ length: 1024 }, (_, i) => [i, A[i]])));
await run("left from f16 staged at stride 16 (P)", one(L("sg * 256u", "16u", "row_major"), R("0u", "40u", "row_major"), ST("sg * 256u", "16u")), product((s, m, k) => s * 256 + m * 16 + k, (s, k, n) => k * 40 + n, (s, m, n) => s * 256 + m * 16 + n, 4));
const RA = (off, st, layout) => `subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, ${layout}>(&wa, ${off}, ${st})`;
await run("left and right from one array", one(L("0u", "24u", "row_major"), RA("1024u", "40u", "col_major"), ST("0u", "16u")), (() => { const w = new Map(); for (let m = 0; m < 16; m++) for (let n = 0; n < 16; n++) { let acc = 0; for (let k = 0; k < 16; k++) acc += A[m * 24 + k] * A[1024 + n * 40 + k]; w.set(m * 16 + n, acc); } return w; })());
process.exit(0);
