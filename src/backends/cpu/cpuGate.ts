/**
 * @module backends/cpu/cpuGate
 *
 * The write gate on the CPU: each layer's weights packed into kernel memory
 * (gateLayout.ts), scored by the kernels' fused gate.
 */
import type { GateWeights } from "../../gate/gateWeights.js";
import type { GateHandle } from "../backend.js";
import type { CpuTensor } from "./cpuTensor.js";
import { gateLayerFloats, packGateLayer } from "./gateLayout.js";
import type { CpuKernels } from "./kernels.js";

export interface CpuGate extends GateHandle {
  /** Per layer: its packed weights in kernel memory. */
  readonly layerPtr: readonly number[];
}

export function createCpuGate(kernels: CpuKernels, gate: GateWeights): CpuGate {
  const { numKvHeads: H, headDim: d, hiddenPerHead: E } = gate;
  const floats = gateLayerFloats(H, d, E);
  const layerPtr = gate.layers.map((layer) => {
    const ptr = kernels.alloc(floats * 4);
    packGateLayer(layer, new Float32Array(kernels.buffer(), ptr, floats));
    return ptr;
  });
  return { gate, layerPtr };
}

/** Scores of rows [row0, row0 + numRows) of kPre, kPost f32 [rows, H, d] into scores[offset + h * stride + row]. */
export function cpuGateScores(
  kernels: CpuKernels, g: CpuGate, layer: number, scores: CpuTensor, offset: number, stride: number, kPre: CpuTensor, kPost: CpuTensor, row0: number, numRows: number,
): void {
  const { numKvHeads: H, headDim: d, hiddenPerHead: E } = g.gate;
  const rowBytes = H * d * 4;
  kernels.gateScores(scores.ptr + (offset + row0) * 4, kPre.ptr + row0 * rowBytes, kPost.ptr + row0 * rowBytes, g.layerPtr[layer], { T: numRows, stride, H, d, E });
}
