/**
 * @module testing/torchZip
 *
 * A second, independent writer of `torch.save` files for tests: the pickle
 * opcodes CPython's protocol 2 emits for a state_dict (an OrderedDict with a
 * `_metadata` attribute, memoized globals and strings, `nn.Parameter`s) and
 * the zip layout PyTorch's writer produces (local headers with zeroed sizes
 * and a data descriptor, data padded to 64 bytes through an `FB` extra field,
 * a zip64 end record). Shares no code with `gate/torchSave.ts` or
 * `util/zip.ts`, so a test that reads its output checks the reader against
 * the format rather than against the project's own writer. It also writes
 * what torch never would (shared storages, any stride or size), for hostile
 * files.
 */
import { crc32 } from "node:zlib";

/** One entry of the state dict: a view into storage `key`. */
export interface HandTensor {
  readonly name: string;
  readonly storage: { readonly key: string; readonly type: string; readonly numel: number };
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
  /** Wrap in torch._utils._rebuild_parameter (default true). */
  readonly parameter?: boolean;
}

/** Options of {@link statePickle}. */
export interface StatePickleOptions {
  /** The root: an OrderedDict with `_metadata` (default) or a plain dict. */
  readonly root?: "ordered" | "dict";
  /** Replaces `module\nname` of the GLOBAL opcodes, e.g. to spell a forbidden one. */
  readonly renameGlobal?: (module: string, name: string) => [string, string];
}

