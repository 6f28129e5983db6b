/**
 * `wgkv web` in a real browser: headless Chromium (Debian's, driven by
 * playwright-core) with WebGPU on its bundled SwiftShader adapter loads the
 * embedded model over HTTP from the command's server, generates greedily on
 * a short chat prompt, and the text and token ids it streams into the page
 * equal the CPU backend's greedy output through the library. The page
 * shows tokens/s, the admitted fraction and KV memory; a screenshot is
 * taken. With the gate (--gate, ticked on the page) the text and the
 * admitted fraction are the CPU's too. Without navigator.gpu the page says
 * so in one line. Without a WebGPU adapter the test fails, naming what the page said.
 * Also: the server's byte ranges and its refusal of any other file, and
 * one-line errors for bad flags.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { generateText, loadModel } from "../index.js";
import { CLI, expectCliError } from "../testing/cli.js";
import { hostAllowed } from "./web.js";
import { PROJECT_ROOT } from "../testing/fixtures.js";
import { TINY_GATE } from "../testing/server.js";

const CHROMIUM = "/usr/bin/chromium";
// NOTE: Linux Chromium offers WebGPU only with this flag; on a machine without a GPU, Dawn's adapter is SwiftShader
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
const PROMPT = "Write a haiku about the sea.";
// NOTE: SwiftShader runs the kernels on the CPU at about a token a second on a busy 2-core machine
const NEW_TOKENS = 8;
const GATED_TOKENS = 3;
const dir = mkdtempSync(join(tmpdir(), "wgkv-web-"));
let browser: Browser | undefined;
const servers: ChildProcess[] = [];

/** Starts `wgkv web --port 0 ...args`; resolves with its URL once it listens. */
async function startWeb(args: readonly string[]): Promise<string> {
  const proc = spawn(process.execPath, [CLI, "web", "--port", "0", ...args], { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  servers.push(proc);
  let out = "";
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  return new Promise<string>((resolve, reject) => {
    proc.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/[^ ]+:\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once("exit", (code) => reject(new Error(`wgkv web exited with ${code} before listening: ${err}`)));
  });
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium): the browser test cannot run`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  for (const p of servers) p.kill("SIGTERM");
});

test("the page generates on WebGPU what the CPU backend generates, with and without the gate, and shows its numbers", async () => {
  const url = await startWeb(["--kv-memory", "32MiB", "--gate", TINY_GATE]);
  const model = await loadModel(undefined, { backend: "cpu", threads: 1, maxSeqs: 1, kvMemory: "32MiB" });
  const chat = { messages: [{ role: "user" as const, content: PROMPT }] };
  let full, gated;
  try {
    full = await generateText(model, chat, { maxNewTokens: NEW_TOKENS, temperature: 0 });
    gated = await generateText(model, chat, { maxNewTokens: GATED_TOKENS, temperature: 0, kv: { gate: TINY_GATE } });
  } finally {
    model.dispose();
  }
  assert.equal(full.tokenIds.length, NEW_TOKENS);
  const heads = gated.kv.admittedByHead.flat();
  const gatedAdmitted = heads.reduce((a, b) => a + b, 0) / (gated.kv.numTokens * heads.length);
  assert.ok(gatedAdmitted < 1, "the gate should leave some tokens out");

  const page = await browser!.newPage({ viewport: { width: 1000, height: 760 } });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    // NOTE: loading asks for model.safetensors.index.json (sharded models have one): its 404 is expected, and logged by Chromium
    if ((m.type() === "error" || m.type() === "warning") && !/Failed to load resource: .*404/.test(m.text())) problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() === 404 && !r.url().endsWith("/model/model.safetensors.index.json")) problems.push(`404 ${r.url()}`);
  });
  await page.goto(url);
  await page.waitForFunction(() => ["ready", "error", "no-webgpu"].includes(document.body.dataset.state ?? ""), null, { timeout: 60_000 });
  const status = await page.textContent("#status");
  assert.equal(await page.getAttribute("body", "data-state"), "ready", `the page did not get ready (no WebGPU adapter in headless Chromium?): ${status}`);
  assert.match(status!, /^Ready: wgkv-tiny-chat on WebGPU .*, write gate wgkv-tiny-chat-gate-0\.016n\.pt\.$/);

  const run = async (tokens: number, useGate: boolean) => {
    await page.fill("#prompt", PROMPT);
    await page.fill("#max-tokens", String(tokens));
    await page.fill("#temperature", "0");
    await page.setChecked("#use-gate", useGate);
    await page.click("#generate");
    await page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 80_000 });
    return page.evaluate(() => ({
      status: document.getElementById("status")!.textContent,
      output: document.getElementById("output")!.textContent,
      ids: (globalThis as unknown as { wgkvLastResult: { tokenIds: number[] } }).wgkvLastResult.tokenIds,
      speed: document.getElementById("speed")!.textContent,
      admitted: document.getElementById("admitted")!.textContent,
      kv: document.getElementById("kv")!.textContent,
    }));
  };
  const shown = await run(NEW_TOKENS, false);
  assert.equal(shown.status, `Done: ${NEW_TOKENS} tokens (length).`);
  assert.equal(shown.output, full.text);
  assert.deepEqual(shown.ids, full.tokenIds);
  assert.match(shown.speed!, new RegExp(`^\\d+\\.\\d tokens/s generating ${NEW_TOKENS} tokens; prompt \\d+ tokens at \\d+ tokens/s; finish: length$`));
  assert.equal(shown.admitted, "1.000", "full attention admits every token");
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  assert.ok(shown.kv!.startsWith(`resident ${mib(full.kv.residentBytes)} of full attention's ${mib(full.kv.fullAttentionBytes)}`), shown.kv!);

  const withGate = await run(GATED_TOKENS, true);
  assert.equal(withGate.output, gated.text);
  assert.deepEqual(withGate.ids, gated.tokenIds);
  assert.equal(withGate.admitted, gatedAdmitted.toFixed(3));

  const shot = join(dir, "web.png");
  await page.screenshot({ path: shot });
  const png = readFileSync(shot);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(png.length > 5_000, `screenshot of ${png.length} bytes`);
  assert.deepEqual(problems, []);
  await page.close();
});

