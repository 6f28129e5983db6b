/**
 * @module model/weights
 *
 * Maps a Hugging Face checkpoint's tensor names onto the transformer's
 * weights, checks every shape against the config, and uploads each tensor
 * straight from its file range into backend memory. Norm weights and biases
 * (the vectors) are checked for NaN and infinity on the way: one bad value
 * there poisons every logit, and they are small enough to check.
 */
import type { Tensor, WeightData } from "../backends/backend.js";
import { ModelLoadError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { SAFETENSORS_FLOAT_DTYPES } from "../io/safetensors.js";
import { decodeFloats } from "../util/floats.js";
import type { ModelConfig } from "./config.js";
import { readSafetensorsIndex, type TensorEntry } from "./safetensors.js";

/** T: how a loaded tensor is held (a backend Tensor by default; the gate trainer holds its own). */
export interface LayerWeights<T = Tensor> {
  readonly inputNorm: T; //        [H]
  readonly wq: T; //               [numHeads * headDim, H]
  readonly wk: T; //               [numKvHeads * headDim, H]
  readonly wv: T; //               [numKvHeads * headDim, H]
  readonly wo: T; //               [H, numHeads * headDim]
  readonly bq: T | null;
  readonly bk: T | null;
  readonly bv: T | null;
  readonly bo: T | null;
  readonly qNorm: T | null; //     [headDim] (Qwen3)
  readonly kNorm: T | null; //     [headDim] (Qwen3)
  readonly postAttentionNorm: T; // [H]
  readonly wGate: T; //            [I, H]
  readonly wUp: T; //              [I, H]
  readonly wDown: T; //            [H, I]
  readonly bGate: T | null;
  readonly bUp: T | null;
  readonly bDown: T | null;
}

export interface ModelWeights<T = Tensor> {
  readonly embedTokens: T; // [V, H]
  readonly layers: readonly LayerWeights<T>[];
  readonly finalNorm: T; //   [H]
  readonly lmHead: T; //      [V, H] (the embedding table when tied)
}

/** Where loadWeights puts each tensor: a Backend, or anything else that takes weight bytes. */
export interface WeightTarget<T> {
  uploadWeight(data: WeightData, kind: "matrix" | "vector"): T;
}

/** Reports bytes loaded so far, for progress output. */
export type LoadProgress = (loadedBytes: number, totalBytes: number) => void;

export async function loadWeights<T = Tensor>(source: FileSource, config: ModelConfig, backend: WeightTarget<T>, onProgress?: LoadProgress): Promise<ModelWeights<T>> {
  const index = await readSafetensorsIndex(source);
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim, vocabSize: V } = config;
  const totalBytes = [...index.values()].reduce((sum, e) => sum + e.byteLength, 0);
  // Missing tensors are reported against the weight file (or the shard index when sharded).
  const weightFiles = [...new Set([...index.values()].map((e) => e.file))];
  const weightsWhere = describeFile(source, weightFiles.length > 1 ? "model.safetensors.index.json" : (weightFiles[0] ?? "model.safetensors"));
  let loadedBytes = 0;
  const used = new Set<string>();

  const load = async (name: string, shape: number[], kind: "matrix" | "vector"): Promise<T> => {
    const entry = index.get(name);
    if (!entry) throw new ModelLoadError(`${weightsWhere}: tensor "${name}" is missing (config.json's ${config.architecture} layout needs it)`);
    used.add(name);
    checkShape(source, entry, shape);
    const bytes = await source.readRange(entry.file, entry.offset, entry.byteLength);
    if (bytes.length !== entry.byteLength) throw new ModelLoadError(`${describeFile(source, entry.file)}: truncated while reading "${name}"`);
    if (kind === "vector") checkFinite(source, entry, bytes);
    const tensor = backend.uploadWeight({ dtype: entry.dtype, shape, bytes }, kind);
    loadedBytes += entry.byteLength;
    onProgress?.(loadedBytes, totalBytes);
    return tensor;
  };
  const maybe = (name: string, shape: number[], present: boolean) => (present ? load(name, shape, "vector") : Promise.resolve(null));

  const embedTokens = await load("model.embed_tokens.weight", [V, H], "matrix");
  const layers: LayerWeights<T>[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const qDim = numHeads * headDim;
    const kvDim = numKvHeads * headDim;
    layers.push({
      inputNorm: await load(`${p}input_layernorm.weight`, [H], "vector"),
      wq: await load(`${p}self_attn.q_proj.weight`, [qDim, H], "matrix"),
      wk: await load(`${p}self_attn.k_proj.weight`, [kvDim, H], "matrix"),
      wv: await load(`${p}self_attn.v_proj.weight`, [kvDim, H], "matrix"),
      wo: await load(`${p}self_attn.o_proj.weight`, [H, qDim], "matrix"),
      bq: await maybe(`${p}self_attn.q_proj.bias`, [qDim], config.attentionBias),
      bk: await maybe(`${p}self_attn.k_proj.bias`, [kvDim], config.attentionBias),
      bv: await maybe(`${p}self_attn.v_proj.bias`, [kvDim], config.attentionBias),
      bo: await maybe(`${p}self_attn.o_proj.bias`, [H], config.outputBias),
      qNorm: await maybe(`${p}self_attn.q_norm.weight`, [headDim], config.qkNorm),
      kNorm: await maybe(`${p}self_attn.k_norm.weight`, [headDim], config.qkNorm),
      postAttentionNorm: await load(`${p}post_attention_layernorm.weight`, [H], "vector"),
      wGate: await load(`${p}mlp.gate_proj.weight`, [I, H], "matrix"),
      wUp: await load(`${p}mlp.up_proj.weight`, [I, H], "matrix"),
      wDown: await load(`${p}mlp.down_proj.weight`, [H, I], "matrix"),
      bGate: await maybe(`${p}mlp.gate_proj.bias`, [I], config.mlpBias),
      bUp: await maybe(`${p}mlp.up_proj.bias`, [I], config.mlpBias),
      bDown: await maybe(`${p}mlp.down_proj.bias`, [H], config.mlpBias),
    });
  }
  refuseUnusedLayerTensors(index, used, config, weightsWhere);
  const finalNorm = await load("model.norm.weight", [H], "vector");
  // NOTE: some tied checkpoints still store lm_head.weight; the embedding is authoritative when tied.
  const lmHead = config.tieWordEmbeddings ? embedTokens : await load("lm_head.weight", [V, H], "matrix");
  return { embedTokens, layers, finalNorm, lmHead };
}

