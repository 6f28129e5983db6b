/**
 * @module gate/pickle
 *
 * A safe reader for the small subset of Python pickle that `torch.save` writes
 * for a dict of tensors (protocol 2, also the framing of protocols 4-5).
 * It interprets opcodes on a value stack but never runs anything: a GLOBAL
 * resolves only to an entry of the caller's allowlist, REDUCE only calls that
 * entry's TypeScript stand-in, and a persistent id only goes to the caller's
 * `persistentLoad`. Every other opcode or global is refused with an
 * {@link UnsafePickleError} naming the file, opcode and byte offset.
 *
 * Python values map to: None/bool/int/str -> null/boolean/number|bigint/string,
 * list -> array, tuple -> {@link PickleTuple}, dict/OrderedDict -> Map.
 */
import { GateFormatError, UnsafePickleError } from "./errors.js";

/** A Python tuple (lists are plain arrays; keeping tuples distinct refuses APPEND to one). */
export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** An allowed global (`module.name`), as pushed by GLOBAL. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly def: PickleGlobalDef,
  ) {}
}

/** A value built by an allowed global's stand-in; `type` tells the caller how to read `value`. */
export class PickleObject<T = unknown> {
  constructor(
    readonly type: string,
    readonly value: T,
  ) {}
}

/** Values usable as dict keys: Python's hashable scalars. */
export type PickleKey = string | number | bigint | boolean | null;
/** Any value the reader can produce. */
export type PickleValue = PickleKey | PickleValue[] | PickleTuple | Map<PickleKey, PickleValue> | PickleGlobal | PickleObject;

/** Raises a one-line {@link GateFormatError} that names the file and the byte offset. */
export type PickleFail = (why: string) => never;

/** The TypeScript stand-in for one allowed Python global. */
export interface PickleGlobalDef {
  /** Run by REDUCE with the argument tuple. Absent: the global is data only (e.g. a storage type). */
  readonly call?: (args: readonly PickleValue[], fail: PickleFail) => PickleValue;
}

/** What the caller allows. */
export interface UnpickleOptions {
  /** Allowed globals by `"module name"` (the two lines of a GLOBAL opcode). */
  readonly globals: ReadonlyMap<string, PickleGlobalDef>;
  /** Resolves a BINPERSID id; absent: persistent ids are refused. */
  readonly persistentLoad?: (pid: PickleValue, fail: PickleFail) => PickleValue;
}

/** Python builtins every checkpoint may use: `OrderedDict()` (as torch writes it, no arguments). */
export const PYTHON_GLOBALS: ReadonlyMap<string, PickleGlobalDef> = new Map([
  ["collections OrderedDict", { call: (args, fail) => (args.length === 0 ? new Map() : fail("OrderedDict with arguments")) }],
]);

// Names of the refused opcodes, for the error message (protocols 0-5).
const OPCODE_NAMES: Record<string, string> = Object.fromEntries(
  ("0POP 1POP_MARK 2DUP FFLOAT IINT LLONG PPERSID SSTRING TBINSTRING USHORT_BINSTRING VUNICODE dDICT gGET iINST " +
    "lLIST oOBJ pPUT GBINFLOAT BBINBYTES CSHORT_BINBYTES").split(" ").map((s) => [s.charCodeAt(0), s.slice(1)]),
);
Object.assign(OPCODE_NAMES, {
  0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x8b: "LONG4", 0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8", 0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX",
  0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
});

const utf8 = new TextDecoder("utf-8", { fatal: true });
/**
 * Opcodes one pickle may run. A gate's data.pkl runs ~20 a tensor (a few
 * thousand for a 70B model's gate and its optimizer state); the bound keeps a
 * hostile stream from growing the stack, the memo or a list without end
 * (150M pushes took 2 GB and then killed V8 with a fatal size error).
 */
export const MAX_PICKLE_OPS = 1 << 20;
const MODULE_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads one pickle. `source` names it in errors (e.g. `"gate.pt (data.pkl)"`).
 * Throws {@link UnsafePickleError} for anything outside the subset and
 * {@link GateFormatError} for a malformed stream.
 */
