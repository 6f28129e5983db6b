/**
 * @module engine/stepInputs
 *
 * The device tensors a step's plan is uploaded into, once per step. Those
 * bounded by the batch (rows, sequences) are allocated once; lists whose
 * length depends on the cache (copies, table updates, SnapKV scores) grow
 * geometrically when a step needs more, replacing the old tensor.
 */
import type { AttentionDims, Backend, DType, KvTables, SelectionBuffers, Tensor } from "../backends/backend.js";
import { SAMPLE_FIELDS, SEQ_FIELDS, SNAP_FIELDS } from "../backends/stepLayout.js";
import type { StepPlan } from "../kvcache/stepPlan.js";
import type { StepCounts, StepTensors } from "../model/forward.js";

/** A device tensor of one dtype that is replaced by a larger one when a step needs more elements. */
class GrowableTensor {
  #tensor: Tensor;
  constructor(
    readonly backend: Backend,
    readonly dtype: DType,
    readonly label: string,
    readonly width: number,
    capacity: number,
  ) {
    this.#tensor = backend.createTensor([Math.max(1, capacity), width], dtype, label);
  }

  /** The tensor, with room for at least `rows` rows. */
  fit(rows: number): Tensor {
    if (rows > this.#tensor.shape[0]) {
      this.backend.destroyTensor(this.#tensor);
      this.#tensor = this.backend.createTensor([Math.max(rows, 2 * this.#tensor.shape[0]), this.width], this.dtype, this.label);
    }
    return this.#tensor;
  }

  destroy(): void {
    this.backend.destroyTensor(this.#tensor);
  }
}

export interface StepLimits {
  readonly maxRows: number;
  readonly maxSeqs: number;
  readonly maxLogitRows: number;
  readonly observationWindow: number;
}

export class StepInputs {
  readonly #b: Backend;
  readonly #ids: Tensor;
  readonly #positions: Tensor;
  readonly #seqs: Tensor;
  readonly #numGlobal: Tensor;
  readonly #slotMapping: Tensor;
  readonly #gateScores: Tensor;
  readonly #flags: Tensor;
  readonly #logitRows: Tensor;
  readonly #sampleParams: Tensor;
  readonly #sampled: Tensor;
  readonly #copies: GrowableTensor;
  readonly #tableUpdates: GrowableTensor;
  readonly #boundsBefore: GrowableTensor;
  readonly #boundsAfter: GrowableTensor;
  readonly #snapRequests: GrowableTensor;
  readonly #snapScores: GrowableTensor;
  #selection: { buffers: SelectionBuffers } | null = null;
  #observations: Tensor | null = null;

  constructor(
    backend: Backend,
    readonly dims: AttentionDims,
    readonly tables: KvTables,
    readonly limits: StepLimits,
  ) {
    this.#b = backend;
    const { numLayers: L, numKvHeads: H } = dims;
    const { maxRows: T, maxSeqs: S } = limits;
    const t = (label: string, dtype: DType, ...shape: number[]) => backend.createTensor(shape, dtype, label);
    this.#ids = t("ids", "i32", T);
    this.#positions = t("positions", "i32", T);
    this.#seqs = t("sequence fields", "i32", S, SEQ_FIELDS);
    this.#numGlobal = t("global token counts", "i32", S, L, H);
    this.#slotMapping = t("slot mapping", "i32", L, H, T);
    this.#gateScores = t("gate scores", "f32", L, H, T);
    this.#flags = t("admit flags", "u8", L, H, T);
    this.#logitRows = t("logit rows", "i32", limits.maxLogitRows);
    this.#sampleParams = t("sampling parameters", "f32", S, SAMPLE_FIELDS);
    this.#sampled = t("sampled ids", "i32", S);
    this.#copies = new GrowableTensor(backend, "i32", "slot copies", 2, 256);
    this.#tableUpdates = new GrowableTensor(backend, "i32", "table updates", 2, 256);
    this.#boundsBefore = new GrowableTensor(backend, "i32", "page bounds (before)", 2, 16);
    this.#boundsAfter = new GrowableTensor(backend, "i32", "page bounds (after)", 2, 64);
    this.#snapRequests = new GrowableTensor(backend, "i32", "SnapKV requests", SNAP_FIELDS, 16);
    this.#snapScores = new GrowableTensor(backend, "f32", "SnapKV scores", 1, 1024);
  }

  /** Writes the plan into the device tensors (queued) and returns what the forward takes. */
  upload(plan: StepPlan): { tensors: StepTensors; counts: StepCounts } {
    const b = this.#b;
    const { numLayers: L, numKvHeads: H } = this.dims;
    const T = plan.numRows;
    if (T > this.limits.maxRows || plan.numSeqs > this.limits.maxSeqs || plan.logitRows.length > this.limits.maxLogitRows) {
      throw new Error(`step of ${T} rows, ${plan.numSeqs} sequences, ${plan.logitRows.length} logits rows exceeds the runner's limits`);
    }
    b.write(this.#ids, plan.ids);
    b.write(this.#positions, plan.positions);
    b.write(this.#seqs, plan.seqFields);
    b.write(this.#numGlobal, plan.numGlobal);
    b.write(this.#slotMapping, plan.slotMapping);
    if (plan.logitRows.length) b.write(this.#logitRows, plan.logitRows);
    if (plan.numSamples) b.write(this.#sampleParams, plan.sampleParams);
    const copies = this.#upload(this.#copies, plan.copies);
    const tableUpdates = this.#upload(this.#tableUpdates, plan.tableUpdates);
    const boundsBefore = this.#upload(this.#boundsBefore, plan.boundsBefore);
    const boundsAfter = this.#upload(this.#boundsAfter, plan.boundsAfter);
    const snapRequests = this.#upload(this.#snapRequests, plan.snapRequests);
    const snapScores = this.#snapScores.fit(plan.numSnapScores);
    const tensors: StepTensors = {
      ids: this.#ids,
      positions: this.#positions,
      batch: {
        seqs: this.#seqs, numSeqs: plan.numSeqs, numGlobal: this.#numGlobal, tables: this.tables, selection: plan.usesQuest ? this.#selectionFor(plan.maxQuestPages) : null,
        admitted: { flags: this.#flags, numRows: T },
      },
      slotMapping: this.#slotMapping,
      copies,
      tableUpdates,
      boundsBefore,
      boundsAfter,
      gateScores: this.#gateScores,
      flags: this.#flags,
      observations: plan.usesObservations ? this.#observationTensor() : null,
      snapRequests,
      snapScores,
      logitRows: this.#logitRows,
      sampleParams: this.#sampleParams,
      sampled: this.#sampled,
    };
    const counts: StepCounts = {
      numRows: T,
      numEvictionCopies: plan.numEvictionCopies,
      layerCopyStart: plan.layerCopyStart,
      layerCopyCount: plan.layerCopyCount,
      numTableUpdates: plan.tableUpdates.length / 2,
      numBoundsBefore: plan.boundsBefore.length / 2,
      numBoundsAfter: plan.boundsAfter.length / 2,
      gateRuns: plan.gateRuns,
      usesQuest: plan.usesQuest,
      usesObservations: plan.usesObservations,
      numSnapRequests: plan.snapRequests.length / SNAP_FIELDS,
      numLogitRows: plan.logitRows.length,
      numSamples: plan.numSamples,
    };
    void L;
    void H;
    return { tensors, counts };
  }

  /** Frees every tensor. */
  destroy(): void {
    const b = this.#b;
    for (const t of [this.#ids, this.#positions, this.#seqs, this.#numGlobal, this.#slotMapping, this.#gateScores, this.#flags, this.#logitRows, this.#sampleParams, this.#sampled]) b.destroyTensor(t);
    for (const g of [this.#copies, this.#tableUpdates, this.#boundsBefore, this.#boundsAfter, this.#snapRequests, this.#snapScores]) g.destroy();
    if (this.#selection) {
      b.destroyTensor(this.#selection.buffers.pages);
      b.destroyTensor(this.#selection.buffers.numTokens);
    }
    if (this.#observations) b.destroyTensor(this.#observations);
  }

  #upload(target: GrowableTensor, data: Int32Array): Tensor {
    const tensor = target.fit(data.length / target.width);
    if (data.length > 0) this.#b.write(tensor, data);
    return tensor;
  }

  /** Quest's selection buffers with room for `numPages` pages per head. */
  #selectionFor(numPages: number): SelectionBuffers {
    if (this.#selection && this.#selection.buffers.stride >= numPages) return this.#selection.buffers;
    if (this.#selection) {
      this.#b.destroyTensor(this.#selection.buffers.pages);
      this.#b.destroyTensor(this.#selection.buffers.numTokens);
    }
    const { maxSeqs } = this.limits;
    const H = this.dims.numKvHeads;
    const stride = Math.max(numPages, 2 * (this.#selection?.buffers.stride ?? 0));
    const buffers: SelectionBuffers = {
      pages: this.#b.createTensor([maxSeqs, H, stride], "i32", "Quest pages"),
      numTokens: this.#b.createTensor([maxSeqs, H], "i32", "Quest tokens"),
      stride,
    };
    this.#selection = { buffers };
    return buffers;
  }

  /** SnapKV's observation queries per slot, created on first use. */
  #observationTensor(): Tensor {
    if (!this.#observations) {
      const { numLayers: L, numHeads, headDim: d } = this.dims;
      this.#observations = this.#b.createTensor([this.tables.numSlots, L, this.limits.observationWindow, numHeads * d], "f32", "observation queries");
    }
    return this.#observations;
  }

  get gateScores(): Tensor {
    return this.#gateScores;
  }

  get flags(): Tensor {
    return this.#flags;
  }

  get sampled(): Tensor {
    return this.#sampled;
  }
}
