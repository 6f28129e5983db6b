/**
 * @module cli/chat
 *
 * `wgkv chat`: an interactive chat in the terminal. Each line is a user turn;
 * the answer streams as it is generated from the whole conversation through
 * the model's chat template. Ctrl-C stops the answer being generated and
 * returns to the prompt (at the prompt it clears the line); Ctrl-D or /exit
 * leaves. Up and down recall earlier lines.
 */
import { Command } from "commander";
import { createInterface } from "node:readline";
import { startGeneration } from "../engine/generation.js";
import { promptToIds } from "../engine/prompt.js";
import { causeText, isUserError } from "../errors.js";
import { addSamplingOptions, samplingFromFlags, type SamplingFlags } from "./samplingFlags.js";
import { addKvOptions, addModelOptions, checkKvFlags, kvPolicyFromFlags, loadModelFromFlags, parseIntFlag, type KvFlags, type ModelFlags } from "./common.js";
import { CHAT_HELP, ChatSession, parseChatLine } from "./chatSession.js";

interface ChatFlags extends ModelFlags, KvFlags, SamplingFlags {
  maxTokens: string;
  system?: string;
}

export function chatCommand(): Command {
  const cmd = addKvOptions(addModelOptions(new Command("chat")))
    .description("chat with the model in the terminal (/stats, /reset, /system TEXT, /exit; Ctrl-C stops an answer)")
    .option("--max-tokens <n>", "most tokens per answer", "512");
  return addSamplingOptions(cmd)
    .option("--system <text>", "system prompt")
    .action(async (flags: ChatFlags) => {
      const options = {
        maxNewTokens: parseIntFlag("--max-tokens", flags.maxTokens)!,
        ...samplingFromFlags(flags),
      };
      checkKvFlags(flags);
      const model = await loadModelFromFlags(flags, { maxSeqs: 1 });
      const policy = await kvPolicyFromFlags(model, flags);
      model.requireTokenizer();
      const session = new ChatSession((prompt, o) => {
        const ids = promptToIds(model, prompt);
        // NOTE: a long conversation leaves fewer new tokens; past the context the answer is refused with one line
        const room = model.engine.config.maxContext - ids.length;
        return startGeneration(model, ids, { ...o, maxNewTokens: Math.max(1, Math.min(o.maxNewTokens ?? 512, room)) }, () => policy);
      }, options);
      session.system = flags.system ?? "";
      try {
        await repl(session);
      } finally {
        model.dispose();
      }
    });
}

async function repl(session: ChatSession): Promise<void> {
  const out = process.stdout;
  const rl = createInterface({ input: process.stdin, output: out, prompt: "> ", historySize: 200 });
  out.write(`wgkv chat: ${CHAT_HELP}\n`);
  rl.on("SIGINT", () => {
    if (session.stop()) return;
    // at the prompt: drop the line typed so far
    out.write("^C (type /exit or press Ctrl-D to leave)\n");
    rl.write(null, { ctrl: true, name: "u" });
    rl.prompt();
  });
  rl.prompt();
  for await (const line of rl) {
    const cmd = parseChatLine(line);
    if (cmd.kind === "exit") break;
    switch (cmd.kind) {
      case "empty":
        break;
      case "help":
        out.write(CHAT_HELP + "\n");
        break;
      case "stats":
        out.write(session.stats() + "\n");
        break;
      case "reset":
        session.reset();
        out.write("(conversation forgotten)\n");
        break;
      case "system":
        session.system = cmd.text;
        out.write(cmd.text ? `(system prompt set: ${cmd.text})\n` : "(system prompt cleared)\n");
        break;
      case "unknown":
        out.write(`unknown command ${cmd.name}; ${CHAT_HELP}\n`);
        break;
      case "say":
        try {
          const result = await session.say(cmd.text, (delta) => out.write(delta));
          out.write(result.finishReason === "aborted" ? " [stopped]\n" : "\n");
        } catch (err) {
          if (!isUserError(err)) throw err;
          out.write(`\nerror: ${causeText(err)}\n`);
        }
        break;
    }
    rl.prompt();
  }
  rl.close();
}
