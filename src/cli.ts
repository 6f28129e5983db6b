#!/usr/bin/env node
/**
 * @module cli
 *
 * The `wgkv` command. User errors print one line and exit 1; anything else is
 * a bug and keeps its stack trace. A reader that stops early (`| head`) ends
 * the run quietly.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { benchCommand } from "./cli/bench.js";
import { evalCommand } from "./cli/eval.js";
import { forwardCommand } from "./cli/forward.js";
import { gateCommand } from "./cli/gate.js";
import { generateCommand } from "./cli/generate.js";
import { trainGateCommand } from "./cli/trainGate.js";
import { serveCommand } from "./cli/serve.js";
import { chatCommand } from "./cli/chat.js";
import { inspectCommand } from "./cli/inspect.js";
import { webCommand } from "./cli/web.js";
import { causeText, isUserError } from "./errors.js";

// NOTE: when the reader of a pipe exits (`wgkv generate ... | head -c 10`), the
// next write fails with EPIPE, emitted as an 'error' event that would
// otherwise crash with a stack trace. The reader has what it wanted: exit quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
}

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

// NOTE: commander's own errors (an unknown option, a missing argument) read as ours: one line, "wgkv: error: ..."
const oneLineErrors = {
  outputError: (text: string, write: (s: string) => void) => write(`wgkv: ${text.trim().replace(/\s*\n\s*/g, " ")} (run with --help for usage)\n`),
};
const program = new Command("wgkv")
  .description("LLM inference with a write-gated KV cache (WG-KV) for Hugging Face models")
  .version(version, "-V, --version", "print the version")
  .configureOutput(oneLineErrors)
  .exitOverride();
for (const cmd of [generateCommand(), forwardCommand(), benchCommand(), gateCommand(), evalCommand(), serveCommand(), chatCommand(), inspectCommand(), webCommand(), trainGateCommand()]) {
  program.addCommand(cmd.configureOutput(oneLineErrors).exitOverride());
  for (const sub of cmd.commands) sub.configureOutput(oneLineErrors).exitOverride();
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander has already printed its one-line message (or the help text)
    process.exit(err.exitCode);
  }
  if (isUserError(err)) {
    process.stderr.write(`wgkv: error: ${causeText(err)}\n`);
    process.exit(1);
  }
  throw err;
}
