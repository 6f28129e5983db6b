/**
 * @module util/jsonKeys
 *
 * `JSON.parse` keeps the last of two equal keys and says nothing, so a file
 * can name one thing twice and have readers disagree about which one counts.
 * This finds such a key by walking the text once.
 */

/**
 * The first key that appears twice in one object of `text` (decoded, so
 * `"a\u0062"` equals `"ab"`), or null. `text` must be valid JSON: call it after
 * `JSON.parse` has accepted the text.
 */
export function findDuplicateKey(text: string): string | null {
  // One frame per open object or array; objects remember their keys.
  const frames: Array<{ keys: Set<string> | null; expectKey: boolean }> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // "
      const start = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++; // skip the escaped char
      const top = frames.at(-1);
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
    } else if (c === 0x7b) { // {
      frames.push({ keys: new Set(), expectKey: true });
    } else if (c === 0x5b) { // [
      frames.push({ keys: null, expectKey: false });
    } else if (c === 0x7d || c === 0x5d) { // } ]
      frames.pop();
    } else if (c === 0x2c) { // ,
      const top = frames.at(-1);
      if (top?.keys) top.expectKey = true;
    }
  }
  return null;
}

/**
 * Whether the text opens more than `limit` objects or arrays inside each other. Checked before
 * `JSON.parse` where the format's depth is known: a hostile file of nested brackets costs the
 * parser gigabytes and minutes before it is found not to be what it claims.
 */
export function jsonDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}
