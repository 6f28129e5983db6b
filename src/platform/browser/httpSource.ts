/**
 * @module platform/browser/httpSource
 *
 * FileSource over HTTP: a model folder served at a base URL (`wgkv web`, a
 * static file server, a CDN), read with fetch. Weights are read by Range
 * requests, a tensor at a time, so a model larger than one response never
 * sits whole in memory. Every failure is a one-line ModelLoadError naming
 * the URL.
 */
import { causeText, ModelLoadError } from "../../errors.js";
import type { FileSource } from "../../io/fileSource.js";

/** tokenizer.json is the largest text file of a model folder, tens of megabytes at most. */
const MAX_TEXT_BYTES = 256 * 1024 * 1024;

export interface HttpSourceOptions {
  /** The fetch to use (default: globalThis.fetch), e.g. one that adds credentials. */
  readonly fetch?: typeof fetch;
}

/** A FileSource reading `<baseUrl>/<name>`; relative base URLs resolve against the page. */
export function createHttpSource(baseUrl: string, options: HttpSourceOptions = {}): FileSource {
  const pageBase = typeof location !== "undefined" ? location.href : undefined;
  let base: string;
  try {
    base = new URL(baseUrl, pageBase).href;
  } catch {
    throw new ModelLoadError(`${baseUrl}: not a URL`);
  }
  if (!base.endsWith("/")) base += "/";
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  // NOTE: exists() and size() ask the same HEAD; loading asks it several times per file
  const heads = new Map<string, Promise<number | null>>();

  const urlOf = (name: string) => base + name.split("/").map(encodeURIComponent).join("/");

  async function request(name: string, init: RequestInit): Promise<Response> {
    const url = urlOf(name);
    try {
      return await doFetch(url, init);
    } catch (err) {
      throw new ModelLoadError(`${url}: cannot fetch (${causeText(err)})`, { cause: err });
    }
  }

  const failed = (name: string, r: Response) => new ModelLoadError(`${urlOf(name)}: HTTP ${r.status}${r.statusText ? ` ${r.statusText}` : ""}`);

  /** The file's size, or null when the server says it has no such file. */
  function head(name: string): Promise<number | null> {
    let size = heads.get(name);
    if (!size) {
      size = (async () => {
        const r = await request(name, { method: "HEAD" });
        if (r.status === 404 || r.status === 410) return null;
        if (!r.ok) throw failed(name, r);
        const length = Number(r.headers.get("content-length") ?? NaN);
        if (!Number.isSafeInteger(length) || length < 0) throw new ModelLoadError(`${urlOf(name)}: the server sent no Content-Length`);
        return length;
      })();
      heads.set(name, size);
      size.catch(() => heads.delete(name));
    }
    return size;
  }

  async function bytesOf(name: string, r: Response): Promise<Uint8Array> {
    try {
      return new Uint8Array(await r.arrayBuffer());
    } catch (err) {
      throw new ModelLoadError(`${urlOf(name)}: the download failed (${causeText(err)})`, { cause: err });
    }
  }

  return {
    label: base.slice(0, -1),
    async exists(name) {
      return (await head(name)) !== null;
    },
    async size(name) {
      const size = await head(name);
      if (size === null) throw new ModelLoadError(`${urlOf(name)}: HTTP 404 (file is missing)`);
      return size;
    },
    async readRange(name, offset, length) {
      if (length === 0) return new Uint8Array(0);
      const r = await request(name, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
      // NOTE: a range that starts at or past the end of the file is "not satisfiable": nothing is there
      if (r.status === 416) {
        await r.body?.cancel();
        return new Uint8Array(0);
      }
      if (!r.ok) throw failed(name, r);
      const bytes = await bytesOf(name, r);
      // NOTE: a server that ignores Range answers 200 with the whole file: take the part asked for
      const part = r.status === 206 ? bytes : bytes.subarray(offset, offset + length);
      if (r.status === 206 && part.length > length) throw new ModelLoadError(`${urlOf(name)}: asked for ${length} bytes at ${offset}, the server sent ${part.length}`);
      return part;
    },
    async readText(name) {
      const r = await request(name, {});
      if (!r.ok) throw failed(name, r);
      const length = Number(r.headers.get("content-length") ?? 0);
      if (length > MAX_TEXT_BYTES) {
        await r.body?.cancel();
        throw new ModelLoadError(`${urlOf(name)}: ${length} bytes, more than the ${MAX_TEXT_BYTES} a text file of a model may have`);
      }
      return new TextDecoder().decode(await bytesOf(name, r));
    },
  };
}
