/**
 * @module train/adamw
 *
 * AdamW as PyTorch's torch.optim.AdamW computes it (decoupled weight decay,
 * bias-corrected moments), on flat f32 vectors, and the learning-rate
 * schedule of the recipe: linear warm-up, then cosine decay to zero.
 */

export interface AdamWSettings {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
}

/** PyTorch's defaults, with the recipe's weight decay 0.01 (docs/design.md §8). */
export const ADAMW_DEFAULTS: AdamWSettings = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** The optimizer's state: first and second moments and the number of steps taken. */
export interface AdamWState {
  readonly m: Float32Array;
  readonly v: Float32Array;
  step: number;
}

export function createAdamWState(numParams: number): AdamWState {
  return { m: new Float32Array(numParams), v: new Float32Array(numParams), step: 0 };
}

/** One update of `params` in place from `grad` at learning rate lr. */
export function adamwStep(params: Float32Array, grad: Float32Array, state: AdamWState, lr: number, s: AdamWSettings = ADAMW_DEFAULTS): void {
  if (grad.length !== params.length || state.m.length !== params.length) throw new RangeError("adamw: parameters, gradient and state differ in length");
  state.step++;
  const c1 = 1 - s.beta1 ** state.step, c2 = 1 - s.beta2 ** state.step;
  const { m, v } = state;
  const decay = 1 - lr * s.weightDecay;
  for (let i = 0; i < params.length; i++) {
    const g = grad[i]!;
    m[i] = s.beta1 * m[i]! + (1 - s.beta1) * g;
    v[i] = s.beta2 * v[i]! + (1 - s.beta2) * g * g;
    // NOTE: PyTorch decays first (p *= 1 - lr * wd), then steps by lr * m_hat / (sqrt(v_hat) + eps)
    params[i] = params[i]! * decay - (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + s.eps);
  }
}

/**
 * The learning rate of step `step` (0-based) of `total`: linear warm-up over
 * the first `warmupSteps` (from lr / warmupSteps up to lr), then cosine decay to 0 at the end.
 */
export function learningRate(step: number, total: number, lr: number, warmupSteps: number): number {
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const span = Math.max(1, total - warmupSteps);
  return 0.5 * lr * (1 + Math.cos((Math.PI * (step - warmupSteps)) / span));
}
