/**
 * The read pacer: idles only after reads of the same work, for their
 * shortest wait less a margin, so that one long wait does not lengthen the
 * idle and an idle too long shrinks back under the GPU's time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ReadPacer } from "./readPacer.js";

const step = { commands: 400, workgroups: 100_000 };

test("readPacer: nothing before a first wait, or after other work; the shortest recent wait less the margin after the same", () => {
  const p = new ReadPacer();
  assert.equal(p.idleMs(step), 0, "no wait known");
  p.record(step, 4);
  assert.equal(p.idleMs(step), 3.6, "10% margin");
  assert.equal(p.idleMs({ commands: 400, workgroups: 108_000 }), 3.6, "workgroups within 10% (attention's items grow with the context)");
  assert.equal(p.idleMs({ commands: 400, workgroups: 112_000 }), 0, "workgroups 12% apart: other work");
  assert.equal(p.idleMs({ commands: 401, workgroups: 100_000 }), 0, "another command count: other work");
  p.record(step, 1);
  assert.equal(p.idleMs(step), 0.75, "at least 0.25 ms of margin");
  p.record(step, 9);
  assert.equal(p.idleMs(step), 0.75, "a long wait (the host's pause) does not lengthen the idle");
  p.record(step, 0.7);
  assert.equal(p.idleMs(step), 0, "under half a millisecond: map at once");
  p.record({ commands: 12, workgroups: 40 }, 30);
  p.record(step, 5);
  assert.equal(p.idleMs(step), 4.5, "other work between: the waits before it are forgotten");
  for (let i = 0; i < 8; i++) p.record(step, 6);
  assert.equal(p.idleMs(step), 5.4, "the last 8 waits only");
  p.reset();
  assert.equal(p.idleMs(step), 0, "reset forgets");
});

test("readPacer: an idle past the GPU's time shrinks by the margin each read until the GPU's time is polled again", () => {
  const p = new ReadPacer();
  const gpuMs = 3;
  // NOTE: a read waits for the GPU or the idle, whichever is longer (mapping adds 0.05 ms)
  p.record(step, 20);
  const idles: number[] = [];
  for (let i = 0; i < 40; i++) {
    const idle = p.idleMs(step);
    idles.push(idle);
    p.record(step, Math.max(gpuMs, idle) + 0.05);
  }
  assert.ok(idles[0] > gpuMs, "starts too long");
  const settled = idles.slice(-10);
  for (const idle of settled) assert.ok(idle < gpuMs && idle > gpuMs - 0.5, `settles just under the GPU's time: ${idle}`);
});
