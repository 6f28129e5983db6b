/**
 * @module backends/stepLayout
 *
 * The binary layouts of a step's metadata, shared by the engine (which
 * writes them, engine/stepInputs.ts) and every backend (which reads them).
 * One table per record; tests pin the layouts against the readers.
 */

/** Tokens per KV page. */
export const PAGE_SIZE = 16;

// ---- a sequence of the step: i32 [maxSeqs, SEQ_FIELDS]

/** First row of the sequence's tokens in the batch. */
export const SEQ_ROW_START = 0;
/** Its tokens in this step (1 for decode, a chunk of at most WINDOW for prefill, longer where the policy takes long steps: kvPolicy.ts maxStepTokens). */
export const SEQ_NUM_ROWS = 1;
/** Position of its first token this step = tokens already in its cache. */
export const SEQ_START_POS = 2;
/** Its local window W (a multiple of 16). */
export const SEQ_WINDOW = 3;
/** Its row of the device tables (KvTables, observation queries). */
export const SEQ_SLOT = 4;
/** How it admits tokens: ADMIT_* below. */
export const SEQ_ADMISSION = 5;
/** The admission's argument: numSinks (sinks), threshold as u32 (random), tau's f32 bits (gate). */
export const SEQ_ADMISSION_ARG = 6;
/** Seed of random admission. */
export const SEQ_ADMISSION_SEED = 7;
/** Quest's token budget for this step's decode row, 0 when every global page is read. */
export const SEQ_QUEST_BUDGET = 8;
/** Observation queries SnapKV keeps (0: none). */
export const SEQ_OBSERVE = 9;
export const SEQ_FIELDS = 12;

export const ADMIT_FULL = 0;
export const ADMIT_LOCAL = 1;
export const ADMIT_SINKS = 2;
export const ADMIT_RANDOM = 3;
export const ADMIT_GATE = 4;

// ---- a row to sample: f32 [n, SAMPLE_FIELDS]

/** Row of the logits tensor to sample from. */
export const SAMPLE_ROW = 0;
/** 0 = greedy (argmax, first on ties). */
export const SAMPLE_TEMPERATURE = 1;
/** Keep the k most likely tokens; 0 keeps all. */
export const SAMPLE_TOP_K = 2;
/** Keep the smallest head of the sorted distribution whose mass reaches p; 1 keeps all. */
export const SAMPLE_TOP_P = 3;
/** A uniform draw in [0, 1) from the request's seeded generator. */
export const SAMPLE_UNIFORM = 4;
/** Drop tokens whose probability is below min_p times the most likely one's (after temperature); 0 keeps all. */
export const SAMPLE_MIN_P = 5;
export const SAMPLE_FIELDS = 6;

// ---- a head SnapKV scores: i32 [n, SNAP_FIELDS]

export const SNAP_SLOT = 0;
export const SNAP_LAYER = 1;
export const SNAP_HEAD = 2;
export const SNAP_WINDOW = 3;
/** Global tokens of the head (all scored). */
export const SNAP_NUM_GLOBAL = 4;
/** Ring tokens (they only normalise the softmax). */
export const SNAP_NUM_RING = 5;
/** Observation queries held. */
export const SNAP_NUM_OBS = 6;
/** Where the head's scores start in the output. */
export const SNAP_OFFSET = 7;
export const SNAP_FIELDS = 8;

/**
 * Absolute position of the token in ring offset `offset` of a head holding
 * `numTokens` tokens: the latest p < numTokens with p mod W = offset.
 * Valid for offset < min(numTokens, W).
 */
export function ringPosition(offset: number, numTokens: number, window: number): number {
  return offset + window * Math.floor((numTokens - 1 - offset) / window);
}

/**
 * The 32-bit hash random admission decides by, of (seed, layer, KV head,
 * position): murmur3's finalizer over a combined key, so decisions do not
 * depend on how a prompt is chunked.
 */
export function admissionHash(seed: number, layer: number, head: number, position: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (layer + 0x7f4a7c15) ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ (head + 0x165667b1) ^ (h >>> 13), 0x27d4eb2f);
  h = Math.imul(h ^ (position + 0x61c88647) ^ (h >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The u32 threshold of random admission at `rate`: admitted iff hash < threshold. */
export function randomAdmissionThreshold(rate: number): number {
  return Math.min(0xffffffff, Math.floor(rate * 2 ** 32)) >>> 0;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The bits of an f32 as an i32 field (tau travels so). */
export function bitsOfF32(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0] | 0;
}

/** The f32 whose bits an i32 field holds. */
export function f32FromBits(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0];
}
