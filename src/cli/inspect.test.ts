/**
 * `wgkv inspect` in a real browser: headless Chromium (Debian's, driven by
 * playwright-core) loads the page with no console errors; the admitted
 * counts it shows per (layer, KV head) equal `wgkv forward --json`'s
 * `admitted` for the same ids and gate; hovering a token shows its gate
 * scores per head; a screenshot is taken; --png writes the heat map.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { expectCliError, runCli } from "../testing/cli.js";
import { PROJECT_ROOT } from "../testing/fixtures.js";
import { TINY_GATE } from "../testing/server.js";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`;
const dir = mkdtempSync(join(tmpdir(), "wgkv-inspect-"));
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
});
after(async () => {
  await browser?.close();
});

test("the page shows what forward --json reports, with no console errors", { skip }, async () => {
  const promptFile = join(dir, "prompt.txt");
  writeFileSync(promptFile, readFileSync(join(PROJECT_ROOT, "examples/needle.txt"), "utf8").slice(0, 2400));
  const html = join(dir, "admission.html");
  const png = join(dir, "heatmap.png");
  const r = runCli(["inspect", "--threads", "1", "--prompt-file", promptFile, "--gate", TINY_GATE, "--out", html, "--png", png]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(readFileSync(html, "utf8"), /<(link|img)\b|src=|https?:\/\//, "the page is self-contained");

  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("request", (req) => {
    if (!req.url().startsWith("file:")) problems.push(`fetched ${req.url()}`);
  });
  await page.goto(`file://${html}`);
  const shown = await page.evaluate(() => {
    const data = JSON.parse(document.getElementById("wgkv-data")!.textContent!) as { ids: number[]; numLayers: number; numKvHeads: number };
    const cells = Array.from(document.querySelectorAll<HTMLElement>("#heatmap td[data-layer]"));
    const admitted = Array.from({ length: data.numLayers }, (_, l) => Array.from({ length: data.numKvHeads }, (_, h) => Number(cells.find((c) => c.dataset.layer === String(l) && c.dataset.head === String(h))!.dataset.admitted)));
    return { ids: data.ids, admitted, numTokens: document.querySelectorAll("#tokens span").length, share: document.getElementById("kv-share")!.textContent };
  });
  assert.equal(shown.numTokens, shown.ids.length);

  const forward = runCli(["forward", "--threads", "1", "--json", "--gate", TINY_GATE, "--ids", shown.ids.join(",")]);
  assert.equal(forward.status, 0, forward.stderr);
  const reference = JSON.parse(forward.stdout) as { admitted: number[][]; kv_bytes: { resident: number; full_attention: number } };
  assert.deepEqual(shown.admitted, reference.admitted);
  const flat = reference.admitted.flat();
  assert.ok(Math.min(...flat) < shown.ids.length && Math.max(...flat) > 0, "the gate should admit some tokens and not others");
  assert.equal(shown.share, `${((reference.kv_bytes.resident / reference.kv_bytes.full_attention) * 100).toFixed(1)}%`);

  // hovering a token shows its scores per (layer, head); admitted ones are those above tau
  await page.hover("#tokens span[data-pos='5']");
  const detail = await page.evaluate(() => ({
    title: document.querySelector("#detail h2")!.textContent,
    cells: Array.from(document.querySelectorAll<HTMLElement>("#scores td")).map((td) => ({ score: Number(td.textContent), admitted: td.className === "in" })),
    count: Number(document.querySelector<HTMLElement>("#tokens span[data-pos='5']")!.dataset.count),
  }));
  assert.match(detail.title!, /^Token 5:/);
  assert.equal(detail.cells.length, reference.admitted.length * reference.admitted[0].length);
  assert.equal(detail.cells.filter((c) => c.admitted).length, detail.count);
  for (const c of detail.cells) assert.ok(c.admitted ? c.score >= 0.1 : c.score <= 0.1, JSON.stringify(c));
  await page.click("#tokens span[data-pos='7']");
  assert.match((await page.textContent("#detail h2"))!, /^Token 7:/);

  const shot = join(dir, "screenshot.png");
  await page.screenshot({ path: shot, fullPage: false });
  assert.ok(readFileSync(shot).length > 10_000);
  assert.deepEqual(problems, []);

  const image = readFileSync(png);
  assert.deepEqual([...image.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const [width, height] = [image.readUInt32BE(16), image.readUInt32BE(20)];
  assert.equal(width, 2 * 34 + 2);
  assert.equal(height, 8 * 34 + 2);
  // the PNG decodes: chromium draws it at its size
  const img = await page.evaluate(async (src) => {
    const el = new Image();
    el.src = src;
    await el.decode();
    return [el.naturalWidth, el.naturalHeight];
  }, `data:image/png;base64,${image.toString("base64")}`);
  assert.deepEqual(img, [width, height]);
  await page.close();
});

test("inspect refuses a missing gate and an empty prompt file with one line", () => {
  const empty = join(dir, "empty.txt");
  writeFileSync(empty, "  \n");
  expectCliError(["inspect", "--prompt-file", empty, "--out", join(dir, "x.html")], ["--gate"]);
  expectCliError(["inspect", "--prompt-file", empty, "--gate", TINY_GATE, "--out", join(dir, "x.html")], ["--prompt-file", "empty"]);
});
