// Writes examples/needle.txt, the README's long-context question: a
// needle-in-a-haystack prompt of about 4K tokens in the format the default
// model was trained on (a window of the shipped haystack with one needle
// sentence spliced in, then the question), as the text of one user message
// for `wgkv generate --chat`. It is case 0 of `wgkv eval --tasks niah
// --lengths 4096 --seed 3`, so the example is what eval measures.
//
//   node scripts/make-needle-example.mjs     # needs the build (dist/)
import { writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "examples/needle.txt");
const LENGTH = 4096;
// NOTE: seed 3 puts the needle about 3,600 tokens before the question, far
// outside the 256-token local window, in a readable stretch of prose.
const SEED = 3;

const dist = (path) => import(join(ROOT, "dist", path));
const { loadModel } = await dist("index.js");
const { createTaskContext, generateCase } = await dist("eval/sweep.js");
const { parseTask } = await dist("eval/tasks.js");
const { HAYSTACK_FILE } = await dist("platform/node/haystack.js");
const { readTextPrefix } = await dist("platform/node/textFile.js");

const model = await loadModel(undefined, { backend: "cpu-reference" });
try {
  const tokenizer = model.requireTokenizer();
  const context = createTaskContext(tokenizer, await readTextPrefix(HAYSTACK_FILE, 8 * 2 ** 20));
  const c = generateCase(context, parseTask("niah"), LENGTH, SEED, 0);
  const { userPrefix, assistantPrefix } = context.frame;
  // NOTE: the user message's text, without the chat frame --chat adds; no
  // trailing newline, as in training, where the question ends the message.
  const content = tokenizer.decode(c.promptIds.slice(userPrefix.length, c.promptIds.length - assistantPrefix.length));
  writeFileSync(OUT, content);
  console.log(`make-needle-example: ${relative(ROOT, OUT)}: ${c.promptIds.length} prompt tokens; answer: ${c.answerText}`);
} finally {
  model.dispose();
}
