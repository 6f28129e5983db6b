import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ModelLoadError } from "../errors.js";
import type { FileSource } from "../io/fileSource.js";
import { readHeader, readSafetensorsIndex, type TensorEntry } from "./safetensors.js";

// ---------------------------------------------------------------- helpers

/** A FileSource over in-memory files. */
function memorySource(files: Record<string, Uint8Array | string>, label = "/mem/model"): FileSource {
  const bytes = (name: string): Uint8Array => {
    const f = files[name];
    if (f === undefined) throw new Error(`test source: no file ${name}`);
    return typeof f === "string" ? new TextEncoder().encode(f) : f;
  };
  return {
    label,
    exists: async (name) => name in files,
    size: async (name) => bytes(name).length,
    readRange: async (name, offset, length) => bytes(name).slice(offset, offset + length),
    readText: async (name) => new TextDecoder().decode(bytes(name)),
  };
}

interface TensorSpec {
  dtype: string;
  shape: number[];
  /** Overrides the computed data_offsets (relative to the data section). */
  offsets?: unknown;
  /** Byte length of the data written; defaults to what dtype and shape need. */
  bytes?: number;
}

const SIZE: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8 };

/**
 * Builds safetensors bytes: u64 LE header length, JSON header, data. Each
 * tensor's bytes are filled with its index so reads can be checked.
 */
function safetensors(tensors: Record<string, TensorSpec>, options: { metadata?: Record<string, string>; headerLength?: bigint } = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  Object.entries(tensors).forEach(([name, spec], i) => {
    const n = spec.bytes ?? spec.shape.reduce((a, b) => a * b, 1) * SIZE[spec.dtype];
    header[name] = { dtype: spec.dtype, shape: spec.shape, data_offsets: spec.offsets ?? [offset, offset + n] };
    chunks.push(new Uint8Array(n).fill(i + 1));
    offset += n;
  });
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, options.headerLength ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Asserts a one-line ModelLoadError that starts with `where: ` and matches `pattern`. */
async function assertFails(promise: Promise<unknown>, where: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ModelLoadError, `expected ModelLoadError, got ${String(err)}`);
    const message = (err as Error).message;
    assert.ok(message.startsWith(`${where}: `), message);
    assert.ok(!message.includes("\n"), `not one line: ${JSON.stringify(message)}`);
    assert.match(message, pattern);
    return true;
  });
}

const FILE = "/mem/model/model.safetensors";

// ---------------------------------------------------------------- good files

