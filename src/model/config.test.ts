import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ModelLoadError, UnsupportedModelError, WgkvError } from "../errors.js";
import { parseModelConfig, SUPPORTED_ARCHITECTURES } from "./config.js";

const FILE = "/models/m/config.json";

/** A small Llama config in transformers 4.x style; `extra` overrides (undefined deletes). */
function llama(extra: Record<string, unknown> = {}): string {
  const base: Record<string, unknown> = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 160,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 512,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    hidden_act: "silu",
    rope_theta: 500000,
    bos_token_id: 1,
    eos_token_id: 2,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
  };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return JSON.stringify(base);
}

const parse = (extra: Record<string, unknown> = {}) => parseModelConfig(llama(extra), FILE);

/** Asserts a one-line error of `cls` whose message names the file and matches `pattern`. */
function assertFails(text: string, cls: typeof WgkvError, pattern: RegExp): void {
  assert.throws(
    () => parseModelConfig(text, FILE),
    (err: unknown) => {
      assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
      const message = (err as Error).message;
      assert.ok(message.startsWith(`${FILE}: `), message);
      assert.ok(!message.includes("\n"), `message is not one line: ${JSON.stringify(message)}`);
      assert.match(message, pattern);
      return true;
    },
  );
}

describe("parseModelConfig", () => {
  test("transformers 4.x style: rope_theta + rope_scaling llama3", () => {
    const c = parse({
      rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
    });
    assert.equal(c.architecture, "llama");
    assert.equal(c.ropeTheta, 500000);
    assert.deepEqual(c.ropeScaling, { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 });
    assert.equal(c.vocabSize, 512);
    assert.equal(c.hiddenSize, 64);
    assert.equal(c.intermediateSize, 160);
    assert.equal(c.numLayers, 2);
    assert.equal(c.numHeads, 4);
    assert.equal(c.numKvHeads, 2);
    assert.equal(c.rmsNormEps, 1e-5);
    assert.equal(c.maxPositions, 1024);
    assert.equal(c.dtype, "bfloat16");
    assert.equal(c.attentionBias, false);
    assert.equal(c.outputBias, false);
    assert.equal(c.mlpBias, false);
    assert.equal(c.qkNorm, false);
    assert.equal(c.slidingWindow, null);
    assert.ok(Object.isFrozen(c));
  });

  test("4.x style with the older `type` key and linear scaling", () => {
    const c = parse({ rope_scaling: { type: "linear", factor: 2 } });
    assert.deepEqual(c.ropeScaling, { type: "linear", factor: 2 });
    assert.equal(c.ropeTheta, 500000);
  });

  test("transformers 5.x style: rope_parameters carries theta and type", () => {
    const c = parse({
      rope_theta: undefined,
      torch_dtype: undefined,
      dtype: "float32",
      rope_parameters: { rope_theta: 1e6, rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    assert.equal(c.ropeTheta, 1e6);
    assert.deepEqual(c.ropeScaling, { type: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    assert.equal(c.dtype, "float32");
    const plain = parse({ rope_theta: undefined, rope_parameters: { rope_theta: 10000, rope_type: "default" } });
    assert.equal(plain.ropeTheta, 10000);
    assert.deepEqual(plain.ropeScaling, { type: "default" });
  });

  test("defaults: rope theta 10000, no scaling, kv heads = heads, max positions 4096, eps 1e-6", () => {
    const c = parse({ rope_theta: undefined, num_key_value_heads: undefined, max_position_embeddings: undefined, rms_norm_eps: undefined, rope_scaling: null });
    assert.equal(c.ropeTheta, 10000);
    assert.deepEqual(c.ropeScaling, { type: "default" });
    assert.equal(c.numKvHeads, 4);
    assert.equal(c.maxPositions, 4096);
    assert.equal(c.rmsNormEps, 1e-6);
  });

  test("head_dim defaults to hidden_size / num_attention_heads; an explicit one wins", () => {
    assert.equal(parse().headDim, 16);
    assert.equal(parse({ head_dim: null }).headDim, 16);
    assert.equal(parse({ head_dim: 32 }).headDim, 32); // Qwen3-style: heads * head_dim != hidden_size
  });

  test("architecture from model_type when architectures is absent", () => {
    assert.equal(parse({ architectures: undefined, model_type: "mistral" }).architecture, "mistral");
  });

  test("Qwen2 turns q/k/v biases on, not o_proj's", () => {
    const c = parse({ architectures: ["Qwen2ForCausalLM"], model_type: "qwen2" });
    assert.equal(c.architecture, "qwen2");
    assert.equal(c.attentionBias, true);
    assert.equal(c.outputBias, false);
    assert.equal(c.qkNorm, false);
  });

  test("Llama attention_bias turns on q/k/v and o_proj biases; mlp_bias the MLP's", () => {
    const c = parse({ attention_bias: true, mlp_bias: true });
    assert.equal(c.attentionBias, true);
    assert.equal(c.outputBias, true);
    assert.equal(c.mlpBias, true);
  });

  test("Qwen3 turns qkNorm on and keeps biases off", () => {
    const c = parse({ architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", head_dim: 32, attention_bias: false });
    assert.equal(c.architecture, "qwen3");
    assert.equal(c.qkNorm, true);
    assert.equal(c.attentionBias, false);
    assert.equal(c.headDim, 32);
  });

  test("sliding window as transformers decides it: Mistral in every layer, Qwen with use_sliding_window from max_window_layers on, layer_types first, Llama never", () => {
    const long = { max_position_embeddings: 32768 };
    const mistral = { ...long, architectures: ["MistralForCausalLM"] };
    const qwen2 = { ...long, architectures: ["Qwen2ForCausalLM"] };
    assert.equal(parse({ ...mistral, sliding_window: 4096 }).slidingWindow, 4096);
    assert.equal(parse({ ...mistral, sliding_window: null }).slidingWindow, null);
    assert.equal(parse({ ...mistral, sliding_window: 32768 }).slidingWindow, null, "a span as long as the context never binds");
    assert.equal(parse({ ...qwen2, sliding_window: 4096, use_sliding_window: false }).slidingWindow, null);
    assert.equal(parse({ ...qwen2, sliding_window: 4096, use_sliding_window: true, max_window_layers: 0 }).slidingWindow, 4096);
    assert.equal(parse({ ...qwen2, sliding_window: 4096, use_sliding_window: true }).slidingWindow, null, "the default max_window_layers 28 is past both layers");
    assert.equal(parse({ ...long, sliding_window: 4096 }).slidingWindow, null);
    assert.equal(parse({ ...long, sliding_window: 4096, layer_types: ["sliding_attention", "sliding_attention"] }).slidingWindow, null, "Llama never slides");
    assert.equal(parse({ ...mistral, sliding_window: 4096, layer_types: ["sliding_attention", "sliding_attention"] }).slidingWindow, 4096);
    assert.equal(parse({ ...mistral, sliding_window: 4096, layer_types: ["full_attention", "full_attention"] }).slidingWindow, null);
    // Qwen's span exists only with use_sliding_window, whatever layer_types says; no span, no sliding layer
    assert.equal(parse({ ...qwen2, sliding_window: 4096, layer_types: ["sliding_attention", "sliding_attention"] }).slidingWindow, null);
    assert.equal(parse({ ...qwen2, sliding_window: 4096, use_sliding_window: true, layer_types: ["sliding_attention", "sliding_attention"] }).slidingWindow, 4096);
    assert.equal(parse({ ...mistral, sliding_window: null, layer_types: ["sliding_attention", "sliding_attention"] }).slidingWindow, null);
  });

  test("biases per architecture: Qwen2 q/k/v always, Llama and Qwen3 q/k/v/o by attention_bias, mlp_bias only on Llama, Mistral none", () => {
    const biases = (extra: Record<string, unknown>) => {
      const c = parse(extra);
      return [c.attentionBias, c.outputBias, c.mlpBias];
    };
    const both = { attention_bias: true, mlp_bias: true };
    assert.deepEqual(biases({ ...both }), [true, true, true]);
    assert.deepEqual(biases({ ...both, architectures: ["Qwen3ForCausalLM"] }), [true, true, false]);
    assert.deepEqual(biases({ ...both, architectures: ["Qwen2ForCausalLM"] }), [true, false, false]);
    assert.deepEqual(biases({ attention_bias: false, architectures: ["Qwen2ForCausalLM"] }), [true, false, false]);
    assert.deepEqual(biases({ ...both, architectures: ["MistralForCausalLM"] }), [false, false, false]);
    assert.deepEqual(biases({}), [false, false, false]);
  });

  test("swish is SiLU", () => {
    assert.equal(parse({ hidden_act: "swish" }).architecture, "llama");
  });

  test("eos_token_id as a number, an array or null; bos as a number or null", () => {
    assert.deepEqual(parse({ eos_token_id: 2 }).eosTokenIds, [2]);
    assert.deepEqual(parse({ vocab_size: 128256, eos_token_id: [128001, 128008, 128009] }).eosTokenIds, [128001, 128008, 128009]);
    assert.deepEqual(parse({ eos_token_id: null }).eosTokenIds, []);
    assert.deepEqual(parse({ eos_token_id: undefined }).eosTokenIds, []);
    assert.equal(parse({ bos_token_id: 1 }).bosTokenId, 1);
    assert.equal(parse({ bos_token_id: null }).bosTokenId, null);
  });

  test("tie_word_embeddings is on only when true", () => {
    assert.equal(parse({ tie_word_embeddings: true }).tieWordEmbeddings, true);
    assert.equal(parse({ tie_word_embeddings: false }).tieWordEmbeddings, false);
    assert.equal(parse({ tie_word_embeddings: undefined }).tieWordEmbeddings, false);
    assertFails(llama({ tie_word_embeddings: "true" }), ModelLoadError, /field "tie_word_embeddings" must be true or false, got "true"/);
  });

  test("SUPPORTED_ARCHITECTURES lists the four architectures", () => {
    assert.deepEqual([...SUPPORTED_ARCHITECTURES].sort(), ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"]);
  });
});

describe("parseModelConfig errors name the file, one line each", () => {
  test("not JSON, even when V8 quotes text with newlines", () => {
    assertFails("{ nope", ModelLoadError, /not valid JSON/);
    assertFails("x\n\n{\n", ModelLoadError, /not valid JSON/);
    assertFails("", ModelLoadError, /not valid JSON/);
  });

  test("JSON that is not an object", () => {
    assertFails("[1, 2]", ModelLoadError, /expected a JSON object/);
    assertFails("null", ModelLoadError, /expected a JSON object/);
    assertFails("42", ModelLoadError, /expected a JSON object/);
  });

  test("unsupported architecture lists the supported ones", () => {
    for (const text of [llama({ architectures: ["GPT2LMHeadModel"] }), llama({ architectures: undefined, model_type: "gpt2" }), llama({ architectures: undefined, model_type: undefined })]) {
      assertFails(text, UnsupportedModelError, /unsupported architecture .*supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/);
    }
    assertFails(llama({ architectures: ["GPT2LMHeadModel"] }), UnsupportedModelError, /GPT2LMHeadModel/);
  });

  test("missing or non-integer required fields", () => {
    for (const key of ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size"]) {
      assertFails(llama({ [key]: undefined }), ModelLoadError, new RegExp(`missing required field "${key}"`));
    }
    assertFails(llama({ vocab_size: 0 }), ModelLoadError, /"vocab_size" must be a positive integer up to 2147483647, got 0/);
    assertFails(llama({ hidden_size: 64.5 }), ModelLoadError, /"hidden_size" must be a positive integer/);
    assertFails(llama({ num_hidden_layers: "2" }), ModelLoadError, /"num_hidden_layers" must be a positive integer up to 2147483647, got "2"/);
    assertFails(llama({ max_position_embeddings: -1 }), ModelLoadError, /"max_position_embeddings"/);
    assertFails(llama({ rms_norm_eps: "tiny" }), ModelLoadError, /"rms_norm_eps" must be a finite number/);
  });

  test("numbers the math needs positive and finite: eps, RoPE base and scaling, sizes, window, token ids", () => {
    assertFails(llama({ rms_norm_eps: 0 }), ModelLoadError, /field "rms_norm_eps" must be a positive number, got 0$/);
    assertFails(llama({ rms_norm_eps: -1e-6 }), ModelLoadError, /field "rms_norm_eps" must be a positive number, got -0\.000001$/);
    // 1e999 is valid JSON and parses to Infinity
    assertFails(llama().replace('"rms_norm_eps":0.00001', '"rms_norm_eps":1e999'), ModelLoadError, /field "rms_norm_eps" must be a finite number, got Infinity$/);
    assertFails(llama({ rope_theta: 0 }), ModelLoadError, /field "rope_theta" must be a positive number, got 0$/);
    assertFails(llama({ rope_theta: -10000 }), ModelLoadError, /field "rope_theta" must be a positive number/);
    assertFails(llama({ rope_theta: undefined, rope_parameters: { rope_type: "default", rope_theta: 0 } }), ModelLoadError, /field "rope_parameters\.rope_theta" must be a positive number/);
    assertFails(llama({ rope_scaling: { rope_type: "linear", factor: 0 } }), ModelLoadError, /field "rope_scaling\.factor" must be a positive number/);
    const llama3 = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    assertFails(llama({ rope_scaling: { ...llama3, original_max_position_embeddings: -64 } }), ModelLoadError, /"rope_scaling\.original_max_position_embeddings" must be a positive number/);
    assertFails(llama({ rope_scaling: { ...llama3, low_freq_factor: 0 } }), ModelLoadError, /"rope_scaling\.low_freq_factor" must be a positive number/);
    assertFails(llama({ rope_scaling: { ...llama3, high_freq_factor: 1 } }), ModelLoadError, /"rope_scaling\.high_freq_factor" \(1\) must be greater than "rope_scaling\.low_freq_factor" \(1\)/);
    assertFails(llama({ num_key_value_heads: 0 }), ModelLoadError, /"num_key_value_heads" must be a positive integer/);
    assertFails(llama({ head_dim: -16 }), ModelLoadError, /"head_dim" must be a positive integer/);
    assertFails(llama({ intermediate_size: 2 ** 40 }), ModelLoadError, /"intermediate_size" must be a positive integer up to 2147483647, got 1099511627776/);
    assertFails(llama({ architectures: ["MistralForCausalLM"], sliding_window: 0 }), ModelLoadError, /"sliding_window" must be a positive integer/);
    assertFails(llama({ eos_token_id: [2, -1] }), ModelLoadError, /"eos_token_id" must hold non-negative integer token ids, got \[2,-1\]/);
    assertFails(llama({ bos_token_id: 1.5 }), ModelLoadError, /"bos_token_id" must hold non-negative integer token ids/);
    assertFails(llama({ eos_token_id: [2, 99999] }), ModelLoadError, /"eos_token_id" holds token id 99999, past the vocabulary \(vocab_size \d+ in config\.json\)/);
    assertFails(llama({ bos_token_id: 1e9 }), ModelLoadError, /"bos_token_id" holds token id 1000000000, past the vocabulary/);
    assertFails(llama({ max_position_embeddings: 2 ** 31 - 1 }), ModelLoadError, /"max_position_embeddings" is 2147483647, more than the 16777216 positions of any model/);
    assertFails(llama({ num_hidden_layers: 2 ** 31 - 1 }), ModelLoadError, /"num_hidden_layers" is 2147483647, more than the 1024 layers of any model/);
    assert.equal(parse({ num_hidden_layers: 1024 }).numLayers, 1024);
    assert.equal(parse({ max_position_embeddings: 10_000_000 }).maxPositions, 10_000_000);
    assert.equal(parse({ sliding_window: null }).slidingWindow, null);
  });

  test("head shapes that do not fit", () => {
    assertFails(llama({ hidden_size: 66 }), ModelLoadError, /hidden_size 66 is not divisible by num_attention_heads 4/);
    assertFails(llama({ num_key_value_heads: 3 }), ModelLoadError, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
    assertFails(llama({ head_dim: 15 }), ModelLoadError, /head_dim 15 must be even/);
  });

  test("sliding windows wgkv cannot run: some layers sliding and some not, a span off the 16-token page, a bad layer_types", () => {
    const long = { max_position_embeddings: 32768, sliding_window: 4096 };
    assertFails(llama({ ...long, architectures: ["Qwen2ForCausalLM"], use_sliding_window: true, max_window_layers: 1 }), UnsupportedModelError, /field "max_window_layers" makes 1 of 2 layers attend within a sliding window and the rest fully/);
    const mistral = { ...long, architectures: ["MistralForCausalLM"] };
    assertFails(llama({ ...mistral, layer_types: ["full_attention", "sliding_attention"] }), UnsupportedModelError, /field "layer_types" makes 1 of 2 layers/);
    assertFails(llama({ ...mistral, layer_types: ["sliding_attention"] }), ModelLoadError, /field "layer_types" must list "full_attention" or "sliding_attention" for each of the 2 layers/);
    assertFails(llama({ ...mistral, layer_types: ["sliding_attention", "chunked_attention"] }), ModelLoadError, /field "layer_types" must list/);
    assertFails(llama({ ...long, architectures: ["MistralForCausalLM"], sliding_window: 4100 }), UnsupportedModelError, /field "sliding_window" is 4100; wgkv's local window must be a multiple of 16 tokens/);
    assertFails(llama({ ...long, architectures: ["Qwen2ForCausalLM"], use_sliding_window: true, max_window_layers: -1 }), ModelLoadError, /field "max_window_layers" must be a whole number, got -1/);
  });

  test("quantized checkpoints and partial RoPE are refused, naming the field", () => {
    assertFails(llama({ quantization_config: { quant_method: "gptq", bits: 4 } }), UnsupportedModelError, /field "quantization_config" \(quant_method "gptq"\): quantized checkpoints are not supported/);
    assertFails(llama({ partial_rotary_factor: 0.5 }), UnsupportedModelError, /field "partial_rotary_factor" is 0\.5; only RoPE over the whole head \(1\) is supported/);
    assertFails(llama({ rope_theta: undefined, rope_parameters: { rope_type: "default", rope_theta: 1e4, partial_rotary_factor: 0.25 } }), UnsupportedModelError, /field "rope_parameters\.partial_rotary_factor" is 0\.25/);
    assert.equal(parse({ partial_rotary_factor: 1 }).headDim, 16);
  });

  test("unsupported activation", () => {
    assertFails(llama({ hidden_act: "gelu" }), UnsupportedModelError, /hidden_act "gelu" is not supported/);
  });

  test("rope settings", () => {
    assertFails(llama({ rope_scaling: { rope_type: "yarn", factor: 4 } }), UnsupportedModelError, /rope_scaling rope_type "yarn" is not supported \(supported: default, linear, llama3\)/);
    assertFails(llama({ rope_scaling: "llama3" }), ModelLoadError, /rope_scaling must be an object or null, got "llama3"/);
    assertFails(llama({ rope_scaling: { rope_type: "llama3", factor: 8 } }), ModelLoadError, /missing required field "rope_scaling.low_freq_factor"/);
    assertFails(llama({ rope_scaling: { rope_type: "linear" } }), ModelLoadError, /missing required field "rope_scaling.factor"/);
    assertFails(llama({ rope_parameters: { rope_theta: "big" } }), ModelLoadError, /field "rope_parameters.rope_theta" must be a finite number, got "big"/);
  });
});