/**
 * A layer tensor the config's layout did not read (an o_proj bias where config.json says attention_bias
 * false, a layer past num_hidden_layers) means config and weights disagree: running without it would give
 * wrong answers silently.
 */
function refuseUnusedLayerTensors(index: ReadonlyMap<string, TensorEntry>, used: ReadonlySet<string>, config: ModelConfig, where: string): void {
  for (const name of index.keys()) {
    // NOTE: older checkpoints store RoPE's frequency buffer, which transformers recomputes
    if (!name.startsWith("model.layers.") || name.endsWith(".rotary_emb.inv_freq") || used.has(name)) continue;
    throw new ModelLoadError(`${where}: tensor "${name}" is not part of the ${config.architecture} layout config.json describes (${config.numLayers} layers; attention_bias, mlp_bias and num_hidden_layers decide which tensors a layer has)`);
  }
}

function checkShape(source: FileSource, entry: TensorEntry, expected: number[]): void {
  const same = entry.shape.length === expected.length && entry.shape.every((d, i) => d === expected[i]);
  if (!same) {
    throw new ModelLoadError(
      `${describeFile(source, entry.file)}: tensor "${entry.name}" has shape [${entry.shape.join(", ")}], config.json implies [${expected.join(", ")}]`,
    );
  }
}

function checkFinite(source: FileSource, entry: TensorEntry, bytes: Uint8Array): void {
  const dtype = SAFETENSORS_FLOAT_DTYPES[entry.dtype];
  const values = decodeFloats(bytes, 0, entry.shape.reduce((a, b) => a * b, 1), dtype);
  const at = values.findIndex((v) => !Number.isFinite(v));
  if (at >= 0) {
    throw new ModelLoadError(`${describeFile(source, entry.file)}: tensor "${entry.name}" holds ${values[at]} at index ${at}; norm weights and biases must be finite`);
  }
}
