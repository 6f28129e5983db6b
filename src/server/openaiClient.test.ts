/**
 * The server as OpenAI's own client sees it: a real `wgkv serve` process on
 * a free loopback port, driven by the `openai` npm package (v6). Chat and
 * completions, streaming and not, the usage chunk, logprobs, wgkv's KV
 * figures and per-request policy, 16 concurrent greedy streams against the
 * same requests one at a time, cancellation with the pool back to idle, and
 * every bad input, after which the server still serves.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { metricValue, MODEL_ID, PROJECT_ROOT, scrape, startServer, TINY_GATE, waitPoolIdle, type TestServer } from "../testing/server.js";

let server: TestServer;
let client: OpenAI;

before(async () => {
  server = await startServer(["--gate", TINY_GATE, "--max-body", "1MiB"]);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 2 });
});
after(async () => {
  assert.equal(await server.stop(), 0, server.stderr());
});

const ask = (content: string) => [{ role: "user" as const, content }];
const question = (i: number) => `What is the special magic number for blue-pencil-${i}?`;

test("chat: a greedy answer, the same streamed, with the role first, usage and finish reason", async () => {
  const full = await client.chat.completions.create({ model: MODEL_ID, messages: ask(question(31)), max_tokens: 24, temperature: 0 });
  assert.equal(full.object, "chat.completion");
  assert.equal(full.choices.length, 1);
  assert.equal(full.choices[0].message.role, "assistant");
  assert.match(full.choices[0].message.content!, /^The special magic number for blue-pencil-31 is/);
  assert.ok(["stop", "length"].includes(full.choices[0].finish_reason));
  assert.ok(full.usage!.prompt_tokens > 10 && full.usage!.completion_tokens > 0 && full.usage!.completion_tokens <= 24);
  assert.equal(full.usage!.total_tokens, full.usage!.prompt_tokens + full.usage!.completion_tokens);

  const stream = await client.chat.completions.create({ model: MODEL_ID, messages: ask(question(31)), max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
  assert.equal(text, full.choices[0].message.content);
  const finishing = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finishing.length, 1);
  assert.equal(finishing[0].choices[0].finish_reason, full.choices[0].finish_reason);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, full.usage);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
});

test("completions: text in, text out, streamed the same; stop strings cut the text", async () => {
  const prompt = "The special magic number for red-harbor-72 is:";
  const full = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 12, temperature: 0 });
  assert.equal(full.object, "text_completion");
  const text = full.choices[0].text;
  assert.ok(text.length > 0);
  const stream = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 12, temperature: 0, stream: true });
  let streamed = "";
  let finish: string | null = null;
  for await (const c of stream) {
    streamed += c.choices[0]?.text ?? "";
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(streamed, text);
  assert.equal(finish, full.choices[0].finish_reason);
  // a stop string taken from the middle of the greedy text ends it there
  const cut = text.slice(0, Math.ceil(text.length / 2));
  const stopAt = text.slice(cut.length, cut.length + 2);
  const stopped = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 12, temperature: 0, stop: [stopAt] });
  assert.equal(stopped.choices[0].text, text.slice(0, text.indexOf(stopAt)));
  assert.equal(stopped.choices[0].finish_reason, "stop");
});

test("logprobs: the chosen token's logprob, its top alternatives, greedy picks the top one", async () => {
  const r = await client.chat.completions.create({ model: MODEL_ID, messages: ask(question(7)), max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs!.content!;
  assert.equal(content.map((e) => e.token).join(""), r.choices[0].message.content);
  for (const e of content) {
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].token, e.token);
    assert.equal(e.top_logprobs[0].logprob, e.logprob);
    assert.ok(e.logprob <= 0 && e.top_logprobs[1].logprob <= e.logprob && e.top_logprobs[2].logprob <= e.top_logprobs[1].logprob);
    assert.deepEqual(e.bytes, Array.from(Buffer.from(e.token)));
  }
  const c = await client.completions.create({ model: MODEL_ID, prompt: "The special magic number", max_tokens: 4, temperature: 0, logprobs: 2 });
  const lp = c.choices[0].logprobs!;
  assert.equal(lp.tokens!.join(""), c.choices[0].text);
  assert.equal(lp.top_logprobs!.length, lp.tokens!.length);
  lp.top_logprobs!.forEach((top, i) => assert.equal(Math.max(...Object.values(top)), lp.token_logprobs![i]));
});

test("sampling: the same seed gives the same text; top_k 1 and min_p 1 are greedy", async () => {
  const base = { model: MODEL_ID, messages: ask(question(12)), max_tokens: 16 };
  const greedy = await client.chat.completions.create({ ...base, temperature: 0 });
  const a = await client.chat.completions.create({ ...base, temperature: 1.5, seed: 5 });
  const b = await client.chat.completions.create({ ...base, temperature: 1.5, seed: 5 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  for (const extra of [{ top_k: 1 }, { min_p: 1 }]) {
    const r = await client.chat.completions.create({ ...base, temperature: 1.5, seed: 9, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(r.choices[0].message.content, greedy.choices[0].message.content, JSON.stringify(extra));
  }
});

test("wgkv extension: KV figures per request; a request's own admission policy", async () => {
  const needle = readFileSync(join(PROJECT_ROOT, "examples/needle.txt"), "utf8").slice(0, 3000);
  const run = async (wgkv?: object) => {
    const r = (await client.chat.completions.create({ model: MODEL_ID, messages: ask(needle), max_tokens: 2, temperature: 0, ...(wgkv ? { wgkv } : {}) } as OpenAI.ChatCompletionCreateParamsNonStreaming)) as unknown as {
      wgkv: { admitted_fraction: number; kv_bytes: number; kv_bytes_full_attention: number };
    };
    return r.wgkv;
  };
  const gate = await run();
  const full = await run({ admission: "full" });
  const local = await run({ admission: "local" });
  assert.equal(full.admitted_fraction, 1);
  assert.equal(local.admitted_fraction, 0);
  assert.ok(gate.admitted_fraction > 0 && gate.admitted_fraction < 1, String(gate.admitted_fraction));
  assert.equal(gate.kv_bytes_full_attention, full.kv_bytes_full_attention);
  assert.ok(local.kv_bytes < gate.kv_bytes && gate.kv_bytes < full.kv_bytes, JSON.stringify({ local, gate, full }));
  await assert.rejects(run({ admission: "sometimes" }), (e: InstanceType<typeof OpenAI.BadRequestError>) => e.status === 400 && /wgkv\.admission/.test(e.message));
});

test("16 concurrent streams give what the same requests give one at a time", async () => {
  const requests = Array.from({ length: 16 }, (_, i) => ({ model: MODEL_ID, messages: ask(question(100 + i * 7)), max_tokens: 16, temperature: 0 }));
  const alone: string[] = [];
  for (const r of requests) alone.push((await client.chat.completions.create(r)).choices[0].message.content!);
  const together = await Promise.all(
    requests.map(async (r) => {
      let text = "";
      for await (const c of await client.chat.completions.create({ ...r, stream: true })) text += c.choices[0]?.delta.content ?? "";
      return text;
    }),
  );
  assert.deepEqual(together, alone);
  assert.ok(new Set(alone).size > 1, "the prompts should not all give the same answer");
});

test("a client that leaves mid-stream or mid-prompt aborts its request: its pages return to the pool", async () => {
  const stream = await client.chat.completions.create({ model: MODEL_ID, messages: ask(question(3)), max_tokens: 2000, temperature: 1, seed: 1, stream: true });
  let n = 0;
  for await (const _ of stream) if (++n === 4) break; // leaving the loop aborts the HTTP request
  await waitPoolIdle(server.url, 5000);

  const needle = readFileSync(join(PROJECT_ROOT, "examples/needle.txt"), "utf8");
  const controller = new AbortController();
  const pending = client.chat.completions.create({ model: MODEL_ID, messages: ask(needle), max_tokens: 4, temperature: 0 }, { signal: controller.signal, maxRetries: 0 });
  // abort once the prompt's first chunks hold pages
  for (let i = 0; ; i++) {
    const used = metricValue(await scrape(server.url), "wgkv_kv_pages_used")!;
    if (used > 0) break;
    assert.ok(i < 2000, "the prompt never started");
    await new Promise((r) => setTimeout(r, 2));
  }
  controller.abort();
  await assert.rejects(pending, OpenAI.APIUserAbortError);
  await waitPoolIdle(server.url, 5000);
  const metrics = await scrape(server.url);
  assert.equal(metricValue(metrics, "wgkv_running_sequences"), 0);
  assert.equal(metricValue(metrics, "wgkv_kv_pages_free"), metricValue(metrics, "wgkv_kv_pages_total"));
});

test("bad input gets OpenAI's error JSON with the right status, is not retried, and the server goes on", async () => {
  const count400 = async () => metricValue(await scrape(server.url), "wgkv_requests_total", '{endpoint="/v1/chat/completions",status="400"}') ?? 0;
  const expectError = async (p: Promise<unknown>, status: number, match: RegExp, param?: string, code?: string) => {
    await assert.rejects(p, (e: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(e.status, status, e.message);
      assert.match(e.message, match);
      const body = e.error as { message: string; type: string; param: string | null; code: string | null };
      assert.equal(typeof body.message, "string");
      assert.equal(typeof body.type, "string");
      if (param !== undefined) assert.equal(body.param, param);
      if (code !== undefined) assert.equal(body.code, code);
      return true;
    });
  };
  const before400 = await count400();
  const long = "a ".repeat(40_000);
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: ask(long), max_tokens: 4 }), 400, /maximum context length is 32768 tokens/, "messages", "context_length_exceeded");
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: ask("hi"), max_tokens: 40_000 }), 400, /maximum context length/, "messages", "context_length_exceeded");
  assert.equal((await count400()) - before400, 2, "a 400 must not be retried");
  // text whose length alone proves it over the context is refused before the seconds of tokenizing it
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: ask("x".repeat(900_000)), max_tokens: 30_000 }), 400, /asks for at least \d+ \(at least \d+ in the messages, 30000 in the completion\)/, "messages", "context_length_exceeded");
  await expectError(client.completions.create({ model: MODEL_ID, prompt: "x".repeat(900_000), max_tokens: 30_000 }), 400, /at least \d+ in the prompt/, "prompt", "context_length_exceeded");
  await expectError(client.chat.completions.create({ model: "gpt-4o", messages: ask("hi") }), 404, /gpt-4o/, "model", "model_not_found");
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: ask("hi"), n: 2 }), 400, /n must be 1/, "n");
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: ask("hi"), temperature: "hot" as unknown as number }), 400, /temperature/, "temperature");
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: "hi" as unknown as [] }), 400, /messages/, "messages");
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: [] }), 400, /messages/, "messages");
  await expectError(client.chat.completions.create({ model: MODEL_ID, messages: ask("hi"), wgkv: { window: 17 } } as OpenAI.ChatCompletionCreateParamsNonStreaming), 400, /wgkv\.window/);
  await expectError(client.completions.create({ model: MODEL_ID, prompt: [1, 99999] }), 400, /out of range/);
  await expectError(client.completions.create({ model: MODEL_ID, prompt: ["one", "two"] }), 400, /one prompt per request/, "prompt");

  const raw = (body: string) => fetch(`${server.baseURL}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const malformed = await raw('{"model": "wgkv-tiny-chat", "messages": [');
  assert.equal(malformed.status, 400);
  assert.deepEqual(Object.keys(((await malformed.json()) as { error: object }).error).sort(), ["code", "message", "param", "type"]);
  const big = await raw(JSON.stringify({ model: MODEL_ID, messages: ask("x".repeat(1.2 * 2 ** 20)) }));
  assert.equal(big.status, 413);
  assert.equal(((await big.json()) as { error: { code: string } }).error.code, "request_too_large");
  const unknownField = await raw(JSON.stringify({ model: MODEL_ID, messages: ask("hi"), max_tokens: 2, temperature: 0, some_future_field: { x: 1 } }));
  assert.equal(unknownField.status, 200, "unknown fields are ignored");
  await unknownField.body?.cancel();
  assert.equal((await fetch(`${server.url}/v2/nothing`)).status, 404);

  const ok = await client.chat.completions.create({ model: MODEL_ID, messages: ask(question(31)), max_tokens: 4, temperature: 0 });
  assert.ok(ok.choices[0].message.content!.length > 0);
  assert.doesNotMatch(server.stderr(), /internal error|\n\s+at /);
});

test("/v1/models lists the model; /health is ok; /metrics counts requests and the admitted fraction", async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL_ID]);
  assert.deepEqual(await (await fetch(`${server.url}/health`)).json(), { status: "ok", model: MODEL_ID });
  const m = await scrape(server.url);
  assert.ok(metricValue(m, "wgkv_requests_total", '{endpoint="/v1/chat/completions",status="200"}')! > 20);
  const admitted = metricValue(m, "wgkv_admitted_fraction")!;
  assert.ok(admitted > 0 && admitted < 1, String(admitted));
  assert.ok(metricValue(m, "wgkv_generated_tokens_total")! > 100);
  assert.equal(metricValue(m, "wgkv_queue_length"), 0);
  assert.ok(metricValue(m, "wgkv_preemptions_total")! >= 0);
  assert.ok(metricValue(m, "wgkv_tokens_per_second")! >= 0);
});
