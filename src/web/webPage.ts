/**
 * @module web/webPage
 *
 * The behaviour of `wgkv web`'s page (web/pageHtml.ts): reads /config.json,
 * loads the model folder and the gate over HTTP onto WebGPU, and on Generate
 * streams the answer into the page with its speed, the admitted fraction and
 * the KV memory held against full attention. Bundled for the browser as
 * /web-page.js, importing the library from /wgkv.js (scripts/build-browser.mjs).
 *
 * `body[data-state]` says where the page is (loading, ready, generating,
 * done, error, no-webgpu), so tests and scripts can wait for it.
 */
import type { WebPageConfig } from "./pageHtml.js";
import { generate, loadGateUrl, loadModel, WebGpuUnavailableError, type GateInput, type GenerationResult, type KvReport, type Model } from "../browser.js";


type PageState = "loading" | "ready" | "generating" | "done" | "error" | "no-webgpu";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

function setState(state: PageState, status: string): void {
  document.body.dataset.state = state;
  // NOTE: one line: an error's message may quote text with newlines
  $("status").textContent = status.replace(/\s*\n\s*/g, " ");
  ($("generate") as HTMLButtonElement).disabled = state !== "ready" && state !== "done";
}

/** Admitted (layer, KV head, token) entries over all, as `generate --stats` prints "overall". */
export function admittedFraction(kv: KvReport): number {
  const heads = kv.admittedByHead.length * (kv.admittedByHead[0]?.length ?? 0);
  const total = kv.admittedByHead.flat().reduce((a, b) => a + b, 0);
  return total / Math.max(1, kv.numTokens * heads);
}

function showResult(r: GenerationResult): void {
  const decodeRate = r.tokenIds.length > 1 ? ((r.tokenIds.length - 1) / r.decodeMs) * 1000 : 0;
  const prefillRate = (r.numPromptTokens / Math.max(1e-3, r.prefillMs)) * 1000;
  $("speed").textContent = `${decodeRate.toFixed(1)} tokens/s generating ${r.tokenIds.length} tokens; prompt ${r.numPromptTokens} tokens at ${prefillRate.toFixed(0)} tokens/s; finish: ${r.finishReason}`;
  $("admitted").textContent = admittedFraction(r.kv).toFixed(3);
  const share = r.kv.residentBytes / Math.max(1, r.kv.fullAttentionBytes);
  $("kv").textContent = `resident ${mib(r.kv.residentBytes)} of full attention's ${mib(r.kv.fullAttentionBytes)} (${(share * 100).toFixed(1)}%), ${r.kv.numTokens} tokens`;
  $("kv-bar").style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
}

async function runGeneration(model: Model, gate: GateInput | null): Promise<void> {
  const text = ($("prompt") as HTMLTextAreaElement).value;
  const maxNewTokens = Number(($("max-tokens") as HTMLInputElement).value);
  const temperature = Number(($("temperature") as HTMLInputElement).value);
  const chat = ($("chat") as HTMLInputElement).checked;
  // NOTE: unticked, the same page compares with full attention
  const useGate = gate !== null && ($("use-gate") as HTMLInputElement).checked;
  const output = $("output");
  output.textContent = "";
  setState("generating", "Generating…");
  const stream = generate(model, chat ? { messages: [{ role: "user", content: text }] } : text, { maxNewTokens, temperature, kv: useGate ? { gate } : undefined });
  let tokens = 0;
  let firstAt = 0;
  try {
    for await (const chunk of stream) {
      output.textContent += chunk.text;
      if (chunk.tokenId < 0) continue;
      tokens++;
      firstAt ||= performance.now();
      if (tokens > 1) $("speed").textContent = `${(((tokens - 1) / (performance.now() - firstAt)) * 1000).toFixed(1)} tokens/s`;
    }
    const result = await stream.result;
    (globalThis as { wgkvLastResult?: GenerationResult }).wgkvLastResult = result;
    showResult(result);
    setState("done", `Done: ${result.tokenIds.length} tokens (${result.finishReason}).`);
  } catch (err) {
    setState("done", `Error: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  let config: WebPageConfig;
  try {
    const r = await fetch("/config.json");
    if (!r.ok) throw new Error(`/config.json: HTTP ${r.status}`);
    config = (await r.json()) as WebPageConfig;
  } catch (err) {
    setState("error", `Cannot read the page's settings: ${(err as Error).message}`);
    return;
  }
  if (!("gpu" in navigator) || !navigator.gpu) {
    setState("no-webgpu", "WebGPU is not available in this browser, so the model cannot run here.");
    return;
  }
  let model: Model;
  let gate: GateInput | null = null;
  try {
    setState("loading", `Loading ${config.model}…`);
    model = await loadModel(config.modelUrl, { kvMemory: config.kvMemory ?? undefined, maxSeqs: 1 });
    if (config.gateUrl) gate = await loadGateUrl(config.gateUrl, model);
  } catch (err) {
    const noGpu = err instanceof WebGpuUnavailableError;
    setState(noGpu ? "no-webgpu" : "error", noGpu ? `WebGPU is unavailable: ${(err as Error).message}` : `Cannot load the model: ${(err as Error).message}`);
    return;
  }
  const gateText = gate ? `, write gate ${config.gateUrl!.split("/").pop()}` : ", full attention (no gate)";
  setState("ready", `Ready: ${config.model} on ${model.backend.description}${gateText}.`);
  $("device").textContent = `${config.model} on ${model.backend.description}${gateText}`;
  $("gate-choice").hidden = gate === null;
  $("generate").addEventListener("click", () => void runGeneration(model, gate));
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !($("generate") as HTMLButtonElement).disabled) void runGeneration(model, gate);
  });
}

void main();
