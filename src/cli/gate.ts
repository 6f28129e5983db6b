/**
 * @module cli/gate
 *
 * `wgkv gate convert`: official PyTorch checkpoints to the project's
 * safetensors gate format (with metadata), and back.
 */
import { Command } from "commander";
import { readFile, writeFile } from "node:fs/promises";
import { InvalidInputError, ModelLoadError } from "../errors.js";
import { convertGate, loadGate } from "../gate/gateFile.js";
import { parseFloatFlag, parseIntFlag } from "./common.js";

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
    .option("--window <w>", "metadata: local window the gate was trained with")
    .option("--tau <t>", "metadata: admission threshold")
    .option("--lambda <l>", "metadata: sparsity weight of the training loss")
    .option("--model <name>", "metadata: the model the gate belongs to")
    .option("--force", "overwrite the output file")
    .action(async (input: string, output: string, flags: ConvertFlags) => {
      if (flags.to !== "safetensors" && flags.to !== "pt") throw new InvalidInputError(`--to must be safetensors or pt, got "${flags.to}"`);
      const meta = {
        window: parseIntFlag("--window", flags.window),
        tau: parseFloatFlag("--tau", flags.tau),
        lambda: parseFloatFlag("--lambda", flags.lambda),
        model: flags.model,
      };
      const bytes = await readFile(input).catch((err: NodeJS.ErrnoException) => {
        throw new ModelLoadError(`${input}: cannot read the gate file (${err.code ?? err.message})`);
      });
      const converted = convertGate(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), input, flags.to, meta);
      await writeFile(output, converted, { flag: flags.force ? "w" : "wx" }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "EEXIST") throw new InvalidInputError(`${output}: already exists (pass --force to overwrite)`);
        throw new InvalidInputError(`${output}: cannot write (${err.code ?? err.message})`);
      });
      const { gate: g, meta: written } = loadGate(converted, output);
      process.stderr.write(
        `wrote ${output}: ${g.numLayers} layers x ${g.numKvHeads} KV heads, head dim ${g.headDim}, expand ${g.hiddenPerHead / g.headDim}` +
          (Object.keys(written).length ? `, metadata ${JSON.stringify(written)}` : "") +
          "\n",
      );
    });
  return gate;
}
