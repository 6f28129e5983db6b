/**
 * Seeded randomness and the building blocks of cases.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { topWords, zipfWords } from "./frequentWords.js";
import { Rng } from "./rng.js";
import { fitCount } from "./task.js";
import { ADJECTIVES, COMMON_WORDS, makeCodedWords, makeKeys, makeUuid, makeValues, NOUNS } from "./words.js";

test("the generator is reproducible and streams differ", () => {
  const a = Array.from({ length: 5 }, ((r) => () => r.nextU32())(new Rng(42)));
  const b = Array.from({ length: 5 }, ((r) => () => r.nextU32())(new Rng(42)));
  assert.deepEqual(a, b);
  assert.notEqual(Rng.derive(0, "niah", 2048, 0).nextU32(), Rng.derive(0, "niah", 2048, 1).nextU32());
  const r = new Rng(1);
  for (let i = 0; i < 1000; i++) {
    const n = r.int(3, 7);
    assert.ok(n >= 3 && n <= 7 && Number.isInteger(n));
  }
});

test("keys and values have the training format and are distinct", () => {
  const keys = makeKeys(new Rng(3), 50);
  assert.equal(new Set(keys).size, 50);
  for (const k of keys) assert.match(k, /^[a-z]+-[a-z]+-[1-9]\d$/);
  for (const v of makeValues(new Rng(4), "numbers", 20)) assert.match(v, /^[1-9]\d{6}$/);
  assert.match(makeUuid(new Rng(5)), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  for (const list of [ADJECTIVES, NOUNS, COMMON_WORDS]) assert.equal(new Set<string>(list).size, list.length);
  const coded = makeCodedWords(new Rng(6), 500, new Set(["baba"]));
  assert.equal(new Set(coded).size, 500);
  assert.ok(!coded.includes("baba"));
});

test("Zipf words have three strictly most frequent words", () => {
  for (let seed = 0; seed < 20; seed++) {
    const vocabulary = makeCodedWords(new Rng(seed), 100);
    const words = zipfWords(new Rng(seed), vocabulary, 300, 2);
    const counts = new Map<string, number>();
    for (const w of words) if (w !== "....") counts.set(w, (counts.get(w) ?? 0) + 1);
    const sorted = [...counts.values()].sort((a, b) => b - a);
    assert.ok(sorted[0] > sorted[1] && sorted[1] > sorted[2] && sorted[2] > sorted[3], `seed ${seed}: ${sorted.slice(0, 4)}`);
    assert.deepEqual(topWords(words, 3), vocabulary.slice(0, 3));
  }
});

test("fitCount finds the largest count that fits", () => {
  const build = (n: number) => ({ ids: new Array<number>(n * 3 + 5).fill(0) });
  assert.equal(fitCount(build, 100, 0, 1000, "items").n, 31);
  assert.equal(fitCount(build, 100, 0, 20, "items").n, 20);
  assert.equal(fitCount(build, 5, 0, 1000, "items").n, 0);
  assert.throws(() => fitCount(build, 4, 0, 1000, "items"), /cannot hold even 0 items/);
});
