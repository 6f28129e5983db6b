/**
 * Policy and task specs: what parses, and one-line errors that name the flag.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import { parsePolicyList, parsePolicySpec } from "./policySpec.js";
import { parseTask, parseTaskList } from "./tasks.js";

test("policy specs map to admission, gate, selection and eviction", () => {
  assert.deepEqual(parsePolicySpec("full").options, { gate: undefined, admission: "full", selection: undefined, eviction: undefined });
  assert.equal(parsePolicySpec("local").options.admission, "local");
  assert.equal(parsePolicySpec("sinks:4").options.admission, "sinks:4");
  assert.equal(parsePolicySpec("random:0.4").options.admission, "random:0.4");
  const gate = parsePolicySpec("gate:models/g+1/gate-0.016n.pt+snapkv:512+quest:256");
  assert.deepEqual(gate.options, { gate: "models/g+1/gate-0.016n.pt", admission: "gate", selection: "quest:256", eviction: "snapkv:512" });
  assert.equal(gate.label, "gate:gate-0.016n.pt+snapkv:512+quest:256");
  assert.equal(parsePolicySpec(" full+quest:64 ").options.selection, "quest:64");
  assert.deepEqual(
    parsePolicyList("full,local").map((p) => p.spec),
    ["full", "local"],
  );
});

test("bad policy specs get a one-line error naming --policies", () => {
  const bad = ["", "fulll", "full:3", "sinks", "sinks:0", "sinks:2.5", "random", "random:1.5", "random:x", "gate", "gate:", "full+snapkv:0", "full+quest:", "gate:g.pt+quest:8+quest:9"];
  for (const spec of bad) {
    assert.throws(
      () => parsePolicySpec(spec),
      (err: unknown) => err instanceof InvalidInputError && err.message.startsWith(`--policies "${spec}"`) && !err.message.includes("\n"),
      spec,
    );
  }
  assert.throws(() => parsePolicyList("full,full"), /--policies "full,full": policy full is listed twice/);
});

test("task specs take value kinds and haystacks where they apply", () => {
  assert.equal(parseTask("niah").haystack, "corpus");
  assert.equal(parseTask("niah_multikey:uuids:noise").haystack, "noise");
  assert.equal(parseTask("vt").haystack, "noise");
  assert.equal(parseTask("vt:corpus").haystack, "corpus");
  assert.equal(parseTask("cwe").haystack, undefined);
  assert.deepEqual(
    parseTaskList("niah, vt,kv").map((t) => t.spec),
    ["niah", "vt", "kv"],
  );
});

test("bad task specs get a one-line error naming --tasks", () => {
  for (const spec of ["nia", "niah:strings", "niah:words:uuids", "niah:noise:corpus", "vt:words", "cwe:noise", "kv:uuids"]) {
    assert.throws(
      () => parseTask(spec),
      (err: unknown) => err instanceof InvalidInputError && err.message.startsWith(`--tasks "${spec}"`),
      spec,
    );
  }
  assert.throws(() => parseTaskList("niah,,vt"), /--tasks "niah,,vt": empty task name/);
  assert.throws(() => parseTaskList("vt,vt"), /listed twice/);
});
