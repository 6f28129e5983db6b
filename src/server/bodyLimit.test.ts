/**
 * limitBody over a real socket: a body within the limit reaches the handler
 * whole; a slow upload over the limit still gets its 413 (no reset while the
 * client writes), declared by Content-Length or chunked; past the drain cap
 * the connection closes and the server goes on.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { limitBody } from "./bodyLimit.js";
import { toErrorResponse } from "./errors.js";

const MAX = 1000;
const DRAIN = 256 * 1024;
let server: ServerType;
let port = 0;

before(async () => {
  const app = new Hono();
  app.onError((err, c) => {
    const { status, body, headers } = toErrorResponse(err, () => undefined);
    return c.json(body, status, headers);
  });
  app.post("/echo", limitBody(MAX, DRAIN), async (c) => c.text(`${(await c.req.arrayBuffer()).byteLength}:${(await c.req.text()).slice(0, 5)}`));
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
      port = info.port;
      resolve();
    });
  });
});
after(() => server?.close());

interface Reply {
  readonly status: number;
  readonly text: string;
  readonly connection: string | undefined;
}

/** POSTs `pieces` pieces of `pieceBytes` bytes, pausing between writes so that an early answer arrives mid-upload. */
function upload(pieces: number, pieceBytes: number, declareLength: boolean): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = declareLength ? { "content-length": String(pieces * pieceBytes) } : {};
    const req = request({ host: "127.0.0.1", port, path: "/echo", method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, connection: res.headers.connection }));
    });
    req.on("error", reject);
    let sent = 0;
    const writeNext = () => {
      if (sent === pieces) return void req.end();
      sent++;
      req.write("x".repeat(pieceBytes), () => setTimeout(writeNext, 5));
    };
    writeNext();
  });
}

test("a body within the limit reaches the handler whole", async () => {
  assert.deepEqual(await upload(4, 250, true), { status: 200, text: "1000:xxxxx", connection: "keep-alive" });
  assert.equal((await upload(5, 200, false)).text, "1000:xxxxx");
});

test("a slow upload over the limit gets its 413, declared or chunked, and the connection may be reused", async () => {
  for (const declared of [true, false]) {
    const reply = await upload(24, 4096, declared);
    assert.equal(reply.status, 413, `declared ${declared}`);
    assert.equal((JSON.parse(reply.text) as { error: { code: string } }).error.code, "request_too_large");
    assert.notEqual(reply.connection, "close");
  }
});

test("a body past the drain cap is cut off with Connection: close, and the server goes on", async () => {
  const reply = await upload(1, DRAIN + 1, true).catch((e: NodeJS.ErrnoException) => String(e.code));
  // NOTE: the client may see the 413 or, if it was still writing, a reset: either way it was not read to the end
  if (typeof reply === "string") assert.match(reply, /ECONNRESET|EPIPE/);
  else assert.deepEqual([reply.status, reply.connection], [413, "close"]);
  assert.equal((await upload(2, 10, true)).text, "20:xxxxx");
});
