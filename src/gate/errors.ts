/**
 * @module gate/errors
 *
 * User-facing faults of gate files. Each message is one line that names the
 * file and says what to do; the CLI and server map these classes to exit
 * codes / HTTP statuses in one place.
 */
import { WgkvError } from "../errors.js";

/** A gate file that cannot be read: malformed, truncated, or an unsupported layout or dtype. */
export class GateFormatError extends WgkvError {
  override name = "GateFormatError";
}

/**
 * A pickle (inside a `.pt` file) that uses an opcode or a global outside the
 * small subset that `torch.save` writes for a dict of tensors. Such a file is
 * refused, never executed.
 */
export class UnsafePickleError extends GateFormatError {
  override name = "UnsafePickleError";
}

/** A well-formed gate whose tensors do not fit the model (wrong layer count, KV heads or head dim). */
export class GateShapeError extends WgkvError {
  override name = "GateShapeError";
}

/** A name read from a file, quoted for a one-line message: as is when short and printable, else JSON-escaped and cut. */
export function quoteName(name: string): string {
  return /^[\x20-\x26\x28-\x7e]{1,200}$/.test(name) ? `'${name}'` : JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
}
