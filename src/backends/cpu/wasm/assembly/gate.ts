// The write gate (docs/design.md §7) of one layer, fused: for a KV head h and a
// range of tokens, both key norms, W1 (the matmul micro-kernels), the exact
// GELU, W2 and the sigmoid, without leaving the thread.
//
// The layer's weights are packed (src/backends/cpu/gateLayout.ts):
//   f32 preNorm[d], postNorm[d], w1[H, E, 2d], b1[H, E], w2[H, E], b2[H]
// kPre, kPost: f32 [T, H, d] (keys before and after RoPE); scores: f32 [H, stride] (token t at h * stride + t).
import { rmsNormRow } from "./elementwise";
import { matmulRange } from "./matmul";
import { expF32, geluErfF32x4, hsum } from "./simdMath";

/** Tokens whose normed keys and hidden units sit in scratch at once. */
export const GATE_TILE: i32 = 16;
/** g's floor (gate/gateMath.ts): log(g) stays finite. */
const MIN_SCORE: f32 = 1e-3;

/** Scratch bytes of one gate task: x f32 [GATE_TILE, 2d] and u f32 [GATE_TILE, E]. */
export function gateScratchBytes(d: i32, E: i32): i32 {
  return GATE_TILE * (2 * d + E) * 4;
}

/** w2 · gelu(u) over E hidden units. */
@inline function projectGelu(u: usize, w2: usize, E: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= E; i += 4) {
    const o = <usize>i << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(w2 + o), geluErfF32x4(v128.load(u + o))));
  }
  let z = hsum(acc);
  for (; i < E; i++) {
    const o = <usize>i << 2;
    z += load<f32>(w2 + o) * f32x4.extract_lane(geluErfF32x4(f32x4.splat(load<f32>(u + o))), 0);
  }
  return z;
}

/** Scores of KV head h for tokens [t0, t1). */
export function gateScoresTask(
  scores: usize, kPre: usize, kPost: usize, layer: usize, stride: i32, H: i32, d: i32, E: i32, eps: f32, h: i32, t0: i32, t1: i32, scratch: usize,
): void {
  const dBytes = <usize>d << 2, eBytes = <usize>E << 2;
  const preNorm = layer, postNorm = preNorm + dBytes;
  const w1All = postNorm + dBytes, b1All = w1All + <usize>H * eBytes * 2 * d;
  const w2All = b1All + <usize>H * eBytes, b2All = w2All + <usize>H * eBytes;
  const w1 = w1All + <usize>h * eBytes * 2 * d, b1 = b1All + <usize>h * eBytes, w2 = w2All + <usize>h * eBytes;
  const b2 = load<f32>(b2All + (<usize>h << 2));
  const x = scratch, u = x + <usize>GATE_TILE * 2 * dBytes; // x f32 [tile, 2d]; u f32 [tile, E]
  for (let tile = t0; tile < t1; tile += GATE_TILE) {
    const n = min(GATE_TILE, t1 - tile);
    for (let r = 0; r < n; r++) {
      const at = <usize>((tile + r) * H + h) * dBytes, row = x + <usize>r * 2 * dBytes;
      rmsNormRow(row, kPre + at, preNorm, d, eps);
      rmsNormRow(row + dBytes, kPost + at, postNorm, d, eps);
    }
    matmulRange<f32>(u, x, w1, b1, E, 2 * d, 0, n, 0, E);
    for (let r = 0; r < n; r++) {
      const z = b2 + projectGelu(u + <usize>r * eBytes, w2, E);
      store<f32>(scores + (<usize>(h * stride + tile + r) << 2), max(<f32>1 / (<f32>1 + expF32(-z)), MIN_SCORE));
    }
  }
}
