/**
 * @module util/erf
 *
 * The error function and the exact (erf) GELU. `Math` has no erf, and the
 * write gate (docs/design.md §7) uses the exact GELU, not the tanh approximation.
 *
 * Two classical expansions, each used where it converges fast and without
 * cancellation, give ~1e-15 absolute accuracy (far beyond the 1e-7 f32 needs):
 *
 * - |x| < 2.5: the all-positive series
 *     erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_{n>=0} 2^n x^(2n+1) / (1*3*...*(2n+1))
 *   (Abramowitz & Stegun 7.1.6). Its terms never alternate, so unlike the
 *   Maclaurin series no digits are lost to cancellation.
 * - |x| >= 2.5: the Laplace continued fraction
 *     erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
 *   (A&S 7.1.14), evaluated bottom-up at a fixed depth; at x >= 2.5 a depth of
 *   48 leaves a truncation error below 1e-18.
 */

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);
const SERIES_LIMIT = 2.5;
const FRACTION_DEPTH = 48;

/** erf(a) for 0 <= a < SERIES_LIMIT by the positive series. */
function erfSeries(a: number): number {
  const twoA2 = 2 * a * a;
  let term = a;
  let sum = a;
  // NOTE: terms grow until 2n+3 > 2a^2, then shrink faster than geometrically;
  // stop once they no longer change the sum.
  for (let n = 0; n < 200; n++) {
    term *= twoA2 / (2 * n + 3);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum;
}

/** erfc(a) for a >= SERIES_LIMIT by the continued fraction. */
function erfcFraction(a: number): number {
  let t = a;
  for (let n = FRACTION_DEPTH; n >= 1; n--) t = a + n / 2 / t;
  return (INV_SQRT_PI * Math.exp(-a * a)) / t;
}

/** The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const r = a < SERIES_LIMIT ? erfSeries(a) : 1 - erfcFraction(a);
  return x < 0 ? -r : r;
}

/** The complementary error function 1 - erf(x), accurate also where it is tiny. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const r = a < SERIES_LIMIT ? 1 - erfSeries(a) : erfcFraction(a);
  return x < 0 ? 2 - r : r;
}

/**
 * Exact GELU: x * Phi(x) = x/2 * erfc(-x/sqrt(2)) (PyTorch's default
 * `approximate='none'`). Written with erfc so large negative x keeps its tiny
 * value instead of cancelling to 0.
 */
export function geluErf(x: number): number {
  return 0.5 * x * erfc(-x * Math.SQRT1_2);
}
