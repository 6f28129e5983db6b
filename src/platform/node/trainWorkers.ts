/**
 * @module platform/node/trainWorkers
 *
 * The gate trainer's samples spread over worker threads: each worker loads
 * the model onto its own CPU training device (train/cpu/) and runs the
 * samples it is given with train/sampleRunner.ts's LocalSampleRunner; the
 * batch's gradients are summed here. Samples are independent, so this
 * parallelism needs no synchronisation inside a pass, and every kernel call
 * runs whole on its worker's thread.
 */
import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import type { KernelVariant } from "../../backends/cpu/wasm/wasmModule.js";
import { WgkvError } from "../../errors.js";
import type { RopeFrequencyDType } from "../../model/rope.js";
import type { GateShape } from "../../train/gateParams.js";
import type { SampleSettings } from "../../train/samplePass.js";
import type { BatchResult, SampleInput, SampleRunner, SampleStats } from "../../train/sampleRunner.js";

const ENTRY = new URL("./trainWorkerEntry.js", import.meta.url);

/** What a worker needs to set itself up (posted as workerData). */
export interface TrainWorkerInit {
  readonly modelDir: string;
  /** Seeded random bf16 weights of the folder's config instead of its files (timing runs). */
  readonly randomWeights?: number;
  readonly ropeFreq: RopeFrequencyDType;
  readonly gate: GateShape;
  readonly settings: SampleSettings;
  readonly variant: KernelVariant | "auto";
}

/** Requests and replies between this module and trainWorkerEntry.ts. */
export type TrainWorkerRequest =
  | { readonly id: number; readonly type: "batch"; readonly params: Float32Array; readonly batch: readonly SampleInput[]; readonly scale: number }
  | { readonly id: number; readonly type: "scores"; readonly params: Float32Array; readonly samples: readonly Int32Array[] };
export type TrainWorkerReply =
  | { readonly id: number; readonly grad: Float32Array; readonly stats: readonly SampleStats[] }
  | { readonly id: number; readonly scores: Float32Array[][] }
  | { readonly id: number; readonly error: string; readonly user: boolean };

/** A worker's failure: a user error (bad model folder, too large) stays one, anything else is a bug. */
function workerError(message: string, user: boolean): Error {
  return user ? new WgkvError(message) : new Error(`training worker: ${message}`);
}

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** Node 20 has relaxed SIMD behind a V8 flag; set before the first compile, it holds for the workers too. */
export function enableRelaxedSimd(): void {
  setFlagsFromString("--experimental-wasm-relaxed-simd");
}

class TrainWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: TrainWorkerReply) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;
  #nextId = 0;
  #failure: Error | null = null;

  constructor(init: TrainWorkerInit, index: number) {
    this.#worker = new Worker(ENTRY, { workerData: init, name: `wgkv-train-${index}` });
    this.#worker.unref();
    this.ready = new Promise((resolve, reject) => {
      this.#worker.once("message", (m: { ready?: true; error?: string; user?: boolean }) => (m.error ? reject(workerError(m.error, m.user === true)) : resolve()));
      this.#worker.once("error", reject);
    });
    this.ready.then(
      () => this.#worker.on("message", (r: TrainWorkerReply) => {
        const p = this.#pending.get(r.id);
        this.#pending.delete(r.id);
        p?.resolve(r);
      }),
      () => {},
    );
    const fail = (e: Error) => {
      this.#failure = e;
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    this.#worker.on("error", fail);
    this.#worker.on("exit", (code) => fail(new Error(`training worker ${index} exited with code ${code}`)));
  }

  request(req: WithoutId<TrainWorkerRequest>): Promise<TrainWorkerReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...req, id });
    });
  }

  terminate(): void {
    void this.#worker.terminate();
  }
}

/** The samples of a batch dealt out to `n` workers, as evenly as they go. */
export function dealSamples<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: n }, () => []);
  items.forEach((item, i) => out[i % n]!.push(item));
  return out;
}

export class WorkerSampleRunner implements SampleRunner {
  readonly #workers: TrainWorker[];
  readonly description: string;

  private constructor(workers: TrainWorker[]) {
    this.#workers = workers;
    this.description = `cpu (wasm SIMD), ${workers.length} worker thread${workers.length > 1 ? "s" : ""}, one sample each at a time`;
  }

  /** Starts `numWorkers` (default: all cores) workers and waits until each has loaded the model. */
  static async start(init: TrainWorkerInit, numWorkers = availableParallelism()): Promise<WorkerSampleRunner> {
    if (init.variant !== "baseline") enableRelaxedSimd();
    const workers = Array.from({ length: numWorkers }, (_, i) => new TrainWorker(init, i));
    try {
      await Promise.all(workers.map((w) => w.ready));
    } catch (err) {
      for (const w of workers) w.terminate();
      throw err;
    }
    return new WorkerSampleRunner(workers);
  }

  async runBatch(params: Float32Array, batch: readonly SampleInput[], scale: number): Promise<BatchResult> {
    const shares = dealSamples(batch, Math.min(batch.length, this.#workers.length));
    const replies = await Promise.all(shares.map((share, i) => this.#workers[i]!.request({ type: "batch", params, batch: share, scale })));
    const grad = new Float32Array(params.length);
    const statsByShare: SampleStats[][] = [];
    for (const r of replies) {
      if ("error" in r) throw workerError(r.error, r.user);
      if (!("grad" in r)) throw new Error("training worker: unexpected reply");
      for (let i = 0; i < grad.length; i++) grad[i] += r.grad[i]!;
      statsByShare.push([...r.stats]);
    }
    // stats back in batch order (sample i went to worker i % n)
    const stats = batch.map((_, i) => statsByShare[i % shares.length]![Math.floor(i / shares.length)]!);
    return { grad, stats };
  }

  async gateScores(params: Float32Array, samples: readonly Int32Array[]): Promise<Float32Array[][]> {
    const shares = dealSamples(samples, Math.min(samples.length, this.#workers.length));
    const replies = await Promise.all(shares.map((share, i) => this.#workers[i]!.request({ type: "scores", params, samples: share })));
    const byShare = replies.map((r) => {
      if ("error" in r) throw workerError(r.error, r.user);
      if (!("scores" in r)) throw new Error("training worker: unexpected reply");
      return r.scores;
    });
    return samples.map((_, i) => byShare[i % shares.length]![Math.floor(i / shares.length)]!);
  }

  dispose(): void {
    for (const w of this.#workers) w.terminate();
  }
}
