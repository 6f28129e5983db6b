/**
 * @module cli/gate
 *
 * `wgkv gate convert`: official PyTorch checkpoints to the project's
 * safetensors gate format (with metadata), and back.
 */
import { Command } from "commander";
import { writeFile } from "node:fs/promises";
import { InvalidInputError } from "../errors.js";
import { convertGate, gateMetadataProblem, loadGate, type GateMetadataKey } from "../gate/gateFile.js";
import { readGateFile } from "../platform/node/gateFileRead.js";
import { parseFloatFlag } from "./common.js";

interface ConvertFlags {
  to: string;
  window?: string;
  tau?: string;
  lambda?: string;
  model?: string;
  force?: boolean;
}

export function gateCommand(): Command {
  const gate = new Command("gate").description("write-gate checkpoints");
  gate
    .command("convert")
    .description("convert a gate checkpoint (.pt official layout <-> wgkv safetensors with metadata)")
    .argument("<input>", "gate file to read (.pt or .safetensors)")
    .argument("<output>", "file to write")
    .option("--to <format>", "output format: safetensors or pt", "safetensors")
    .option("--window <w>", "metadata: local window the gate was trained with (a positive multiple of 16)")
    .option("--tau <t>", "metadata: admission threshold, in (0, 1)")
    .option("--lambda <l>", "metadata: sparsity weight of the training loss (> 0)")
    .option("--model <name>", "metadata: the model the gate belongs to")
    .option("--force", "overwrite the output file")
    .action(async (input: string, output: string, flags: ConvertFlags) => {
      // Every flag is checked before anything is read or written.
      if (flags.to !== "safetensors" && flags.to !== "pt") throw new InvalidInputError(`--to must be safetensors or pt, got "${flags.to}"`);
      const meta = {
        window: metadataFlag("--window", flags.window, "window"),
        tau: metadataFlag("--tau", flags.tau, "tau"),
        lambda: metadataFlag("--lambda", flags.lambda, "lambda"),
        model: flags.model,
      };
      const given = (["window", "tau", "lambda", "model"] as const).filter((k) => meta[k] !== undefined);
      if (flags.to === "pt" && given.length) {
        throw new InvalidInputError(`--${given[0]}: a .pt gate (the official layout) has no place for metadata; convert --to safetensors to record it`);
      }
      const converted = convertGate(await readGateFile(input), input, flags.to, meta);
      // NOTE: read back before writing: a file the loader would refuse is never written.
      const { gate: g, meta: written } = loadGate(converted, output);
      await writeFile(output, converted, { flag: flags.force ? "w" : "wx" }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "EEXIST") throw new InvalidInputError(`${output}: already exists (pass --force to overwrite)`);
        throw new InvalidInputError(`${output}: cannot write (${err.code ?? err.message})`);
      });
      process.stderr.write(
        `wrote ${output}: ${g.numLayers} layers x ${g.numKvHeads} KV heads, head dim ${g.headDim}, expand ${g.hiddenPerHead / g.headDim}` +
          (Object.keys(written).length ? `, metadata ${JSON.stringify(written)}` : "") +
          "\n",
      );
    });
  return gate;
}

/** A metadata flag's value, refused with a message naming the flag unless the loader would accept it. */
function metadataFlag(flag: string, value: string | undefined, key: GateMetadataKey): number | undefined {
  const n = parseFloatFlag(flag, value);
  const problem = n === undefined ? null : gateMetadataProblem(key, n);
  if (problem) throw new InvalidInputError(`${flag} ${problem}, got "${value}"`);
  return n;
}
