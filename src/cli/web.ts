/**
 * @module cli/web
 *
 * `wgkv web`: serves a page that runs the model in the browser on WebGPU
 * (cli/webApp.ts, web/webPage.ts). The server computes nothing: it hands
 * out the page, the browser bundle and the model's files, and the browser
 * loads them over HTTP. Everything the page will need is checked here first
 * (the folder, its config, the gate against it, the bundle), so a mistake is
 * one line in the terminal rather than an error in a browser tab.
 */
import { Command } from "commander";
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { causeText, InvalidInputError, ModelLoadError } from "../errors.js";
import { DEFAULT_MODEL_DIR } from "../index.js";
import { parseKvMemory } from "../engine/engineConfig.js";
import { loadGate } from "../gate/gateFile.js";
import { parseModelConfig } from "../model/config.js";
import { readGateFile } from "../platform/node/gateFileRead.js";
import { createFolderSource } from "../platform/node/fileSource.js";
import { parseIntFlag } from "./common.js";
import { listen } from "./serve.js";
import { createWebApp } from "./webApp.js";

interface WebFlags {
  model: string;
  gate?: string;
  host: string;
  port: string;
  kvMemory?: string;
}

/** dist/browser, beside this file's dist/cli. */
const BROWSER_DIR = fileURLToPath(new URL("../browser/", import.meta.url));

export function webCommand(): Command {
  return new Command("web")
    .description("serve a page that runs the model in the browser on WebGPU: a prompt box, the streamed answer, tokens/s, the admitted fraction and KV memory")
    .option("--model <dir>", "Hugging Face model folder, served to the page", DEFAULT_MODEL_DIR)
    .option("--gate <file>", "write-gate checkpoint (.pt official layout or wgkv safetensors) the page generates with (default: none, full attention)")
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free port; the address is printed)", "8080")
    .option("--kv-memory <size>", "KV page pool on the GPU: bytes (512MiB, 2GB) or a fraction of what it can allocate (0.5); default: a quarter, at most 1 GiB")
    .action(async (flags: WebFlags) => {
      const port = parseIntFlag("--port", flags.port, 0)!;
      if (port > 65535) throw new InvalidInputError(`--port must be at most 65535, got "${flags.port}"`);
      if (flags.host.trim() === "") throw new InvalidInputError("--host is empty");
      if (flags.kvMemory !== undefined) {
        try {
          parseKvMemory(flags.kvMemory, Number.MAX_SAFE_INTEGER);
        } catch {
          throw new InvalidInputError(`--kv-memory must be bytes (536870912, 512MiB, 2GB) or a fraction in (0, 1], got "${flags.kvMemory}"`);
        }
      }
      const modelFiles = listModelFiles(flags.model);
      // NOTE: through the folder source: its size cap and one-line errors
      const config = parseModelConfig(await createFolderSource(flags.model).readText("config.json"), join(flags.model, "config.json"));
      if (flags.gate !== undefined) {
        if (flags.gate.trim() === "") throw new InvalidInputError("--gate is empty; give the path of a gate file");
        loadGate(await readGateFile(flags.gate), flags.gate, { numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim });
      }
      for (const bundle of ["wgkv.js", "web-page.js"]) {
        if (!existsSync(join(BROWSER_DIR, bundle))) throw new InvalidInputError(`${join(BROWSER_DIR, bundle)} is missing: build the browser bundle first (npm run build)`);
      }
      const modelName = basename(resolve(flags.model));
      const app = createWebApp({ modelName, modelFiles, gatePath: flags.gate ? resolve(flags.gate) : null, browserDir: BROWSER_DIR, kvMemory: flags.kvMemory ?? null });
      const server = await listen((req) => (hostAllowed(req.headers.get("host"), flags.host) ? app.fetch(req) : misdirected()), flags.host, port);
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      process.stdout.write(`wgkv web: listening on http://${flags.host.includes(":") ? `[${flags.host}]` : flags.host}:${bound} (model ${modelName}${flags.gate ? `, gate ${basename(flags.gate)}` : ""}; open it in a browser with WebGPU)\n`);
      const stop = () => server.close(() => process.exit(0));
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    });
}

/** What a page loads from a model folder: configs, tokenizer, chat template, weights; nothing else is served. */
const MODEL_FILE = /^(?:(?:config|generation_config|tokenizer|tokenizer_config|special_tokens_map|model\.safetensors\.index)\.json|chat_template\.jinja|[^/\\]+\.safetensors)$/;

/**
 * The model files directly in the folder, by name: what the page may fetch. A link is followed only
 * into the folder or the Hugging Face cache's blobs beside its snapshots (snapshots/REV/file ->
 * ../../blobs/SHA), so a folder cannot hand out ~/.ssh through a link named tokenizer.json.
 */
function listModelFiles(dir: string): Map<string, string> {
  if (dir.trim() === "") throw new InvalidInputError("--model is empty; give the path of a Hugging Face model folder");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(`${dir}: ${code === "ENOENT" ? "model folder not found" : code === "ENOTDIR" ? "not a folder (expected a Hugging Face model folder)" : `cannot read the model folder (${code ?? causeText(err)})`}`);
  }
  const root = realpathSync(dir);
  const bases = basename(dirname(root)) === "snapshots" ? [root, resolve(root, "../../blobs")] : [root];
  const inside = (path: string) => bases.some((base) => path.startsWith(base + sep));
  const files = new Map<string, string>();
  for (const name of names.filter((n) => MODEL_FILE.test(n))) {
    const path = resolve(dir, name);
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      continue; // a dangling link
    }
    if (!statSync(real).isFile()) continue;
    if (!inside(real)) throw new ModelLoadError(`${path}: links outside the model folder (to ${real}); wgkv web serves only files inside it`);
    files.set(name, real);
  }
  if (!files.has("config.json")) throw new ModelLoadError(`${join(dir, "config.json")}: file is missing (is ${dir} a model folder?)`);
  return files;
}

/**
 * Whether a request's Host names this server: localhost, a loopback address or the address it listens
 * on. A page on another site that rebinds its DNS name to 127.0.0.1 sends its own name and is refused.
 * Listening on every interface (0.0.0.0, ::) is a choice to be reached by any name.
 */
export function hostAllowed(hostHeader: string | null, listenHost: string): boolean {
  if (listenHost === "0.0.0.0" || listenHost === "::") return true;
  if (hostHeader === null) return false;
  const name = hostHeader.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return ["localhost", "127.0.0.1", "::1", listenHost.toLowerCase()].includes(name);
}

function misdirected(): Response {
  return new Response("wgkv web: this server answers only to localhost, 127.0.0.1 or the address it listens on\n", { status: 421, headers: { "content-type": "text/plain" } });
}
