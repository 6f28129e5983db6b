/**
 * @module io/fileSource
 *
 * How the engine reads a model folder without knowing the platform: Node reads
 * the file system (platform/node), a browser would fetch or read a FileList.
 */

/** Read access to the files of one folder (a model, a gate). */
export interface FileSource {
  /** Human-readable location used in error messages, e.g. the folder path. */
  readonly label: string;
  exists(name: string): Promise<boolean>;
  /** Size of the file in bytes. */
  size(name: string): Promise<number>;
  /** Reads `length` bytes at `offset`; resolves with fewer only at end of file. */
  readRange(name: string, offset: number, length: number): Promise<Uint8Array>;
  /** Reads a whole (small) file as UTF-8 text. */
  readText(name: string): Promise<string>;
}

/** Joins a folder label and a file name for messages. */
export function describeFile(source: FileSource, name: string): string {
  return source.label.endsWith("/") ? source.label + name : `${source.label}/${name}`;
}
