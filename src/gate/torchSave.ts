/**
 * @module gate/torchSave
 *
 * Writes a dict of tensors the way `torch.save` does (zip format, pickle
 * protocol 2, one storage per tensor), so that PyTorch's `torch.load` (also
 * with `weights_only=True`) and {@link readTorchCheckpoint} can read it. Used
 * to export gates in the official layout and to build test checkpoints with
 * other dtypes, offsets and strides.
 */
import { encodeFloatsLE, type FloatDType } from "../util/floats.js";
import { writeStoredZip } from "../util/zip.js";
import { TORCH_STORAGE_DTYPES } from "./torchCheckpoint.js";

/** One tensor to save. */
export interface TorchSaveTensor {
  /** Storage dtype; default f32. */
  readonly dtype?: FloatDType;
  readonly shape: readonly number[];
  /** The storage's values: the tensor row-major, or the whole storage when `stride`/`storageOffset` are given. */
  readonly data: ArrayLike<number>;
  /** Element strides; default row-major contiguous. */
  readonly stride?: readonly number[];
  readonly storageOffset?: number;
}

/** Options of {@link saveTorchCheckpoint}. */
export interface TorchSaveOptions {
  /** Top folder of the archive; torch uses the file's stem. Default "archive". */
  readonly archiveName?: string;
  /** Wrap each tensor in `nn.Parameter` (as the official gate files do). Default true. */
  readonly asParameters?: boolean;
}

const STORAGE_NAME = Object.fromEntries(Object.entries(TORCH_STORAGE_DTYPES).map(([name, dtype]) => [dtype, name]));
const utf8 = new TextEncoder();

/** Emits the few protocol-2 opcodes a dict of tensors needs. */
class PickleEmitter {
  readonly bytes: number[] = [];
  op(...codes: number[]): this {
    this.bytes.push(...codes);
    return this;
  }
  str(s: string): this {
    const b = utf8.encode(s);
    this.op(0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24); // BINUNICODE
    return this.op(...b);
  }
  int(n: number): this {
    if (n < 0x100) return this.op(0x4b, n); // BININT1
    if (n < 0x10000) return this.op(0x4d, n & 0xff, n >> 8); // BININT2
    if (n < 0x80000000) return this.op(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24); // BININT
    const b: number[] = []; // LONG1, little-endian, with a clear sign bit
    for (let v = BigInt(n); v > 0n || (b.at(-1) ?? 0) & 0x80; v >>= 8n) b.push(Number(v & 0xffn));
    return this.op(0x8a, b.length, ...b);
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...utf8.encode(`${module}\n${name}\n`));
  }
  tuple(values: readonly number[]): this {
    this.op(0x28); // MARK
    for (const v of values) this.int(v);
    return this.op(0x74); // TUPLE
  }
  emptyOrderedDict(): this {
    return this.global("collections", "OrderedDict").op(0x29, 0x52); // EMPTY_TUPLE REDUCE
  }
}

/** Serializes tensors to the bytes of a `.pt` file. */
export function saveTorchCheckpoint(tensors: Iterable<readonly [string, TorchSaveTensor]>, options: TorchSaveOptions = {}): Uint8Array {
  const archive = options.archiveName ?? "archive";
  const asParameters = options.asParameters ?? true;
  const p = new PickleEmitter().op(0x80, 2, 0x7d, 0x28); // PROTO 2, EMPTY_DICT, MARK
  const storages: Array<{ name: string; data: Uint8Array }> = [];
  for (const [name, t] of tensors) {
    const dtype = t.dtype ?? "f32";
    const key = String(storages.length);
    const stride = t.stride ?? t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    storages.push({ name: `${archive}/data/${key}`, data: encodeFloatsLE(t.data, dtype) });
    p.str(name);
    if (asParameters) p.global("torch._utils", "_rebuild_parameter");
    p.global("torch._utils", "_rebuild_tensor_v2").op(0x28); // MARK
    p.op(0x28).str("storage").global("torch", STORAGE_NAME[dtype]!).str(key).str("cpu").int(t.data.length).op(0x74, 0x51); // TUPLE BINPERSID
    p.int(t.storageOffset ?? 0).tuple(t.shape).tuple(stride).op(0x89).emptyOrderedDict(); // NEWFALSE
    p.op(0x74, 0x52); // TUPLE REDUCE
    if (asParameters) p.op(0x88).emptyOrderedDict().op(0x87, 0x52); // NEWTRUE, hooks, TUPLE3 REDUCE
  }
  p.op(0x75, 0x2e); // SETITEMS STOP
  return writeStoredZip([
    { name: `${archive}/data.pkl`, data: Uint8Array.from(p.bytes) },
    { name: `${archive}/byteorder`, data: utf8.encode("little") },
    ...storages,
    { name: `${archive}/version`, data: utf8.encode("3\n") },
  ]);
}
