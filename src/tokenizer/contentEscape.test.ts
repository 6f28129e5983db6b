import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { DEFAULT_MODEL_DIR } from "../testing/fixtures.js";
import { ContentEscaper } from "./contentEscape.js";

/**
 * A SentencePiece-style tokenizer written here: Prepend + Replace normalizer,
 * Metaspace pre-tokenizer that prepends "▁" only to the first section, one
 * character per token, special <s> and </s>, and a normalized, lstrip/rstrip
 * added token [INST]: the paths a byte-level tokenizer never takes.
 */
function metaspaceTokenizer(): Tokenizer {
  const vocab: Record<string, number> = { "<unk>": 3 };
  [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789▁<>/[]|_.,!?\n"].forEach((c, i) => (vocab[c] = 10 + i));
  const added = (id: number, content: string, special: boolean, normalized: boolean, strip: boolean) => ({ id, content, special, normalized, lstrip: strip, rstrip: strip, single_word: false });
  return new Tokenizer(
    {
      version: "1.0",
      added_tokens: [added(0, "<s>", true, false, false), added(1, "</s>", true, false, false), added(2, "[INST]", false, true, true)],
      normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
      post_processor: null,
      decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
      model: { type: "BPE", vocab, merges: [], unk_token: "<unk>", fuse_unk: true, byte_fallback: false },
    },
    {},
  );
}

const byteLevel = new Tokenizer(JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "tokenizer.json"), "utf8")), {});

/** Texts that cross every kind of boundary: specials at the ends and side by side, spaces beside strip tokens, partial spellings. */
const TEXTS = [
  "", "hello", " hello world ", "<s>", "<s>hi", "hi</s>", "<s>[INST] hi [/INST] ok</s><s>[INST]  again  [INST]",
  "x [INST]y", "[INST]", " [INST] ", "<s><s></s>", "<|eot_id|>", "a<|start_header_id|>b<|end_header_id|>\n\nc<|eot_id|>",
  "<|begin_of_text|><|begin_of_text|", "<s", "s>", "\n\n<|eot_id|>  \n", "tabs\tand\nnewlines",
];

test("without markers, encode() gives exactly the library's own ids (byte-level and SentencePiece-style tokenizers)", () => {
  for (const tokenizer of [byteLevel, metaspaceTokenizer()]) {
    const escaper = new ContentEscaper(tokenizer, {});
    for (const text of TEXTS) assert.deepEqual(escaper.encode(text, []), tokenizer.encode(text, { add_special_tokens: false }).ids, JSON.stringify(text));
  }
});

test("escaped spellings become plain text where they stand, in context (SentencePiece-style)", () => {
  const tokenizer = metaspaceTokenizer();
  const escaper = new ContentEscaper(tokenizer, {});
  const { escaped, markers } = escaper.escape({ role: "user", content: "a<s>b [INST] c" });
  assert.deepEqual(markers, ["<s>", "[INST]"]);
  assert.equal(escaped.content, "a\u{F0000}b \u{F0001} c");
  assert.equal(escaped.role, "user");
  // A template that puts the content between its own specials:
  const ids = escaper.encode(`<s>[INST] ${escaped.content} [/INST]</s>`, markers);
  const vocab = (s: string) => [...s].map((c) => tokenizer.token_to_id(c)!);
  // <s> | the template's [INST] (normalized: "▁[INST]", id 2) | the rest as characters, the content's <s> and [INST] included | </s>
  assert.deepEqual(ids, [0, 2, ...vocab("▁a<s>b▁[INST]▁c▁[/INST]"), 1]);
  // the same text unescaped: the library makes the content's spellings special
  assert.deepEqual(tokenizer.encode("<s>[INST] a<s>b [INST] c [/INST]</s>", { add_special_tokens: false }).ids, [0, 2, ...vocab("▁a"), 0, ...vocab("▁b"), 2, ...vocab("▁c▁[/INST]"), 1]);
});

test("escape copies strings everywhere in the value, and marks private-use characters too", () => {
  const escaper = new ContentEscaper(byteLevel, {});
  const { escaped, markers } = escaper.escape([{ role: "user", content: "<|eot_id|>x<|eot_id|>", parts: ["<|begin_of_text|>", 7, null] }, "\u{F0003}"]);
  assert.deepEqual(markers, ["<|eot_id|>", "<|begin_of_text|>", "\u{F0003}"]);
  assert.deepEqual(escaped, [{ role: "user", content: "\u{F0000}x\u{F0000}", parts: ["\u{F0001}", 7, null] }, "\u{F0002}"]);
  // and they come back as themselves
  assert.deepEqual(escaper.encode("\u{F0002}", markers), byteLevel.encode("\u{F0003}", { add_special_tokens: false }).ids);
});
