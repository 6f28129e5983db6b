/**
 * Bad input gets a clear one-line error: runs `node dist/cli.js` against
 * corrupted temp copies of the qwen2 fixture and checks the exit status, that
 * stderr is one line naming the file or flag, that no stack trace leaks, and
 * that the CLI never writes to the model folder.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { archDir, DEFAULT_MODEL_DIR } from "../testing/fixtures.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(ROOT, "dist/cli.js");
const FIXTURE = archDir("qwen2");
const SUPPORTED = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"];
const BACKEND = ["--backend", "cpu-reference"];

let tmp = "";
let fixtureHashBefore: Map<string, string>;
let copies = 0;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-cli-test-"));
  fixtureHashBefore = hashDir(FIXTURE);
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

function cli(args: string[], input = ""): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", input, timeout: 60_000 });
}

/** A writable copy of the qwen2 fixture; `edit` corrupts it. */
function copyModel(edit?: (dir: string) => void): string {
  const dir = join(tmp, `model-${copies++}`);
  cpSync(FIXTURE, dir, { recursive: true, dereference: true });
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  edit?.(dir);
  return dir;
}

function hashDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).sort()) out.set(f, createHash("sha256").update(readFileSync(join(dir, f))).digest("hex"));
  return out;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const file = join(dir, "config.json");
  const config = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(config);
  writeFileSync(file, JSON.stringify(config, null, 2));
}

interface Safetensors {
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  data: Buffer;
}

function readSafetensors(file: string): Safetensors {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")), data: bytes.subarray(8 + n) };
}

function writeSafetensors(file: string, { header, data }: Safetensors): void {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(file, Buffer.concat([length, Buffer.from(json), data]));
}

/** Splits model.safetensors into two shards plus model.safetensors.index.json. */
function shard(dir: string): [string, string] {
  const { header, data } = readSafetensors(join(dir, "model.safetensors"));
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const shards: [string, string] = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
  const weightMap: Record<string, string> = {};
  const parts = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
  parts.forEach((part, s) => {
    const h: Safetensors["header"] = {};
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const name of part) {
      const e = header[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const bytes = data.subarray(e.data_offsets[0], e.data_offsets[1]);
      h[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes.length] };
      chunks.push(bytes);
      offset += bytes.length;
      weightMap[name] = shards[s];
    }
    writeSafetensors(join(dir, shards[s]), { header: h, data: Buffer.concat(chunks) });
  });
  unlinkSync(join(dir, "model.safetensors"));
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
  return shards;
}

/**
 * Runs the CLI expecting a user error: non-zero exit, exactly one non-empty
 * stderr line ("wgkv: error: ...", with the usage hint for commander's errors), every
 * `mustName` substring present, no stack frame, and the model folder unchanged.
 */
function expectError(args: string[], mustName: string[], options: { model?: string; commander?: boolean; input?: string } = {}): string {
  const before = options.model ? hashDir(options.model) : null;
  const r = cli(args, options.input);
  assert.equal(r.error, undefined, `spawn failed: ${r.error}`);
  assert.notEqual(r.status, 0, `expected a non-zero exit, stdout: ${r.stdout}`);
  assert.notEqual(r.status, null, `killed by ${r.signal}`);
  const lines = r.stderr.replace(/\n$/, "").split("\n");
  assert.equal(lines.length, 1, `stderr is not one line:\n${r.stderr}`);
  assert.match(lines[0], options.commander ? /^wgkv: error: .* \(run with --help for usage\)$/ : /^wgkv: error: /);
  assert.ok(lines[0].trim().length > 0, "stderr is empty");
  assert.doesNotMatch(r.stderr, /^\s+at /m, `stack trace on stderr:\n${r.stderr}`);
  for (const s of mustName) assert.ok(lines[0].includes(s), `stderr does not name ${JSON.stringify(s)}: ${lines[0]}`);
  if (before && options.model) assert.deepEqual(hashDir(options.model), before, "the CLI changed the model folder");
  return lines[0];
}

