/**
 * @module model/safetensors
 *
 * Reads safetensors headers (one file or sharded through
 * `model.safetensors.index.json`) and locates each tensor's bytes, so the
 * loader can read every tensor straight into backend memory.
 */
import { causeText, ModelLoadError } from "../errors.js";
import { describeFile, type FileSource } from "../io/fileSource.js";

export type StoredDType = "F32" | "F16" | "BF16";
const BYTES_PER_ELEMENT: Record<StoredDType, number> = { F32: 4, F16: 2, BF16: 2 };

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

const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Lists every tensor of the model folder, checking headers against file sizes. */
export async function readSafetensorsIndex(source: FileSource): Promise<Map<string, TensorEntry>> {
  const files = await listWeightFiles(source);
  const entries = new Map<string, TensorEntry>();
  for (const file of files) {
    for (const entry of await readHeader(source, file)) entries.set(entry.name, entry);
  }
  return entries;
}

async function listWeightFiles(source: FileSource): Promise<string[]> {
  const indexName = "model.safetensors.index.json";
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
  if (await source.exists("model.safetensors")) return ["model.safetensors"];
  throw new ModelLoadError(`${source.label}: no model.safetensors or model.safetensors.index.json`);
}

/** Parses one file's header; every failure names the file. */
export async function readHeader(source: FileSource, file: string): Promise<TensorEntry[]> {
  const where = describeFile(source, file);
  const fileSize = await source.size(file);
  if (fileSize < 8) throw new ModelLoadError(`${where}: truncated safetensors file (${fileSize} bytes, no header length)`);
  const lengthBytes = await source.readRange(file, 0, 8);
  const declared = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new ModelLoadError(`${where}: malformed safetensors header (declares a ${declared}-byte header, more than the ${MAX_HEADER_BYTES}-byte limit; not a safetensors file?)`);
  }
  const headerLength = Number(declared);
  if (8 + headerLength > fileSize) {
    throw new ModelLoadError(`${where}: malformed safetensors header (declares a ${headerLength}-byte header but the file has only ${fileSize} bytes; truncated file?)`);
  }
  const headerBytes = await source.readRange(file, 8, headerLength);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch (err) {
    throw new ModelLoadError(`${where}: malformed safetensors header JSON (${causeText(err)})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new ModelLoadError(`${where}: safetensors header is not an object`);
  const dataStart = 8 + headerLength;
  const entries: TensorEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    entries.push(parseEntry(name, info, file, where, dataStart, fileSize));
  }
  return entries;
}

function parseEntry(name: string, info: unknown, file: string, where: string, dataStart: number, fileSize: number): TensorEntry {
  const bad = (why: string) => new ModelLoadError(`${where}: tensor "${name}" ${why}`);
  if (typeof info !== "object" || info === null) throw bad("has no header entry object");
  const { dtype, shape, data_offsets: offsets } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== "string" || !(dtype in BYTES_PER_ELEMENT)) throw bad(`has unsupported dtype ${JSON.stringify(dtype)} (supported: F32, F16, BF16)`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad("has a malformed shape");
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) throw bad("has malformed data_offsets");
  const [begin, end] = offsets as [number, number];
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const byteLength = numel * BYTES_PER_ELEMENT[dtype as StoredDType];
  if (end - begin !== byteLength) throw bad(`spans ${end - begin} bytes but shape [${shape.join(", ")}] of ${dtype} needs ${byteLength}`);
  if (dataStart + end > fileSize) throw bad(`ends at byte ${dataStart + end} but the file has only ${fileSize} bytes (truncated file?)`);
  return { name, file, dtype: dtype as StoredDType, shape: shape as number[], offset: dataStart + begin, byteLength };
}
