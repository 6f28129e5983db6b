/**
 * @module engine/textStream.test
 *
 * Streamed text from tokens with a fake tokenizer whose tokens are raw UTF-8
 * bytes, decoded the way real tokenizers decode (an incomplete character
 * becomes U+FFFD): deltas add up to the text, a possible stop-string prefix
 * and an unfinished character are held back until they resolve, a stop
 * string cuts the text, end-of-sequence tokens add nothing, and flush
 * releases what was held back at the end.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { DEFAULT_MODEL_DIR } from "../testing/fixtures.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { TextStream } from "./textStream.js";

const EOS = 0;

/** Token i is the UTF-8 bytes vocab[i]; decode joins the bytes and decodes them leniently. */
function fakeTokenizer(vocab: readonly (string | number[])[]): { tokenizer: TextTokenizer; calls: number[][] } {
  const calls: number[][] = [];
  const bytesOf = (t: string | number[]) => (typeof t === "string" ? [...new TextEncoder().encode(t)] : t);
  const tokenizer = {
    decode(ids: readonly number[]): string {
      calls.push([...ids]);
      return new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => bytesOf(vocab[id]!))));
    },
  } as unknown as TextTokenizer;
  return { tokenizer, calls };
}

/** Pushes tokens; returns each push's delta (with "|stop" when it stopped). */
function pushAll(stream: TextStream, ids: readonly number[]): string[] {
  return ids.map((id) => {
    const { delta, stopped } = stream.push(id);
    return stopped ? `${delta}|stop` : delta;
  });
}

test("each token's delta, adding up to the text", () => {
  const { tokenizer } = fakeTokenizer(["<eos>", "Hel", "lo", " world"]);
  const stream = new TextStream(tokenizer, new Set([EOS]), []);
  assert.deepEqual(pushAll(stream, [1, 2, 3]), ["Hel", "lo", " world"]);
  assert.equal(stream.text, "Hello world");
  assert.equal(stream.stopped, false);
  assert.equal(stream.flush(), "");
});

test("a possible stop-string prefix is held back, then released when it does not complete", () => {
  const { tokenizer } = fakeTokenizer(["<eos>", "ab", "E", "N", "x"]);
  const stream = new TextStream(tokenizer, new Set([EOS]), ["END"]);
  assert.deepEqual(pushAll(stream, [1, 2, 3, 4]), ["ab", "", "", "ENx"]);
  assert.equal(stream.text, "abENx");
});

test("a stop string cuts the text before it and ends the stream", () => {
  const { tokenizer } = fakeTokenizer(["<eos>", "ab", "E", "ND", "tail"]);
  const stream = new TextStream(tokenizer, new Set([EOS]), ["END"]);
  assert.deepEqual(pushAll(stream, [1, 2, 3]), ["ab", "", "|stop"]);
  assert.equal(stream.text, "ab");
  assert.equal(stream.stopped, true);
  assert.deepEqual(pushAll(stream, [4]), ["|stop"], "nothing after the stop");
  assert.equal(stream.flush(), "");
  assert.equal(stream.text, "ab");
});

test("a stop string inside one token: the text before it is the last delta; the earliest of several stops wins", () => {
  const { tokenizer } = fakeTokenizer(["<eos>", "hello STOP there END"]);
  const stream = new TextStream(tokenizer, new Set([EOS]), ["END", "STOP"]);
  assert.deepEqual(pushAll(stream, [1]), ["hello |stop"]);
  assert.equal(stream.text, "hello ");
});

test("an incomplete UTF-8 character (U+FFFD at the end) is held back until the next token completes it", () => {
  // é = C3 A9, € = E2 82 AC, 😀 = F0 9F 98 80
  const { tokenizer } = fakeTokenizer(["<eos>", [0xc3], [0xa9], [0xe2], [0x82], [0xac], [0xf0, 0x9f], [0x98, 0x80], "!"]);
  const stream = new TextStream(tokenizer, new Set([EOS]), []);
  assert.deepEqual(pushAll(stream, [1, 2, 3, 4, 5, 6, 7, 8]), ["", "é", "", "", "€", "", "😀", "!"]);
  assert.equal(stream.text, "é€😀!");
});

test("flush releases what was held back: a stop prefix that never completed, an unfinished character", () => {
  const { tokenizer } = fakeTokenizer(["<eos>", "ok E", [0xc3]]);
  const prefix = new TextStream(tokenizer, new Set([EOS]), ["END"]);
  assert.deepEqual(pushAll(prefix, [1]), ["ok "]);
  assert.equal(prefix.flush(), "E");
  assert.equal(prefix.flush(), "", "once");
  const broken = new TextStream(tokenizer, new Set([EOS]), []);
  assert.deepEqual(pushAll(broken, [1, 2]), ["ok E", ""]);
  assert.equal(broken.flush(), "\ufffd");
});

