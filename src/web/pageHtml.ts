/**
 * @module web/pageHtml
 *
 * The HTML of `wgkv web`'s page: a prompt box, a Generate button, the
 * streamed answer and its numbers. The behaviour is web/webPage.ts, bundled
 * as /web-page.js next to the library (/wgkv.js); the server fills in the
 * title only, escaped.
 */

/** What the server tells the page at /config.json (cli/webApp.ts). */
export interface WebPageConfig {
  readonly model: string;
  /** The model folder's URL. */
  readonly modelUrl: string;
  /** The gate file's URL, or null: full attention only. */
  readonly gateUrl: string | null;
  /** The KV page pool to ask for (the library's kvMemory), or null for its default. */
  readonly kvMemory: string | null;
}

const STYLE = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
#status { color: #57606a; margin: 0; min-height: 1.4em; }
#device { color: #57606a; margin: 0 0 1rem; font-size: .85rem; min-height: 1.2em; }
body[data-state="error"] #status, body[data-state="no-webgpu"] #status { color: #b42318; }
textarea { width: 100%; box-sizing: border-box; min-height: 6rem; font: inherit; padding: .5rem; }
.row { display: flex; gap: 1rem; align-items: center; margin: .5rem 0 1rem; flex-wrap: wrap; }
input[type="number"] { width: 5rem; }
button { font: inherit; padding: .35rem 1.2rem; }
#output { white-space: pre-wrap; background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: .75rem; min-height: 4rem; }
#stats { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin-top: 1rem; }
#stats dt { color: #57606a; }
#stats dd { margin: 0; font-variant-numeric: tabular-nums; }
.bar { height: .6rem; background: #d0d7de; border-radius: 3px; overflow: hidden; max-width: 20rem; }
.bar > div { height: 100%; background: #2f81f7; width: 0; }
`;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderWebPage(modelName: string): string {
  const title = escapeHtml(`wgkv: ${modelName}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body data-state="loading">
<h1>${title}</h1>
<p id="status">Loading…</p>
<p id="device"></p>
<textarea id="prompt" aria-label="prompt">Write a haiku about the sea.</textarea>
<div class="row">
  <button id="generate" disabled>Generate</button>
  <label>max tokens <input id="max-tokens" type="number" min="1" value="64"></label>
  <label>temperature <input id="temperature" type="number" min="0" step="0.1" value="0"></label>
  <label><input id="chat" type="checkbox" checked> chat template</label>
  <label id="gate-choice" hidden><input id="use-gate" type="checkbox" checked> write gate</label>
</div>
<div id="output" aria-live="polite"></div>
<dl id="stats">
  <dt>speed</dt><dd id="speed">–</dd>
  <dt>admitted fraction</dt><dd id="admitted">–</dd>
  <dt>KV memory</dt><dd><span id="kv">–</span><div class="bar"><div id="kv-bar"></div></div></dd>
</dl>
<script type="module" src="/web-page.js"></script>
</body>
</html>
`;
}