describe("readSafetensorsIndex", () => {
  test("one file with F32, F16 and BF16 tensors and __metadata__", async () => {
    const file = safetensors(
      {
        "a.f32": { dtype: "F32", shape: [2, 3] },
        "b.f16": { dtype: "F16", shape: [5] },
        "c.bf16": { dtype: "BF16", shape: [4, 1, 2] },
        "d.scalar": { dtype: "F32", shape: [] },
        "e.empty": { dtype: "BF16", shape: [0, 4] },
      },
      { metadata: { format: "pt" } },
    );
    const source = memorySource({ "model.safetensors": file });
    const index = await readSafetensorsIndex(source);
    assert.deepEqual([...index.keys()].sort(), ["a.f32", "b.f16", "c.bf16", "d.scalar", "e.empty"]);
    const a = index.get("a.f32")!;
    const dataStart = 8 + Number(new DataView(file.buffer).getBigUint64(0, true));
    assert.deepEqual(a, { name: "a.f32", file: "model.safetensors", dtype: "F32", shape: [2, 3], offset: dataStart, byteLength: 24 });
    assert.deepEqual(index.get("b.f16"), { name: "b.f16", file: "model.safetensors", dtype: "F16", shape: [5], offset: dataStart + 24, byteLength: 10 });
    assert.deepEqual(index.get("c.bf16"), { name: "c.bf16", file: "model.safetensors", dtype: "BF16", shape: [4, 1, 2], offset: dataStart + 34, byteLength: 16 });
    assert.equal(index.get("d.scalar")!.byteLength, 4);
    assert.equal(index.get("e.empty")!.byteLength, 0);
    // the located bytes are the tensor's own
    for (const [i, name] of ["a.f32", "b.f16", "c.bf16"].entries()) {
      const e = index.get(name)!;
      const bytes = await source.readRange(e.file, e.offset, e.byteLength);
      assert.ok(bytes.every((b) => b === i + 1), name);
    }
  });

  test("sharded through model.safetensors.index.json (two shards)", async () => {
    const shard1 = safetensors({ "model.embed_tokens.weight": { dtype: "BF16", shape: [8, 4] }, "model.norm.weight": { dtype: "F32", shape: [4] } });
    const shard2 = safetensors({ "lm_head.weight": { dtype: "F16", shape: [8, 4] } });
    const weightMap = {
      "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.norm.weight": "model-00001-of-00002.safetensors",
      "lm_head.weight": "model-00002-of-00002.safetensors",
    };
    const source = memorySource({
      "model.safetensors.index.json": JSON.stringify({ metadata: { total_size: 112 }, weight_map: weightMap }),
      "model-00001-of-00002.safetensors": shard1,
      "model-00002-of-00002.safetensors": shard2,
    });
    const index = await readSafetensorsIndex(source);
    assert.deepEqual([...index.keys()].sort(), ["lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"]);
    const lm = index.get("lm_head.weight")!;
    assert.equal(lm.file, "model-00002-of-00002.safetensors");
    assert.equal(lm.dtype, "F16");
    assert.equal(lm.byteLength, 64);
    const embed = index.get("model.embed_tokens.weight")!;
    assert.equal(embed.file, "model-00001-of-00002.safetensors");
    assert.equal(embed.dtype, "BF16");
    assert.equal(index.get("model.norm.weight")!.offset, embed.offset + 64);
  });

  test("readHeader of one file lists its entries in order", async () => {
    const source = memorySource({ "x.safetensors": safetensors({ w: { dtype: "F32", shape: [1] }, v: { dtype: "BF16", shape: [3] } }) });
    const entries: TensorEntry[] = await readHeader(source, "x.safetensors");
    assert.deepEqual(entries.map((e) => [e.name, e.dtype, e.byteLength]), [["w", "F32", 4], ["v", "BF16", 6]]);
  });
});

// ---------------------------------------------------------------- malformed files

