/**
 * @module gate/torchCheckpoint
 *
 * Reads a PyTorch checkpoint as `torch.save` writes it (zip format, PyTorch
 * >= 1.6) when it holds a flat dict of tensors or `nn.Parameter`s: the dict is
 * pickled in `<prefix>/data.pkl`, each storage's raw bytes sit in
 * `<prefix>/data/<key>`, and `<prefix>/byteorder` says their byte order.
 *
 * The pickle goes through the safe reader of `./pickle.ts` with exactly the
 * globals such a file uses; tensors are rebuilt from (storage, offset, size,
 * stride) and widened to f32.
 */
import { FLOAT_DTYPE_BYTES, decodeFloats, type FloatDType } from "../util/floats.js";
import { isZip, readStoredEntry, readZipDirectory, ZipFormatError } from "../util/zip.js";
import { GateFormatError } from "./errors.js";
import { PickleGlobal, PickleObject, PickleTuple, unpickle, type PickleFail, type PickleGlobalDef, type PickleValue } from "./pickle.js";

/** A tensor read from a checkpoint: its stored dtype, its shape, and its values widened to f32 (row-major). */
export interface CheckpointTensor {
  readonly dtype: FloatDType;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** The storage types a tensor may live in, by their `torch.<Name>` global. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, FloatDType>> = {
  FloatStorage: "f32",
  BFloat16Storage: "bf16",
  HalfStorage: "f16",
  DoubleStorage: "f64",
};

interface StorageRef {
  readonly dtype: FloatDType;
  readonly key: string;
  readonly numel: number;
}

interface TensorRef {
  readonly storage: StorageRef;
  readonly offset: number;
  readonly shape: number[];
  readonly stride: number[];
}

const isCount = (v: PickleValue): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

function counts(v: PickleValue | undefined, what: string, fail: PickleFail): number[] {
  if (!(v instanceof PickleTuple) || !v.items.every(isCount)) fail(`${what} is not a tuple of non-negative ints`);
  return [...(v as PickleTuple).items] as number[];
}

function tensorArg(v: PickleValue | undefined, fail: PickleFail): TensorRef {
  if (!(v instanceof PickleObject) || v.type !== "tensor") return fail("_rebuild_parameter of a non-tensor");
  return v.value as TensorRef;
}

/** The globals a torch.save'd dict of tensors uses, with their stand-ins. */
const TORCH_GLOBALS: ReadonlyMap<string, PickleGlobalDef> = new Map<string, PickleGlobalDef>([
  [
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    "torch._utils _rebuild_tensor_v2",
    {
      call: (args, fail) => {
        const storage = args[0];
        if (!(storage instanceof PickleObject) || storage.type !== "storage") fail("tensor without a storage");
        if (args.length < 6 || args.length > 7 || !isCount(args[1]!)) fail("unexpected _rebuild_tensor_v2 arguments");
        const shape = counts(args[2], "tensor size", fail);
        const stride = counts(args[3], "tensor stride", fail);
        if (shape.length !== stride.length) fail("tensor size and stride differ in rank");
        const ref: TensorRef = { storage: (storage as PickleObject<StorageRef>).value, offset: args[1] as number, shape, stride };
        return new PickleObject("tensor", ref);
      },
    },
  ],
  // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its tensor here.
  ["torch._utils _rebuild_parameter", { call: (args, fail) => new PickleObject("tensor", tensorArg(args[0], fail)) }],
  ...Object.keys(TORCH_STORAGE_DTYPES).map((name): [string, PickleGlobalDef] => [`torch ${name}`, {}]),
]);

/** persistent_id = ('storage', StorageType, key, location, numel). */
function loadStorage(pid: PickleValue, fail: PickleFail): PickleValue {
  const items = pid instanceof PickleTuple ? pid.items : [];
  const [tag, type, key, , numel] = items;
  if (items.length !== 5 || tag !== "storage" || typeof key !== "string" || !isCount(numel!)) fail("unexpected persistent id");
  if (!(type instanceof PickleGlobal) || type.module !== "torch" || !(type.name in TORCH_STORAGE_DTYPES)) {
    return fail("storage without a torch float storage type");
  }
  const ref: StorageRef = { dtype: TORCH_STORAGE_DTYPES[type.name]!, key: key as string, numel: numel as number };
  return new PickleObject("storage", ref);
}

/** Copies the tensor's elements out of its storage bytes, in row-major order. */
function materialize(t: TensorRef, storageBytes: Uint8Array, littleEndian: boolean, where: string): Float32Array {
  const { dtype, numel, key } = t.storage;
  const itemBytes = FLOAT_DTYPE_BYTES[dtype];
  if (storageBytes.length < numel * itemBytes) {
    throw new GateFormatError(`${where}: storage data/${key} has ${storageBytes.length} bytes, expected ${numel * itemBytes}`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (count === 0) return new Float32Array(0);
  if (count > 2 ** 30) throw new GateFormatError(`${where}: tensor of ${count} elements is too large to read`);
  const last = t.shape.reduce((s, n, i) => s + (n - 1) * t.stride[i]!, t.offset);
  if (last >= numel) throw new GateFormatError(`${where}: tensor reaches past the end of storage data/${key}`);
  const span = decodeFloats(storageBytes, t.offset * itemBytes, last - t.offset + 1, dtype, littleEndian);
  let contiguous = true;
  for (let d = t.shape.length - 1, expect = 1; d >= 0; d--) {
    if (t.shape[d]! > 1 && t.stride[d] !== expect) contiguous = false;
    expect *= t.shape[d]!;
  }
  if (contiguous) return span;
  // NOTE: a strided view (e.g. a saved transpose): walk the index odometer.
  const out = new Float32Array(count);
  const index = new Array<number>(t.shape.length).fill(0);
  for (let i = 0, src = 0; i < count; i++) {
    out[i] = span[src]!;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      src += t.stride[d]!;
      if (++index[d]! < t.shape[d]!) break;
      src -= t.stride[d]! * t.shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}

/**
 * Reads a `.pt` file holding a dict of tensors. Returns the tensors by name, in file order.
 * Throws {@link GateFormatError} (or its subclass `UnsafePickleError`) with a one-line
 * message naming `fileName` for anything else.
 */
export function readTorchCheckpoint(bytes: Uint8Array, fileName: string): Map<string, CheckpointTensor> {
  if (!isZip(bytes)) {
    const legacy = bytes[0] === 0x80;
    throw new GateFormatError(
      legacy
        ? `${fileName}: legacy (pre-1.6, non-zip) torch.save format is not read; re-save it with a current PyTorch`
        : `${fileName}: not a PyTorch checkpoint (no zip signature)`,
    );
  }
  try {
    const entries = readZipDirectory(bytes, fileName);
    const pkl = [...entries.keys()].find((n) => /^[^/]*\/?data\.pkl$/.test(n));
    if (pkl === undefined) throw new GateFormatError(`${fileName}: no data.pkl in the archive; not a torch.save checkpoint`);
    const prefix = pkl.slice(0, -"data.pkl".length);
    const read = (name: string): Uint8Array | undefined => {
      const entry = entries.get(prefix + name);
      return entry && readStoredEntry(bytes, entry, fileName);
    };
    const byteorder = new TextDecoder().decode(read("byteorder") ?? new TextEncoder().encode("little"));
    if (byteorder !== "little" && byteorder !== "big") throw new GateFormatError(`${fileName}: unknown byteorder '${byteorder}'`);

    const root = unpickle(read("data.pkl")!, `${fileName} (data.pkl)`, { globals: TORCH_GLOBALS, persistentLoad: loadStorage });
    if (!(root instanceof Map)) throw new GateFormatError(`${fileName}: holds a pickled ${typeof root}, expected a dict of tensors`);
    const tensors = new Map<string, CheckpointTensor>();
    for (const [name, value] of root) {
      if (typeof name !== "string" || !(value instanceof PickleObject) || value.type !== "tensor") {
        throw new GateFormatError(`${fileName}: entry '${String(name)}' is not a tensor; expected a flat dict of tensors`);
      }
      const ref = value.value as TensorRef;
      const storage = read(`data/${ref.storage.key}`);
      if (!storage) throw new GateFormatError(`${fileName}: storage data/${ref.storage.key} of '${name}' is missing`);
      const data = materialize(ref, storage, byteorder === "little", `${fileName}: '${name}'`);
      tensors.set(name, { dtype: ref.storage.dtype, shape: [...ref.shape], data });
    }
    return tensors;
  } catch (e) {
    if (e instanceof ZipFormatError) throw new GateFormatError(e.message, { cause: e });
    throw e;
  }
}
