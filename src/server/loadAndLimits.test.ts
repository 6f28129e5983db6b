/**
 * The server under load and at its limits, as real processes: 200 requests
 * at concurrency 16 with no failure and no page left held; a full queue
 * answers 429 with Retry-After (which the openai client honours); the API
 * key; SIGTERM lets a running stream finish, refuses new requests and exits 0.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { metricValue, MODEL_ID, scrape, startServer, waitHealthy, waitPoolIdle } from "../testing/server.js";

test("200 requests at concurrency 16: zero failures, zero leaked pages", async () => {
  const server = await startServer(["--max-seqs", "16", "--max-queue", "64"]);
  try {
    const client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
    let next = 0;
    let failures = 0;
    let done = 0;
    const worker = async () => {
      while (next < 200) {
        const i = next++;
        try {
          if (i % 2 === 0) {
            const r = await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: `Number ${i}?` }], max_tokens: 4, temperature: 0.8, seed: i });
            assert.ok(r.usage!.completion_tokens >= 1);
          } else {
            let n = 0;
            for await (const c of await client.completions.create({ model: MODEL_ID, prompt: `The special magic number ${i}`, max_tokens: 4, temperature: 0, stream: true })) n += c.choices.length;
            assert.ok(n >= 1);
          }
          done++;
        } catch (err) {
          failures++;
          console.error(err);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    assert.equal(failures, 0);
    assert.equal(done, 200);
    await waitPoolIdle(server.url, 2000);
    const m = await scrape(server.url);
    const ok = (metricValue(m, "wgkv_requests_total", '{endpoint="/v1/chat/completions",status="200"}') ?? 0) + (metricValue(m, "wgkv_requests_total", '{endpoint="/v1/completions",status="200"}') ?? 0);
    assert.equal(ok, 200);
    assert.equal(metricValue(m, "wgkv_kv_pages_free"), metricValue(m, "wgkv_kv_pages_total"));
    assert.equal(metricValue(m, "wgkv_requests_running"), 0);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test("API key, a full queue's 429, and SIGTERM's drain", async () => {
  const key = "sk-test-123";
  const server = await startServer(["--max-seqs", "1", "--max-queue", "1", "--api-key", key, "--no-kv-override"], { waitReady: false });
  // it listens before the model is loaded: /health says so, and requests get a 503 the client may retry
  const loading = await fetch(`${server.url}/health`);
  assert.equal(loading.status, 503);
  assert.deepEqual(await loading.json(), { status: "loading" });
  await waitHealthy(server.url);
  const body = (max_tokens: number) => ({ model: MODEL_ID, messages: [{ role: "user" as const, content: "What is the special magic number for red-harbor-72?" }], max_tokens, temperature: 1, seed: 3 });
  try {
    for (const apiKey of ["", "sk-wrong"]) {
      const r = await fetch(`${server.baseURL}/models`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
      assert.equal(r.status, 401);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, "invalid_api_key");
    }
    await assert.rejects(new OpenAI({ baseURL: server.baseURL, apiKey: "sk-wrong" }).models.list(), OpenAI.AuthenticationError);
    assert.equal((await fetch(`${server.url}/health`)).status, 200, "/health needs no key (load balancers)");
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200, "/metrics needs no key (Prometheus)");

    const client = new OpenAI({ baseURL: server.baseURL, apiKey: key, maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ ...body(2), wgkv: { admission: "local" } } as OpenAI.ChatCompletionCreateParamsNonStreaming),
      (e: InstanceType<typeof OpenAI.BadRequestError>) => e.status === 400 && /disabled/.test(e.message) && (e.error as { param: string }).param === "wgkv",
    );
    // one runs, one waits, the third is refused
    const running = client.chat.completions.create(body(300));
    await waitFor(async () => metricValue(await scrape(server.url), "wgkv_requests_running") === 1);
    const waiting = client.chat.completions.create(body(2));
    await waitFor(async () => metricValue(await scrape(server.url), "wgkv_queue_length") === 1);
    const refused = await fetch(`${server.baseURL}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body(2)) });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "rate_limit_exceeded");
    // the openai client retries a 429 after Retry-After and gets through once there is room
    const patient = new OpenAI({ baseURL: server.baseURL, apiKey: key, maxRetries: 8 }).chat.completions.create(body(2));
    const results = await Promise.all([running, waiting, patient]);
    assert.ok(results.every((r) => r.choices[0].message.content !== null));

    // SIGTERM mid-stream: the stream ends normally, then the process exits 0
    const stream = await client.chat.completions.create({ ...body(40), stream: true });
    let text = "";
    let finish: string | null = null;
    let signalled: Promise<number | string | null> | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
      if (!signalled && text.length > 0) {
        signalled = server.stop("SIGTERM");
        // once the signal lands, /health is refused (a new connection) or 503 (a kept-alive one)
        await waitFor(async () => {
          const r = await fetch(`${server.url}/health`).catch(() => null);
          await r?.body?.cancel();
          return r === null || r.status === 503;
        });
      }
    }
    assert.ok(finish === "length" || finish === "stop", `stream ended with ${finish}`);
    assert.equal(await signalled, 0);
    assert.match(server.stderr(), /SIGTERM: draining 1 running/);
  } finally {
    await server.stop("SIGKILL");
  }
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
