/**
 * @module errors
 *
 * User-facing errors: a bad file, flag or input. Each carries a one-line
 * message naming what is wrong and where; the CLI prints `error: <message>`
 * and exits non-zero without a stack trace. Anything else thrown is a bug.
 */

/** Base class of every error caused by the user's input rather than by wgkv. */
export class WgkvError extends Error {
  override readonly name: string = "WgkvError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A model folder, config or weight file is missing or malformed. */
export class ModelLoadError extends WgkvError {
  override readonly name = "ModelLoadError";
}

/** The model's architecture or one of its settings is not implemented. */
export class UnsupportedModelError extends WgkvError {
  override readonly name = "UnsupportedModelError";
}

/** The model is too large for the chosen backend (e.g. over the CPU backend's 4 GiB memory). */
export class ModelTooLargeError extends WgkvError {
  override readonly name = "ModelTooLargeError";
}

/** Bad request: token ids out of range, prompt too long, bad sampling options. */
export class InvalidInputError extends WgkvError {
  override readonly name = "InvalidInputError";
}

/**
 * The message of a caught error (a JSON.parse or library failure) folded onto
 * one line, to quote inside a WgkvError: V8 quotes the offending JSON text,
 * which may hold newlines.
 */
export function causeText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/** True for errors whose message is meant for the user as it is. */
export function isUserError(err: unknown): err is WgkvError {
  return err instanceof WgkvError;
}

/** A value as an error message shows it: JSON where it has one, else its own spelling (NaN, Infinity, undefined, 1n). */
export function shownValue(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint" || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
