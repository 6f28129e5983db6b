// The time each of a backend's reads waits (the GPU finishing what was
// submitted, and with submits only at the read, the GPU's whole step): a
// decode step reads once, so a run's last `decode` waits are its decode's.
// Shared by decode-overlap.mjs and decode-knockout.mjs.

/** Wraps `backend.read`; `take()` returns the waits so far (ms) and starts a new list. */
export function timeReads(backend) {
  let waits = [];
  const read = backend.read.bind(backend);
  backend.read = async (requests) => {
    const t = performance.now();
    try {
      return await read(requests);
    } finally {
      waits.push(performance.now() - t);
    }
  };
  return {
    take() {
      const taken = waits;
      waits = [];
      return taken;
    },
  };
}
