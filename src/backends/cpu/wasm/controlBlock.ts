/**
 * @module backends/cpu/wasm/controlBlock
 *
 * Layout of the shared control block (Int32 slots) through which main and the
 * kernel workers coordinate; threadPool.ts documents the protocol.
 */

export const SEQ = 0;
export const DONE = 1;
export const NEXT = 2;
export const OP = 3;
export const FAILED = 4;
export const NUM_CHUNKS = 5;
export const BASE = 6;
/** Pointer to the threads' scratch areas, SCRATCH_STRIDE bytes each, thread t at SCRATCH_BASE + t * stride. */
export const SCRATCH_BASE = 7;
export const SCRATCH_STRIDE = 8;
/** Kernel args start here; a float arg is read through a Float32Array at its slot. */
export const ARGS = 10;
/** A failing worker's message, one UTF-16 code unit per slot, 0-terminated. */
export const MESSAGE = 32;
export const MESSAGE_CHARS = 224;
export const CONTROL_BYTES = (MESSAGE + MESSAGE_CHARS) * 4;

export const OP_QUIT = -1;
export const OP_MATMUL_F32 = 1;
export const OP_MATMUL_BF16 = 2;
/** Paged attention: ARGS holds the descriptor pointer (pagedAttentionPlan.ts); a chunk is a task, then a reduce entry. */
export const OP_PAGED_ATTENTION = 4;
export const OP_PAGED_REDUCE = 5;
/** The light ops (assembly/elementwise.ts); a chunk is a share of rows, tokens or elements. */
export const OP_RMS_NORM = 6;
export const OP_SILU_MUL = 7;
export const OP_ADD = 8;
export const OP_ROPE = 9;
/** The write gate (assembly/gate.ts); a chunk is one KV head's share of tokens. */
export const OP_GATE = 10;
/** K or V rows into page slots (assembly/kvWrite.ts); a chunk is one KV head. */
export const OP_WRITE_SLOTS = 11;

/** Page types as the kernels number them (assembly/pagedBlock.ts). */
export const KV_DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;
/** Paged attention's code for f16 pages known to hold no infinity or NaN (a cheaper widening). */
export const KV_F16_FINITE_CODE = 3;
