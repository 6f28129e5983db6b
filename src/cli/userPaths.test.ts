/**
 * No stack trace on any user path: output piped into a reader that stops
 * early, `eval --out` naming a file, token ids and integer flags that are not
 * plain decimal digits, `--tau` with nothing to apply it to, and bad values
 * in a gate file's metadata (blamed on the file, never on `--tau`).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertGate } from "../gate/gateFile.js";
import { DEFAULT_MODEL_DIR, PROJECT_ROOT } from "../testing/fixtures.js";

const CLI = join(PROJECT_ROOT, "dist/cli.js");
const GATE = join(DEFAULT_MODEL_DIR, "gates/wgkv-tiny-chat-gate-0.016n.pt");

let tmp = "";
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-cli-paths-"));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function cli(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 120_000 });
}

/** Exit 1 and exactly one stderr line, holding every `mustName` and no stack frame; returns the line. */
function expectOneLine(args: string[], mustName: string[]): string {
  const r = cli(args);
  assert.equal(r.status, 1, `${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `stack trace:\n${r.stderr}`);
  const lines = r.stderr.replace(/\n$/, "").split("\n");
  assert.equal(lines.length, 1, `stderr is not one line:\n${r.stderr}`);
  for (const s of mustName) assert.ok(lines[0].includes(s), `stderr does not name ${JSON.stringify(s)}: ${lines[0]}`);
  return lines[0];
}

/** Runs a shell pipeline from the project root. */
function pipeline(command: string): SpawnSyncReturns<string> {
  return spawnSync("bash", ["-c", `set -o pipefail; ${command}`], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 120_000 });
}

/** A safetensors copy of the 0.016n gate whose metadata records `meta` (strings, as the format stores them). */
function gateWithMetadata(name: string, meta: Record<string, string>): string {
  const bytes = convertGate(new Uint8Array(readFileSync(GATE)), GATE, "safetensors");
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.readBigUInt64LE(0));
  const header = JSON.parse(view.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, unknown>;
  header.__metadata__ = { ...(header.__metadata__ as object), ...meta };
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const file = join(tmp, name);
  writeFileSync(file, Buffer.concat([length, Buffer.from(json), view.subarray(8 + headerLength)]));
  return file;
}

describe("a reader that stops early", () => {
  test("generate | head -c 10 ends quietly", () => {
    const r = pipeline(`node dist/cli.js generate --max-tokens 300 --temperature 1 --seed 1 "Once upon a time" | head -c 10`);
    assert.equal(r.stdout.length, 10);
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });

  test("forward --json | head -c 5 ends quietly", () => {
    // NOTE: the JSON line (8192 logits) is larger than a pipe's buffer, so the write fails once head exits.
    const r = pipeline(`node dist/cli.js forward --ids 1,2,3 --json | head -c 5`);
    assert.equal(r.stdout, '{"arg');
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });
});

test("eval --out naming a file, or a path through a file", () => {
  const file = join(tmp, "results.txt");
  writeFileSync(file, "keep me");
  expectOneLine(["eval", "--tasks", "niah:noise", "--lengths", "256", "--cases", "1", "--out", file], ["--out", file, "is a file, not a folder"]);
  expectOneLine(["eval", "--tasks", "niah:noise", "--lengths", "256", "--cases", "1", "--out", join(file, "sub")], ["--out", join(file, "sub"), "ENOTDIR"]);
  assert.equal(readFileSync(file, "utf8"), "keep me");
});

test("outputs that cannot be written are refused before any work (a missing folder, one that takes no file), with one line", () => {
  const prompt = join(tmp, "prompt.txt");
  writeFileSync(prompt, "hello there");
  const started = performance.now();
  expectOneLine(["inspect", "--gate", GATE, "--prompt-file", prompt, "--out", join(tmp, "absent", "a.html")], ["--out", "the folder", "does not exist"]);
  expectOneLine(["inspect", "--gate", GATE, "--prompt-file", prompt, "--out", join(tmp, "a.html"), "--png", "/proc/a.png"], ["--png /proc/a.png: cannot write there"]);
  expectOneLine(["eval", "--tasks", "niah:noise", "--lengths", "256", "--cases", "1", "--out", "/proc/sys"], ["--out /proc/sys: cannot write there"]);
  expectOneLine(["train-gate", "--lambda", "0.1", "--steps", "1", "--out", "/proc/gate.safetensors"], ["--out /proc/gate.safetensors: cannot write there"]);
  assert.ok(performance.now() - started < 60_000, "refused before the work");
});

test("--ids takes only plain decimal ids separated by commas", () => {
  for (const ids of ["1,,2", "1,", "1e3", "0x10", " 1", "1, 2", "+1", "1.0", "١", "99999999999999999999"]) {
    expectOneLine(["forward", "--ids", ids, "--json"], ["--ids", "plain decimal"]);
  }
});

test("integer flags take only plain decimal digits", () => {
  for (const value of ["1e3", "0x10", "1.0", "+1", " 1", "1 ", "1_000", "-0"]) {
    expectOneLine(["generate", "--max-tokens", value, "hi"], ["--max-tokens", `"${value}"`]);
    expectOneLine(["forward", "--ids", "1", "--window", value, "--json"], ["--window", `"${value}"`]);
  }
  const r = cli(["forward", "--ids", "1,2", "--generate", "2", "--json"]);
  assert.equal(r.status, 0, r.stderr);
});

test("--tau with no write gate to apply it to", () => {
  expectOneLine(["generate", "--tau", "0.2", "hi"], ["--tau", "--gate"]);
  expectOneLine(["forward", "--ids", "1", "--tau", "0.2", "--admission", "local", "--json"], ["--tau", "--gate"]);
  expectOneLine(["forward", "--ids", "1", "--tau", "0.2", "--gate", GATE, "--admission", "full", "--json"], ["--tau", '--admission is "full"']);
  expectOneLine(["bench", "--context", "32", "--tau", "0.2"], ["--tau", "--gate"]);
  expectOneLine(["eval", "--tau", "0.2", "--policies", "full,local"], ["--tau", "--policies", "gate:FILE"]);
  const r = cli(["forward", "--ids", "1,2", "--tau", "0.2", "--gate", GATE, "--json"]);
  assert.equal(r.status, 0, r.stderr);
});

test("a bad value in a gate file's metadata names the file, never --tau or --window", () => {
  const cases: [Record<string, string>, string[]][] = [
    [{ tau: "1.5" }, ["metadata tau='1.5'", "(0, 1)"]],
    [{ tau: "0" }, ["metadata tau='0'"]],
    [{ window: "100" }, ["metadata window='100'", "multiple of 16"]],
    [{ tau: "abc" }, ["tau", "abc"]],
  ];
  cases.forEach(([meta, mustName], i) => {
    const file = gateWithMetadata(`bad-${i}.safetensors`, meta);
    const line = expectOneLine(["forward", "--ids", "1,2", "--gate", file, "--json"], [file, ...mustName]);
    assert.doesNotMatch(line, /--tau|--window/, line);
  });
  // A file with bad metadata is refused even where a flag would override the value; a flag's own bad value is blamed on the flag.
  const file = gateWithMetadata("tau-1.5.safetensors", { tau: "1.5" });
  assert.doesNotMatch(expectOneLine(["forward", "--ids", "1,2", "--gate", file, "--tau", "0.2", "--json"], [file, "metadata tau='1.5'"]), /--tau/);
  const line = expectOneLine(["forward", "--ids", "1,2", "--gate", GATE, "--tau", "1.5", "--json"], ["--tau 1.5", "(0, 1)"]);
  assert.ok(!line.includes(GATE), line);
});
