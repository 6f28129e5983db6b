/**
 * The engine's core stays platform-neutral so it can bundle for browsers:
 * no `node:*` import outside the Node entry points (src/index.ts, the CLI,
 * src/platform/node/), the dev tools and the test suites. The browser entry
 * (src/browser.ts, src/platform/browser/, the page in src/web/) is checked
 * like the core; the bundle itself is checked in project/browserBundle.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");
const NODE_SIDE = [/^index\.ts$/, /^cli(\.ts|\/)/, /^platform\/node\//, /^dev\//, /^testing\//, /\.test\.ts$/];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

test("no node:* import in the platform-neutral core", () => {
  const offenders: string[] = [];
  let checked = 0;
  for (const file of sources(SRC)) {
    const path = relative(SRC, file);
    const text = readFileSync(file, "utf8");
    // test suites shared by several test files (e.g. *.conformance.ts) import node:test
    if (NODE_SIDE.some((re) => re.test(path)) || /from "node:test"/.test(text)) continue;
    checked++;
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(node:[^"]+)"/g)) offenders.push(`${path}: ${m[1]}`);
  }
  assert.ok(checked > 50, `only ${checked} core files found under ${SRC}`);
  assert.deepEqual(offenders, []);
});
