// Shared by the one-layer device benches (attention-bench.mjs,
// prefill-attention-bench.mjs): ms per call of c.call(), after one untimed
// call, the GPU drained by a one-element read of c.out before and after; and
// untimed calls that bring the GPU's clocks up before a case is measured
// (keepBusy, matvec-bench.mjs's too).
export async function msPerCall(b, c, reps) {
  c.call();
  await b.read([{ tensor: c.out, numElements: 1 }]);
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) c.call();
  await b.read([{ tensor: c.out, numElements: 1 }]);
  return (performance.now() - t0) / reps;
}

/**
 * Calls c.call() for `ms` (default 2000) untimed: the H200's SM clock drops to 345 MHz within a second of light
 * load (a case's set-up on the host) and takes ~1-2 s of work to return to 1980 (nvidia-smi, 2026-12-03), so a
 * measurement right after set-up ran at a fraction of the clock (8B at 128K: 1463 against ~280 us a layer).
 */
export async function keepBusy(b, c, ms = 2000) {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 4; i++) c.call();
    await b.read([{ tensor: c.out, numElements: 1 }]);
  }
}
