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
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { causeText, InvalidInputError, ModelLoadError } from "../errors.js";
import { DEFAULT_MODEL_DIR } from "../index.js";
import { parseKvMemory } from "../engine/engineConfig.js";
import { loadGate } from "../gate/gateFile.js";
import { parseModelConfig } from "../model/config.js";
import { readGateFile } from "../platform/node/gateFileRead.js";
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
      const config = parseModelConfig(await readFile(modelFiles.get("config.json")!, "utf8"), join(flags.model, "config.json"));
      if (flags.gate !== undefined) {
        if (flags.gate.trim() === "") throw new InvalidInputError("--gate is empty; give the path of a gate file");
        loadGate(await readGateFile(flags.gate), flags.gate, { numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim });
      }
      for (const bundle of ["wgkv.js", "web-page.js"]) {
        if (!existsSync(join(BROWSER_DIR, bundle))) throw new InvalidInputError(`${join(BROWSER_DIR, bundle)} is missing: build the browser bundle first (npm run build)`);
      }
      const modelName = basename(resolve(flags.model));
      const app = createWebApp({ modelName, modelFiles, gatePath: flags.gate ? resolve(flags.gate) : null, browserDir: BROWSER_DIR, kvMemory: flags.kvMemory ?? null });
      const server = await listen(app.fetch, flags.host, port);
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      process.stdout.write(`wgkv web: listening on http://${flags.host.includes(":") ? `[${flags.host}]` : flags.host}:${bound} (model ${modelName}${flags.gate ? `, gate ${basename(flags.gate)}` : ""}; open it in a browser with WebGPU)\n`);
      const stop = () => server.close(() => process.exit(0));
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    });
}

/** The regular files directly in the model folder, by name: what the page may fetch. */
function listModelFiles(dir: string): Map<string, string> {
  if (dir.trim() === "") throw new InvalidInputError("--model is empty; give the path of a Hugging Face model folder");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(`${dir}: ${code === "ENOENT" ? "model folder not found" : code === "ENOTDIR" ? "not a folder (expected a Hugging Face model folder)" : `cannot read the model folder (${code ?? causeText(err)})`}`);
  }
  const files = new Map<string, string>();
  for (const name of names) {
    const path = resolve(dir, name);
    // NOTE: stat follows links: a folder of links to a cache (as the Hub's snapshots are) serves what they point at
    if (statSync(path, { throwIfNoEntry: false })?.isFile()) files.set(name, path);
  }
  if (!files.has("config.json")) throw new ModelLoadError(`${join(dir, "config.json")}: file is missing (is ${dir} a model folder?)`);
  return files;
}