export function unpickle(bytes: Uint8Array, source: string, options: UnpickleOptions): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PickleValue[] = [];
  const marks: number[] = []; // stack heights at each open MARK
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let at = 0; // offset of the opcode being run, for messages
  const fail: PickleFail = (why) => {
    throw new GateFormatError(`${source}: malformed pickle at byte ${at}: ${why}`);
  };
  const need = (n: number): number => {
    if (pos + n > bytes.length) fail("truncated");
    const p = pos;
    pos += n;
    return p;
  };
  const pop = (): PickleValue => {
    if (stack.length <= (marks.at(-1) ?? 0)) fail("stack underflow");
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    if (stack.length <= (marks.at(-1) ?? 0)) fail("stack underflow");
    return stack[stack.length - 1]!;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) fail("no MARK");
    return stack.splice(m!);
  };
  const str = (n: number): string => {
    const p = need(n);
    try {
      return utf8.decode(bytes.subarray(p, pos));
    } catch {
      return fail("string is not valid UTF-8");
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 256) fail("unterminated GLOBAL");
    const s = String.fromCharCode(...bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const global = (module: string, name: string): PickleGlobal => {
    // NOTE: the allowlist is keyed "module name"; both parts must be plain Python
    // names so that no other (module, name) pair can spell an allowed key, and a
    // dotted name (which Python resolves attribute by attribute) is never looked up.
    const canLookUp = MODULE_RE.test(module) && NAME_RE.test(name);
    const def = canLookUp ? (options.globals.get(`${module} ${name}`) ?? PYTHON_GLOBALS.get(`${module} ${name}`)) : undefined;
    if (!def) {
      const shown = canLookUp ? `'${module}.${name}'` : JSON.stringify(`${module}.${name}`); // quoted: it may hold a newline
      throw new UnsafePickleError(
        `${source}: pickle global ${shown} at byte ${at} is not allowed; only the tensor-rebuild globals of a torch.save'd dict of tensors are read`,
      );
    }
    return new PickleGlobal(module, name, def);
  };
  const setItems = (dict: PickleValue, items: PickleValue[]): void => {
    if (!(dict instanceof Map) || items.length % 2) fail("SETITEM(S) needs a dict and key/value pairs");
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]!;
      if (key !== null && typeof key === "object") fail("unsupported dict key type");
      // NOTE: Python keeps the last of two equal keys; a file that names one tensor twice is refused instead.
      if ((dict as Map<PickleKey, PickleValue>).has(key as PickleKey)) fail(`dict key ${JSON.stringify(String(key))} is set twice`);
      (dict as Map<PickleKey, PickleValue>).set(key as PickleKey, items[i + 1]!);
    }
  };
  const appendItems = (list: PickleValue, items: PickleValue[]): void => {
    if (!Array.isArray(list)) fail("APPEND(S) needs a list");
    for (const item of items) (list as PickleValue[]).push(item); // no spread: items may exceed the argument limit
  };

  for (let ops = 1; ; ops++) {
    at = pos;
    if (ops > MAX_PICKLE_OPS) fail(`more than ${MAX_PICKLE_OPS} opcodes; a checkpoint of tensors runs far fewer`);
    const op = bytes[need(1)]!;
    switch (op) {
      case 0x80: if (bytes[need(1)]! > 5) fail(`unknown protocol ${bytes[pos - 1]}`); break; // PROTO
      case 0x95: need(8); break; // FRAME: the framed opcodes follow inline
      case 0x2e: return pop(); // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(new PickleTuple([])); break; // EMPTY_TUPLE
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(bytes[need(1)]!); break; // BININT1
      case 0x4d: stack.push(view.getUint16(need(2), true)); break; // BININT2
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement
        const n = bytes[need(1)]!;
        const p = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[p + i]!);
        if (n > 0 && bytes[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x58: stack.push(str(view.getUint32(need(4), true))); break; // BINUNICODE
      case 0x8c: stack.push(str(bytes[need(1)]!)); break; // SHORT_BINUNICODE
      case 0x74: stack.push(new PickleTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PickleTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push(new PickleTuple([pop(), b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push(new PickleTuple([pop(), b, c])); break; } // TUPLE3
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x71: memo.set(bytes[need(1)]!, top()); break; // BINPUT
      case 0x72: memo.set(view.getUint32(need(4), true), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? bytes[need(1)]! : view.getUint32(need(4), true);
        if (!memo.has(i)) fail(`memo ${i} unset`);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL (protocol 4): the same allowlist
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE: only an allowed global's stand-in
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PickleGlobal) || !(args instanceof PickleTuple)) fail("REDUCE needs a global and a tuple");
        const { def, module, name } = fn as PickleGlobal;
        if (!def.call) throw new UnsafePickleError(`${source}: pickle global '${module}.${name}' at byte ${at} is data, not callable`);
        stack.push(def.call((args as PickleTuple).items, fail));
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) throw new UnsafePickleError(`${source}: pickle persistent id at byte ${at} is not allowed here`);
        stack.push(options.persistentLoad(pid, fail));
        break;
      }
      case 0x62: { // BUILD: only the attribute state of a dict (a state_dict's `_metadata`), which is dropped
        const state = pop();
        const harmless = (s: PickleValue): boolean => s === null || s instanceof Map;
        const ok = state instanceof PickleTuple ? state.items.every(harmless) : harmless(state);
        if (!(top() instanceof Map) || !ok) throw new UnsafePickleError(`${source}: pickle BUILD at byte ${at} on a non-dict is not allowed`);
        break;
      }
      default: {
        const name = OPCODE_NAMES[op] ?? "unknown";
        throw new UnsafePickleError(
          `${source}: pickle opcode ${name} (0x${op.toString(16).padStart(2, "0")}) at byte ${at} is not allowed; only the subset torch.save writes for a dict of tensors is read`,
        );
      }
    }
  }
}
