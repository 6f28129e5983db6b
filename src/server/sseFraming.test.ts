/**
 * The bytes of a streamed answer, read off the socket with node:http (no
 * SSE parser in between): headers, then `data: <json>\n\n` events, chat's
 * role chunk first, one chunk with the finish reason, the usage chunk with
 * no choices, and `data: [DONE]\n\n` last; nothing else on the wire.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { MODEL_ID, startServer, type TestServer } from "../testing/server.js";

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop();
});

function post(path: string, body: object): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, path, method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, raw: Buffer.concat(parts) }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

test("chat stream framing: role chunk, deltas, finish chunk, usage chunk, [DONE]", async () => {
  const r = await post("/v1/chat/completions", {
    model: MODEL_ID, messages: [{ role: "user", content: "What is the special magic number for red-harbor-72?" }],
    max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  assert.equal(r.status, 200);
  assert.match(String(r.headers["content-type"]), /^text\/event-stream/);
  assert.equal(r.headers["cache-control"], "no-cache");
  const text = r.raw.toString("utf8");
  // every event is exactly one data line followed by a blank line; nothing before, between or after
  assert.match(text, /^(data: [^\n]+\n\n)+$/);
  assert.ok(text.endsWith("data: [DONE]\n\n"));
  const events = text.slice(0, -2).split("\n\n").map((e) => e.slice("data: ".length));
  assert.equal(events.pop(), "[DONE]");
  const chunks = events.map((e) => JSON.parse(e) as { object: string; choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[]; usage: object | null });
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "", refusal: null });
  const finishAt = chunks.findIndex((c) => c.choices[0]?.finish_reason);
  assert.equal(finishAt, chunks.length - 2, "the finish reason comes in the chunk before the usage chunk");
  assert.deepEqual(chunks[finishAt].choices[0].delta, {});
  assert.equal(chunks[finishAt].choices[0].finish_reason, "length");
  for (const c of chunks.slice(1, finishAt)) {
    assert.equal(typeof c.choices[0].delta.content, "string");
    assert.ok(c.choices[0].delta.content!.length > 0);
    assert.equal(c.usage, null);
  }
  const usage = chunks[chunks.length - 1];
  assert.deepEqual(usage.choices, []);
  assert.equal((usage.usage as { completion_tokens: number }).completion_tokens, 8);
});

test("completion stream framing without usage: text chunks, finish, [DONE]", async () => {
  const r = await post("/v1/completions", { model: MODEL_ID, prompt: "The special magic number", max_tokens: 3, temperature: 0, stream: true });
  const text = r.raw.toString("utf8");
  assert.match(text, /^(data: [^\n]+\n\n)+$/);
  const events = text.slice(0, -2).split("\n\n").map((e) => e.slice("data: ".length));
  assert.equal(events.pop(), "[DONE]");
  const chunks = events.map((e) => JSON.parse(e) as { object: string; choices: { text: string; finish_reason: string | null }[]; usage?: unknown });
  assert.ok(chunks.every((c) => c.object === "text_completion" && c.choices.length === 1 && !("usage" in c)));
  assert.equal(chunks.at(-1)!.choices[0].finish_reason, "length");
  assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null && c.choices[0].text.length > 0));
});

test("an error before the stream starts is plain JSON with its status, not an event stream", async () => {
  const r = await post("/v1/chat/completions", { model: MODEL_ID, messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 40_000 });
  assert.equal(r.status, 400);
  assert.match(String(r.headers["content-type"]), /^application\/json/);
  assert.equal(JSON.parse(r.raw.toString()).error.code, "context_length_exceeded");
});
