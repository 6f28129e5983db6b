/**
 * Hostile gate checkpoints cost nothing: a few hundred bytes of pickle that
 * describe billions of elements, views past their storage, views that
 * overlap or repeat one storage, absurd sizes, names given twice or missing.
 * Each is refused with a one-line error in milliseconds, before any value is
 * read and without a large allocation. The files are built with the
 * independent writer of testing/torchZip, so they can hold what torch never writes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GateFormatError, GateShapeError, UnsafePickleError } from "./errors.js";
import { loadGate } from "./gateFile.js";
import { buildGateWeights, gateTensorName, type GateTensorInput } from "./gateWeights.js";
import { indexTorchCheckpoint } from "./torchCheckpoint.js";
import { statePickle, torchFile, type HandTensor } from "../testing/torchZip.js";

const MODEL = { numLayers: 1, numKvHeads: 1, headDim: 2 };
const P = "model.layers.0.self_attn.g_predictors.";

const contiguous = (size: readonly number[]) => size.map((_, i) => size.slice(i + 1).reduce((a, b) => a * b, 1));
function t(name: string, key: string, size: number[], extra: Partial<HandTensor> & { numel?: number; type?: string } = {}): HandTensor {
  const numel = extra.numel ?? size.reduce((a, b) => a * b, 1);
  return { name, storage: { key, type: extra.type ?? "FloatStorage", numel }, offset: extra.offset ?? 0, size, stride: extra.stride ?? contiguous(size), parameter: extra.parameter };
}

/** The six tensors of a correct one-layer gate for MODEL, each on its own storage; `change` swaps some. */
function gateFile(change: (tensors: HandTensor[]) => HandTensor[] = (x) => x, storageBytes?: (key: string, numel: number) => number): Uint8Array {
  const tensors = change([
    t(P + "pre_key_norm.weight", "0", [2]),
    t(P + "post_key_norm.weight", "1", [2]),
    t(P + "conv1.weight", "2", [2, 4, 1]),
    t(P + "conv1.bias", "3", [2]),
    t(P + "conv2.weight", "4", [1, 2, 1]),
    t(P + "conv2.bias", "5", [1]),
  ]);
  const storages = new Map<string, Uint8Array>();
  for (const x of tensors) {
    if (storages.has(x.storage.key)) continue; // the first tensor naming a storage sizes it
    const bytes = storageBytes ? storageBytes(x.storage.key, x.storage.numel) : 4 * x.storage.numel;
    storages.set(x.storage.key, new Uint8Array(bytes).fill(0x3c)); // 0x3c3c3c3c: a small finite f32
  }
  return torchFile(statePickle(tensors), storages);
}

/**
 * Asserts that loading `bytes` (with and without the model's shape) throws a
 * one-line error of `type` matching `re`, within 1 s and without growing the
 * process's peak memory by 64 MiB.
 */
