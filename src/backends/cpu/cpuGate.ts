/**
 * @module backends/cpu/cpuGate
 *
 * The write gate on the CPU: each layer's weights packed into kernel memory
 * (gateLayout.ts), scored by the kernels' fused gate.
 */
import type { GateWeights } from "../../gate/gateWeights.js";
import type { GateHandle } from "../backend.js";
import { gateLayerFloats, packGateLayer } from "./gateLayout.js";
import type { CpuKernels } from "./kernels.js";

export interface CpuGate extends GateHandle {
  /** Per layer: its packed weights in kernel memory. */
  readonly layerPtr: readonly number[];
  /** scores f32 [H, T] of the largest chunk so far. */
  scratch: { ptr: number; capacity: number };
}

export function createCpuGate(kernels: CpuKernels, gate: GateWeights): CpuGate {
  const { numKvHeads: H, headDim: d, hiddenPerHead: E } = gate;
  const floats = gateLayerFloats(H, d, E);
  const layerPtr = gate.layers.map((layer) => {
    const ptr = kernels.alloc(floats * 4);
    packGateLayer(layer, new Float32Array(kernels.buffer(), ptr, floats));
    return ptr;
  });
  return { gate, layerPtr, scratch: { ptr: 0, capacity: 0 } };
}

/** Scores g of one layer: kPre, kPost f32 [T, H, d] at the given pointers -> [H, T]. */
export function cpuGateScores(kernels: CpuKernels, g: CpuGate, layer: number, kPrePtr: number, kPostPtr: number, T: number): Float32Array {
  const { numKvHeads: H, headDim: d, hiddenPerHead: E } = g.gate;
  if (g.scratch.capacity < H * T) g.scratch = { ptr: kernels.alloc(H * T * 2 * 4), capacity: H * T * 2 };
  kernels.gateScores(g.scratch.ptr, kPrePtr, kPostPtr, g.layerPtr[layer], { T, H, d, E });
  return new Float32Array(kernels.buffer(), g.scratch.ptr, H * T).slice();
}
