/**
 * What `npm pack` would publish: the CLI, the library and its types, the
 * browser bundle and `wgkv web`'s page script, the embedded model, the
 * haystack text, the example and the license; no tests,
 * test support, dev benchmarks or fixtures; no source map pointing at a file
 * the package lacks; no import of a file it lacks.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { PROJECT_ROOT } from "../testing/fixtures.js";

let files: Set<string>;

before(() => {
  // NOTE: --ignore-scripts: packing must not rebuild dist/ under the other tests' feet.
  const r = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const [pack] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  files = new Set(pack.files.map((f) => f.path));
});

test("the package has the CLI, the library with its types, the browser bundle, the model, the haystack, the example and the license", () => {
  const expected = [
    "package.json",
    "README.md",
    "LICENSE",
    "dist/cli.js",
    "dist/index.js",
    "dist/index.d.ts",
    "dist/platform/node/kernelWorkerEntry.js",
    "dist/browser.d.ts",
    "dist/browser/wgkv.js",
    "dist/browser/web-page.js",
    "models/wgkv-tiny-chat/config.json",
    "models/wgkv-tiny-chat/model.safetensors",
    "models/wgkv-tiny-chat/tokenizer.json",
    "models/wgkv-tiny-chat/chat_template.jinja",
    "models/wgkv-tiny-chat/gates/wgkv-tiny-chat-gate-0.016n.pt",
    "data/haystack.txt.br",
    "examples/needle.txt",
  ];
  assert.deepEqual(expected.filter((f) => !files.has(f)), []);
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as { license: string };
  assert.equal(pkg.license, "MIT");
  assert.match(readFileSync(join(PROJECT_ROOT, "LICENSE"), "utf8"), /^MIT License\n/);
});

test("no tests, test support, dev benchmarks, fixtures or sources", () => {
  const unwanted = [...files].filter(
    (f) =>
      /\.test\.(js|d\.ts)$/.test(f) ||
      /\.conformance\.(js|d\.ts)$/.test(f) ||
      /^dist\/(testing|dev)\//.test(f) ||
      /^(src|build|test-fixtures|scripts|assembly)\//.test(f) ||
      (f.endsWith(".ts") && !f.endsWith(".d.ts")),
  );
  assert.deepEqual(unwanted, []);
  // Test support elsewhere (suites and helpers shared by tests) imports node:test.
  const testSupport = [...files].filter((f) => f.endsWith(".js") && /from "node:(test|assert)/.test(readFileSync(join(PROJECT_ROOT, f), "utf8")));
  assert.deepEqual(testSupport, []);
});

test("every source map's sources and every relative import are in the package", () => {
  const missing: string[] = [];
  for (const f of files) {
    if (f.endsWith(".map")) {
      const map = JSON.parse(readFileSync(join(PROJECT_ROOT, f), "utf8")) as { sources: string[]; sourcesContent?: (string | null)[] };
      map.sources.forEach((s, i) => {
        if (map.sourcesContent?.[i] == null && !files.has(normalize(join(dirname(f), s)))) missing.push(`${f} -> ${s}`);
      });
    }
    if (f.endsWith(".js") || f.endsWith(".d.ts")) {
      const text = readFileSync(join(PROJECT_ROOT, f), "utf8");
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
        const target = normalize(join(dirname(f), m[1]));
        const candidates = f.endsWith(".d.ts") ? [target.replace(/\.js$/, ".d.ts"), target] : [target];
        if (!candidates.some((c) => files.has(c))) missing.push(`${f} -> ${m[1]}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});
