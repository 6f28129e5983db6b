/**
 * @module kvcache/parse.test
 *
 * Policy specs as users write them: exactly the documented forms are
 * accepted (admission `full | local | sinks:N | random:RATE | gate`,
 * selection `all | quest:BUDGET`, eviction `none | snapkv:BUDGET`, spaces
 * around the parts allowed), and everything else is refused with a one-line
 * InvalidInputError that names the option the caller passed as `what`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../errors.js";
import { SnapKvEviction } from "./eviction.js";
import { ADMISSION_SPECS, parseAdmission, parseEviction, parseSelection } from "./parse.js";

/** Asserts `fn` throws an InvalidInputError whose single-line message is exactly `message`. */
function refuses(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidInputError, `not an InvalidInputError: ${String(err)}`);
    assert.equal(err.message, message);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}

test("admission: the documented specs, canonical names and arguments", () => {
  assert.equal(ADMISSION_SPECS, "full, local, sinks:N, random:RATE, gate");
  const cases: [string, string, string, Record<string, number>][] = [
    ["full", "full", "full", {}],
    [" full ", "full", "full", {}],
    ["local", "local", "local", {}],
    ["sinks:4", "sinks:4", "sinks", { numSinks: 4 }],
    ["sinks: 04", "sinks:4", "sinks", { numSinks: 4 }],
    ["random:0.25", "random:0.25", "random", { rate: 0.25, seed: 0 }],
    ["random:.5", "random:0.5", "random", { rate: 0.5 }],
    ["random:1.", "random:1", "random", { rate: 1 }],
    ["random:0", "random:0", "random", { rate: 0 }],
    ["random:1", "random:1", "random", { rate: 1 }],
    ["gate", "gate", "gate", { tau: 0.1 }],
  ];
  for (const [spec, name, kind, fields] of cases) {
    const policy = parseAdmission(spec, 0.1);
    assert.equal(policy.name, name, spec);
    assert.equal(policy.kind, kind, spec);
    for (const [field, value] of Object.entries(fields)) assert.equal(policy[field as keyof typeof policy], value, `${spec} ${field}`);
    assert.ok(Object.isFrozen(policy));
  }
  assert.equal(parseAdmission("gate", 0.35).tau, 0.35);
});

test("admission: everything else is refused, naming the option", () => {
  const notOne = (spec: string, what = "--admission") => `${what} "${spec}" is not one of full, local, sinks:N, random:RATE, gate`;
  for (const spec of ["", "FULL", "bogus", ":", "random-0.5", "sink:4"]) refuses(() => parseAdmission(spec, 0.1), notOne(spec));
  refuses(() => parseAdmission("bogus", 0.1, "kv.admission"), notOne("bogus", "kv.admission"));
  for (const spec of ["full:1", "local:", "gate:0.2"]) refuses(() => parseAdmission(spec, 0.1), `--admission "${spec}" takes no argument`);
  for (const [spec, arg] of [["sinks", ""], ["sinks:", ""], ["sinks:0", "0"], ["sinks:-1", "-1"], ["sinks:1.5", "1.5"], ["sinks:4:5", "4:5"], ["sinks:1e3", "1e3"], ["sinks:9007199254740993", "9007199254740993"]]) {
    refuses(() => parseAdmission(spec!, 0.1), `--admission sinks:N must be a positive integer up to 16777216, got "${arg}"`);
  }
  refuses(() => parseAdmission("sinks:x", 0.1, "kv.admission"), `kv.admission sinks:N must be a positive integer up to 16777216, got "x"`);
  // the rate is a plain decimal in [0, 1]: exponents, hex, signs, NaN and Infinity are refused
  for (const spec of ["random", "random:", "random:1e-1", "random:1.5", "random:-0.1", "random:+0.5", "random:0x1", "random:NaN", "random:Infinity", "random:1/2"]) {
    refuses(() => parseAdmission(spec, 0.1), `--admission random:RATE needs a rate in [0, 1], got "${spec}"`);
  }
  refuses(() => parseAdmission("random:2", 0.1, "eval --admission"), `eval --admission random:RATE needs a rate in [0, 1], got "random:2"`);
  for (const tau of [0, 1, -0.5, NaN]) refuses(() => parseAdmission("gate", tau), `tau must be in (0, 1), got ${tau}`);
  refuses(() => parseAdmission(42 as unknown as string, 0.1, "kv.admission"), "kv.admission must be a string, got number");
});

test("selection: all and quest:BUDGET; everything else refused, naming the option", () => {
  assert.equal(parseSelection("all").kind, "all");
  const quest = parseSelection(" quest : 64 ");
  assert.deepEqual({ ...quest }, { name: "quest:64", kind: "quest", budget: 64 });
  refuses(() => parseSelection("topk"), `--selection "topk" is not one of all, quest:BUDGET`);
  refuses(() => parseSelection("topk", "kv.selection"), `kv.selection "topk" is not one of all, quest:BUDGET`);
  refuses(() => parseSelection("all:1"), `--selection "all:1" takes no argument`);
  for (const [spec, arg] of [["quest", ""], ["quest:0", "0"], ["quest:abc", "abc"], ["quest:1.5", "1.5"], ["quest:-8", "-8"], ["quest:9999999999999", "9999999999999"], ["quest:16777217", "16777217"]]) {
    refuses(() => parseSelection(spec!), `--selection quest:BUDGET must be a positive integer up to 16777216, got "${arg}"`);
  }
});

test("eviction: none and snapkv:BUDGET; everything else refused, naming the option", () => {
  const none = parseEviction("none");
  assert.equal(none.kind, "none");
  assert.equal(none.observationWindow, 0);
  const snap = parseEviction("snapkv:128");
  assert.ok(snap instanceof SnapKvEviction);
  assert.equal(snap.name, "snapkv:128");
  assert.equal(snap.budget, 128);
  refuses(() => parseEviction("h2o"), `--eviction "h2o" is not one of none, snapkv:BUDGET`);
  refuses(() => parseEviction("h2o", "kv.eviction"), `kv.eviction "h2o" is not one of none, snapkv:BUDGET`);
  refuses(() => parseEviction("none:1"), `--eviction "none:1" takes no argument`);
  for (const [spec, arg] of [["snapkv", ""], ["snapkv:0", "0"], ["snapkv:-3", "-3"], ["snapkv:1e2", "1e2"]]) {
    refuses(() => parseEviction(spec!), `--eviction snapkv:BUDGET must be a positive integer up to 16777216, got "${arg}"`);
  }
});
