/**
 * @module kvcache/kvPolicy.test
 *
 * A sequence's KV policy as resolved once: defaults (full attention, W 256),
 * the combination checks (a gate policy needs a gate, the window is whole
 * pages), Quest's budget check, and the report label.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GateHandle } from "../backends/backend.js";
import { InvalidInputError } from "../errors.js";
import { gateAdmission, sinksAndLocal } from "./admission.js";
import { InvalidCacheConfigError } from "./errors.js";
import { SnapKvEviction } from "./eviction.js";
import { DEFAULT_WINDOW, describeKvPolicy, resolveKvPolicy } from "./kvPolicy.js";
import { questSelection } from "./selection.js";

test("defaults: full attention, all read, none evicted, W 256, no gate", () => {
  const policy = resolveKvPolicy();
  assert.equal(DEFAULT_WINDOW, 256);
  assert.deepEqual([policy.window, policy.admission.kind, policy.selection.kind, policy.eviction.kind, policy.gate], [256, "full", "all", "none", null]);
  assert.ok(Object.isFrozen(policy));
  assert.equal(describeKvPolicy(policy), "full/all/none/w256");
});

test("the label names every part", () => {
  const gate = { gate: {} } as unknown as GateHandle;
  const policy = resolveKvPolicy({ window: 64, admission: gateAdmission(0.1), selection: questSelection(128), eviction: new SnapKvEviction(512), gate });
  assert.equal(policy.gate, gate);
  assert.equal(describeKvPolicy(policy), "gate/quest:128/snapkv:512/w64");
  assert.equal(describeKvPolicy(resolveKvPolicy({ admission: sinksAndLocal(4), window: 16 })), "sinks:4/all/none/w16");
});

test("a gate policy without a gate, a window that is not whole pages, a bad Quest budget are refused", () => {
  assert.throws(() => resolveKvPolicy({ admission: gateAdmission(0.1) }), (err: unknown) => err instanceof InvalidInputError && err.message === "gate admission needs a gate (pass --gate FILE, or kv.gate)");
  assert.throws(() => resolveKvPolicy({ window: 100 }), (err: unknown) => err instanceof InvalidCacheConfigError && err.field === "window");
  for (const bad of [0, -16, 1.5]) {
    assert.throws(() => questSelection(bad), (err: unknown) => err instanceof InvalidInputError && err.message === `selection quest budget must be a positive integer, got ${bad}`);
  }
});