test("end-of-sequence tokens add nothing; a generation that is only EOS gives empty text", () => {
  const { tokenizer, calls } = fakeTokenizer(["<eos>", "hi"]);
  const empty = new TextStream(tokenizer, new Set([EOS]), ["x"]);
  assert.deepEqual(empty.push(EOS), { delta: "", stopped: false });
  assert.equal(empty.text, "");
  assert.equal(empty.flush(), "");
  assert.deepEqual(calls, [], "EOS is never decoded");
  const tail = new TextStream(tokenizer, new Set([EOS, 9]), []);
  assert.deepEqual(pushAll(tail, [1, 9, EOS]), ["hi", "", ""]);
  assert.equal(tail.text, "hi");
});

test("without a tokenizer there is no text", () => {
  const stream = new TextStream(null, new Set([EOS]), ["x"]);
  assert.deepEqual(stream.push(5), { delta: "", stopped: false });
  assert.equal(stream.text, "");
  assert.equal(stream.flush(), "");
});

/** A real tokenizer as TextStream uses it, counting the ids each decode takes. */
function counted(tokenizer: Tokenizer): { tokenizer: TextTokenizer; sizes: number[] } {
  const sizes: number[] = [];
  const wrapped = {
    decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
      sizes.push(ids.length);
      return tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
    },
  } as unknown as TextTokenizer;
  return { tokenizer: wrapped, sizes };
}

/** SentencePiece-style: one character per token, "▁" for spaces, a decoder that drops the first token's leading space. */
function metaspaceTokenizer(): Tokenizer {
  const vocab: Record<string, number> = { "<unk>": 0, "</s>": 1 };
  [..."abcdefghijklmnopqrstuvwxyzéü東京▁.,!?\n"].forEach((c, i) => (vocab[c] = 10 + i));
  return new Tokenizer(
    {
      version: "1.0",
      added_tokens: [{ id: 1, content: "</s>", special: true, normalized: false, lstrip: false, rstrip: false, single_word: false }],
      normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
      post_processor: null,
      decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
      model: { type: "BPE", vocab, merges: [], unk_token: "<unk>", fuse_unk: true, byte_fallback: false },
    },
    {},
  );
}

test("real tokenizers: the text is the whole decode at every token, and each token decodes a short window, not every id", () => {
  const byteLevel = new Tokenizer(JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, "tokenizer.json"), "utf8")), {});
  const text = "東京 and Zürich😀, spaces  and\nnewlines; ".repeat(40);
  for (const [name, tok] of [["byte-level", byteLevel], ["metaspace", metaspaceTokenizer()]] as const) {
    const source = name === "metaspace" ? text.replace(/[^a-zéü東京 .,!?\n]/g, "") : text;
    const ids: number[] = tok.encode(source, { add_special_tokens: false }).ids;
    assert.ok(ids.length > 300, `${name}: ${ids.length} tokens`);
    const { tokenizer, sizes } = counted(tok);
    const stream = new TextStream(tokenizer, new Set([-1]), []);
    const deltas = ids.map((id, i) => {
      const { delta } = stream.push(id);
      assert.equal(stream.text, tok.decode(ids.slice(0, i + 1), { skip_special_tokens: true }), `${name}: text after ${i + 1} tokens`);
      return delta;
    });
    assert.equal(deltas.join("") + stream.flush(), tok.decode(ids, { skip_special_tokens: true }), name);
    // NOTE: a window spans 4 ids of context and the tokens of an unfinished character (😀: up to 4 bytes)
    assert.ok(Math.max(...sizes) <= 9, `${name}: a decode took ${Math.max(...sizes)} ids`);
  }
});

test("clean-up that edits text before the window (\" ,\" -> \",\") still gives the whole decode", () => {
  for (const source of ["a , b . c ! d ? e", "x ,, y  ,z , ", " , . ! ?"]) {
    const tok = metaspaceTokenizer();
    const ids: number[] = tok.encode(source, { add_special_tokens: false }).ids;
    const { tokenizer } = counted(tok);
    const stream = new TextStream(tokenizer, new Set([-1]), []);
    ids.forEach((id, i) => {
      stream.push(id);
      assert.equal(stream.text, tok.decode(ids.slice(0, i + 1), { skip_special_tokens: true }), `${JSON.stringify(source)} after ${i + 1} tokens`);
    });
  }
});
