/**
 * The browser's HTTP FileSource and gate reader, run in Node against `wgkv
 * web`'s app: exists/size/readRange/readText as the folder source answers
 * them, the model loads through it, a server that ignores Range still gives
 * the bytes asked for, and every failure is one line naming the URL.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { createWebApp } from "../../cli/webApp.js";
import { CpuBackend } from "../../backends/cpu/cpuBackend.js";
import { createReferenceKernels } from "../../backends/cpu/referenceKernels.js";
import { Model } from "../../engine/model.js";
import { ModelLoadError } from "../../errors.js";
import { DEFAULT_MODEL_DIR, PROJECT_ROOT } from "../../testing/fixtures.js";
import { TINY_GATE } from "../../testing/server.js";
import { createHttpSource } from "./httpSource.js";
import { loadGateUrl } from "./gateUrl.js";

let server: ServerType;
let url = "";

before(async () => {
  const modelFiles = new Map(readdirSync(DEFAULT_MODEL_DIR).filter((f) => f.includes(".")).map((f) => [f, join(DEFAULT_MODEL_DIR, f)]));
  const app = createWebApp({ modelName: "tiny", modelFiles, gatePath: join(PROJECT_ROOT, TINY_GATE), browserDir: join(PROJECT_ROOT, "dist/browser"), kvMemory: null });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
      url = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
});
after(() => {
  server?.close();
});

const oneLine = (pattern: RegExp) => (err: unknown) => err instanceof ModelLoadError && pattern.test(err.message) && !err.message.includes("\n");

test("reads a model folder over HTTP as the folder source reads it", async () => {
  const source = createHttpSource(`${url}/model`);
  const weights = readFileSync(join(DEFAULT_MODEL_DIR, "model.safetensors"));
  assert.equal(source.label, `${url}/model`);
  assert.equal(await source.exists("config.json"), true);
  assert.equal(await source.exists("model.safetensors.index.json"), false);
  assert.equal(await source.size("model.safetensors"), weights.length);
  assert.deepEqual(await source.readRange("model.safetensors", 1000, 64), new Uint8Array(weights.subarray(1000, 1064)));
  assert.deepEqual(await source.readRange("model.safetensors", weights.length - 10, 64), new Uint8Array(weights.subarray(weights.length - 10)));
  assert.deepEqual(await source.readRange("model.safetensors", weights.length + 5, 8), new Uint8Array(0));
  assert.equal(await source.readText("config.json"), readFileSync(join(DEFAULT_MODEL_DIR, "config.json"), "utf8"));

  const model = await Model.load(source, new CpuBackend(createReferenceKernels(), "cpu-reference", () => 2 ** 30), { kvMemory: "8MiB", maxSeqs: 1 });
  try {
    assert.equal(model.config.numLayers, 8);
    assert.deepEqual(model.requireTokenizer().encode("Hello"), model.requireTokenizer().encode("Hello"));
    assert.ok(model.requireTokenizer().encodeChat([{ role: "user", content: "Hi" }], { addGenerationPrompt: true }).length > 3);
  } finally {
    model.dispose();
  }
});

test("a server that ignores Range still gives the bytes asked for", async () => {
  const noRanges: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.delete("range");
    return fetch(input, { ...init, headers });
  };
  const source = createHttpSource(`${url}/model/`, { fetch: noRanges });
  const weights = readFileSync(join(DEFAULT_MODEL_DIR, "model.safetensors"));
  assert.deepEqual(await source.readRange("model.safetensors", 77, 5), new Uint8Array(weights.subarray(77, 82)));
});

test("failures are one line naming the URL", async () => {
  const source = createHttpSource(`${url}/model/`);
  await assert.rejects(source.size("missing.json"), oneLine(new RegExp(`^${url}/model/missing\\.json: HTTP 404`)));
  await assert.rejects(source.readText("missing.json"), oneLine(/\/model\/missing\.json: HTTP 404/));
  await assert.rejects(source.readRange("missing.bin", 0, 4), oneLine(/\/model\/missing\.bin: HTTP 404/));
  // NOTE: nothing listens on port 9 (discard) of the loopback here
  await assert.rejects(createHttpSource("http://127.0.0.1:9/m/").exists("config.json"), oneLine(/^http:\/\/127\.0\.0\.1:9\/m\/config\.json: cannot fetch/));
  assert.throws(() => createHttpSource("not a url"), oneLine(/^not a url: not a URL$/));
});

test("gates load by URL, checked against the model's shape", async () => {
  const gate = await loadGateUrl(`${url}/gate/wgkv-tiny-chat-gate-0.016n.pt`);
  assert.equal(gate.format, "pt");
  assert.equal(gate.fileName, `${url}/gate/wgkv-tiny-chat-gate-0.016n.pt`);
  await assert.rejects(loadGateUrl(`${url}/gate/other.pt`), oneLine(/\/gate\/other\.pt: cannot read the gate file \(HTTP 404/));
  await assert.rejects(loadGateUrl(`${url}/model/config.json`), (err: unknown) => err instanceof Error && /config\.json/.test(err.message) && !err.message.includes("\n"));
});
