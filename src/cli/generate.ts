/**
 * @module cli/generate
 *
 * `wgkv generate`: streams the answer to a prompt.
 */
import { Command } from "commander";
import { text as readStream } from "node:stream/consumers";
import { InvalidInputError } from "../errors.js";
import { generateFromIds, promptToIds, type Prompt } from "../index.js";
import { addModelOptions, loadModelFromFlags, parseIntFlag, parseRangeFlag, validatePromptFlags, type ModelFlags } from "./common.js";

interface GenerateFlags extends ModelFlags {
  chat?: boolean;
  maxTokens: string;
  temperature: string;
  topK?: string;
  topP?: string;
  seed?: string;
  stop: string[];
  stats?: boolean;
}

export function generateCommand(): Command {
  return addModelOptions(new Command("generate"))
    .description("stream a completion of a prompt (read from stdin when not given)")
    .argument("[prompt]", "prompt text")
    .option("--chat", "apply the chat template to the prompt as one user message")
    .option("--max-tokens <n>", "most tokens to generate", "256")
    .option("--temperature <t>", "sampling temperature; 0 is greedy", "0")
    .option("--top-k <k>", "sample from the k most likely tokens")
    .option("--top-p <p>", "sample from the smallest set with probability >= p")
    .option("--seed <n>", "random seed for sampling")
    .option("--stop <text>", "stop before this string (repeatable)", (value: string, prev: string[]) => [...prev, value], [] as string[])
    .option("--stats", "print token counts and speed on stderr")
    .action(async (promptArg: string | undefined, flags: GenerateFlags) => {
      // Flags are checked before the prompt is read or the model loaded, so a typo fails fast.
      const maxNewTokens = parseIntFlag("--max-tokens", flags.maxTokens)!;
      const options = {
        maxNewTokens,
        temperature: parseRangeFlag("--temperature", flags.temperature, 0, Infinity),
        topK: parseIntFlag("--top-k", flags.topK, 0),
        topP: parseRangeFlag("--top-p", flags.topP, 0, 1, true),
        seed: parseIntFlag("--seed", flags.seed, 0),
        stop: flags.stop,
      };
      const text = promptArg ?? (process.stdin.isTTY ? "" : await readStream(process.stdin));
      if (text.length === 0) throw new InvalidInputError("no prompt: pass it as an argument or on stdin");
      const model = await loadModelFromFlags(flags);
      try {
        const prompt: Prompt = flags.chat ? { messages: [{ role: "user", content: text }] } : text;
        const ids = promptToIds(model, prompt);
        validatePromptFlags(model, ids, maxNewTokens, "the prompt", "--max-tokens");
        const stream = generateFromIds(model, ids, options);
        let step = await stream.next();
        while (!step.done) {
          process.stdout.write(step.value.text);
          step = await stream.next();
        }
        process.stdout.write("\n");
        const r = step.value;
        if (flags.stats) {
          const decodeRate = r.tokenIds.length > 1 ? ((r.tokenIds.length - 1) / r.decodeMs) * 1000 : 0;
          process.stderr.write(
            `prompt ${r.numPromptTokens} tokens in ${r.prefillMs.toFixed(0)} ms (${((r.numPromptTokens / r.prefillMs) * 1000).toFixed(0)} tok/s); ` +
              `generated ${r.tokenIds.length} tokens (${decodeRate.toFixed(1)} tok/s); finish: ${r.finishReason}\n`,
          );
        }
      } finally {
        model.dispose();
      }
    });
}
