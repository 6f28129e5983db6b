/**
 * @module util/zip
 *
 * A minimal zip reader and writer for uncompressed ("stored") archives, which is
 * what `torch.save` writes: every record stored, sizes in a data descriptor
 * after the data (general-purpose flag bit 3, so the local headers carry zeros),
 * a zip64 end-of-central-directory record, and padding in local extra fields
 * to align the data. Therefore sizes and offsets come from the central
 * directory, and each entry's data starts after its *local* header's name and
 * extra field, whose lengths differ from the central directory's.
 *
 * Compressed, encrypted, multi-disk or malformed archives are refused with a
 * {@link ZipFormatError}; nothing is decompressed.
 */
import { WgkvError } from "../errors.js";

/** A zip archive that this reader cannot or will not read. */
export class ZipFormatError extends WgkvError {
  override name = "ZipFormatError";
}

/** One file in a zip archive, as the central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored; anything else is a compression method this reader refuses. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** True when the bytes start with a zip local-file-header signature (`PK\x03\x04`). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function u64(view: DataView, offset: number, fileName: string): number {
  const v = view.getBigUint64(offset, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError(`${fileName}: zip64 field ${v} is too large`);
  return Number(v);
}

/**
 * Reads the central directory. Returns the entries by name; throws
 * {@link ZipFormatError} for a truncated or inconsistent archive.
 */
export function readZipDirectory(bytes: Uint8Array, fileName: string): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new ZipFormatError(`${fileName}: not a readable zip archive (${why})`);
  };
  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 0xffff); p--) {
    if (view.getUint32(p, true) === SIG_EOCD) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail("no end-of-central-directory record; truncated download?");
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) fail("multi-disk archive");
  let numEntries = view.getUint16(eocd + 10, true);
  let dirSize = view.getUint32(eocd + 12, true);
  let dirOffset = view.getUint32(eocd + 16, true);
  const locator = eocd - 20;
  if (locator >= 0 && view.getUint32(locator, true) === SIG_ZIP64_LOCATOR) {
    const z64 = u64(view, locator + 8, fileName);
    if (z64 + 56 > bytes.length || view.getUint32(z64, true) !== SIG_ZIP64_EOCD) fail("bad zip64 end record");
    numEntries = u64(view, z64 + 32, fileName);
    dirSize = u64(view, z64 + 40, fileName);
    dirOffset = u64(view, z64 + 48, fileName);
  }
  if (dirOffset + dirSize > bytes.length) fail("central directory past the end of the file; truncated?");
  const entries = new Map<string, ZipEntry>();
  let p = dirOffset;
  for (let i = 0; i < numEntries; i++) {
    if (p + 46 > dirOffset + dirSize || view.getUint32(p, true) !== SIG_CENTRAL) fail(`bad central directory entry ${i}`);
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc32 = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localHeaderOffset = view.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > dirOffset + dirSize) fail(`central directory entry ${i} overruns the directory`);
    let name = "";
    try {
      name = utf8.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    } catch {
      fail(`entry ${i} has a name that is not UTF-8`);
    }
    // Zip64 extra field (id 1): 64-bit values for exactly the fields saturated at 0xffffffff.
    const extraEnd = p + 46 + nameLen + extraLen;
    for (let q = p + 46 + nameLen; q + 4 <= extraEnd; ) {
      const id = view.getUint16(q, true);
      const fieldEnd = q + 4 + view.getUint16(q + 2, true);
      if (fieldEnd > extraEnd) fail(`entry ${i} has an extra field past its header`);
      if (id === 1) {
        let r = q + 4;
        const next = () => {
          if (r + 8 > fieldEnd) fail(`entry ${i} has a truncated zip64 extra field`);
          r += 8;
          return u64(view, r - 8, fileName);
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
      }
      q = fieldEnd;
    }
    if (entries.has(name)) fail(`duplicate entry ${name}`);
    entries.set(name, { name, method, flags, crc32, compressedSize, size, localHeaderOffset });
    p = end;
  }
  checkDisjoint(entries, dirOffset, fail);
  return entries;
}

/**
 * Entries must not share bytes, and their data must lie before the central directory: a hostile
 * archive would otherwise name the same gigabytes many times and make a reader check them again and again.
 */