test("without WebGPU the page says so in one line and loads nothing", async () => {
  const url = await startWeb([]);
  const page = await browser!.newPage();
  // NOTE: as a browser without WebGPU has it: no navigator.gpu
  await page.addInitScript(() => delete (Navigator.prototype as { gpu?: unknown }).gpu);
  const fetched: string[] = [];
  page.on("request", (r) => fetched.push(new URL(r.url()).pathname));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === "no-webgpu", null, { timeout: 30_000 });
  assert.equal(await page.textContent("#status"), "WebGPU is not available in this browser, so the model cannot run here.");
  assert.equal(await page.isDisabled("#generate"), true);
  assert.deepEqual(fetched.filter((p) => p.startsWith("/model/")), []);
  await page.close();
});

test("the server answers byte ranges of the model's and the gate's files, and nothing else", async () => {
  const url = await startWeb(["--gate", TINY_GATE]);
  const config = (await (await fetch(`${url}/config.json`)).json()) as { gateUrl: string; modelUrl: string };
  assert.equal(config.gateUrl, "/gate/wgkv-tiny-chat-gate-0.016n.pt");
  const weights = readFileSync(join(PROJECT_ROOT, "models/wgkv-tiny-chat/model.safetensors"));
  const head = await fetch(`${url}/model/model.safetensors`, { method: "HEAD" });
  assert.equal(head.headers.get("content-length"), String(weights.length));
  const part = await fetch(`${url}/model/model.safetensors`, { headers: { Range: "bytes=100-199" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), `bytes 100-199/${weights.length}`);
  assert.deepEqual(new Uint8Array(await part.arrayBuffer()), new Uint8Array(weights.subarray(100, 200)));
  const past = await fetch(`${url}/model/config.json`, { headers: { Range: "bytes=99999999-" } });
  assert.equal(past.status, 416);
  const gate = await fetch(`${url}${config.gateUrl}`);
  assert.deepEqual(new Uint8Array(await gate.arrayBuffer()), new Uint8Array(readFileSync(join(PROJECT_ROOT, TINY_GATE))));
  for (const path of ["/model/..%2F..%2Fpackage.json", "/model/../../package.json", "/model/gates/wgkv-tiny-chat-gate-0.16.pt", "/gate/wgkv-tiny-chat-gate-0.16.pt", "/model/%2Fetc%2Fpasswd", "/package.json"]) {
    const r = await fetch(url + path);
    await r.body?.cancel();
    assert.equal(r.status, 404, path);
  }
});

test("the server answers only to its own names (a DNS-rebinding page sends another Host), and serves no link out of the folder", async () => {
  assert.deepEqual(["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST"].map((h) => hostAllowed(h, "127.0.0.1")), [true, true, true, true]);
  assert.deepEqual([hostAllowed("attacker.example:8080", "127.0.0.1"), hostAllowed(null, "127.0.0.1"), hostAllowed("10.0.0.5:80", "10.0.0.5"), hostAllowed("any.name", "0.0.0.0")], [false, false, true, true]);
  // a Hugging Face cache snapshot (snapshots/REV/file -> ../../blobs/SHA), with one more link, to a file outside it
  const repo = join(dir, "models--wgkv--tiny"), folder = join(repo, "snapshots", "rev");
  mkdirSync(folder, { recursive: true });
  mkdirSync(join(repo, "blobs"));
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]) {
    copyFileSync(join(PROJECT_ROOT, "models/wgkv-tiny-chat", f), join(repo, "blobs", `${f}.sha`));
    symlinkSync(`../../blobs/${f}.sha`, join(folder, f));
  }
  symlinkSync(join(PROJECT_ROOT, "package.json"), join(folder, "notes.txt"));
  const url = await startWeb(["--model", folder]);
  const status = (path: string, host: string) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest(url + path, { headers: { host } }, (res) => (res.resume(), resolve(res.statusCode!)));
      req.on("error", reject).end();
    });
  assert.equal(await status("/model/config.json", new URL(url).host), 200);
  assert.equal(await status("/model/config.json", "attacker.example"), 421);
  assert.equal(await status("/model/notes.txt", new URL(url).host), 404);
  // a model file that links outside: refused before serving anything
  const hostile = join(dir, "hostile");
  mkdirSync(hostile);
  copyFileSync(join(PROJECT_ROOT, "models/wgkv-tiny-chat/config.json"), join(hostile, "config.json"));
  symlinkSync(join(PROJECT_ROOT, "package.json"), join(hostile, "tokenizer.json"));
  expectCliError(["web", "--model", hostile], [join(hostile, "tokenizer.json"), "links outside the model folder"]);
});

test("web refuses bad flags, folders and gates with one line", () => {
  expectCliError(["web", "--port", "http"], ["--port"]);
  expectCliError(["web", "--port", "70000"], ["--port"]);
  expectCliError(["web", "--kv-memory", "lots"], ["--kv-memory"]);
  expectCliError(["web", "--model", join(dir, "missing")], ["missing", "not found"]);
  expectCliError(["web", "--gate", join(dir, "missing.pt")], ["missing.pt"]);
  expectCliError(["web", "--gate", "models/wgkv-tiny-chat/config.json"], ["config.json"]);
});
