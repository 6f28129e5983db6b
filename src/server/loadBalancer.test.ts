/**
 * The scale-out deployment of docs/deployment.md, for real: two `wgkv
 * serve` processes behind Debian's nginx (least connections), driven
 * through the balancer by the openai client. Both backends serve; their
 * /metrics show it; a backend that drains (SIGTERM) leaves the balancer
 * serving every request from the other.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import OpenAI from "openai";
import { NGINX, startNginx, type TestBalancer } from "../testing/nginx.js";
import { metricValue, MODEL_ID, scrape, startServer, type TestServer } from "../testing/server.js";

const skip = existsSync(NGINX) ? false : `${NGINX} is missing (apt-get install nginx-light; .ci/run installs it)`;
let backends: TestServer[] = [];
let balancer: TestBalancer;

before(async () => {
  if (skip) return;
  backends = await Promise.all([startServer(["--threads", "1"]), startServer(["--threads", "1"])]);
  balancer = await startNginx(backends.map((b) => `127.0.0.1:${b.port}`));
});
after(async () => {
  await balancer?.stop();
  for (const b of backends) await b.stop("SIGKILL");
});

const served = async (b: TestServer) => {
  const m = await scrape(b.url);
  return (metricValue(m, "wgkv_requests_total", '{endpoint="/v1/chat/completions",status="200"}') ?? 0);
};

test("requests through nginx spread over both servers; streams pass through unbuffered", { skip }, async () => {
  const client = new OpenAI({ baseURL: `${balancer.url}/v1`, apiKey: "unused", maxRetries: 0 });
  assert.deepEqual((await client.models.list()).data.map((m) => m.id), [MODEL_ID]);
  const answers = await Promise.all(
    Array.from({ length: 24 }, async (_, i) => {
      const stream = await client.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: `What is the special magic number for key-${i}?` }], max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
      let text = "";
      let usage = null;
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? "";
        usage = c.usage ?? usage;
      }
      assert.ok(usage, "the usage chunk came through");
      return text;
    }),
  );
  assert.ok(answers.every((a) => a.length > 0));
  const counts = await Promise.all(backends.map(served));
  assert.equal(counts[0] + counts[1], 24);
  assert.ok(counts[0] >= 4 && counts[1] >= 4, `least_conn should use both servers: ${counts}`);
});

test("a draining server drops out; the balancer keeps serving from the other", { skip }, async () => {
  const client = new OpenAI({ baseURL: `${balancer.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const [first, second] = backends;
  const before = await served(second);
  assert.equal(await first.stop("SIGTERM"), 0);
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => client.chat.completions.create({ model: MODEL_ID, messages: [{ role: "user", content: `Key ${i}?` }], max_tokens: 4, temperature: 0 })),
  );
  assert.equal(results.length, 8);
  assert.equal((await served(second)) - before, 8);
  assert.equal((await fetch(`${balancer.url}/health`)).status, 200);
});