function checkDisjoint(entries: ReadonlyMap<string, ZipEntry>, dirOffset: number, fail: (why: string) => never): void {
  const sorted = [...entries.values()].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  let free = 0;
  for (const e of sorted) {
    if (e.localHeaderOffset < free) fail(`entry ${e.name} overlaps the entry before it`);
    free = e.localHeaderOffset + 30 + e.compressedSize; // a local header is at least 30 bytes
  }
  if (free > dirOffset) fail("an entry's data runs into the central directory");
}

/**
 * Returns a view (no copy) of a stored entry's data after checking its local
 * header, bounds and CRC-32. Refuses compressed and encrypted entries.
 */
export function readStoredEntry(bytes: Uint8Array, entry: ZipEntry, fileName: string): Uint8Array {
  const where = `${fileName}: zip entry ${entry.name}`;
  if (entry.flags & 1) throw new ZipFormatError(`${where} is encrypted; only plain archives are read`);
  if (entry.method !== 0) {
    throw new ZipFormatError(
      `${where} is compressed (method ${entry.method}); only stored entries are read, as torch.save writes them — re-save the file with torch.save`,
    );
  }
  if (entry.compressedSize !== entry.size) throw new ZipFormatError(`${where}: stored entry with differing sizes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = entry.localHeaderOffset;
  if (h + 30 > bytes.length || view.getUint32(h, true) !== SIG_LOCAL) {
    throw new ZipFormatError(`${where}: local header missing at offset ${h}; corrupt archive`);
  }
  const start = h + 30 + view.getUint16(h + 26, true) + view.getUint16(h + 28, true);
  if (start + entry.size > bytes.length) throw new ZipFormatError(`${where} runs past the end of the file; truncated?`);
  const data = bytes.subarray(start, start + entry.size);
  if (crc32(data) !== entry.crc32) throw new ZipFormatError(`${where} fails its CRC-32 check; corrupt file`);
  return data;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as zip uses) of the bytes. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Writes a stored (uncompressed) zip of the given files, sizes in the local
 * headers, no zip64 (each file and the whole archive must stay under 4 GiB).
 */
export function writeStoredZip(files: ReadonlyArray<{ readonly name: string; readonly data: Uint8Array }>): Uint8Array {
  const names = files.map((f) => utf8Encoder.encode(f.name));
  const crcs = files.map((f) => crc32(f.data));
  const localSize = files.reduce((s, f, i) => s + 30 + names[i]!.length + f.data.length, 0);
  const dirSize = names.reduce((s, n) => s + 46 + n.length, 0);
  if (localSize + dirSize + 22 > 0xffffffff) throw new ZipFormatError("archive too large for a zip without zip64");
  const out = new Uint8Array(localSize + dirSize + 22);
  const view = new DataView(out.buffer);
  const offsets: number[] = [];
  let p = 0;
  const header = (sig: number, i: number): void => {
    view.setUint32(p, sig, true);
    const base = sig === SIG_CENTRAL ? p + 2 : p; // central headers have an extra "version made by"
    view.setUint16(base + 4, 20, true); // version needed: 2.0
    view.setUint16(base + 6, 0x800, true); // flags: UTF-8 names
    view.setUint32(base + 14, crcs[i]!, true);
    view.setUint32(base + 18, files[i]!.data.length, true);
    view.setUint32(base + 22, files[i]!.data.length, true);
    view.setUint16(base + 26, names[i]!.length, true);
  };
  files.forEach((f, i) => {
    offsets.push(p);
    header(SIG_LOCAL, i);
    out.set(names[i]!, p + 30);
    out.set(f.data, p + 30 + names[i]!.length);
    p += 30 + names[i]!.length + f.data.length;
  });
  const dirOffset = p;
  files.forEach((_, i) => {
    header(SIG_CENTRAL, i);
    view.setUint32(p + 42, offsets[i]!, true);
    out.set(names[i]!, p + 46);
    p += 46 + names[i]!.length;
  });
  view.setUint32(p, SIG_EOCD, true);
  view.setUint16(p + 8, files.length, true);
  view.setUint16(p + 10, files.length, true);
  view.setUint32(p + 12, dirSize, true);
  view.setUint32(p + 16, dirOffset, true);
  return out;
}
