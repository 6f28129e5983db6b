// The H200 table of issue 9 from `wgkv bench --json` files (h200-bench.sh):
// per model and context, full attention and WG-KV (random:0.2) side by side,
// the measured speedup next to the attainable one, and PyTorch's figures on
// the same card (static KV cache, SDPA flash attention, CUDA graphs).
//
//   node scripts/device/summarize.mjs bench-out
//
// Attainable: decode is bound by the bytes it reads (bf16 weights + the KV it
// attends to) at 4.5 TB/s, prefill by its FLOPs (matmuls + visible attention);
// the attainable WG-KV speedup is the ratio of full attention's bound to
// WG-KV's. Decode rows from a synthetic fill (bench --synthetic-fill) have no
// prefill figure.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? "bench-out";
const BW = 4.5e12;
const PYTORCH = {
  "llama-3.1-8b": {
    decodeFull: { 8192: 7.38, 32768: 8.15, 131072: 11.15, 400000: 18.99 },
    decodeSparse: { 8192: 7.22, 32768: 7.4, 131072: 8.09, 400000: 9.66 },
    prefillFull: { 8192: 0.26, 32768: 1.43, 131072: 11.95 },
  },
  "llama-3.2-1b": {
    decodeFull: { 32768: 2.6, 131072: 3.37 },
    decodeSparse: { 32768: 2.37, 131072: 2.57 },
    prefillFull: { 32768: 0.32, 131072: 3.13 },
  },
};
const shapes = Object.fromEntries(Object.keys(PYTORCH).map((name) => [name, JSON.parse(readFileSync(`scripts/device/shapes/${name}/config.json`, "utf8"))]));

/** Bytes of weights one decode token reads, and matmul FLOPs per token. */
function costs(c) {
  const H = c.hidden_size, I = c.intermediate_size, L = c.num_hidden_layers, hd = c.head_dim ?? H / c.num_attention_heads;
  const q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  const perLayer = H * (q + 2 * kv) + q * H + 3 * H * I;
  return { weightBytes: 2 * (L * perLayer + c.vocab_size * H), matmulFlops: 2 * (L * perLayer + c.vocab_size * H), L, heads: c.num_attention_heads, hd };
}

const results = readdirSync(dir)
  .filter((f) => f.endsWith(".json") && f !== "adapter.json")
  .flatMap((f) => {
    try {
      // NOTE: Dawn prints validation messages on stdout: the result is the last line that is a JSON array
      const text = readFileSync(join(dir, f), "utf8");
      const line = text.trim().startsWith("[") && f === "kernels.json" ? text : text.split("\n").filter((l) => l.startsWith("[")).pop();
      return JSON.parse(line ?? "").map((r) => ({ ...r, file: f }));
    } catch {
      console.log(`${f}: no result (see ${f.replace(".json", ".log")})`);
      return [];
    }
  });
const fmt = (x, d = 2) => (x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(d));
const decodeRows = [], prefillRows = [];
for (const full of results.filter((r) => r.policy === "full")) {
  const name = Object.keys(shapes).find((k) => full.model.includes(k));
  if (!name) continue;
  const wg = results.find((r) => r.file === full.file && r.context === full.context && r.policy !== "full");
  const { weightBytes, matmulFlops, L, heads, hd } = costs(shapes[name]);
  const pt = PYTORCH[name];
  const N = full.context, model = name.replace("llama-", "");
  const decodeBound = (r) => (weightBytes + r.kv_resident_bytes) / BW * 1e3;
  const attainDecode = wg ? decodeBound(full) / decodeBound(wg) : undefined;
  const speedDecode = wg ? full.decode_ms_per_token / wg.decode_ms_per_token : undefined;
  decodeRows.push(`| ${model} | ${N} | ${fmt(full.decode_ms_per_token)} | ${fmt(pt.decodeFull[N])} | ${fmt(wg?.decode_ms_per_token)} | ${fmt(pt.decodeSparse[N])} | ${fmt(speedDecode)}× | ${fmt(attainDecode)}× | ${fmt(speedDecode / attainDecode)} | ${fmt(wg?.ratio?.kv_resident, 3)} | ${fmt(weightBytes / full.decode_ms_per_token / 1e9, 2)} | ${full.synthetic_fill ? "synthetic" : "prefill"} |`);
  if (full.synthetic_fill) continue;
  // attention FLOPs: 4 * heads * hd per (query, visible key); causal full attention sees N^2/2 keys, WG-KV about admitted * N^2/2 + N * W
  const attention = (visibleKeys) => 4 * L * heads * hd * visibleKeys;
  const flopsFull = N * matmulFlops + attention((N * N) / 2);
  const flopsWg = wg ? N * matmulFlops + attention((wg.admitted_fraction * N * N) / 2 + N * 256) : undefined;
  const prefillS = (r) => r.prefill_ms / 1e3;
  const speedPrefill = wg ? prefillS(full) / prefillS(wg) : undefined;
  prefillRows.push(`| ${model} | ${N} | ${fmt(prefillS(full))} | ${fmt(pt.prefillFull[N])} | ${fmt(wg && prefillS(wg))} | ${fmt(speedPrefill)}× | ${fmt(flopsWg && flopsFull / flopsWg)}× | ${fmt(flopsWg && speedPrefill / (flopsFull / flopsWg))} | ${fmt(flopsFull / prefillS(full) / 1e12, 1)} |`);
}
console.log("Decode (ms per token; WG-KV = random:0.2, W = 256; efficiency = measured / attainable speedup, target >= 0.85)\n");
console.log("| model | context | full | PyTorch full | WG-KV | PyTorch 20% | speedup | attainable | efficiency | KV vs full | weights read, TB/s (full) | cache |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of decodeRows) console.log(r);
if (prefillRows.length) {
  console.log("\nPrefill (s, chunked)\n");
  console.log("| model | context | full | PyTorch flash | WG-KV | speedup | attainable | efficiency | TFLOP/s (full) |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of prefillRows) console.log(r);
}
