/**
 * @module gate
 *
 * The WG-KV write gate: reading gate files (official `.pt` and the project's
 * safetensors), their typed weights, and the reference score computation.
 */
export { GateFormatError, GateShapeError, UnsafePickleError } from "./errors.js";
export { convertGate, gateMetadataProblem, loadGate, saveGateSafetensors, sniffGateFormat } from "./gateFile.js";
export type { GateFileFormat, GateMetadata, GateMetadataKey, LoadedGate } from "./gateFile.js";
export { createGateScratch, DEFAULT_GATE_TAU, GATE_MIN_SCORE, GATE_NORM_EPS, scoreGate, scoreGateBatch } from "./gateMath.js";
export type { GateScratch } from "./gateMath.js";
export { buildGateWeights, gateExpand, gateTensorName, gateTensors, inferGateModelShape } from "./gateWeights.js";
export type { GateLayerWeights, GateModelShape, GateTensorInput, GateWeights, LazyTensor, ShapedTensor } from "./gateWeights.js";
export { indexTorchCheckpoint, readTorchCheckpoint } from "./torchCheckpoint.js";
export type { CheckpointTensor, CheckpointTensorRef } from "./torchCheckpoint.js";
export { saveTorchCheckpoint } from "./torchSave.js";