/** Protocol-2 opcodes with CPython's memo (BINPUT after each new object, BINGET on repeats). */
class Protocol2 {
  readonly out: number[] = [0x80, 2]; // PROTO 2
  readonly #memo = new Map<string, number>();
  #put(key?: string): void {
    const i = this.#memo.size;
    if (key !== undefined) this.#memo.set(key, i);
    else this.#memo.set(`#${i}`, i);
    if (i < 0x100) this.out.push(0x71, i); // BINPUT
    else this.out.push(0x72, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, i >>> 24); // LONG_BINPUT
  }
  #get(key: string): boolean {
    const i = this.#memo.get(key);
    if (i === undefined) return false;
    if (i < 0x100) this.out.push(0x68, i); // BINGET
    else this.out.push(0x6a, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, i >>> 24); // LONG_BINGET
    return true;
  }
  op(...codes: number[]): this {
    this.out.push(...codes);
    return this;
  }
  str(s: string, memoize = true): this {
    if (memoize && this.#get(`s:${s}`)) return this;
    const b = new TextEncoder().encode(s);
    this.out.push(0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24, ...b); // BINUNICODE
    if (memoize) this.#put(`s:${s}`);
    return this;
  }
  int(n: number): this {
    if (n >= 0 && n < 0x100) return this.op(0x4b, n); // BININT1
    if (n >= 0 && n < 0x10000) return this.op(0x4d, n & 0xff, n >> 8); // BININT2
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff); // BININT
    if (n < 0) throw new RangeError("statePickle writes no large negative ints");
    const bytes: number[] = []; // LONG1: little-endian, a clear top bit keeps it positive
    for (let v = BigInt(n); v > 0n || (bytes.at(-1) ?? 0x80) & 0x80; v >>= 8n) bytes.push(Number(v & 0xffn));
    return this.op(0x8a, bytes.length, ...bytes);
  }
  global(module: string, name: string): this {
    if (this.#get(`g:${module}.${name}`)) return this;
    this.out.push(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`)); // GLOBAL
    this.#put(`g:${module}.${name}`);
    return this;
  }
  tuple(values: readonly number[]): this {
    if (values.length === 0) return this.op(0x29); // EMPTY_TUPLE
    if (values.length > 3) this.op(0x28); // MARK
    for (const v of values) this.int(v);
    this.op(values.length > 3 ? 0x74 : [0x85, 0x86, 0x87][values.length - 1]!); // TUPLE / TUPLE1-3
    this.#put();
    return this;
  }
  memoize(): this {
    this.#put();
    return this;
  }
}

/** The data.pkl of a state dict of `tensors`, as CPython's pickle (protocol 2) writes torch.save's dict. */
export function statePickle(tensors: readonly HandTensor[], options: StatePickleOptions = {}): Uint8Array {
  const rename = options.renameGlobal ?? ((m, n) => [m, n]);
  const p = new Protocol2();
  const global = (module: string, name: string) => p.global(...rename(module, name));
  const emptyOrderedDict = () => global("collections", "OrderedDict").op(0x29, 0x52).memoize(); // EMPTY_TUPLE REDUCE
  if (options.root === "dict") p.op(0x7d).memoize(); // EMPTY_DICT
  else emptyOrderedDict();
  p.op(0x28); // MARK
  for (const t of tensors) {
    p.str(t.name, false).memoize();
    if (t.parameter ?? true) global("torch._utils", "_rebuild_parameter");
    global("torch._utils", "_rebuild_tensor_v2");
    p.op(0x28); // MARK (the arguments of _rebuild_tensor_v2)
    p.op(0x28).str("storage"); // MARK: the persistent id tuple
    global("torch", t.storage.type);
    p.str(t.storage.key).str("cpu").int(t.storage.numel).op(0x74).memoize().op(0x51); // TUPLE BINPERSID
    p.int(t.offset).tuple(t.size).tuple(t.stride).op(0x89); // NEWFALSE: requires_grad
    emptyOrderedDict(); // backward_hooks
    p.op(0x74).memoize().op(0x52).memoize(); // TUPLE REDUCE
    if (t.parameter ?? true) {
      p.op(0x88); // NEWTRUE: requires_grad
      emptyOrderedDict();
      p.op(0x87).memoize().op(0x52).memoize(); // TUPLE3 REDUCE
    }
  }
  p.op(0x75); // SETITEMS
  if (options.root !== "dict") {
    // state_dict()._metadata = OrderedDict({'': {'version': 1}}), restored by BUILD
    p.op(0x7d).memoize().str("_metadata");
    emptyOrderedDict();
    p.str("", false).memoize().op(0x7d).memoize().str("version").int(1).op(0x73, 0x73, 0x73, 0x62); // SETITEM x3, BUILD
  }
  p.op(0x2e); // STOP
  return Uint8Array.from(p.out);
}

/** A zip laid out as PyTorch's writer lays it out (see the module comment). */
export function torchZip(files: ReadonlyArray<{ readonly name: string; readonly data: Uint8Array }>): Uint8Array {
  const chunks: Uint8Array[] = [];
  let at = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    at += b.length;
  };
  const le = (width: 2 | 4 | 8, v: number) => {
    const b = new Uint8Array(width);
    const view = new DataView(b.buffer);
    if (width === 2) view.setUint16(0, v, true);
    else if (width === 4) view.setUint32(0, v, true);
    else view.setBigUint64(0, BigInt(v), true);
    return [...b];
  };
  const central: number[] = [];
  for (const f of files) {
    const name = new TextEncoder().encode(f.name);
    const crc = crc32(f.data);
    const offset = at;
    // Pad through an "FB" extra field so the data starts on a 64-byte boundary.
    const pad = (64 - ((offset + 30 + name.length + 4) % 64)) % 64;
    const local = [
      ...le(4, 0x04034b50), ...le(2, 0), ...le(2, 0x0808), ...le(2, 0), ...le(2, 0), ...le(2, 0),
      ...le(4, 0), ...le(4, 0), ...le(4, 0), ...le(2, name.length), ...le(2, pad + 4),
      ...name, ...le(2, 0x4246), ...le(2, pad), ...new Array<number>(pad).fill(0x5a),
    ];
    push(Uint8Array.from(local));
    push(f.data);
    push(Uint8Array.from([...le(4, 0x08074b50), ...le(4, crc), ...le(4, f.data.length), ...le(4, f.data.length)]));
    central.push(
      ...le(4, 0x02014b50), ...le(2, 0x031e), ...le(2, 0x2d), ...le(2, 0x0808), ...le(2, 0), ...le(2, 0), ...le(2, 0),
      ...le(4, crc), ...le(4, f.data.length), ...le(4, f.data.length), ...le(2, name.length), ...le(2, 0), ...le(2, 0),
      ...le(2, 0), ...le(2, 0), ...le(4, 0), ...le(4, offset), ...name,
    );
  }
  const dirOffset = at;
  push(Uint8Array.from(central));
  const zip64End = at;
  push(Uint8Array.from([
    ...le(4, 0x06064b50), ...le(8, 44), ...le(2, 0x031e), ...le(2, 0x2d), ...le(4, 0), ...le(4, 0),
    ...le(8, files.length), ...le(8, files.length), ...le(8, central.length), ...le(8, dirOffset),
  ]));
  push(Uint8Array.from([...le(4, 0x07064b50), ...le(4, 0), ...le(8, zip64End), ...le(4, 1)]));
  push(Uint8Array.from([
    ...le(4, 0x06054b50), ...le(2, 0), ...le(2, 0), ...le(2, files.length), ...le(2, files.length),
    ...le(4, central.length), ...le(4, dirOffset), ...le(2, 0),
  ]));
  const out = new Uint8Array(at);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/** A whole `.pt`: `archive/data.pkl`, the small records torch writes, and one `archive/data/<key>` per storage. */
export function torchFile(pickle: Uint8Array, storages: ReadonlyMap<string, Uint8Array>, archive = "archive"): Uint8Array {
  const text = (s: string) => new TextEncoder().encode(s);
  return torchZip([
    { name: `${archive}/data.pkl`, data: pickle },
    { name: `${archive}/.format_version`, data: text("1") },
    { name: `${archive}/.storage_alignment`, data: text("64") },
    { name: `${archive}/byteorder`, data: text("little") },
    ...[...storages].map(([key, data]) => ({ name: `${archive}/data/${key}`, data })),
    { name: `${archive}/version`, data: text("3\n") },
    { name: `${archive}/.data/serialization_id`, data: text("1234567890123456789012345678901234567890") },
  ]);
}
