/**
 * @module model/weightBudget
 *
 * Whether a checkpoint fits the CPU backend, decided from the safetensors
 * headers alone, before any weight is read: the backend keeps every tensor in
 * one WebAssembly memory of at most 4 GiB, and a single tensor of 2 GiB or
 * more aborts Node natively while it is read. A model that cannot fit is
 * refused with one line instead of failing (or crashing) gigabytes later.
 */
import { ModelTooLargeError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { parseModelConfig } from "./config.js";
import { readSafetensorsIndex, type TensorEntry } from "./safetensors.js";

const GiB = 2 ** 30;
/** The kernel memory's maximum (backends/cpu/wasm/wasmKernels.ts maxBytes; 65536 wasm pages). */
export const CPU_MEMORY_LIMIT_BYTES = 4 * GiB;
/** Left for everything besides the weights: activations, logits, scratch and the KV pool. */
export const CPU_MEMORY_MARGIN_BYTES = 0.5 * GiB;
/** The first tensor size that cannot be read: 2 GiB. */
export const CPU_TENSOR_LIMIT_BYTES = 2 * GiB;

/** What the CPU backend would hold for a checkpoint's tensors. */
export interface CpuWeightBytes {
  readonly totalBytes: number;
  /** The largest tensor, by the larger of its file bytes and its held bytes. */
  readonly largest: { readonly name: string; readonly bytes: number } | null;
}

/**
 * Bytes the CPU backend holds for `entries`, as its uploadWeight stores them:
 * bf16 matrices stay bf16; everything else (f16, f32, vectors) becomes f32.
 * With tied embeddings a stored lm_head.weight is never loaded.
 */
export function cpuWeightBytes(entries: Iterable<TensorEntry>, tiedEmbeddings: boolean): CpuWeightBytes {
  let totalBytes = 0;
  let largest: CpuWeightBytes["largest"] = null;
  for (const e of entries) {
    if (tiedEmbeddings && e.name === "lm_head.weight") continue;
    const numel = e.shape.reduce((a, b) => a * b, 1);
    const held = e.dtype === "BF16" && e.shape.length >= 2 ? numel * 2 : numel * 4;
    totalBytes += held;
    const bytes = Math.max(held, e.byteLength);
    if (!largest || bytes > largest.bytes) largest = { name: e.name, bytes };
  }
  return { totalBytes, largest };
}

/**
 * Refuses a model folder whose weights the CPU backend cannot hold. Reads
 * only config.json and the safetensors headers; a folder the loader would
 * refuse anyway (a missing or malformed file) passes here, so the loader
 * reports it as it always does.
 */
export async function checkCpuWeightBudget(source: FileSource): Promise<void> {
  let tied: boolean;
  let entries: Map<string, TensorEntry>;
  try {
    tied = parseModelConfig(await source.readText("config.json"), describeFile(source, "config.json")).tieWordEmbeddings;
    entries = await readSafetensorsIndex(source);
  } catch {
    return;
  }
  const { totalBytes, largest } = cpuWeightBytes(entries.values(), tied);
  const advice = "try --backend webgpu or a smaller model";
  if (largest && largest.bytes >= CPU_TENSOR_LIMIT_BYTES) {
    throw new ModelTooLargeError(
      `${source.label}: tensor "${largest.name}" takes ${gib(largest.bytes)}, and the CPU backend takes tensors under ${gib(CPU_TENSOR_LIMIT_BYTES)}; ${advice}`,
    );
  }
  if (totalBytes + CPU_MEMORY_MARGIN_BYTES > CPU_MEMORY_LIMIT_BYTES) {
    throw new ModelTooLargeError(
      `${source.label}: the weights take ${gib(totalBytes)} on the CPU backend (bf16 matrices as bf16, the rest as f32), ` +
        `plus ${gib(CPU_MEMORY_MARGIN_BYTES)} to run, over its ${gib(CPU_MEMORY_LIMIT_BYTES)} limit (one WebAssembly memory); ${advice}`,
    );
  }
}

function gib(bytes: number): string {
  return `${(bytes / GiB).toFixed(bytes % GiB === 0 ? 0 : 1)} GiB`;
}