function refusedCheaply(bytes: Uint8Array, re: RegExp, type: new (...args: never[]) => Error = GateFormatError): void {
  for (const model of [MODEL, undefined]) {
    const peakBefore = process.resourceUsage().maxRSS * 1024;
    const start = performance.now();
    assert.throws(
      () => loadGate(bytes, "evil.pt", model),
      (e: unknown) => {
        assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
        assert.match((e as Error).message, re);
        assert.ok((e as Error).message.startsWith("evil.pt") || (e as Error).message.startsWith("gate file evil.pt"), (e as Error).message);
        assert.ok(!(e as Error).message.includes("\n"));
        return true;
      },
    );
    const ms = performance.now() - start;
    const grown = process.resourceUsage().maxRSS * 1024 - peakBefore;
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    assert.ok(grown < 64 * 2 ** 20, `peak memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  }
}

test("the well-formed file of these tests loads (so each refusal below is about its one change)", () => {
  assert.equal(loadGate(gateFile(), "ok.pt", MODEL).gate.hiddenPerHead, 2);
});

test("a stride-0 view of 2^30 elements over one float: a tiny file, refused before anything is read", () => {
  const bytes = gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [2 ** 30], { numel: 1, stride: [0] }), ...ts.slice(1)]);
  assert.ok(bytes.length < 4096, `${bytes.length} bytes`);
  refusedCheaply(bytes, /^evil\.pt: 'model\.layers\.0\.self_attn\.g_predictors\.pre_key_norm\.weight' has stride 0 in dimension 0, repeating one storage element 1073741824 times/);
  // the same view as the only tensor of a plain checkpoint
  assert.throws(() => indexTorchCheckpoint(torchFile(statePickle([t("w", "0", [2 ** 30], { numel: 1, stride: [0] })]), new Map([["0", new Uint8Array(4)]])), "x.pt"), /'w' has stride 0/);
});

test("views past their storage: too long, too strided, offset past the end", () => {
  refusedCheaply(gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [100], { numel: 2 }), ...ts.slice(1)]), /'model\.layers\.0\.self_attn\.g_predictors\.pre_key_norm\.weight' reaches element 99 of a storage of 2 elements \(data\/0\)/);
  refusedCheaply(gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [2], { numel: 2, stride: [2 ** 40] }), ...ts.slice(1)]), /reaches element 1099511627776 of a storage of 2 elements/);
  refusedCheaply(gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [2], { numel: 2, offset: 2 ** 50 }), ...ts.slice(1)]), /reaches element \d+ of a storage of 2 elements/);
  refusedCheaply(gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [0], { numel: 2, offset: 3 }), ...ts.slice(1)]), /starts at element 3 of a storage of 2/);
});

test("overlapping views, and many tensors over one storage, cannot read more than the file stores", () => {
  // [2^15, 2^15] with strides (1, 1) stays inside 2^16 elements but reads 2^30
  refusedCheaply(
    gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [2 ** 15, 2 ** 15], { numel: 2 ** 16, stride: [1, 1] }), ...ts.slice(1)]),
    /its tensors hold 1073741839 elements but its storages only 65551; views overlap or repeat storage/,
  );
  // 300 names over one storage of 4096 floats
  const many = Array.from({ length: 300 }, (_, i) => t(`model.layers.${i}.self_attn.g_predictors.conv1.weight`, "0", [4096]));
  refusedCheaply(torchFile(statePickle(many), new Map([["0", new Uint8Array(4 * 4096)]])), /its tensors hold 1228800 elements but its storages only 4096/);
});

test("storages whose bytes do not match their declared size, or that are named with two sizes or dtypes", () => {
  refusedCheaply(gateFile(undefined, (key, numel) => (key === "2" ? 4 * numel - 4 : 4 * numel)), /'model\.layers\.0\.self_attn\.g_predictors\.conv1\.weight': storage data\/2 has 28 bytes but is declared as 8 f32 elements \(32 bytes\)/);
  refusedCheaply(gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [2], { numel: 2 ** 40 }), ...ts.slice(1)], () => 8), /storage data\/0 has 8 bytes but is declared as 1099511627776 f32 elements/);
  refusedCheaply(gateFile((ts) => [...ts.slice(0, 5), t(P + "conv2.bias", "0", [1], { numel: 1 })]), /storage data\/0 is named as 1 f32 and elsewhere as 2 f32/);
  refusedCheaply(gateFile((ts) => [...ts.slice(0, 5), t(P + "conv2.bias", "../data.pkl", [1])]), /storage key "..\/data.pkl" is not a plain name/);
  refusedCheaply(gateFile((ts) => [...ts.slice(0, 5), t(P + "conv2.bias", "5", [1], { type: "LongStorage" })]), /pickle global 'torch\.LongStorage' at byte \d+ is not allowed/, UnsafePickleError);
});

test("absurd sizes and ranks", () => {
  refusedCheaply(gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [2 ** 40, 2 ** 40], { numel: 2 }), ...ts.slice(1)]), /has shape \[1099511627776, 1099511627776\], more than 2147483648 elements/);
  refusedCheaply(gateFile((ts) => [t(P + "pre_key_norm.weight", "0", new Array(40).fill(1), { numel: 2 }), ...ts.slice(1)]), /has 40 dimensions, more than 16/);
});

test("names given twice, missing, foreign or for another model", () => {
  refusedCheaply(gateFile((ts) => [...ts, t(P + "conv1.bias", "6", [2])]), /malformed pickle at byte \d+: dict key "model\.layers\.0\.self_attn\.g_predictors\.conv1\.bias" is set twice/);
  refusedCheaply(gateFile((ts) => ts.slice(0, 5)), /tensor model\.layers\.0\.self_attn\.g_predictors\.conv2\.bias is missing/);
  refusedCheaply(gateFile((ts) => [...ts, t("lm_head.weight", "6", [2])]), /unexpected tensor 'lm_head\.weight'/);
  refusedCheaply(gateFile((ts) => [...ts, t("model.layers.00.self_attn.g_predictors.conv1.bias", "6", [2])]), /unexpected tensor 'model\.layers\.00\./);
  refusedCheaply(gateFile((ts) => [...ts, t("a\nb", "6", [2])]), /unexpected tensor "a\\nb"/);
  // a gate for a model with d = 4: refused against MODEL (shape) and, read alone, as an incomplete gate for its own shape
  const other = gateFile((ts) => [t(P + "pre_key_norm.weight", "0", [4]), ...ts.slice(1)]);
  assert.throws(() => loadGate(other, "evil.pt", MODEL), (e: unknown) => e instanceof GateShapeError && /pre_key_norm\.weight has shape \[4\], expected \[2\]/.test((e as Error).message));
});

test("buildGateWeights checks every name and shape before it loads any tensor", () => {
  let loads = 0;
  const lazy = (shape: number[]): GateTensorInput => ({ shape, load: () => (loads++, new Float32Array(shape.reduce((a, b) => a * b, 1))) });
  const good = () => new Map<string, GateTensorInput>([
    [gateTensorName(0, "preKeyNorm"), lazy([2])], [gateTensorName(0, "postKeyNorm"), lazy([2])], [gateTensorName(0, "w1"), lazy([2, 4, 1])],
    [gateTensorName(0, "b1"), lazy([2])], [gateTensorName(0, "w2"), lazy([1, 2, 1])], [gateTensorName(0, "b2"), lazy([1])],
  ]);
  // the last tensor is wrong: nothing before it may have been read
  const wrong = good().set(gateTensorName(0, "b2"), lazy([7]));
  assert.throws(() => buildGateWeights(wrong, "g.pt", MODEL), GateShapeError);
  const missing = good();
  missing.delete(gateTensorName(0, "b2"));
  assert.throws(() => buildGateWeights(missing, "g.pt", MODEL), /conv2\.bias is missing/);
  assert.equal(loads, 0);
  buildGateWeights(good(), "g.pt", MODEL);
  assert.equal(loads, 6);
});

test("a global spelled under another module is refused at the checkpoint level too", () => {
  const renames: Array<[string, string, string, string]> = [
    ["torch._utils", "_rebuild_tensor_v2", "evil._utils", "_rebuild_tensor_v2"],
    ["torch._utils", "_rebuild_parameter", "evil._utils", "_rebuild_parameter"],
    ["torch", "FloatStorage", "evil", "FloatStorage"],
    ["collections", "OrderedDict", "evil", "OrderedDict"],
  ];
  for (const [module, name, toModule, toName] of renames) {
    const pkl = statePickle([t("w", "0", [2])], { renameGlobal: (m, n) => (m === module && n === name ? [toModule, toName] : [m, n]) });
    assert.throws(
      () => indexTorchCheckpoint(torchFile(pkl, new Map([["0", new Uint8Array(8)]])), "evil.pt"),
      (e: unknown) => e instanceof UnsafePickleError && e.message.startsWith(`evil.pt (data.pkl): pickle global '${toModule}.${toName}' at byte `),
      `${toModule}.${toName}`,
    );
  }
});
