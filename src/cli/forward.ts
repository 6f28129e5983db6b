/**
 * @module cli/forward
 *
 * `wgkv forward`: runs token ids as one prompt and prints one JSON object
 * `{"argmax": [per position], "last_logits": [...], "greedy": [...]}`.
 * Validation scripts depend on this exact shape.
 */
import { Command } from "commander";
import { generateAll } from "../engine/generate.js";
import { InvalidInputError } from "../errors.js";
import { argmax } from "../generate/sampler.js";
import { addModelOptions, loadModelFromFlags, parseIntFlag, validatePromptFlags, type ModelFlags } from "./common.js";

interface ForwardFlags extends ModelFlags {
  ids: string;
  generate?: string;
  json?: boolean;
}

export function forwardCommand(): Command {
  return addModelOptions(new Command("forward"))
    .description("run token ids through the model and print argmax per position, last logits and greedy ids as JSON")
    .requiredOption("--ids <list>", "comma-separated token ids, e.g. 1,2,3")
    .option("--generate <n>", "also generate n greedy ids (stops early on an end-of-sequence id)")
    .option("--json", "print JSON (the only output format)")
    .action(async (flags: ForwardFlags) => {
      const ids = parseIds(flags.ids);
      const numGenerate = parseIntFlag("--generate", flags.generate);
      const model = await loadModelFromFlags(flags);
      try {
        validatePromptFlags(model, ids, numGenerate ?? 0, "--ids", "--generate");
        const V = model.config.vocabSize;
        const argmaxes: number[] = [];
        const kv = model.createSequence(ids.length);
        let last: Float32Array;
        try {
          last = await model.prefill(ids, kv, (logits, _first, numTokens) => {
            for (let t = 0; t < numTokens; t++) argmaxes.push(argmax(logits, t * V, V));
          });
        } finally {
          kv.release();
        }
        const out: { argmax: number[]; last_logits: number[]; greedy?: number[] } = { argmax: argmaxes, last_logits: Array.from(last) };
        if (numGenerate !== undefined) out.greedy = (await generateAll(model, ids, { maxNewTokens: numGenerate, temperature: 0 })).tokenIds;
        process.stdout.write(JSON.stringify(out) + "\n");
      } finally {
        model.dispose();
      }
    });
}

function parseIds(text: string): number[] {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0) throw new InvalidInputError("--ids is empty; give comma-separated token ids, e.g. --ids 1,2,3");
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0) throw new InvalidInputError(`--ids: "${p}" is not a non-negative integer token id`);
    return n;
  });
}
