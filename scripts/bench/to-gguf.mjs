#!/usr/bin/env node
// Converts a Llama-architecture Hugging Face folder (config.json,
// model.safetensors in bf16/f16/f32, a byte-level BPE tokenizer.json, a chat
// template) into a GGUF v3 file that llama.cpp (and node-llama-cpp) loads:
// the baseline of wgkv's server bench runs the same weights.
//
//   node scripts/bench/to-gguf.mjs models/wgkv-tiny-chat /tmp/wgkv-tiny-chat.gguf
//
// Matrices keep their dtype (bf16 stays bf16), norms become f32. Q and K rows
// are permuted as llama.cpp's convert_hf_to_gguf.py does: llama.cpp's LLAMA
// rope rotates adjacent pairs, transformers' rotate_half the two halves.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join, basename } from "node:path";

const [dir, out] = process.argv.slice(2);
if (!dir || !out) {
  console.error("usage: node scripts/bench/to-gguf.mjs MODEL_DIR OUT.gguf");
  process.exit(1);
}
const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
if (!(config.architectures ?? []).includes("LlamaForCausalLM")) throw new Error(`${dir}: only LlamaForCausalLM is converted`);
const tok = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
if (tok.model.type !== "BPE" || tok.pre_tokenizer?.type !== "ByteLevel") throw new Error(`${dir}/tokenizer.json: only byte-level BPE is converted`);
const templateFile = join(dir, "chat_template.jinja");
const chatTemplate = existsSync(templateFile) ? readFileSync(templateFile, "utf8") : JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")).chat_template;

// ---- safetensors
const st = readFileSync(join(dir, "model.safetensors"));
const headerLen = Number(st.readBigUInt64LE(0));
const header = JSON.parse(st.subarray(8, 8 + headerLen).toString("utf8"));
const dataStart = 8 + headerLen;
const tensor = (name) => {
  const h = header[name];
  if (!h) throw new Error(`missing tensor ${name}`);
  return { dtype: h.dtype, shape: h.shape, bytes: st.subarray(dataStart + h.data_offsets[0], dataStart + h.data_offsets[1]) };
};

const GGML = { F32: 0, F16: 1, BF16: 30 };
const toF32 = (t) => {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const outArr = new Float32Array(n);
  if (t.dtype === "F32") return new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + n * 4));
  const u16 = new Uint16Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + n * 2));
  const u32 = new Uint32Array(outArr.buffer);
  if (t.dtype === "BF16") for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
  else if (t.dtype === "F16") for (let i = 0; i < n; i++) outArr[i] = f16ToF32(u16[i]);
  else throw new Error(`dtype ${t.dtype}`);
  return outArr;
};
function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}
/** Rows of a [heads * headDim, in] matrix reordered from halves to interleaved pairs per head. */
function permuteRows(t, numHeads) {
  const [rows, cols] = t.shape;
  const el = t.dtype === "F32" ? 4 : 2;
  const hd = rows / numHeads;
  const rowBytes = cols * el;
  const outBytes = Buffer.alloc(t.bytes.length);
  for (let h = 0; h < numHeads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const src = h * hd + j * (hd / 2) + i, dst = h * hd + 2 * i + j;
        t.bytes.copy(outBytes, dst * rowBytes, src * rowBytes, (src + 1) * rowBytes);
      }
    }
  }
  return { ...t, bytes: outBytes };
}

const tensors = [];
const matrix = (name, t) => tensors.push({ name, type: GGML[t.dtype], dims: [...t.shape].reverse(), data: t.bytes });
const vector = (name, t) => {
  const f = toF32(t);
  tensors.push({ name, type: GGML.F32, dims: [...t.shape].reverse(), data: Buffer.from(f.buffer, f.byteOffset, f.byteLength) });
};
const nHead = config.num_attention_heads, nKv = config.num_key_value_heads ?? nHead;
matrix("token_embd.weight", tensor("model.embed_tokens.weight"));
for (let l = 0; l < config.num_hidden_layers; l++) {
  const p = `model.layers.${l}.`;
  vector(`blk.${l}.attn_norm.weight`, tensor(p + "input_layernorm.weight"));
  matrix(`blk.${l}.attn_q.weight`, permuteRows(tensor(p + "self_attn.q_proj.weight"), nHead));
  matrix(`blk.${l}.attn_k.weight`, permuteRows(tensor(p + "self_attn.k_proj.weight"), nKv));
  matrix(`blk.${l}.attn_v.weight`, tensor(p + "self_attn.v_proj.weight"));
  matrix(`blk.${l}.attn_output.weight`, tensor(p + "self_attn.o_proj.weight"));
  vector(`blk.${l}.ffn_norm.weight`, tensor(p + "post_attention_layernorm.weight"));
  matrix(`blk.${l}.ffn_gate.weight`, tensor(p + "mlp.gate_proj.weight"));
  matrix(`blk.${l}.ffn_up.weight`, tensor(p + "mlp.up_proj.weight"));
  matrix(`blk.${l}.ffn_down.weight`, tensor(p + "mlp.down_proj.weight"));
}
vector("output_norm.weight", tensor("model.norm.weight"));
if (!config.tie_word_embeddings) matrix("output.weight", tensor("lm_head.weight"));

