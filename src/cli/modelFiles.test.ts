/**
 * Garbage model folders through the CLI: configs whose numbers break the math,
 * norm weights and biases that are not finite, and safetensors headers that
 * alias, repeat or overrun. Each gives one line naming the file and the field
 * or tensor, exit status 1, and leaves the folder as it was.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyModel, expectCliError } from "../testing/cli.js";
import { archDir, DEFAULT_MODEL_DIR } from "../testing/fixtures.js";

let tmp = "";
let copies = 0;
before(() => (tmp = mkdtempSync(join(tmpdir(), "wgkv-model-files-"))));
after(() => tmp && rmSync(tmp, { recursive: true, force: true }));

/** A copy of the qwen2 fixture (bf16, q/k/v biases), corrupted by `edit`. */
const qwen2 = (edit: (dir: string) => void) => copyModel(archDir("qwen2"), join(tmp, `m${copies++}`), edit);
const forward = (model: string) => ["forward", "--model", model, "--backend", "cpu-reference", "--ids", "1,2"];

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const file = join(dir, "config.json");
  const config = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(config);
  writeFileSync(file, JSON.stringify(config));
}

type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };

/** Rewrites model.safetensors: `edit` gets the header text (to change entries or write it raw) and the data. */
function editSafetensors(dir: string, edit: (header: Record<string, Entry>, data: Uint8Array) => string | void): void {
  const file = join(dir, "model.safetensors");
  const bytes = new Uint8Array(readFileSync(file));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, Entry>;
  const data = bytes.slice(8 + n);
  const text = new TextEncoder().encode(edit(header, data) ?? JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  writeFileSync(file, out);
}

/** Writes a bf16 value (its top 16 bits of f32) at element `i` of a tensor. */
function poke(header: Record<string, Entry>, data: Uint8Array, name: string, i: number, bf16Bits: number): void {
  new DataView(data.buffer).setUint16(header[name]!.data_offsets[0] + 2 * i, bf16Bits, true);
}

describe("config.json numbers that break the math", () => {
  const cases: Array<[string, (c: Record<string, unknown>) => void, string[]]> = [
    ["rms_norm_eps 0", (c) => (c.rms_norm_eps = 0), ["rms_norm_eps", "positive"]],
    ["rms_norm_eps negative", (c) => (c.rms_norm_eps = -1e-6), ["rms_norm_eps"]],
    ["rope_theta 0", (c) => (c.rope_theta = 0), ["rope_theta", "positive"]],
    ["rope scaling factor negative", (c) => (c.rope_scaling = { rope_type: "linear", factor: -2 }), ["rope_scaling.factor"]],
    ["num_key_value_heads 0", (c) => (c.num_key_value_heads = 0), ["num_key_value_heads"]],
    ["absurd hidden_size", (c) => (c.hidden_size = 2 ** 45), ["hidden_size"]],
    ["absurd max_position_embeddings (would size the KV bookkeeping)", (c) => (c.max_position_embeddings = 2 ** 31 - 1), ["max_position_embeddings", "2147483647"]],
    ["sliding_window -1", (c) => ((c.sliding_window = -1), (c.use_sliding_window = true)), ["sliding_window"]],
    ["llama3 RoPE band inverted", (c) => (c.rope_scaling = { rope_type: "llama3", factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 64 }), ["rope_scaling.high_freq_factor", "greater than"]],
    ["a negative eos_token_id", (c) => (c.eos_token_id = [-1]), ["eos_token_id"]],
  ];
  for (const [what, edit, names] of cases) {
    test(what, () => {
      const model = qwen2((d) => editConfig(d, edit));
      expectCliError(forward(model), [join(model, "config.json"), ...names], { unchanged: model });
    });
  }
});

describe("generation_config.json that is not what it says", () => {
  test("null, or eos_token_id that is not a token id or not one of the vocabulary", () => {
    const cases: Array<[string, string[]]> = [["null", ["expected a JSON object"]], ['{"eos_token_id": "</s>"}', ['field "eos_token_id" must hold non-negative integer token ids, got "</s>"']], ['{"eos_token_id": [2, -1]}', ['"eos_token_id"', "[2,-1]"]], ['{"eos_token_id": [2, 1000000000]}', ['field "eos_token_id" holds token id 1000000000, past the vocabulary (vocab_size']]];
    for (const [text, names] of cases) {
      const model = qwen2((d) => writeFileSync(join(d, "generation_config.json"), text));
      expectCliError(forward(model), [join(model, "generation_config.json"), ...names], { unchanged: model });
    }
  });
});

describe("config.json and the weights disagree", () => {
  test("fewer layers than the file holds, or biases the architecture does not read, name the first tensor left over", () => {
    const cases: Array<[(c: Record<string, unknown>) => void, string[]]> = [
      [(c) => ((c.num_hidden_layers = 1), (c.layer_types = ["full_attention"])), ['tensor "model.layers.1.']],
      [(c) => ((c.architectures = ["LlamaForCausalLM"]), (c.model_type = "llama"), (c.attention_bias = false)), ['tensor "model.layers.', '_proj.bias"']],
    ];
    for (const [edit, names] of cases) {
      const model = qwen2((d) => editConfig(d, edit));
      expectCliError(forward(model), [join(model, "model.safetensors"), ...names, "is not part of the"], { unchanged: model });
    }
  });
});

describe("norm weights and biases that are not finite", () => {
  test("NaN in the final norm, +inf in a q_proj bias, -inf in an input norm", () => {
    const cases: Array<[string, number]> = [["model.norm.weight", 0x7fc0], ["model.layers.1.self_attn.q_proj.bias", 0x7f80], ["model.layers.0.input_layernorm.weight", 0xff80]];
    for (const [name, bits] of cases) {
      const model = qwen2((d) => editSafetensors(d, (h, data) => poke(h, data, name, 5, bits)));
      const { line } = expectCliError(forward(model), [join(model, "model.safetensors"), `"${name}"`, "index 5", "finite"], { unchanged: model });
      assert.match(line, /holds (NaN|Infinity|-Infinity) at index 5/);
    }
  });
});

describe("safetensors headers that alias, repeat or overrun", () => {
  test("two tensors on the same bytes", () => {
    const model = qwen2((d) =>
      editSafetensors(d, (h) => {
        h["model.layers.1.input_layernorm.weight"]!.data_offsets = h["model.layers.0.input_layernorm.weight"]!.data_offsets;
      }),
    );
    expectCliError(forward(model), [join(model, "model.safetensors"), "overlaps", "input_layernorm.weight"], { unchanged: model });
  });

  test("a tensor named twice in the header", () => {
    const model = qwen2((d) =>
      editSafetensors(d, (h) => {
        const name = "model.norm.weight";
        const text = JSON.stringify(h);
        return text.slice(0, -1) + `,${JSON.stringify(name)}:${JSON.stringify(h[name])}}`;
      }),
    );
    expectCliError(forward(model), [join(model, "model.safetensors"), '"model.norm.weight" twice'], { unchanged: model });
  });

  test("a header that is not an object, not UTF-8, or with offsets that do not fit the shape", () => {
    const cases: Array<[(h: Record<string, Entry>) => string | void, string[]]> = [
      [() => "[]", ["header is not an object"]],
      [(h) => void (h["model.norm.weight"]!.shape = [65]), ['"model.norm.weight"', "spans 128 bytes", "needs 130"]],
    ];
    for (const [edit, names] of cases) {
      const model = qwen2((d) => editSafetensors(d, edit));
      expectCliError(forward(model), [join(model, "model.safetensors"), ...names], { unchanged: model });
    }
    // raw bytes that are not UTF-8 inside the header
    const model = qwen2((d) => {
      const file = join(d, "model.safetensors");
      const bytes = readFileSync(file);
      bytes[9] = 0xff; // the first byte after '{'
      writeFileSync(file, bytes);
    });
    expectCliError(forward(model), [join(model, "model.safetensors"), "not UTF-8"], { unchanged: model });
  });

  test("a tensor stored in two shards", () => {
    const model = qwen2((d) => {
      const shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
      for (const f of shards) writeFileSync(join(d, f), readFileSync(join(d, "model.safetensors")));
      rmSync(join(d, "model.safetensors"));
      writeFileSync(join(d, "model.safetensors.index.json"), JSON.stringify({ weight_map: { "model.norm.weight": shards[0], "lm_head.weight": shards[1] } }));
    });
    expectCliError(forward(model), [join(model, "model-00002-of-00002.safetensors"), "is also in model-00001-of-00002.safetensors"], { unchanged: model });
  });

  test("the last tensor moved 8 bytes past the data section", () => {
    const model = qwen2((d) =>
      editSafetensors(d, (h) => {
        const last = Object.values(h).filter((e) => e.data_offsets).sort((a, b) => b.data_offsets[1] - a.data_offsets[1])[0]!;
        last.data_offsets = [last.data_offsets[0] + 8, last.data_offsets[1] + 8];
      }),
    );
    expectCliError(forward(model), [join(model, "model.safetensors"), "ends at byte", "truncated"], { unchanged: model });
  });
});

describe("chat templates that would hang or exhaust memory", () => {
  /** The default model (its big files linked) with `template` as chat_template.jinja. */
  function withTemplate(template: string): string {
    const dir = join(tmp, `chat${copies++}`);
    mkdirSync(dir);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) symlinkSync(join(DEFAULT_MODEL_DIR, f), join(dir, f));
    writeFileSync(join(dir, "chat_template.jinja"), template);
    return dir;
  }
  const cases: Array<[string, string, string]> = [
    ["range(1000000000)", "{% for i in range(1000000000) %}x{% endfor %}", "range() of 1000000000 items"],
    ["nested loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "rendering budget"],
    ["string doubling", "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "characters or items"],
    ["a macro that calls itself", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "nesting deeper than"],
  ];
  for (const [what, template, why] of cases) {
    test(what, () => {
      const model = withTemplate(template);
      const { elapsedMs } = expectCliError(["generate", "--model", model, "--backend", "cpu-reference", "--chat", "--max-tokens", "1", "hi"], [join(model, "chat_template.jinja"), why], { unchanged: model });
      assert.ok(elapsedMs < 10_000, `took ${elapsedMs} ms`); // the whole command, model load included
    });
  }
});

describe("files too large or not regular", () => {
  test("a 300 MB tokenizer.json (sparse) is refused by its size, not read", () => {
    const model = qwen2((d) => {
      writeFileSync(join(d, "tokenizer.json"), "{}");
      truncateSync(join(d, "tokenizer.json"), 300 * 2 ** 20);
    });
    expectCliError(["generate", "--model", model, "--backend", "cpu-reference", "hi"], [join(model, "tokenizer.json"), "314572800 bytes"]);
  });

  test("--gate naming a folder, a device, a missing file or a 3 GB file (sparse)", () => {
    const big = join(tmp, "huge.pt");
    writeFileSync(big, "");
    truncateSync(big, 3 * 2 ** 30);
    const cases: Array<[string, string]> = [[tmp, "is a folder"], ["/dev/zero", "not a regular file"], [join(tmp, "absent.pt"), "file is missing"], [big, "3221225472 bytes"]];
    for (const [i, [path, why]] of cases.entries()) {
      expectCliError(["gate", "convert", path, join(tmp, "never.safetensors")], [path, "cannot read the gate file", why]);
      if (i === 1) expectCliError(["forward", "--backend", "cpu-reference", "--ids", "1", "--gate", path], [path, "cannot read the gate file", why]);
    }
  });
});