const forward = (model: string, ...rest: string[]) => ["forward", "--model", model, ...BACKEND, ...rest];

// ---------------------------------------------------------------- happy paths

test("--version prints the package's version", () => {
  const r = cli(["--version"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version}\n`);
});

describe("wgkv forward on a good model", () => {
  test("prints one JSON object with argmax, last_logits and greedy", () => {
    const model = copyModel();
    const before = hashDir(model);
    const r = cli(forward(model, "--ids", "1,2,3", "--generate", "2", "--json"));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    const out = JSON.parse(lines[0]) as { argmax: number[]; last_logits: number[]; greedy: number[] };
    for (const key of ["argmax", "last_logits", "greedy"]) assert.ok(key in out, `no "${key}" in ${Object.keys(out).join(", ")}`);
    assert.equal(out.argmax.length, 3);
    assert.equal(out.last_logits.length, 512);
    assert.ok(out.last_logits.every((v) => typeof v === "number" && Number.isFinite(v)));
    assert.equal(out.greedy.length, 2);
    for (const id of [...out.argmax, ...out.greedy]) assert.ok(Number.isInteger(id) && id >= 0 && id < 512);
    assert.equal(out.greedy[0], out.argmax[2], "the first greedy id is the argmax of the last position");
    assert.deepEqual(hashDir(model), before, "the CLI changed the model folder");

    // the same weights split into two shards give the same answer
    const sharded = copyModel(shard);
    const r2 = cli(forward(sharded, "--ids", "1,2,3", "--generate", "2", "--json"));
    assert.equal(r2.status, 0, r2.stderr);
    assert.deepEqual(JSON.parse(r2.stdout), out);
  });
});

// ---------------------------------------------------------------- model folder and config.json

describe("bad model folder or config.json", () => {
  test("missing folder", () => {
    expectError(forward(join(tmp, "no-such-model"), "--ids", "1"), ["no-such-model", "not found"]);
  });

  test("folder that is a file", () => {
    const model = copyModel();
    expectError(forward(join(model, "config.json"), "--ids", "1"), ["config.json", "not a folder"], { model });
  });

  test("empty --model", () => {
    expectError(forward("", "--ids", "1"), ["--model"]);
  });

  test("missing config.json", () => {
    const model = copyModel((d) => unlinkSync(join(d, "config.json")));
    expectError(forward(model, "--ids", "1"), [join(model, "config.json"), "missing"], { model });
  });

  test("config.json that is not JSON (even with newlines in the quoted text)", () => {
    const model = copyModel((d) => writeFileSync(join(d, "config.json"), "x\n\n{ not json\n"));
    expectError(forward(model, "--ids", "1"), ["config.json", "not valid JSON"], { model });
  });

  test("config.json that is not an object", () => {
    const model = copyModel((d) => writeFileSync(join(d, "config.json"), "[1, 2]"));
    expectError(forward(model, "--ids", "1"), ["config.json", "object"], { model });
  });

  test("config.json without a required field", () => {
    const model = copyModel((d) => editConfig(d, (c) => delete c.hidden_size));
    expectError(forward(model, "--ids", "1"), ["config.json", "hidden_size"], { model });
  });

  test("unsupported architecture lists the supported ones", () => {
    const model = copyModel((d) => editConfig(d, (c) => (c.architectures = ["GPT2LMHeadModel"])));
    expectError(forward(model, "--ids", "1"), ["config.json", "GPT2LMHeadModel", ...SUPPORTED], { model });
  });
});

// ---------------------------------------------------------------- safetensors

describe("bad safetensors", () => {
  test("truncated to 4 bytes", () => {
    const model = copyModel((d) => truncateSync(join(d, "model.safetensors"), 4));
    expectError(forward(model, "--ids", "1"), ["model.safetensors", "truncated"], { model });
  });

  test("truncated to half its size", () => {
    const model = copyModel((d) => {
      const file = join(d, "model.safetensors");
      truncateSync(file, Math.floor(readFileSync(file).length / 2));
    });
    expectError(forward(model, "--ids", "1"), ["model.safetensors", "truncated"], { model });
  });

  test("header length rewritten to a huge number", () => {
    const model = copyModel((d) => {
      const file = join(d, "model.safetensors");
      const bytes = readFileSync(file);
      bytes.writeBigUInt64LE(0xfffffffffffffff0n, 0);
      writeFileSync(file, bytes);
    });
    const line = expectError(forward(model, "--ids", "1"), ["model.safetensors", "header"], { model });
    assert.match(line, /18446744073709551600/, "the declared length is quoted exactly");
  });

  test("header that is not JSON", () => {
    const model = copyModel((d) => {
      const file = join(d, "model.safetensors");
      const { data } = readSafetensors(file);
      const junk = Buffer.from("this is\nnot json");
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(junk.length));
      writeFileSync(file, Buffer.concat([length, junk, data]));
    });
    expectError(forward(model, "--ids", "1"), ["model.safetensors", "header"], { model });
  });

  test("a tensor dropped from the header", () => {
    const name = "model.layers.0.self_attn.q_proj.bias";
    const model = copyModel((d) => {
      const file = join(d, "model.safetensors");
      const st = readSafetensors(file);
      delete st.header[name];
      writeSafetensors(file, st); // data offsets are relative to the data section, so the rest stay valid
    });
    expectError(forward(model, "--ids", "1"), ["model.safetensors", name, "missing"], { model });
  });

  test("a tensor of the wrong shape for the config (intermediate_size 161)", () => {
    const model = copyModel((d) => editConfig(d, (c) => (c.intermediate_size = 161)));
    expectError(forward(model, "--ids", "1"), ["model.safetensors", "model.layers.0.mlp.", "[160, 64]", "161", "config.json"], { model });
  });

  test("sharded weights whose index names a missing shard", () => {
    let missing = "";
    const model = copyModel((d) => {
      missing = shard(d)[1];
      unlinkSync(join(d, missing));
    });
    expectError(forward(model, "--ids", "1"), [missing, "model.safetensors.index.json", "missing"], { model });
  });

  test("a shard index that is JSON null", () => {
    const model = copyModel((d) => {
      shard(d);
      writeFileSync(join(d, "model.safetensors.index.json"), "null");
    });
    expectError(forward(model, "--ids", "1"), ["model.safetensors.index.json", "weight_map"], { model });
  });

  test("no weights at all", () => {
    const model = copyModel((d) => unlinkSync(join(d, "model.safetensors")));
    expectError(forward(model, "--ids", "1"), ["model.safetensors"], { model });
  });
});

// ---------------------------------------------------------------- tokenizer

describe("bad tokenizer", () => {
  test("tokenizer.json that is not JSON", () => {
    const model = copyModel((d) => writeFileSync(join(d, "tokenizer.json"), "{ oops"));
    expectError(forward(model, "--ids", "1"), ["tokenizer.json", "not valid JSON"], { model });
  });

  test("tokenizer.json that is JSON but not a tokenizer", () => {
    const model = copyModel((d) => writeFileSync(join(d, "tokenizer.json"), "{}"));
    expectError(forward(model, "--ids", "1"), ["tokenizer.json"], { model });
  });

  test("--chat with no chat template, or one that fails to parse or render", () => {
    // the default model with links to its big files and its own chat template
    const dir = join(tmp, "chat");
    mkdirSync(dir);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) symlinkSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
    const chat = ["generate", "--model", dir, ...BACKEND, "--chat", "--max-tokens", "1", "hi"];
    expectError(chat, [dir, "no chat template", "chat_template.jinja"]);
    writeFileSync(join(dir, "chat_template.jinja"), "{% for m in messages %}");
    expectError(chat, [join(dir, "chat_template.jinja"), "cannot parse"]);
    writeFileSync(join(dir, "chat_template.jinja"), "{% for m in messages %}{{ m.content | no_such_filter }}{% endfor %}");
    expectError(chat, [join(dir, "chat_template.jinja"), "failed to render"]);
  });

  test("generate on a folder with no tokenizer", () => {
    const model = copyModel();
    expectError(["generate", "--model", model, ...BACKEND, "hello"], ["tokenizer.json", "missing"], { model });
  });
});

// ---------------------------------------------------------------- token ids and flags

describe("bad token ids and flags", () => {
  test("token id >= vocab_size", () => {
    const model = copyModel();
    expectError(forward(model, "--ids", "1,512"), ["--ids", "512", "vocab_size", "config.json"], { model });
  });

  test("prompt longer than max_position_embeddings", () => {
    const model = copyModel((d) => editConfig(d, (c) => (c.max_position_embeddings = 8)));
    expectError(forward(model, "--ids", "1,2,3,4,5,6,7,8,9"), ["--ids", "9 tokens", "max_position_embeddings 8"], { model });
    expectError(forward(model, "--ids", "1,2,3,4,5,6,7", "--generate", "2"), ["--generate", "max_position_embeddings 8"], { model });
    expectError(["bench", "--model", model, ...BACKEND, "--context", "8", "--decode", "4"], ["--context", "--decode", "max_position_embeddings 8"], { model });
  });

  test("empty or malformed --ids", () => {
    const model = copyModel();
    expectError(forward(model, "--ids", ""), ["--ids", "empty"]);
    expectError(forward(model, "--ids", " , "), ["--ids", "empty"]);
    expectError(forward(model, "--ids", "1,x"), ["--ids", '"x"']);
    expectError(forward(model, "--ids", "-1"), ["--ids", "-1"]);
  });

  test("--ids not given", () => {
    expectError(["forward", ...BACKEND], ["--ids"], { commander: true });
  });

  test("unknown flag", () => {
    const model = copyModel();
    expectError(forward(model, "--ids", "1", "--frobnicate"), ["--frobnicate"], { model, commander: true });
    expectError(["generate", "--frobnicate", "hi"], ["--frobnicate"], { commander: true });
    expectError(["gate", "convert"], ["missing required argument"], { commander: true });
  });

  test("bad numeric flags", () => {
    const model = copyModel();
    const gen = (...rest: string[]) => ["generate", "--model", model, ...BACKEND, ...rest, "hello"];
    expectError(gen("--max-tokens", "abc"), ["--max-tokens", '"abc"']);
    expectError(gen("--kv-memory", "lots"), ["--kv-memory", '"lots"']);
    expectError(gen("--max-tokens", "0"), ["--max-tokens"]);
    expectError(gen("--temperature", "-1"), ["--temperature", '"-1"']);
    expectError(gen("--temperature", "hot"), ["--temperature", '"hot"']);
    expectError(gen("--temperature", ""), ["--temperature", '""']);
    expectError(gen("--top-p", "2"), ["--top-p", '"2"']);
    expectError(gen("--top-p", "0"), ["--top-p"]);
    expectError(gen("--top-k", "1.5"), ["--top-k"]);
    expectError(gen("--seed", "-3"), ["--seed"]);
    expectError(forward(model, "--ids", "1", "--generate", "abc"), ["--generate", '"abc"']);
    expectError(forward(model, "--ids", "1", "--threads", "0"), ["--threads"]);
    expectError(forward(model, "--ids", "1", "--backend", "tpu"), ["--backend", "cpu-reference"]);
    expectError(forward(model, "--ids", "1", "--rope-freq", "f64"), ["--rope-freq"]);
    expectError(forward(model, "--ids", "1", "--simd", "avx2"), ["--simd", "auto, relaxed, baseline", '"avx2"']);
    expectError(["bench", "--model", model, ...BACKEND, "--context", "abc"], ["--context", '"abc"']);
  });

  test("the shared fixture itself is untouched", () => {
    assert.deepEqual(hashDir(FIXTURE), fixtureHashBefore);
  });
});