describe("malformed safetensors fail with one-line ModelLoadErrors naming the file", () => {
  const fails = (file: Uint8Array | string, pattern: RegExp) => assertFails(readSafetensorsIndex(memorySource({ "model.safetensors": file })), FILE, pattern);

  test("no weight file at all", async () => {
    await assertFails(readSafetensorsIndex(memorySource({ "config.json": "{}" })), "/mem/model", /no model\.safetensors or model\.safetensors\.index\.json/);
  });

  test("shorter than the 8-byte header length", async () => {
    await fails(new Uint8Array(4), /truncated safetensors file \(4 bytes/);
    await fails(new Uint8Array(0), /truncated safetensors file \(0 bytes/);
  });

  test("header length too large", async () => {
    await fails(safetensors({ w: { dtype: "F32", shape: [1] } }, { headerLength: 2n ** 64n - 1n }), /declares a 18446744073709551615-byte header, more than the 104857600-byte limit/);
    await fails(safetensors({ w: { dtype: "F32", shape: [1] } }, { headerLength: 200n * 1024n * 1024n }), /more than the 104857600-byte limit/);
    await fails(safetensors({ w: { dtype: "F32", shape: [1] } }, { headerLength: 4096n }), /declares a 4096-byte header but the file has only \d+ bytes/);
  });

  test("header that is not JSON, or not an object", async () => {
    const raw = (text: string) => {
      const body = new TextEncoder().encode(text);
      const out = new Uint8Array(8 + body.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
      out.set(body, 8);
      return out;
    };
    await fails(raw("not json\nat all"), /malformed safetensors header JSON/);
    await fails(raw("[1, 2]"), /safetensors header is not an object/);
    await fails(raw("null"), /safetensors header is not an object/);
  });

  test("data_offsets not matching the shape", async () => {
    await fails(safetensors({ w: { dtype: "F32", shape: [2, 3], offsets: [0, 20], bytes: 24 } }), /tensor "w" spans 20 bytes but shape \[2, 3\] of F32 needs 24/);
    await fails(safetensors({ w: { dtype: "BF16", shape: [4], offsets: [8, 0], bytes: 8 } }), /tensor "w" spans -8 bytes/);
    await fails(safetensors({ w: { dtype: "F32", shape: [1], offsets: [0] } }), /tensor "w" has malformed data_offsets/);
    await fails(safetensors({ w: { dtype: "F32", shape: [1], offsets: "0-4" } }), /tensor "w" has malformed data_offsets/);
    await fails(safetensors({ w: { dtype: "F32", shape: [-1], offsets: [0, 0], bytes: 0 } }), /tensor "w" has a malformed shape/);
  });

  test("model.safetensors beside a shard index is the one read, as transformers picks", async () => {
    const single = safetensors({ "model.norm.weight": { dtype: "F32", shape: [4] } });
    const source = memorySource({ "model.safetensors.index.json": "not even JSON", "model.safetensors": single });
    assert.deepEqual([...(await readSafetensorsIndex(source)).keys()], ["model.norm.weight"]);
  });

  test("data past the end of the file", async () => {
    await fails(safetensors({ w: { dtype: "F32", shape: [4], offsets: [0, 16], bytes: 8 } }), /tensor "w" ends at byte \d+ but the file has only \d+ bytes \(truncated file\?\)/);
    const whole = safetensors({ a: { dtype: "F16", shape: [64] }, b: { dtype: "F16", shape: [64] } });
    await fails(whole.subarray(0, whole.length - 10), /tensor "b" ends at byte \d+ but the file has only \d+ bytes/);
  });

  test("unsupported dtype I64", async () => {
    await fails(safetensors({ position_ids: { dtype: "I64", shape: [1, 8] } }), /tensor "position_ids" has unsupported dtype "I64" \(supported: F32, F16, BF16\)/);
  });

  test("shard index: not JSON, no weight_map, a missing shard, a shard name with a path", async () => {
    const where = "/mem/model/model.safetensors.index.json";
    const index = (text: string, files: Record<string, Uint8Array | string> = {}) =>
      readSafetensorsIndex(memorySource({ "model.safetensors.index.json": text, ...files }));
    await assertFails(index("{ nope\n"), where, /not valid JSON/);
    await assertFails(index("null"), where, /missing "weight_map"/);
    await assertFails(index("[]"), where, /missing "weight_map"/);
    await assertFails(index(JSON.stringify({ weight_map: ["a"] })), where, /missing "weight_map"/);
    await assertFails(index(JSON.stringify({ weight_map: {} })), where, /lists no tensors/);
    await assertFails(index(JSON.stringify({ weight_map: { w: "../secret.safetensors" } })), where, /bad shard name "..\/secret.safetensors"/);
    await assertFails(index(JSON.stringify({ weight_map: { w: 7 } })), where, /bad shard name 7/);
    const shard1 = safetensors({ a: { dtype: "F32", shape: [1] } });
    await assertFails(
      index(JSON.stringify({ weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" } }), { "model-00001-of-00002.safetensors": shard1 }),
      "/mem/model/model-00002-of-00002.safetensors",
      /shard listed in model\.safetensors\.index\.json is missing/,
    );
    // a tensor stored in two shards is ambiguous
    const twice = safetensors({ a: { dtype: "F32", shape: [1] } });
    await assertFails(
      index(JSON.stringify({ weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" } }), {
        "model-00001-of-00002.safetensors": twice,
        "model-00002-of-00002.safetensors": twice,
      }),
      "/mem/model/model-00002-of-00002.safetensors",
      /tensor "a" is also in model-00001-of-00002\.safetensors/,
    );
    // a malformed shard names the shard, not the index
    await assertFails(
      index(JSON.stringify({ weight_map: { a: "model-00001-of-00001.safetensors" } }), { "model-00001-of-00001.safetensors": new Uint8Array(3) }),
      "/mem/model/model-00001-of-00001.safetensors",
      /truncated safetensors file/,
    );
  });
});
