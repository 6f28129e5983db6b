/**
 * @module cli/inspect
 *
 * `wgkv inspect`: runs a prompt under the write gate and writes the
 * admission visualizer (inspect/admissionHtml.ts), a self-contained HTML
 * page, and with --png the heat map of admitted fractions as an image.
 */
import { Command } from "commander";
import { InvalidInputError } from "../errors.js";
import { collectAdmission } from "../inspect/admissionData.js";
import { renderAdmissionHtml } from "../inspect/admissionHtml.js";
import { heatmapPng } from "../inspect/heatmapPng.js";
import { readTextPrefix } from "../platform/node/textFile.js";
import { addKvOptions, addModelOptions, checkKvFlags, kvPolicyFromFlags, loadModelFromFlags, validatePromptFlags, type KvFlags, type ModelFlags } from "./common.js";
import { createProgress } from "./progress.js";
import { checkOutFile, writeOutFile } from "./outFolder.js";

interface InspectFlags extends ModelFlags, KvFlags {
  promptFile: string;
  out: string;
  png?: string;
  chat?: boolean;
}

const MAX_PROMPT_BYTES = 4 * 2 ** 20;

export function inspectCommand(): Command {
  return addKvOptions(addModelOptions(new Command("inspect")))
    .description("show what the write gate admits: an HTML page of the prompt's tokens, gate scores per head, a heat map per layer and head, KV memory against full attention")
    .requiredOption("--prompt-file <file>", "the prompt (text)")
    .requiredOption("--out <file>", "the HTML page to write")
    .option("--png <file>", "also write the heat map (layers x KV heads) as a PNG")
    .option("--chat", "apply the chat template to the prompt as one user message")
    .action(async (flags: InspectFlags) => {
      checkKvFlags(flags);
      if (flags.gate === undefined) throw new InvalidInputError("inspect needs --gate FILE (it shows what the write gate admits)");
      if (flags.admission !== undefined && flags.admission.trim() !== "gate") throw new InvalidInputError(`--admission ${flags.admission}: inspect shows the write gate's admission only`);
      const text = await readTextPrefix(flags.promptFile, MAX_PROMPT_BYTES);
      if (text.trim() === "") throw new InvalidInputError(`--prompt-file ${flags.promptFile}: the file is empty`);
      await checkOutFile("--out", flags.out);
      if (flags.png) await checkOutFile("--png", flags.png);
      const model = await loadModelFromFlags(flags, { maxSeqs: 1 });
      try {
        const tokenizer = model.requireTokenizer();
        const ids = flags.chat ? tokenizer.encodeChat([{ role: "user", content: text }], { addGenerationPrompt: true }) : tokenizer.encode(text, { addSpecialTokens: true });
        validatePromptFlags(model, ids, 0, `--prompt-file ${flags.promptFile}`, "--max-tokens");
        const policy = await kvPolicyFromFlags(model, flags);
        const progress = createProgress("reading the prompt", { quiet: flags.quiet || ids.length < 2048, format: (n) => `${n} tokens` });
        const data = await collectAdmission(model, model.name.replace(/\/+$/, "").split("/").pop()!, ids, policy, (done, total) => progress.update(done, total));
        progress.end();
        await writeOutFile("--out", flags.out, renderAdmissionHtml(data));
        if (flags.png) await writeOutFile("--png", flags.png, await heatmapPng(data.admittedByHead.map((heads) => heads.map((n) => n / ids.length))));
        if (!flags.quiet) process.stderr.write(`wrote ${flags.out}${flags.png ? ` and ${flags.png}` : ""} (${ids.length} tokens)\n`);
      } finally {
        model.dispose();
      }
    });
}
