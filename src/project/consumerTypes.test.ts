/**
 * The published types compile in a consumer's strict project with
 * `skipLibCheck: false`: a temporary project depends on wgkv the way a
 * `file:` dependency does (node_modules/wgkv links to this repository, whose
 * package.json points at dist/index.d.ts), imports the public API, and runs
 * `tsc --noEmit` with no @types/node, so a declaration that leaks a `node:`
 * module or a test-only module fails. The browser entry (`wgkv/browser`)
 * compiles the same way with DOM types only: a declaration that leaks a
 * WebGPU type (which needs @webgpu/types) fails.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { PROJECT_ROOT } from "../testing/fixtures.js";

const TSC = join(PROJECT_ROOT, "node_modules/typescript/bin/tsc");

/** Uses every export of the package entry, in value and type positions. */
const CONSUMER = `
import {
  DEFAULT_MODEL_DIR, generate, generateText, GenerationStream, InvalidInputError, loadGateFile, loadModel, Model, ModelLoadError,
  ModelTooLargeError, promptToIds, UnsupportedModelError, WgkvError, GateFormatError, GateShapeError, UnsafePickleError, OutOfPagesError,
  InvalidCacheConfigError,
  type Architecture, type ChatMessage, type GenerateOptions, type NodeGenerateOptions, type GenerationChunk, type GenerationResult,
  type ModelConfig, type Prompt, type KvOptions, type NodeKvOptions, type GateInput, type KvReport, type EngineStats, type EngineOptions,
  type FinishReason, type BackendOptions, type BackendName, type SimdBuild, type KvDType, type SamplingOptions, type LoadModelOptions,
} from "wgkv";

export async function main(signal: AbortSignal): Promise<string> {
  const backend: BackendName = "cpu";
  const simd: SimdBuild = "auto";
  const kvDType: KvDType = "f16";
  const engine: EngineOptions = { kvMemory: "256MiB", kvDType, maxSeqs: 4 };
  const load: LoadModelOptions & BackendOptions = { backend, threads: 1, simd, ...engine };
  const model: Model = await loadModel(DEFAULT_MODEL_DIR, load);
  try {
    const gate: GateInput = await loadGateFile(DEFAULT_MODEL_DIR + "/gates/wgkv-tiny-chat-gate-0.016n.pt", model);
    const messages: ChatMessage[] = [{ role: "user", content: "Hello" }];
    const prompt: Prompt = { messages };
    const sampling: SamplingOptions = { temperature: 0.7, topK: 40, topP: 0.9, seed: 1 };
    const kv: NodeKvOptions = { admission: "gate", gate: "gate.pt", selection: "quest:2048", eviction: "snapkv:4096", window: 256 };
    const kvLoaded: KvOptions = { gate, tau: 0.1 };
    const options: NodeGenerateOptions = { maxNewTokens: 4, ...sampling, kv, signal };
    const typed: GenerateOptions = { maxNewTokens: 4, kv: kvLoaded };
    const stream: GenerationStream = generate(model, prompt, options);
    for await (const chunk of stream) {
      const c: GenerationChunk = chunk;
      void c.text;
    }
    const result: GenerationResult = await stream.result;
    const reason: FinishReason = result.finishReason;
    const report: KvReport = result.kv;
    const all = await generateText(model, promptToIds(model, "Hi"), { maxNewTokens: typed.maxNewTokens });
    const stats: EngineStats = model.engine.stats();
    const config: ModelConfig = model.config;
    const arch: Architecture = config.architecture;
    return [result.text, all.text, reason, report.residentBytes, stats.numFreePages, arch].join(" ");
  } catch (err) {
    if (err instanceof InvalidInputError || err instanceof ModelLoadError || err instanceof UnsupportedModelError || err instanceof ModelTooLargeError) throw err;
    if (err instanceof GateFormatError || err instanceof GateShapeError || err instanceof UnsafePickleError) throw err;
    if (err instanceof OutOfPagesError || err instanceof InvalidCacheConfigError) throw err;
    throw err instanceof WgkvError ? err : new Error(String(err));
  } finally {
    model.dispose();
  }
}
`;

