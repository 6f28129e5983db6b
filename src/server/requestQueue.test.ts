/** The request queue: slots, FIFO order, 429 past the queue, waiters that leave, idle. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError } from "./errors.js";
import { RequestQueue } from "./requestQueue.js";

test("runs up to maxRunning, queues FIFO up to maxQueue, then refuses with 429 and Retry-After", async () => {
  const q = new RequestQueue(2, 2);
  const a = await q.acquire();
  const b = await q.acquire();
  const order: string[] = [];
  const c = q.acquire().then((r) => (order.push("c"), r));
  const d = q.acquire().then((r) => (order.push("d"), r));
  assert.equal(q.numRunning, 2);
  assert.equal(q.numWaiting, 2);
  await assert.rejects(q.acquire(), (e: ApiError) => e.status === 429 && e.headers["Retry-After"] === "1" && e.code === "rate_limit_exceeded");
  b();
  b(); // a second release changes nothing
  const releaseC = await c;
  assert.deepEqual(order, ["c"]);
  assert.equal(q.numRunning, 2);
  a();
  const releaseD = await d;
  assert.deepEqual(order, ["c", "d"]);
  let idle = false;
  const idleP = q.idle().then(() => (idle = true));
  releaseC();
  await Promise.resolve();
  assert.equal(idle, false);
  releaseD();
  await idleP;
  assert.equal(q.numRunning, 0);
});

test("a waiter whose signal aborts leaves the queue; the next one gets the slot", async () => {
  const q = new RequestQueue(1, 3);
  const first = await q.acquire();
  const controller = new AbortController();
  const leaving = q.acquire(controller.signal);
  const staying = q.acquire();
  controller.abort();
  await assert.rejects(leaving, (e: ApiError) => (e.status as number) === 499);
  assert.equal(q.numWaiting, 1);
  first();
  const release = await staying;
  assert.equal(q.numRunning, 1);
  release();
  await assert.rejects(q.acquire(AbortSignal.abort()), (e: ApiError) => (e.status as number) === 499);
  assert.equal(q.numRunning, 0);
});
