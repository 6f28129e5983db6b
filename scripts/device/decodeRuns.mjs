// What the decode scripts share (decode-overlap, decode-profile,
// decode-knockout, host-step, kernel-bench --e2e): the two cases they time
// taking turns, and the timing of a backend's reads.
import { resolveKvPolicy } from "../../dist/kvcache/kvPolicy.js";
import { randomAdmission } from "../../dist/kvcache/admission.js";

/** Full attention, and WG-KV as the paper's speed runs: random:0.2 admission, W = 256. */
export const FULL = { tag: "full", policy: resolveKvPolicy({ window: 256 }) };
export const WGKV = { tag: "random:0.2", policy: resolveKvPolicy({ window: 256, admission: randomAdmission(0.2) }) };

/**
 * Wraps `backend.read`: the time each read waits (the GPU finishing what was
 * submitted; with submits only at the read, the GPU's whole step), and the
 * gap from one read's end to the next read (the host's time between them: a
 * decode step's planning, uploads and recording). A decode step reads once,
 * so a run's last `decode` entries are its decode's. Each `take` returns its
 * list so far (ms) and starts a new one.
 */
export function timeReads(backend) {
  let waits = [], gaps = [], lastEnd = 0;
  const read = backend.read.bind(backend);
  backend.read = async (requests) => {
    const start = performance.now();
    if (lastEnd > 0) gaps.push(start - lastEnd);
    try {
      return await read(requests);
    } finally {
      lastEnd = performance.now();
      waits.push(lastEnd - start);
    }
  };
  return {
    take() {
      const taken = waits;
      waits = [];
      return taken;
    },
    takeGaps() {
      const taken = gaps;
      gaps = [];
      lastEnd = 0;
      return taken;
    },
  };
}
