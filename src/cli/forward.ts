/**
 * @module cli/forward
 *
 * `wgkv forward`: runs token ids as one prompt and prints one JSON object
 * `{"argmax": [per position], "last_logits": [...], "greedy": [...],
 * "admitted": [[per KV head] per layer], "kv_bytes": {...}}`.
 * Validation scripts depend on this exact shape.
 */
import { Command } from "commander";
import { generateAll, startGeneration } from "../engine/generation.js";
import type { Model } from "../engine/model.js";
import { InvalidInputError } from "../errors.js";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import { argmax } from "../util/argmax.js";
import { addKvOptions, addModelOptions, checkKvFlags, kvPolicyFromFlags, loadModelFromFlags, parseIntFlag, validatePromptFlags, type KvFlags, type ModelFlags } from "./common.js";

interface ForwardFlags extends ModelFlags, KvFlags {
  ids: string;
  generate?: string;
  prefill?: string;
  json?: boolean;
}

export function forwardCommand(): Command {
  return addKvOptions(addModelOptions(new Command("forward")))
    .description("run token ids through the model and print argmax per position, last logits, greedy ids and KV figures as JSON")
    .requiredOption("--ids <list>", "comma-separated token ids, e.g. 1,2,3")
    .option("--generate <n>", "also generate n greedy ids (stops early on an end-of-sequence id)")
    .option("--prefill <p>", "prefill the first p ids, then feed the rest one at a time (default: all at once)")
    .option("--json", "print JSON (the only output format)")
    .action(async (flags: ForwardFlags) => {
      const ids = parseIds(flags.ids);
      checkKvFlags(flags);
      const numGenerate = parseIntFlag("--generate", flags.generate);
      const numPrefill = parseIntFlag("--prefill", flags.prefill);
      if (numPrefill !== undefined && numPrefill > ids.length) throw new InvalidInputError(`--prefill ${numPrefill} exceeds the ${ids.length} ids given`);
      const window = parseIntFlag("--window", flags.window);
      const model = await loadModelFromFlags(flags, { maxSeqs: 1, maxWindow: window && window > 4096 ? window : undefined });
      try {
        const policy = await kvPolicyFromFlags(model, flags);
        validatePromptFlags(model, ids, numGenerate ?? 0, "--ids", "--generate");
        const out = await runForward(model, ids, numPrefill ?? ids.length, policy);
        const result: typeof out & { greedy?: number[] } = out;
        if (numGenerate !== undefined) result.greedy = (await generateAll(startGeneration(model, ids, { maxNewTokens: numGenerate, temperature: 0 }, () => policy))).tokenIds;
        process.stdout.write(JSON.stringify(result) + "\n");
      } finally {
        model.dispose();
      }
    });
}

/** Prefills `numPrefill` ids, feeds the rest one by one, and reports argmax per position and the cache. */
async function runForward(model: Model, ids: number[], numPrefill: number, policy: KvPolicy) {
  const V = model.config.vocabSize;
  const argmaxes: number[] = [];
  let last = new Float32Array(0);
  const result = await generateAll(
    startGeneration(model, ids, {
      maxNewTokens: 0,
      logitsFrom: 0,
      singleTokenFrom: numPrefill,
      onLogits: (_pos0, logits, n) => {
        for (let t = 0; t < n; t++) argmaxes.push(argmax(logits, t * V, V));
        last = logits.slice((n - 1) * V, n * V);
      },
    }, () => policy),
  );
  const report = result.kv;
  return {
    argmax: argmaxes,
    last_logits: Array.from(last),
    admitted: report.admittedByHead,
    kv_bytes: { resident: report.residentBytes, peak: report.peakBytes, full_attention: report.fullAttentionBytes },
  };
}

/** Comma-separated plain decimal ids: "1,2,3"; no spaces, signs, exponents, hex or empty items. */
function parseIds(text: string): number[] {
  const parts = text.split(",");
  if (parts.every((p) => p.trim() === "")) throw new InvalidInputError("--ids is empty; give comma-separated token ids, e.g. --ids 1,2,3");
  return parts.map((p, i) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(n)) {
      throw new InvalidInputError(`--ids: item ${i + 1} "${p}" is not a non-negative integer token id in plain decimal digits (e.g. --ids 1,2,3)`);
    }
    return n;
  });
}
