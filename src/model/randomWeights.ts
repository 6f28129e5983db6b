/**
 * @module model/randomWeights
 *
 * A model folder that holds only config.json (e.g. shared/models/shapes/)
 * read as if it held a model.safetensors of seeded random bf16 weights of
 * the config's shapes: normal-like with std 0.02 (a scaled sum of four
 * uniforms; a tensor's first 2^20 values, repeated), norm weights 1. Nothing is written to disk: the loader reads
 * the synthetic file through this FileSource, each tensor's bytes made when
 * it is read, so benchmarks of real shapes need no 16 GB download.
 */
import { ModelTooLargeError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { parseModelConfig } from "./config.js";

const STD = 0.02;
/** Synthetic checkpoints past this (bytes; 64 TiB) are refused from config.json alone. */
const MAX_RANDOM_BYTES = 2 ** 46;
/** Values made per tensor; longer tensors repeat them (timings do not depend on the values). */
const PERIOD = 1 << 20;

/** The tensors of a model's checkpoint, as loadWeights names them, with their shapes. */
function tensorShapes(configText: string): [string, number[]][] {
  const c = parseModelConfig(configText, "config.json");
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim, vocabSize: V } = c;
  const q = numHeads * headDim, kv = numKvHeads * headDim;
  const out: [string, number[]][] = [["model.embed_tokens.weight", [V, H]]];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push([`${p}input_layernorm.weight`, [H]], [`${p}self_attn.q_proj.weight`, [q, H]], [`${p}self_attn.k_proj.weight`, [kv, H]], [`${p}self_attn.v_proj.weight`, [kv, H]], [`${p}self_attn.o_proj.weight`, [H, q]]);
    if (c.attentionBias) out.push([`${p}self_attn.q_proj.bias`, [q]], [`${p}self_attn.k_proj.bias`, [kv]], [`${p}self_attn.v_proj.bias`, [kv]]);
    if (c.outputBias) out.push([`${p}self_attn.o_proj.bias`, [H]]);
    if (c.qkNorm) out.push([`${p}self_attn.q_norm.weight`, [headDim]], [`${p}self_attn.k_norm.weight`, [headDim]]);
    out.push([`${p}post_attention_layernorm.weight`, [H]], [`${p}mlp.gate_proj.weight`, [I, H]], [`${p}mlp.up_proj.weight`, [I, H]], [`${p}mlp.down_proj.weight`, [H, I]]);
    if (c.mlpBias) out.push([`${p}mlp.gate_proj.bias`, [I]], [`${p}mlp.up_proj.bias`, [I]], [`${p}mlp.down_proj.bias`, [H]]);
  }
  out.push(["model.norm.weight", [H]]);
  if (!c.tieWordEmbeddings) out.push(["lm_head.weight", [V, H]]);
  return out;
}

function hashName(name: string, seed: number): number {
  let h = seed ^ 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

/** bf16 bytes of a tensor's random values. */
function tensorBytes(name: string, numel: number, seed: number): Uint8Array {
  const out = new Uint16Array(numel);
  if (name.endsWith("norm.weight")) return new Uint8Array(out.fill(0x3f80).buffer);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  let x = hashName(name, seed);
  const scale = STD / 0.5773502691896258 / 256;
  const made = Math.min(numel, PERIOD);
  for (let i = 0; i < made; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const b = x >>> 0;
    f[0] = ((b & 255) + ((b >>> 8) & 255) + ((b >>> 16) & 255) + (b >>> 24) - 510) * scale;
    out[i] = u[0] >>> 16;
  }
  // NOTE: then copies of those values: a value at a time, an 8B model's 16 GB took a minute
  for (let have = made; have < numel; have *= 2) out.copyWithin(have, 0, Math.min(have, numel - have));
  return new Uint8Array(out.buffer);
}

/** `base` (a folder with config.json) seen with a model.safetensors of random weights. */
export async function randomWeightsSource(base: FileSource, seed: number): Promise<FileSource> {
  const shapes = tensorShapes(await base.readText("config.json"));
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  let at = 0;
  const where = new Map<number, { name: string; numel: number; bytes: number }>();
  for (const [name, shape] of shapes) {
    const numel = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: "BF16", shape, data_offsets: [at, at + numel * 2] };
    where.set(at, { name, numel, bytes: numel * 2 });
    at += numel * 2;
  }
  if (!(at <= MAX_RANDOM_BYTES)) {
    throw new ModelTooLargeError(`${describeFile(base, "config.json")}: random bf16 weights of these shapes take ${(at / 2 ** 40).toPrecision(3)} TiB, more than any device holds`);
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((json.length + 8) % 8)) % 8);
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(new TextEncoder().encode(json), 8);
  const total = head.length + at;
  const FILE = "model.safetensors";
  return {
    label: `${base.label} (random weights, seed ${seed})`,
    exists: async (name) => name === FILE || (name !== "model.safetensors.index.json" && (await base.exists(name))),
    size: async (name) => (name === FILE ? total : base.size(name)),
    readText: (name) => base.readText(name),
    async readRange(name, offset, length) {
      if (name !== FILE) return base.readRange(name, offset, length);
      if (offset + length <= head.length) return head.subarray(offset, offset + length);
      const t = where.get(offset - head.length);
      if (!t || length > t.bytes) throw new RangeError(`random weights: reads must cover one tensor (offset ${offset}, ${length} bytes)`);
      return tensorBytes(t.name, t.numel, seed).subarray(0, length);
    },
  };
}
