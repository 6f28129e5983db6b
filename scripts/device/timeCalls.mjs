// Shared by the one-layer device benches (attention-bench.mjs,
// prefill-attention-bench.mjs): ms per call of c.call(), after one untimed
// call, the GPU drained by a one-element read of c.out before and after.
export async function msPerCall(b, c, reps) {
  c.call();
  await b.read([{ tensor: c.out, numElements: 1 }]);
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) c.call();
  await b.read([{ tensor: c.out, numElements: 1 }]);
  return (performance.now() - t0) / reps;
}
