/**
 * @module cli/generate
 *
 * `wgkv generate`: streams the answer to a prompt.
 */
import { Command } from "commander";
import { text as readStream } from "node:stream/consumers";
import { InvalidInputError } from "../errors.js";
import { promptToIds, type Prompt } from "../index.js";
import type { KvReport } from "../engine/engineStats.js";
import { startGeneration } from "../engine/generation.js";
import { createProgress } from "./progress.js";
import { addSamplingOptions, samplingFromFlags, type SamplingFlags } from "./samplingFlags.js";
import { addKvOptions, addModelOptions, checkKvFlags, kvPolicyFromFlags, loadModelFromFlags, parseIntFlag, validatePromptFlags, type KvFlags, type ModelFlags } from "./common.js";

/** Prompts at least this long show the progress of their reading. */
const LONG_PROMPT = 2048;

interface GenerateFlags extends ModelFlags, KvFlags, SamplingFlags {
  chat?: boolean;
  maxTokens: string;
  stop: string[];
  stats?: boolean;
}

export function generateCommand(): Command {
  const cmd = addKvOptions(addModelOptions(new Command("generate")))
    .description("stream a completion of a prompt (read from stdin when not given)")
    .argument("[prompt]", "prompt text")
    .option("--chat", "apply the chat template to the prompt as one user message")
    .option("--max-tokens <n>", "most tokens to generate", "256");
  return addSamplingOptions(cmd)
    .option("--stop <text>", "stop before this string (repeatable)", (value: string, prev: string[]) => [...prev, value], [] as string[])
    .option("--stats", "print speed, admitted fraction per layer and head, and KV memory against full attention on stderr")
    .action(async (promptArg: string | undefined, flags: GenerateFlags) => {
      // Flags are checked before the prompt is read or the model loaded, so a typo fails fast.
      const maxNewTokens = parseIntFlag("--max-tokens", flags.maxTokens)!;
      const options = {
        maxNewTokens,
        ...samplingFromFlags(flags),
        stop: flags.stop,
      };
      checkKvFlags(flags);
      const text = promptArg ?? (process.stdin.isTTY ? "" : await readStream(process.stdin));
      if (text.length === 0) throw new InvalidInputError("no prompt: pass it as an argument or on stdin");
      const window = parseIntFlag("--window", flags.window);
      const model = await loadModelFromFlags(flags, { maxSeqs: 1, maxWindow: window && window > 4096 ? window : undefined });
      try {
        const prompt: Prompt = flags.chat ? { messages: [{ role: "user", content: text }] } : text;
        const ids = promptToIds(model, prompt);
        validatePromptFlags(model, ids, maxNewTokens, "the prompt", "--max-tokens");
        const policy = await kvPolicyFromFlags(model, flags);
        // NOTE: a long prompt takes seconds to read before the first token: show how far it got
        const progress = createProgress("reading the prompt", { quiet: flags.quiet || ids.length < LONG_PROMPT, format: (n) => `${n} tokens` });
        const stream = startGeneration(model, ids, { ...options, onPromptProgress: (done, total) => progress.update(done, total) }, () => policy);
        let first = true;
        for await (const chunk of stream) {
          if (first) progress.end();
          first = false;
          process.stdout.write(chunk.text);
        }
        progress.end();
        process.stdout.write("\n");
        const r = await stream.result;
        if (flags.stats) {
          const decodeRate = r.tokenIds.length > 1 ? ((r.tokenIds.length - 1) / r.decodeMs) * 1000 : 0;
          process.stderr.write(
            `prompt ${r.numPromptTokens} tokens in ${r.prefillMs.toFixed(0)} ms (${((r.numPromptTokens / r.prefillMs) * 1000).toFixed(0)} tok/s); ` +
              `generated ${r.tokenIds.length} tokens (${decodeRate.toFixed(1)} tok/s); finish: ${r.finishReason}\n`,
          );
          process.stderr.write(formatKvStats(r.kv));
        }
      } finally {
        model.dispose();
      }
    });
}

/** Admitted fraction per layer and KV head, and KV memory against full attention. */
export function formatKvStats(kv: KvReport): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  const lines = [
    `KV cache: ${kv.numTokens} tokens; resident ${mib(kv.residentBytes)}, peak ${mib(kv.peakBytes)}, full attention ${mib(kv.fullAttentionBytes)} ` +
      `(resident ${((kv.residentBytes / Math.max(1, kv.fullAttentionBytes)) * 100).toFixed(1)}% of full)`,
    "admitted fraction per layer (one column per KV head):",
  ];
  kv.admittedByHead.forEach((heads, layer) => {
    lines.push(`  layer ${String(layer).padStart(2)}: ${heads.map((n) => (n / Math.max(1, kv.numTokens)).toFixed(3)).join("  ")}`);
  });
  const total = kv.admittedByHead.flat().reduce((a, b) => a + b, 0);
  const entries = kv.numTokens * kv.admittedByHead.length * (kv.admittedByHead[0]?.length ?? 0);
  lines.push(`  overall: ${(total / Math.max(1, entries)).toFixed(3)}`);
  return lines.join("\n") + "\n";
}
