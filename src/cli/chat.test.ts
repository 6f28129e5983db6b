/**
 * `wgkv chat` in a real terminal: tmux runs it in a pane (on a socket of
 * this test's own), send-keys types, capture-pane reads the screen. An
 * answer streams; /system, /stats, /reset and history work; Ctrl-C stops an
 * answer mid-prompt without leaving, and at the prompt only clears the line;
 * /exit leaves with status 0.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI } from "../testing/cli.js";
import { PROJECT_ROOT } from "../testing/fixtures.js";

const hasTmux = spawnSync("tmux", ["-V"]).status === 0;
const skip = hasTmux ? false : "tmux is missing (apt-get install tmux; .ci/run installs it)";
const SOCKET = `wgkv-chat-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync("tmux", ["-L", SOCKET, ...args], { encoding: "utf8" });
// NOTE: trailing blank lines and spaces trimmed: the prompt at the end reads "\n>"
const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "chat").replace(/\s+$/, "");

async function waitScreen(re: RegExp, timeoutMs = 30_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const s = screen();
    if (re.test(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`screen never matched ${re}:\n${s}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(() => {
  if (skip) return;
  const cmd = `cd ${JSON.stringify(PROJECT_ROOT)} && ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} chat --threads 1 --max-tokens 40; echo "EXITED:$?"; sleep 60`;
  tmux("new-session", "-d", "-s", "chat", "-x", "220", "-y", "50", cmd);
});
after(() => {
  if (!skip) spawnSync("tmux", ["-L", SOCKET, "kill-server"]);
});

test("a chat session in a terminal", { skip }, async () => {
  await waitScreen(/wgkv chat: commands/);
  await waitScreen(/^>$/m);
  tmux("send-keys", "-t", "chat", "What is the special magic number for blue-pencil-31?", "Enter");
  await waitScreen(/^The special magic number for blue-pencil-31 is: \d+/m);
  await waitScreen(/\n>$/);

  tmux("send-keys", "-t", "chat", "/system You answer with numbers.", "Enter");
  await waitScreen(/\(system prompt set: You answer with numbers\.\)/);
  tmux("send-keys", "-t", "chat", "/stats", "Enter");
  let s = await waitScreen(/admitted fraction: [\d.]+ of \d+/);
  assert.match(s, /1 turns in the conversation, 1 answers/);
  assert.match(s, /KV cache of the last answer: \d+ tokens; resident [\d.]+ MiB/);

  // Ctrl-C while the long prompt is being read: the answer stops, the chat stays
  const needle = readFileSync(join(PROJECT_ROOT, "examples/needle.txt"), "utf8").replace(/\s+/g, " ");
  tmux("send-keys", "-t", "chat", "-l", needle);
  await waitScreen(/red-harbor-72\?$/m);
  tmux("send-keys", "-t", "chat", "Enter");
  await new Promise((r) => setTimeout(r, 300));
  tmux("send-keys", "-t", "chat", "C-c");
  await waitScreen(/\[stopped\]\n>$/);

  tmux("send-keys", "-t", "chat", "/stats", "Enter");
  s = await waitScreen(/2 turns in the conversation, 2 answers/);
  // Ctrl-C at the prompt clears the line and stays
  tmux("send-keys", "-t", "chat", "half a line", "C-c");
  await waitScreen(/\^C \(type \/exit or press Ctrl-D to leave\)\n>$/);
  tmux("send-keys", "-t", "chat", "/reset", "Enter");
  await waitScreen(/\(conversation forgotten\)/);
  tmux("send-keys", "-t", "chat", "/stats", "Enter");
  await waitScreen(/0 turns in the conversation, 2 answers/);
  tmux("send-keys", "-t", "chat", "/nonsense", "Enter");
  await waitScreen(/unknown command \/nonsense/);
  tmux("send-keys", "-t", "chat", "/exit", "Enter");
  s = await waitScreen(/EXITED:\d+/);
  assert.match(s, /EXITED:0/);
  assert.doesNotMatch(s, /^\s+at /m);
});
