/**
 * The edges of the HTTP surface that clients and browsers touch besides the
 * completions themselves: a model by id, the Responses API's clear 404,
 * CORS only where asked for (--cors-origin), JSON bodies only (a page on
 * another site can POST text/plain without a preflight), null where
 * clients send it for unset fields, 64-bit seeds, a KV override refused
 * before a stream starts with the field as its param, and /metrics whose
 * series a scanner cannot multiply.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { MODEL_ID, scrape, startServer, type TestServer } from "../testing/server.js";

let server: TestServer;
let client: OpenAI;

before(async () => {
  server = await startServer(["--cors-origin", "http://app.example"]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0, server.stderr());
});

const ask = [{ role: "user" as const, content: "Name a color." }];
const post = (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) => fetch(`${server.baseURL}${path}`, { method: "POST", headers, body });

test("a model by id, and the Responses API pointed to chat completions", async () => {
  assert.deepEqual(await client.models.retrieve(MODEL_ID), { id: MODEL_ID, object: "model", created: 0, owned_by: "wgkv" });
  await assert.rejects(client.models.retrieve("gpt-4o"), (e: unknown) => e instanceof OpenAI.NotFoundError && /gpt-4o/.test(e.message));
  const r = await post("/responses", JSON.stringify({ model: MODEL_ID, input: "hi" }));
  assert.equal(r.status, 404);
  assert.match(((await r.json()) as { error: { message: string } }).error.message, /use \/v1\/chat\/completions/);
});

test("CORS for the origins given, preflights without a key; JSON bodies only", async () => {
  const preflight = await fetch(`${server.baseURL}/chat/completions`, { method: "OPTIONS", headers: { origin: "http://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" } });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "http://app.example");
  const other = await fetch(`${server.url}/health`, { headers: { origin: "https://evil.example" } });
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const text = await post("/chat/completions", JSON.stringify({ model: MODEL_ID, messages: ask }), { "content-type": "text/plain" });
  assert.equal(text.status, 415);
  assert.equal(((await text.json()) as { error: { code: string } }).error.code, "unsupported_media_type");
});

test("null for unset fields is accepted; seeds 2^32 apart sample differently", async () => {
  const body = { model: MODEL_ID, messages: [{ role: "user", content: "Tell me a story.", name: null }], user: null, wgkv: null, max_tokens: 12, temperature: 1.5 };
  const run = async (seed: number) => {
    const r = await post("/chat/completions", JSON.stringify({ ...body, seed }));
    assert.equal(r.status, 200, await r.clone().text());
    return ((await r.json()) as { choices: { message: { content: string } }[] }).choices[0].message.content;
  };
  const [a, again, b] = [await run(0), await run(0), await run(2 ** 32)];
  assert.equal(a, again);
  assert.notEqual(a, b);
});

test("a KV override the server cannot run is a 400 naming the field, before any stream byte", async () => {
  for (const [wgkv, param] of [[{ window: 8192 }, "wgkv.window"], [{ admission: "bogus" }, "wgkv.admission"], [{ selection: "quest:abc" }, "wgkv.selection"]] as const) {
    await assert.rejects(
      client.chat.completions.create({ model: MODEL_ID, messages: ask, max_tokens: 2, stream: true, wgkv } as OpenAI.ChatCompletionCreateParamsStreaming),
      (e: unknown) => e instanceof OpenAI.BadRequestError && (e.error as { param: string }).param === param,
    );
  }
});

test("/metrics counts unknown paths as one series", async () => {
  for (let i = 0; i < 5; i++) await (await fetch(`${server.baseURL}/scan-${i}`)).body?.cancel();
  const text = await scrape(server.url);
  assert.doesNotMatch(text, /scan-/);
  assert.match(text, /endpoint="other",status="404"/);
});

test("message shapes clients send: text parts, an assistant turn without content; images and 17 stops refused by name", async () => {
  const chat = (extra: object) => post("/chat/completions", JSON.stringify({ model: MODEL_ID, max_tokens: 2, ...extra }));
  const ok = await chat({ messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }, { role: "assistant" }, { role: "user", content: "Name a color." }] });
  assert.equal(ok.status, 200, await ok.clone().text());
  const error = async (r: Response) => ((await r.json()) as { error: { message: string; param: string } }).error;
  const image = await error(await chat({ messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "data:," } }] }] }));
  assert.deepEqual([image.param, image.message], ["messages[0].content[1]", 'only text content parts are supported, got "image_url"']);
  const stops = await error(await chat({ messages: ask, stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }));
  assert.equal(stops.param, "stop");
  assert.match(stops.message, /at most 16/);
});
