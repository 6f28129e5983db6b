/**
 * @module gate/torchCheckpoint
 *
 * Reads a PyTorch checkpoint as `torch.save` writes it (zip format, PyTorch
 * >= 1.6) when it holds a flat dict of tensors or `nn.Parameter`s: the dict is
 * pickled in `<prefix>/data.pkl`, each storage's raw bytes sit in
 * `<prefix>/data/<key>`, and `<prefix>/byteorder` says their byte order.
 *
 * The pickle goes through the safe reader of `./pickle.ts` with exactly the
 * globals such a file uses. Every tensor's view (storage, offset, size,
 * stride) is checked against its storage's bytes before any value is read
 * (`./tensorView.ts`), so a caller can check names and shapes next and only
 * then pay for the values, which are widened to f32.
 */
import { FLOAT_DTYPE_BYTES, type FloatDType } from "../util/floats.js";
import { isZip, readStoredEntry, readZipDirectory, ZipFormatError } from "../util/zip.js";
import { GateFormatError, quoteName } from "./errors.js";
import { PickleGlobal, PickleObject, PickleTuple, unpickle, type PickleFail, type PickleGlobalDef, type PickleValue } from "./pickle.js";
import { copyView, viewNumel, viewProblem } from "./tensorView.js";

/** A tensor read from a checkpoint: its stored dtype, its shape, and its values widened to f32 (row-major). */
export interface CheckpointTensor {
  readonly dtype: FloatDType;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * A tensor of a checkpoint whose view has been checked against its storage
 * but whose values have not been read: `load()` costs at most the storage's
 * own bytes, so a caller can check names and shapes first for free.
 */
export interface CheckpointTensorRef {
  readonly dtype: FloatDType;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly storageOffset: number;
  /** The storage's key: its bytes are `data/<key>` in the archive. */
  readonly storageKey: string;
  /** Reads the values, row-major, widened to f32. */
  load(): Float32Array;
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
  if (!(type instanceof PickleGlobal) || type.module !== "torch" || !Object.hasOwn(TORCH_STORAGE_DTYPES, type.name)) {
    return fail("storage without a torch float storage type");
  }
  const ref: StorageRef = { dtype: TORCH_STORAGE_DTYPES[type.name]!, key: key as string, numel: numel as number };
  return new PickleObject("storage", ref);
}

/**
 * Reads a `.pt` file holding a dict of tensors and checks every tensor's view
 * against its storage, reading no values: the result's `load()`s together
 * cost at most the bytes of the file's storages. Returns the tensors by name,
 * in file order. Throws {@link GateFormatError} (or its subclass
 * `UnsafePickleError`) with a one-line message naming `fileName` for anything else.
 */
export function indexTorchCheckpoint(bytes: Uint8Array, fileName: string): Map<string, CheckpointTensorRef> {
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
    if (byteorder !== "little" && byteorder !== "big") throw new GateFormatError(`${fileName}: unknown byteorder ${JSON.stringify(byteorder.slice(0, 20))}`);
    const littleEndian = byteorder === "little";

    const root = unpickle(read("data.pkl")!, `${fileName} (data.pkl)`, { globals: TORCH_GLOBALS, persistentLoad: loadStorage });
    if (!(root instanceof Map)) throw new GateFormatError(`${fileName}: holds a pickled ${typeof root}, expected a dict of tensors`);
    const storages = new Map<string, { ref: StorageRef; bytes: Uint8Array }>();
    const tensors = new Map<string, CheckpointTensorRef>();
    let numTensorElements = 0;
    for (const [name, value] of root) {
      if (typeof name !== "string" || !(value instanceof PickleObject) || value.type !== "tensor") {
        throw new GateFormatError(`${fileName}: entry ${quoteName(String(name))} is not a tensor; expected a flat dict of tensors`);
      }
      const t = value.value as TensorRef;
      const storage = storageOf(t.storage, storages, read, `${fileName}: ${quoteName(name)}`);
      const problem = viewProblem(t, t.storage.numel);
      if (problem) throw new GateFormatError(`${fileName}: ${quoteName(name)} ${problem} (data/${t.storage.key})`);
      numTensorElements += viewNumel(t);
      tensors.set(name, {
        dtype: t.storage.dtype,
        shape: t.shape,
        stride: t.stride,
        storageOffset: t.offset,
        storageKey: t.storage.key,
        load: () => copyView(t, storage, t.storage.dtype, littleEndian),
      });
    }
    // NOTE: views that overlap, or many tensors over one storage, would make reading cost more than the file holds.
    const numStorageElements = [...storages.values()].reduce((sum, s) => sum + s.ref.numel, 0);
    if (numTensorElements > numStorageElements) {
      throw new GateFormatError(`${fileName}: its tensors hold ${numTensorElements} elements but its storages only ${numStorageElements}; views overlap or repeat storage`);
    }
    return tensors;
  } catch (e) {
    if (e instanceof ZipFormatError) throw new GateFormatError(e.message, { cause: e });
    throw e;
  }
}

/** A storage's bytes, read once; every tensor that names it must agree on its dtype and size, and the bytes must be exactly that size. */
function storageOf(
  ref: StorageRef,
  storages: Map<string, { ref: StorageRef; bytes: Uint8Array }>,
  read: (name: string) => Uint8Array | undefined,
  where: string,
): Uint8Array {
  const known = storages.get(ref.key);
  if (known) {
    if (known.ref.dtype !== ref.dtype || known.ref.numel !== ref.numel) {
      throw new GateFormatError(`${where}: storage data/${ref.key} is named as ${ref.numel} ${ref.dtype} and elsewhere as ${known.ref.numel} ${known.ref.dtype}`);
    }
    return known.bytes;
  }
  if (!/^[0-9A-Za-z_.-]{1,64}$/.test(ref.key) || ref.key.startsWith(".")) throw new GateFormatError(`${where}: storage key ${JSON.stringify(ref.key.slice(0, 80))} is not a plain name`);
  const bytes = read(`data/${ref.key}`);
  if (!bytes) throw new GateFormatError(`${where}: storage data/${ref.key} is missing`);
  const expected = ref.numel * FLOAT_DTYPE_BYTES[ref.dtype];
  if (bytes.length !== expected) {
    throw new GateFormatError(`${where}: storage data/${ref.key} has ${bytes.length} bytes but is declared as ${ref.numel} ${ref.dtype} elements (${expected} bytes)`);
  }
  storages.set(ref.key, { ref, bytes });
  return bytes;
}

/**
 * Reads every tensor of a `.pt` file holding a dict of tensors (see
 * {@link indexTorchCheckpoint}, which checks everything before this reads).
 */
export function readTorchCheckpoint(bytes: Uint8Array, fileName: string): Map<string, CheckpointTensor> {
  const out = new Map<string, CheckpointTensor>();
  for (const [name, t] of indexTorchCheckpoint(bytes, fileName)) out.set(name, { dtype: t.dtype, shape: t.shape, data: t.load() });
  return out;
}
