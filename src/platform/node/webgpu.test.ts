/**
 * The platform's parsing of what the environment says about the GPU:
 * WGKV_GPU_MEMORY and WGKV_KERNELS give one-line errors naming the variable.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidInputError } from "../../errors.js";
import { BASE_TOGGLES, dawnInstanceOptions, HARDWARE_TOGGLES, parseBytes, parseKernelChoice } from "./webgpu.js";

const defaults = { fuse: true, attentionItems: 512, sgMatrix: null as object | null, sgMatrixSmall: { bm: 64 } as object | null, matvec: { tpr: 32 } };

test("WGKV_KERNELS: fields of the defaults' types are taken", () => {
  assert.deepEqual(parseKernelChoice('{"fuse": false, "attentionItems": 64, "sgMatrix": {"bm": 64}}', defaults), { fuse: false, attentionItems: 64, sgMatrix: { bm: 64 } });
  assert.deepEqual(parseKernelChoice('{"sgMatrix": null}', defaults), { sgMatrix: null });
  // NOTE: tile choices take a variant or null whatever their default
  assert.deepEqual(parseKernelChoice('{"sgMatrixSmall": null}', defaults), { sgMatrixSmall: null });
});

test("WGKV_KERNELS: bad JSON, unknown fields and wrong types are one-line errors", () => {
  const cases: [string, RegExp][] = [
    ["{fuse", /^WGKV_KERNELS must be a JSON object/],
    ["[1]", /^WGKV_KERNELS must be a JSON object/],
    ['{"fusion": true}', /^WGKV_KERNELS: unknown kernel choice "fusion" \(known: fuse, attentionItems, sgMatrix, sgMatrixSmall, matvec\)$/],
    ['{"fuse": "no"}', /^WGKV_KERNELS: "fuse" must be a boolean$/],
    ['{"matvec": [32]}', /^WGKV_KERNELS: "matvec" must be an object$/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseKernelChoice(text, defaults), (err: unknown) => err instanceof InvalidInputError && message.test(err.message) && !err.message.includes("\n"), text);
  }
});

test("WGKV_GPU_MEMORY: sizes with units, anything else refused", () => {
  assert.equal(parseBytes("135GiB"), 135 * 2 ** 30);
  assert.equal(parseBytes("8e9"), 8e9);
  assert.throws(() => parseBytes("lots"), (e: unknown) => e instanceof InvalidInputError && e.message === 'WGKV_GPU_MEMORY must be bytes (e.g. 135GiB), got "lots"');
});

test("Dawn toggles: hardware adds its own; WGKV_DAWN_TOGGLES adds and removes, its last word wins", () => {
  assert.deepEqual(dawnInstanceOptions(BASE_TOGGLES, ""), ["enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia", "disable-dawn-features=timestamp_quantization"]);
  assert.deepEqual(dawnInstanceOptions([...BASE_TOGGLES, ...HARDWARE_TOGGLES], ""), [
    "enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,skip_validation,vulkan_use_buffer_robust_access_2",
    "disable-dawn-features=timestamp_quantization",
  ]);
  assert.deepEqual(dawnInstanceOptions([...BASE_TOGGLES, ...HARDWARE_TOGGLES], " -skip_validation, disable_workgroup_init,timestamp_quantization"), [
    "enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,timestamp_quantization,vulkan_use_buffer_robust_access_2,disable_workgroup_init",
    "disable-dawn-features=skip_validation",
  ]);
});
