/**
 * @module train/trainer
 *
 * The training loop of the gate recipe (docs/design.md §8): each step draws
 * a batch from TrainData, has the runner compute the batch's mean-loss
 * gradient, and updates the gate with AdamW under warm-up then cosine decay.
 * Progress and checkpoints go to callbacks, so the loop knows nothing of
 * terminals or files.
 */
import { ADAMW_DEFAULTS, adamwStep, learningRate, type AdamWState } from "./adamw.js";
import type { SampleRunner, SampleStats } from "./sampleRunner.js";
import type { TrainSample } from "./trainData.js";

/** Where the samples come from (train/trainData.ts's TrainData, or a test's). */
export interface SampleSource {
  sample(step: number, index: number): Pick<TrainSample, "ids" | "positionOffset">;
}

export interface TrainSettings {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  /** Fraction of the steps spent warming up (the recipe: 0.1). */
  readonly warmup: number;
  readonly weightDecay: number;
  readonly lambda: number;
}

/** What one step reports. */
export interface StepReport {
  /** 1-based number of the step just taken. */
  readonly step: number;
  readonly steps: number;
  /** Batch means. */
  readonly loss: number;
  readonly mse: number;
  readonly sparsity: number;
  readonly admitted: number;
  readonly lr: number;
  /** Wall time of this step and an estimate of the time left, in milliseconds. */
  readonly stepMs: number;
  readonly etaMs: number;
}

export interface TrainLoop {
  readonly runner: SampleRunner;
  readonly data: SampleSource;
  readonly settings: TrainSettings;
  /** Updated in place. */
  readonly params: Float32Array;
  readonly adam: AdamWState;
  /** The first step to run (0 for a new run, the checkpoint's for a resumed one). */
  readonly startStep: number;
  readonly onStep?: (report: StepReport) => void | Promise<void>;
  /** Called after step `nextStep - 1` when a checkpoint is due (and after the last step). */
  readonly onCheckpoint?: (nextStep: number) => void | Promise<void>;
  readonly checkpointEvery?: number;
  /** Clock in milliseconds (tests pass their own). */
  readonly now?: () => number;
}

/** The mean of each loss term over a batch. */
export function batchMeans(stats: readonly SampleStats[], lambda: number): { loss: number; mse: number; sparsity: number; admitted: number } {
  const mean = (f: (s: SampleStats) => number) => stats.reduce((sum, s) => sum + f(s), 0) / stats.length;
  const mse = mean((s) => s.mse), sparsity = mean((s) => s.sparsity);
  return { loss: mse + lambda * sparsity, mse, sparsity, admitted: mean((s) => s.admitted) };
}

export async function runTraining(loop: TrainLoop): Promise<void> {
  const { settings: s, runner, data, params, adam } = loop;
  const now = loop.now ?? (() => performance.now());
  const warmupSteps = Math.max(1, Math.round(s.warmup * s.steps));
  const t0 = now();
  for (let step = loop.startStep; step < s.steps; step++) {
    const t = now();
    const batch = Array.from({ length: s.batch }, (_, i) => data.sample(step, i));
    const { grad, stats } = await runner.runBatch(params, batch, 1 / s.batch);
    const lr = learningRate(step, s.steps, s.lr, warmupSteps);
    adamwStep(params, grad, adam, lr, { ...ADAMW_DEFAULTS, weightDecay: s.weightDecay });
    const done = step + 1 - loop.startStep;
    const elapsed = now() - t0;
    await loop.onStep?.({ step: step + 1, steps: s.steps, ...batchMeans(stats, s.lambda), lr, stepMs: now() - t, etaMs: (elapsed / done) * (s.steps - step - 1) });
    const every = loop.checkpointEvery ?? 0;
    if (step + 1 === s.steps || (every > 0 && (step + 1) % every === 0)) await loop.onCheckpoint?.(step + 1);
  }
}
