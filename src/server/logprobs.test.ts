/**
 * Tokens as logprobs report them: the bytes each token stands for (a
 * byte-level token may hold part of a character), joined back into the text;
 * text where the bytes are whole UTF-8, else vLLM's `bytes:\xNN` spelling.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createFolderSource } from "../platform/node/fileSource.js";
import { DEFAULT_MODEL_DIR } from "../testing/fixtures.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { tokenEntry } from "./logprobs.js";

let tok: TextTokenizer;
before(async () => {
  tok = await loadTokenizer(createFolderSource(DEFAULT_MODEL_DIR));
});

test("each token's bytes join into the text's UTF-8; partial characters are spelled as bytes", () => {
  for (const text of ["東京 and Zürich 😀", "plain words, spaces  and\nnewlines", "<|eot_id|> spelled in text"]) {
    const entries = tok.encode(text).map((id) => tokenEntry(tok, id));
    assert.deepEqual(new TextDecoder().decode(Uint8Array.from(entries.flatMap((e) => e.bytes))), text);
    for (const e of entries) {
      const whole = (() => {
        try {
          return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(e.bytes));
        } catch {
          return null;
        }
      })();
      assert.equal(e.token, whole ?? "bytes:" + e.bytes.map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join(""));
    }
  }
  // 東 takes more than one token in this vocabulary: some entry must be partial
  assert.ok(tok.encode("東").map((id) => tokenEntry(tok, id)).some((e) => e.token.startsWith("bytes:")));
});
