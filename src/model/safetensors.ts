/**
 * @module model/safetensors
 *
 * Locates a model's tensors: one safetensors file or shards listed by
 * `model.safetensors.index.json`, each header read and checked by
 * `io/safetensors`, so the loader can read every tensor straight into
 * backend memory.
 */
import { causeText, ModelLoadError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";
import { readSafetensorsHeader, type SafetensorsDType } from "../io/safetensors.js";

/** The dtypes a backend takes weights in. */
export type StoredDType = "F32" | "F16" | "BF16";
const MODEL_DTYPES: readonly SafetensorsDType[] = ["F32", "F16", "BF16"];

/** Where one tensor's raw little-endian bytes live. */
export interface TensorEntry {
  readonly name: string;
  readonly file: string;
  readonly dtype: StoredDType;
  readonly shape: readonly number[];
  /** Absolute byte offset in `file`. */
  readonly offset: number;
  readonly byteLength: number;
}

/** Lists every tensor of the model folder, checking headers against file sizes. */
export async function readSafetensorsIndex(source: FileSource): Promise<Map<string, TensorEntry>> {
  const files = await listWeightFiles(source);
  const entries = new Map<string, TensorEntry>();
  for (const file of files) {
    for (const entry of await readHeader(source, file)) {
      const other = entries.get(entry.name);
      if (other) throw new ModelLoadError(`${describeFile(source, file)}: tensor "${entry.name}" is also in ${other.file}; a tensor must be stored once`);
      entries.set(entry.name, entry);
    }
  }
  return entries;
}

/** The weight files, as transformers picks them: model.safetensors when present, else the shards of the index. */
async function listWeightFiles(source: FileSource): Promise<string[]> {
  const indexName = "model.safetensors.index.json";
  if (await source.exists("model.safetensors")) return ["model.safetensors"];
  if (await source.exists(indexName)) {
    const where = describeFile(source, indexName);
    let index: unknown;
    try {
      index = JSON.parse(await source.readText(indexName));
    } catch (err) {
      throw new ModelLoadError(`${where}: not valid JSON (${causeText(err)})`);
    }
    const weightMap = typeof index === "object" && index !== null ? (index as { weight_map?: unknown }).weight_map : undefined;
    if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
      throw new ModelLoadError(`${where}: missing "weight_map" object (tensor name -> shard file)`);
    }
    const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
    if (shards.length === 0) throw new ModelLoadError(`${where}: "weight_map" lists no tensors`);
    for (const shard of shards) {
      if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\")) throw new ModelLoadError(`${where}: bad shard name ${JSON.stringify(shard)}`);
      if (!(await source.exists(shard))) throw new ModelLoadError(`${describeFile(source, shard)}: shard listed in ${indexName} is missing`);
    }
    return (shards as string[]).sort();
  }
  throw new ModelLoadError(`${source.label}: no model.safetensors or model.safetensors.index.json`);
}

/** Parses one file's header; every failure names the file. */
export async function readHeader(source: FileSource, file: string): Promise<TensorEntry[]> {
  const { entries } = await readSafetensorsHeader(source, file, { dtypes: MODEL_DTYPES });
  return entries.map((e) => ({ ...e, file, dtype: e.dtype as StoredDType }));
}