// ---- tokenizer
const vocabSize = config.vocab_size;
const tokens = new Array(vocabSize).fill(null);
for (const [t, id] of Object.entries(tok.model.vocab)) tokens[id] = t;
const types = new Array(vocabSize).fill(1); // NORMAL
for (const a of tok.added_tokens ?? []) {
  tokens[a.id] = a.content;
  types[a.id] = a.special ? 3 : 4; // CONTROL : USER_DEFINED
}
for (let i = 0; i < vocabSize; i++) if (tokens[i] === null) [tokens[i], types[i]] = [`[PAD${i}]`, 5]; // UNUSED
const merges = tok.model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : m));
const eos = Array.isArray(config.eos_token_id) ? config.eos_token_id : [config.eos_token_id];
const addsBos = JSON.stringify(tok.post_processor ?? {}).includes("SpecialToken");
const rope = config.rope_parameters ?? { rope_theta: config.rope_theta ?? 10000 };
const headDim = config.head_dim ?? config.hidden_size / nHead;

const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STR: 8, ARR: 9 };
const kv = [
  ["general.architecture", T.STR, "llama"],
  ["general.name", T.STR, basename(dir.replace(/\/+$/, ""))],
  ["general.alignment", T.U32, 32],
  ["llama.context_length", T.U32, config.max_position_embeddings],
  ["llama.embedding_length", T.U32, config.hidden_size],
  ["llama.block_count", T.U32, config.num_hidden_layers],
  ["llama.feed_forward_length", T.U32, config.intermediate_size],
  ["llama.attention.head_count", T.U32, nHead],
  ["llama.attention.head_count_kv", T.U32, nKv],
  ["llama.attention.key_length", T.U32, headDim],
  ["llama.attention.value_length", T.U32, headDim],
  ["llama.attention.layer_norm_rms_epsilon", T.F32, config.rms_norm_eps],
  ["llama.rope.freq_base", T.F32, rope.rope_theta],
  ["llama.rope.dimension_count", T.U32, headDim],
  ["llama.vocab_size", T.U32, vocabSize],
  ["tokenizer.ggml.model", T.STR, "gpt2"],
  ["tokenizer.ggml.pre", T.STR, "gpt-2"],
  ["tokenizer.ggml.tokens", T.ARR, [T.STR, tokens]],
  ["tokenizer.ggml.token_type", T.ARR, [T.I32, types]],
  ["tokenizer.ggml.merges", T.ARR, [T.STR, merges]],
  ["tokenizer.ggml.bos_token_id", T.U32, config.bos_token_id],
  ["tokenizer.ggml.eos_token_id", T.U32, eos[eos.length - 1]],
  ["tokenizer.ggml.eot_token_id", T.U32, eos[eos.length - 1]],
  ["tokenizer.ggml.padding_token_id", T.U32, eos[0]],
  ["tokenizer.ggml.add_bos_token", T.BOOL, addsBos],
  ["tokenizer.ggml.add_eos_token", T.BOOL, false],
  ...(chatTemplate ? [["tokenizer.chat_template", T.STR, chatTemplate]] : []),
];

// ---- GGUF v3
const parts = [];
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v); parts.push(b); };
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
const f32 = (v) => { const b = Buffer.alloc(4); b.writeFloatLE(v); parts.push(b); };
const str = (s) => { const b = Buffer.from(s, "utf8"); u64(b.length); parts.push(b); };
const value = (type, v) => {
  if (type === T.U32) u32(v);
  else if (type === T.I32) i32(v);
  else if (type === T.F32) f32(v);
  else if (type === T.BOOL) parts.push(Buffer.from([v ? 1 : 0]));
  else if (type === T.STR) str(v);
  else if (type === T.ARR) {
    const [elType, items] = v;
    u32(elType);
    u64(items.length);
    for (const it of items) value(elType, it);
  }
};
parts.push(Buffer.from("GGUF"));
u32(3);
u64(tensors.length);
u64(kv.length);
for (const [k, type, v] of kv) {
  str(k);
  u32(type);
  value(type, v);
}
const ALIGN = 32;
let offset = 0;
for (const t of tensors) {
  str(t.name);
  u32(t.dims.length);
  for (const d of t.dims) u64(d);
  u32(t.type);
  u64(offset);
  offset += Math.ceil(t.data.length / ALIGN) * ALIGN;
}
let head = Buffer.concat(parts);
head = Buffer.concat([head, Buffer.alloc((ALIGN - (head.length % ALIGN)) % ALIGN)]);
const body = tensors.flatMap((t) => [t.data, Buffer.alloc((ALIGN - (t.data.length % ALIGN)) % ALIGN)]);
writeFileSync(out, Buffer.concat([head, ...body]));
console.error(`wrote ${out}: ${tensors.length} tensors, ${vocabSize} tokens, ${merges.length} merges`);
