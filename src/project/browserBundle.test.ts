/**
 * The browser bundle (scripts/build-browser.mjs): dist/browser/wgkv.js holds
 * everything it needs (no import of any module: the tokenizer and template
 * libraries are inside, nothing from node:*), web-page.js imports only the
 * library beside it, and without WebGPU loadModel fails with one line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../testing/fixtures.js";

const LIBRARY = join(PROJECT_ROOT, "dist/browser/wgkv.js");
const imports = (text: string) => [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s*"([^"]+)"|\bimport\s*\(\s*"([^"]+)"\s*\)/gm)].map((m) => m[1] ?? m[2]);

test("the library bundle imports nothing and holds the tokenizer and template libraries", () => {
  const text = readFileSync(LIBRARY, "utf8");
  assert.deepEqual(imports(text), []);
  assert.doesNotMatch(text, /"node:|require\(/);
  for (const lib of ["node_modules/@huggingface/tokenizers/", "node_modules/@huggingface/jinja/"]) assert.ok(text.includes(`// ${lib}`), `${lib} is not bundled`);
  assert.deepEqual(imports(readFileSync(join(PROJECT_ROOT, "dist/browser/web-page.js"), "utf8")), ["./wgkv.js"]);
});

test("the bundle exports the browser API; without WebGPU, loadModel says so in one line", async () => {
  const lib = (await import(pathToFileURL(LIBRARY).href)) as typeof import("../browser.js");
  for (const name of ["loadModel", "generate", "generateText", "loadGateUrl", "createHttpSource", "promptToIds"] as const) assert.equal(typeof lib[name], "function", name);
  await assert.rejects(lib.loadModel("http://127.0.0.1:9/model/"), (err: unknown) => err instanceof lib.WebGpuUnavailableError && err instanceof lib.WgkvError && /^WebGPU is not available/.test(err.message) && !err.message.includes("\n"));
});
