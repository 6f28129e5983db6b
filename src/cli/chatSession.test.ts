/** The chat session's commands and history, with a fake generator in place of the model. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GenerationStream } from "../engine/generation.js";
import type { ChatMessage } from "../tokenizer/tokenizer.js";
import { ChatSession, parseChatLine } from "./chatSession.js";

test("lines parse into turns and commands", () => {
  assert.deepEqual(parseChatLine("  hello "), { kind: "say", text: "  hello " });
  assert.deepEqual(parseChatLine(""), { kind: "empty" });
  assert.deepEqual(parseChatLine("/stats"), { kind: "stats" });
  assert.deepEqual(parseChatLine("/system  Be brief. "), { kind: "system", text: "Be brief." });
  assert.deepEqual(parseChatLine("/quit"), { kind: "exit" });
  assert.deepEqual(parseChatLine("/frobnicate x"), { kind: "unknown", name: "/frobnicate" });
});

test("each answer sees the system prompt and the whole history; reset forgets it", async () => {
  const seen: ChatMessage[][] = [];
  const session = new ChatSession((prompt) => {
    seen.push(prompt.messages);
    const stream = new GenerationStream();
    const text = `answer ${seen.length}`;
    stream.push({ tokenId: 1, text });
    const kv = { numTokens: 10, numPagesHeld: 1, residentBytes: 2 ** 20, peakBytes: 2 ** 20, fullAttentionBytes: 2 ** 21, numAdmitted: 10, numGlobalTokens: 0, admittedByHead: [[5, 10]] };
    stream.settle({ tokenIds: [1], text, finishReason: "eos", numPromptTokens: 5, prefillMs: 1, decodeMs: 1, numPreemptions: 0, kv });
    return stream;
  }, {});
  session.system = "Be brief.";
  let out = "";
  await session.say("one", (d) => (out += d));
  await session.say("two", (d) => (out += d));
  assert.equal(out, "answer 1answer 2");
  assert.deepEqual(seen[1], [
    { role: "system", content: "Be brief." },
    { role: "user", content: "one" },
    { role: "assistant", content: "answer 1" },
    { role: "user", content: "two" },
  ]);
  assert.match(session.stats(), /2 turns in the conversation, 2 answers, 2 tokens generated/);
  assert.match(session.stats(), /resident 1\.00 MiB .* against 2\.00 MiB .*\(50\.0%\)/);
  assert.match(session.stats(), /admitted fraction: 0\.750 of 20/);
  session.reset();
  assert.deepEqual(session.messages(), [{ role: "system", content: "Be brief." }]);
  assert.equal(session.stop(), false, "nothing to stop");
});
