/**
 * @module eval/words
 *
 * Word lists and the keys and values that needles, variables and JSON pairs
 * are made of. Keys look like the default model's training keys
 * ("quiet-apple-45": adjective-noun-number).
 */
import type { Rng } from "./rng.js";

/**
 * NOTE: the default model copies keys well only when they are made of words
 * from its training key vocabulary; with other words it rewrites the key
 * ("amber-pepper-76" comes back as "bold-pencil-76") and teacher-forced match
 * fails for reasons that have nothing to do with the KV cache. These lists are
 * that vocabulary, recovered by sampling keys from the model (600 samples after
 * "The special magic number for" gave these 20 adjectives and 18 nouns).
 */
export const ADJECTIVES = [
  "blue", "bold", "brave", "calm", "eager", "fancy", "gentle", "green", "happy", "jolly",
  "kind", "lively", "loud", "nice", "proud", "quiet", "red", "silly", "witty", "zany",
] as const;

export const NOUNS = [
  "apple", "castle", "comet", "falcon", "forest", "garden", "harbor", "island", "lantern", "meadow",
  "mountain", "piano", "pencil", "river", "rocket", "tiger", "violin", "window",
] as const;

/** Everyday English words for the common-words task (distinct from each other). */
export const COMMON_WORDS = [
  "time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child",
  "world", "school", "state", "family", "student", "group", "country", "problem", "hand", "part",
  "place", "case", "week", "company", "system", "program", "question", "work", "government", "number",
  "night", "point", "home", "water", "room", "mother", "area", "money", "story", "fact",
  "month", "lot", "right", "study", "book", "eye", "job", "word", "business", "issue",
  "side", "kind", "head", "house", "service", "friend", "father", "power", "hour", "game",
  "line", "end", "member", "law", "car", "city", "community", "name", "president", "team",
  "minute", "idea", "kid", "body", "information", "back", "parent", "face", "others", "level",
  "office", "door", "health", "person", "art", "war", "history", "party", "result", "change",
  "morning", "reason", "research", "girl", "guy", "moment", "air", "teacher", "force", "education",
  "foot", "boy", "age", "policy", "music", "market", "sense", "nation", "plan", "college",
  "interest", "death", "experience", "effect", "class", "control", "care", "field", "development", "role",
  "effort", "rate", "heart", "drug", "show", "leader", "light", "voice", "wife", "police",
  "mind", "price", "report", "decision", "son", "view", "relationship", "town", "road", "arm",
  "difference", "value", "building", "action", "model", "season", "society", "tax", "director", "position",
  "player", "record", "paper", "space", "ground", "form", "event", "official", "matter", "center",
  "couple", "site", "project", "activity", "star", "table", "need", "court", "oil", "situation",
  "cost", "industry", "figure", "street", "image", "phone", "data", "picture", "practice", "piece",
  "land", "product", "doctor", "wall", "patient", "worker", "news", "test", "movie", "north",
  "love", "support", "technology", "step", "baby", "computer", "type", "attention", "film", "tree",
] as const;

/** "quiet-apple-45": the default model's key format. */
export function makeKey(rng: Rng): string {
  return `${rng.pick(ADJECTIVES)}-${rng.pick(NOUNS)}-${rng.int(10, 99)}`;
}

/** `count` distinct keys. */
export function makeKeys(rng: Rng, count: number): string[] {
  const keys = new Set<string>();
  while (keys.size < count) keys.add(makeKey(rng));
  return [...keys];
}

/** What a needle's value is: RULER's numbers (7 digits), words, or UUIDs. */
export type ValueKind = "numbers" | "words" | "uuids";
export const VALUE_KINDS: readonly ValueKind[] = ["numbers", "words", "uuids"];

/** The noun used in sentences about a value ("the special magic number for ..."). */
export function valueNoun(kind: ValueKind): string {
  return kind === "numbers" ? "number" : kind === "words" ? "word" : "uuid";
}

export function makeValue(rng: Rng, kind: ValueKind): string {
  if (kind === "numbers") return String(rng.int(1_000_000, 9_999_999));
  if (kind === "words") return `${rng.pick(ADJECTIVES)}-${rng.pick(NOUNS)}`;
  return makeUuid(rng);
}

/** `count` distinct values. */
export function makeValues(rng: Rng, kind: ValueKind, count: number): string[] {
  const values = new Set<string>();
  while (values.size < count) values.add(makeValue(rng, kind));
  return [...values];
}

/** A version-4-shaped UUID from the seeded generator. */
export function makeUuid(rng: Rng): string {
  const hex = (n: number) => Array.from({ length: n }, () => rng.int(0, 15).toString(16)).join("");
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${"89ab"[rng.int(0, 3)]}${hex(3)}-${hex(12)}`;
}

/**
 * Pronounceable made-up words ("coded words" in RULER's frequent-words task,
 * and extra words when a list runs out). Distinct, 2-4 syllables.
 */
export function makeCodedWords(rng: Rng, count: number, avoid: ReadonlySet<string> = new Set()): string[] {
  const onsets = "b c d f g h j k l m n p r s t v w z".split(" ");
  const vowels = "a e i o u".split(" ");
  const words = new Set<string>();
  while (words.size < count) {
    const syllables = rng.int(2, 4);
    let word = "";
    for (let s = 0; s < syllables; s++) word += rng.pick(onsets) + rng.pick(vowels);
    if (!avoid.has(word)) words.add(word);
  }
  return [...words];
}