/** Uses the browser entry (`wgkv/browser`) the way a page does: DOM types, no @types/node, no @webgpu/types. */
const BROWSER_CONSUMER = `
import {
  createHttpSource, generate, generateText, GenerationStream, InvalidInputError, loadGateUrl, loadModel, Model, ModelLoadError, promptToIds,
  WebGpuUnavailableError, WgkvError, GateFormatError, OutOfPagesError,
  type BrowserGenerateOptions, type BrowserKvOptions, type BrowserLoadModelOptions, type ChatMessage, type FileSource, type GateInput,
  type GenerationChunk, type GenerationResult, type KvReport, type Prompt,
} from "wgkv/browser";

export async function main(out: HTMLElement): Promise<string> {
  const options: BrowserLoadModelOptions = { kvMemory: "64MiB", maxSeqs: 1, disableGpuFeatures: ["shader-f16"], fetch: (i, init) => fetch(i, init) };
  let model: Model;
  try {
    model = await loadModel("/models/tiny/", options);
  } catch (err) {
    if (err instanceof WebGpuUnavailableError || err instanceof ModelLoadError) return err.message;
    throw err;
  }
  const source: FileSource = createHttpSource("/models/tiny/");
  const gate: GateInput = await loadGateUrl("/gates/gate.pt", model);
  const messages: ChatMessage[] = [{ role: "user", content: "Hello" }];
  const prompt: Prompt = { messages };
  const kv: BrowserKvOptions = { gate: "/gates/gate.pt", selection: "quest:2048" };
  const generateOptions: BrowserGenerateOptions = { maxNewTokens: 4, temperature: 0, kv };
  const stream: GenerationStream = generate(model, prompt, generateOptions);
  for await (const chunk of stream) out.textContent += (chunk satisfies GenerationChunk).text;
  const result: GenerationResult = await stream.result;
  const report: KvReport = result.kv;
  const again = await generateText(model, promptToIds(model, "Hi"), { kv: { gate } });
  const errors = [InvalidInputError, GateFormatError, OutOfPagesError, WgkvError].map((E) => E.name).join(",");
  model.dispose();
  return [source.label, result.text, again.text, report.residentBytes, errors].join(" ");
}
`;

let tmp = "";
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-consumer-"));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A consumer project with the given module settings; returns tsc's error lines, paths relative to this repository where they are in it. */
function typecheck(name: string, module: string, moduleResolution: string, browser = false): string[] {
  const dir = join(tmp, name);
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  symlinkSync(PROJECT_ROOT, join(dir, "node_modules/wgkv"), "dir");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `consumer-${name}`, private: true, type: "module", dependencies: { wgkv: `file:${PROJECT_ROOT}` } }));
  const compilerOptions = { strict: true, skipLibCheck: false, module, moduleResolution, target: "ES2022", noEmit: true, types: [], ...(browser ? { lib: ["ES2022", "DOM", "DOM.Iterable"] } : {}) };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["main.ts"] }));
  writeFileSync(join(dir, "main.ts"), browser ? BROWSER_CONSUMER : CONSUMER);
  const r = spawnSync(process.execPath, [TSC, "-p", dir, "--pretty", "false"], { cwd: dir, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.error, undefined);
  const lines = r.stdout.split("\n").filter((l) => / error TS\d+/.test(l));
  assert.equal(r.status === 0, lines.length === 0, `tsc exit ${r.status}:\n${r.stdout}${r.stderr}`);
  return lines.map((l) => {
    const at = l.indexOf("(");
    return at > 0 ? relative(PROJECT_ROOT, resolve(dir, l.slice(0, at))) + l.slice(at) : l;
  });
}

test("a strict NodeNext consumer with skipLibCheck false compiles without errors", () => {
  assert.deepEqual(typecheck("nodenext", "NodeNext", "NodeNext"), []);
});

test("a strict bundler-resolution consumer with skipLibCheck false compiles without errors", () => {
  assert.deepEqual(typecheck("bundler", "ESNext", "Bundler"), []);
});

test("a strict browser consumer of wgkv/browser (DOM types only) compiles without errors, bundler and NodeNext resolution", () => {
  assert.deepEqual(typecheck("browser-bundler", "ESNext", "Bundler", true), []);
  assert.deepEqual(typecheck("browser-nodenext", "NodeNext", "NodeNext", true), []);
});
