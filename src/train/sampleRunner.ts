/**
 * @module train/sampleRunner
 *
 * What the trainer asks of whatever runs samples: the summed gradient of a
 * batch's samples at given gate parameters, with each sample's loss terms,
 * and (for the final report) the gate scores of held-out samples. The
 * in-process runner here does it on one TrainOps device, sample after
 * sample; platform/node/trainWorkers.ts spreads a batch over worker threads,
 * each running this same class.
 */
import type { GateParamLayout } from "./gateParams.js";
import { createSampleActivations, STAT_ADMITTED, STAT_MSE, STAT_SPARSITY, type SampleActivations } from "./sampleActivations.js";
import { backward, forward, type DeviceGate, type SampleSettings } from "./samplePass.js";
import type { TrainModel } from "./trainModel.js";
import type { TBuf, TrainOps } from "./trainOps.js";

/** One sample's loss terms. */
export interface SampleStats {
  /** Distillation loss: MSE of the final hidden state against the teacher's. */
  readonly mse: number;
  /** The sparsity term, mean over (layer, KV head, token). */
  readonly sparsity: number;
  /** Admitted (g > tau) entries over all (layer, KV head, token) entries. */
  readonly admitted: number;
}

/** A sample's token ids, and the position of its first token (RoPE's angles start there). */
export interface SampleInput {
  readonly ids: Int32Array;
  readonly positionOffset: number;
}

export interface BatchResult {
  /** Sum over the batch of scale * each sample's gradient. */
  readonly grad: Float32Array;
  readonly stats: readonly SampleStats[];
}

export interface SampleRunner {
  /** The gradient of the batch's mean loss (each sample's gradient times `scale`, summed). */
  runBatch(params: Float32Array, batch: readonly SampleInput[], scale: number): Promise<BatchResult>;
  /** Gate scores g [L][Hkv * T] (head-major) of each sample, student forward only. */
  gateScores(params: Float32Array, samples: readonly Int32Array[]): Promise<Float32Array[][]>;
  /** What runs the samples, for reports. */
  readonly description: string;
  dispose(): void;
}

/** Runs samples one after another on one device. */
export class LocalSampleRunner implements SampleRunner {
  readonly #ops: TrainOps;
  readonly #model: TrainModel;
  readonly #layout: GateParamLayout;
  readonly #settings: SampleSettings;
  #acts: SampleActivations | null = null;
  #target: TBuf | null = null;
  #offset = 0;
  readonly #gate: DeviceGate;

  constructor(ops: TrainOps, model: TrainModel, layout: GateParamLayout, settings: SampleSettings) {
    this.#ops = ops;
    this.#model = model;
    this.#layout = layout;
    this.#settings = settings;
    this.#gate = { layout, params: ops.alloc(layout.numParams, "gate params"), dParams: ops.alloc(layout.numParams, "gate grads") };
  }

  get description(): string {
    return this.#ops.description;
  }

  async runBatch(params: Float32Array, batch: readonly SampleInput[], scale: number): Promise<BatchResult> {
    const ops = this.#ops, gate = this.#gate;
    ops.write(gate.params, params);
    ops.fill(gate.dParams, 0);
    const stats: SampleStats[] = [];
    const { numLayers: L, numKvHeads: Hkv } = this.#layout.shape;
    for (const { ids, positionOffset } of batch) {
      const acts = this.#activations(ids.length, positionOffset);
      const target = this.#target!;
      forward(ops, this.#model, acts, ids, null, this.#settings.window);
      ops.copy(target, acts.scratch.y, ids.length * this.#model.config.hiddenSize);
      forward(ops, this.#model, acts, ids, gate, this.#settings.window);
      backward(ops, this.#model, acts, target, gate, this.#settings, scale);
      const s = await ops.read(acts.scratch.stats);
      const n = L * Hkv * ids.length;
      stats.push({ mse: s[STAT_MSE]!, sparsity: s[STAT_SPARSITY]! / n, admitted: s[STAT_ADMITTED]! / n });
    }
    return { grad: await ops.read(gate.dParams), stats };
  }

  async gateScores(params: Float32Array, samples: readonly Int32Array[]): Promise<Float32Array[][]> {
    this.#ops.write(this.#gate.params, params);
    const out: Float32Array[][] = [];
    for (const ids of samples) {
      const acts = this.#activations(ids.length, 0);
      forward(this.#ops, this.#model, acts, ids, this.#gate, this.#settings.window);
      out.push(await Promise.all(acts.layers.map((a) => this.#ops.read(a.gate.g))));
    }
    return out;
  }

  /** Activations for length T (kept while the length stays the same), RoPE's angles from `offset`. */
  #activations(T: number, offset: number): SampleActivations {
    if (this.#acts?.T !== T) this.#allocate(T);
    const acts = this.#acts!;
    if (this.#offset !== offset) {
      const { rope } = this.#model;
      this.#ops.writeRopeAngles(acts.scratch.angles, T, rope, false, offset);
      this.#ops.writeRopeAngles(acts.scratch.anglesInv, T, rope, true, offset);
      this.#offset = offset;
    }
    return acts;
  }

  #allocate(T: number): void {
    this.#acts?.dispose();
    if (this.#target) this.#ops.free(this.#target);
    const ops = this.#ops, m = this.#model;
    this.#acts = createSampleActivations(ops, m.config, T, this.#layout.shape.hidden, (inverse) => ops.ropeAngles(T, m.rope, inverse));
    this.#target = ops.alloc(T * m.config.hiddenSize, "teacher hidden");
    this.#offset = 0;
  }

  dispose(): void {
    this.#acts?.dispose();
    this.#acts = null;
  }
}
