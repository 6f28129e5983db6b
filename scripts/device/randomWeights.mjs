// Random bf16 weights [N, K] uploaded to backend `b` for the device scripts:
// bit patterns in the exponent range of small weights (1/128 to 1/64), negative
// half the time when `signed`; a fast LCG, as the 8B shapes hold 10^8 weights
// (timings do not depend on the values).
export function randomBf16Weight(b, N, K, signed = false) {
  const bits = new Uint16Array(N * K);
  let s = 1;
  for (let i = 0; i < bits.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bits[i] = 0x3c00 | (s >>> 22) | (signed ? s & 0x8000 : 0);
  }
  return b.uploadWeight({ dtype: "BF16", shape: [N, K], bytes: new Uint8Array(bits.buffer) }, "matrix");
}
