// Copies the reference fixtures the tests need from the shared folder into
// test-fixtures/, so a clone of the repository tests on its own. Run it when
// the shared fixtures change, then commit test-fixtures/.
//
//   node scripts/refresh-fixtures.mjs               # from ../shared beside the project
//   node scripts/refresh-fixtures.mjs /path/shared  # from another copy
//
// Prints each file it added or changed; exits 1 naming what is missing.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SHARED = resolve(process.argv[2] ?? join(ROOT, "../shared"));
const FROM = join(SHARED, "fixtures");
const TO = join(ROOT, "test-fixtures");
// NOTE: the same list as ARCH_FIXTURES in src/testing/fixtures.ts.
const ARCHS = ["llama3-scaled", "qwen2", "qwen3", "mistral"];
const ARCH_FILES = ["config.json", "generation_config.json", "model.safetensors", "reference.json"];
const FILES = ["golden-tiny-chat.json", ...ARCHS.flatMap((a) => ARCH_FILES.map((f) => `archs/${a}/${f}`))];

if (!existsSync(FROM)) {
  console.error(`refresh-fixtures: ${FROM}: not found (give the shared folder as the first argument)`);
  process.exit(1);
}
const missing = FILES.filter((f) => !existsSync(join(FROM, f)) || !statSync(join(FROM, f)).isFile());
if (missing.length) {
  console.error(`refresh-fixtures: ${FROM}: missing ${missing.join(", ")}`);
  process.exit(1);
}

let changed = 0;
for (const f of FILES) {
  const to = join(TO, f);
  const bytes = readFileSync(join(FROM, f));
  const existed = existsSync(to);
  if (existed && readFileSync(to).equals(bytes)) continue;
  mkdirSync(dirname(to), { recursive: true });
  // NOTE: written anew rather than copied: the shared files are read-only, and
  // a copy would keep that mode and refuse the next refresh.
  rmSync(to, { force: true });
  writeFileSync(to, bytes, { mode: 0o644 });
  console.log(`${existed ? "updated" : "added"} ${relative(ROOT, to)}`);
  changed++;
}
// Architectures no longer listed leave with their folders.
for (const dir of existsSync(join(TO, "archs")) ? readdirSync(join(TO, "archs")) : []) {
  if (!ARCHS.includes(dir)) {
    rmSync(join(TO, "archs", dir), { recursive: true });
    console.log(`removed ${relative(ROOT, join(TO, "archs", dir))}`);
    changed++;
  }
}
console.log(`refresh-fixtures: ${changed} change(s) from ${FROM}`);
