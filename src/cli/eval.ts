/**
 * @module cli/eval
 *
 * `wgkv eval`: RULER-style long-context tasks over lengths and KV policies;
 * writes results.md, results.json and pareto.svg (accuracy against KV memory)
 * to --out, rewriting them after every cell so a long run can be watched.
 */
import { Command } from "commander";
import { join } from "node:path";
import { InvalidInputError } from "../errors.js";
import { paretoSvg } from "../eval/paretoSvg.js";
import { parsePolicyList } from "../eval/policySpec.js";
import { markdownReport, type CellResult } from "../eval/report.js";
import { GREEDY_MODES, type GreedyMode } from "../eval/runner.js";
import { createTaskContext, runSweep } from "../eval/sweep.js";
import { parseTaskList } from "../eval/tasks.js";
import { withLoadedGate } from "../platform/node/gateFiles.js";
import { HAYSTACK_NAME, resolveTextFile } from "../platform/node/haystack.js";
import { readTextPrefix } from "../platform/node/textFile.js";
import { addModelOptions, loadModelFromFlags, parseFloatFlag, parseIntFlag, type ModelFlags } from "./common.js";
import { checkOutFolder, makeOutFolder, writeOutFile } from "./outFolder.js";
import { createProgress } from "./progress.js";

/** Haystack windows are drawn from this much of the (decompressed) corpus: all of the shipped haystack. */
const CORPUS_BYTES = 8 * 2 ** 20;

interface EvalFlags extends ModelFlags {
  tasks: string;
  lengths: string;
  cases: string;
  policies: string;
  out: string;
  window: string;
  tau?: string;
  seed: string;
  corpus: string;
  greedy: string;
}

export function evalCommand(): Command {
  return addModelOptions(new Command("eval"))
    .description("long-context accuracy (RULER-style tasks) per task, length and KV policy, with a Pareto plot of accuracy against KV memory")
    .option("--tasks <list>", "niah, niah_multikey, niah_multivalue, niah_multiquery (modifiers :numbers|:words|:uuids, :corpus|:noise), vt[:corpus|:noise], cwe, fwe, kv", "niah")
    .option("--lengths <list>", "token budgets (prompt + answer)", "2048,4096")
    .option("--cases <n>", "cases per (task, length)", "10")
    .option("--policies <list>", "full, local, sinks:N, random:RATE, gate:FILE, each optionally +snapkv:BUDGET and/or +quest:BUDGET", "full,local")
    .option("--out <dir>", "folder for results.md, results.json and pareto.svg", "eval-out")
    .option("--window <w>", "local window in tokens, a multiple of 16", "256")
    .option("--tau <t>", "gate threshold (default: the gate file's, else 0.1)")
    .option("--seed <s>", "seed of the generated cases", "0")
    .option("--corpus <file>", `haystack text (.br, .gz, .xz are decompressed; documents separated by \\x1e); "${HAYSTACK_NAME}": the one shipped with wgkv`, HAYSTACK_NAME)
    .option("--greedy <mode>", "greedy decoding: all, misses (skip where teacher forcing matched and the policy only admits) or off", "misses")
    .action(async (flags: EvalFlags) => {
      // Flags are checked before the model loads, so a typo fails fast.
      const tasks = parseTaskList(flags.tasks);
      const policies = parsePolicyList(flags.policies);
      const lengths = parseLengths(flags.lengths);
      const numCases = parseIntFlag("--cases", flags.cases)!;
      const window = parseIntFlag("--window", flags.window)!;
      const tau = parseFloatFlag("--tau", flags.tau);
      const seed = parseIntFlag("--seed", flags.seed, 0)!;
      if (!(GREEDY_MODES as readonly string[]).includes(flags.greedy)) throw new InvalidInputError(`--greedy must be one of ${GREEDY_MODES.join(", ")}, got "${flags.greedy}"`);
      if (tau !== undefined && !policies.some((p) => p.options.gate !== undefined)) {
        throw new InvalidInputError(`--tau ${flags.tau}: only the write gate has a threshold, and --policies "${flags.policies}" has no gate:FILE`);
      }
      await checkOutFolder("--out", flags.out);
      const model = await loadModelFromFlags(flags);
      try {
        const tooLong = lengths.find((n) => n > model.config.maxPositions);
        if (tooLong) throw new InvalidInputError(`--lengths ${tooLong} exceeds the model's max_position_embeddings ${model.config.maxPositions}`);
        const needsCorpus = tasks.some((t) => t.haystack === "corpus");
        const corpusText = needsCorpus ? await readTextPrefix(resolveTextFile(flags.corpus), CORPUS_BYTES) : null;
        const context = createTaskContext(model.requireTokenizer(), corpusText);
        await makeOutFolder("--out", flags.out);
        const command = ["wgkv", ...process.argv.slice(2)].map(quoteArg).join(" ");
        const header = { model: model.name, command, window, seed };
        const write = async (cells: readonly CellResult[]) => {
          await writeOutFile("--out", join(flags.out, "results.json"), JSON.stringify(cells, null, 2) + "\n");
          await writeOutFile("--out", join(flags.out, "results.md"), markdownReport(cells, header));
          await writeOutFile("--out", join(flags.out, "pareto.svg"), paretoSvg(cells));
        };
        // a terminal gets one bar over every case; logs and pipes get the runner's lines; --quiet neither
        const bar = process.stderr.isTTY ? createProgress("eval", { quiet: flags.quiet, format: (n) => `${n} cases` }) : null;
        const totalCases = tasks.length * lengths.length * policies.length * numCases;
        let casesDone = 0;
        const progressLog = (line: string) => {
          if (flags.quiet) return;
          if (!bar) process.stderr.write(line + "\n");
          else if (/ case \d+\/\d+:/.test(line)) bar.update(++casesDone, totalCases);
        };
        const cells = await runSweep(model, context, {
          tasks,
          lengths,
          policies,
          numCases,
          seed,
          greedy: flags.greedy as GreedyMode,
          resolvePolicy: async (p) => (await withLoadedGate(model, { ...p.options, window, ...(p.options.admission === "gate" ? { tau } : {}) }))!,
          log: progressLog,
          onCell: (_, all) => write(all),
        });
        bar?.end();
        await write(cells);
        process.stdout.write(markdownReport(cells, header));
        process.stderr.write(`wrote ${join(flags.out, "results.md")}, results.json and pareto.svg\n`);
      } finally {
        model.dispose();
      }
    });
}

function parseLengths(list: string): number[] {
  const lengths = list.split(",").map((s) => parseIntFlag("--lengths", s.trim(), 64)!);
  if (new Set(lengths).size !== lengths.length) throw new InvalidInputError(`--lengths "${list}": a length is listed twice`);
  return lengths;
}

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
