/**
 * @module inspect/admissionHtml
 *
 * The admission visualizer: one self-contained HTML page (inline CSS, script
 * and data; nothing fetched) showing the prompt's tokens coloured by how
 * many (layer, KV head) pairs admitted them, each token's gate scores per
 * head on hover or click, a heat map of the admitted fraction per layer and
 * head, and the KV memory held against full attention. The page computes
 * what it shows from the embedded flags, so its numbers can be checked
 * against `wgkv forward --json`.
 */
import type { AdmissionData } from "./admissionData.js";

/** JSON safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderAdmissionHtml(data: AdmissionData): string {
  const title = `WG-KV admission: ${data.model}, ${data.ids.length} tokens`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="sub">write gate: admitted iff score &gt; tau = ${data.tau}; local window ${data.window} tokens (kept whatever the gate says)</p>
<section id="memory"></section>
<section class="row">
  <div><h2>Admitted fraction per layer and KV head</h2><table id="heatmap"></table></div>
  <div id="detail"><h2>Token</h2><p class="hint">hover or click a token to see its gate scores per head</p></div>
</section>
<h2>Prompt tokens, coloured by how many of the <span id="pairs"></span> (layer, KV head) pairs admitted them</h2>
<div id="legend"></div>
<div id="tokens"></div>
<script id="wgkv-data" type="application/json">${scriptJson(data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d2327; background: #fbfbfa; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 8px; }
.sub, .hint { color: #5f6b73; margin: 0; }
.row { display: flex; gap: 40px; flex-wrap: wrap; align-items: flex-start; }
#heatmap { border-collapse: collapse; } #heatmap th { font-weight: 500; color: #5f6b73; padding: 2px 8px; }
#heatmap td { width: 58px; height: 26px; text-align: center; font-variant-numeric: tabular-nums; border: 1px solid #fff; }
.bar { height: 18px; background: #e4e7ea; border-radius: 3px; width: 420px; position: relative; margin: 4px 0; }
.bar > div { height: 100%; background: #2f7d6d; border-radius: 3px; }
#tokens { white-space: pre-wrap; word-break: break-word; font: 13px/1.9 ui-monospace, monospace; background: #fff; padding: 12px; border: 1px solid #e4e7ea; max-height: 60vh; overflow: auto; }
#tokens span { cursor: pointer; border-radius: 2px; }
#tokens span.sel { outline: 2px solid #d9480f; }
#legend { display: flex; align-items: center; gap: 6px; margin-bottom: 6px; color: #5f6b73; }
#legend i { display: inline-block; width: 22px; height: 14px; }
#detail table { border-collapse: collapse; } #detail td, #detail th { padding: 2px 8px; text-align: right; font-variant-numeric: tabular-nums; }
#detail td.in { font-weight: 700; color: #2f7d6d; } #detail td.out { color: #8a949b; }
`;

// NOTE: plain ES2017 in the browser; every number shown is computed here from the embedded flags
const SCRIPT = `
(function () {
  var d = JSON.parse(document.getElementById("wgkv-data").textContent);
  var L = d.numLayers, H = d.numKvHeads, N = d.ids.length, P = L * H;
  function colour(f) {
    var a = [247, 247, 244], b = [20, 110, 160];
    var c = a.map(function (x, i) { return Math.round(x + (b[i] - x) * f); });
    return "rgb(" + c.join(",") + ")";
  }
  function ink(f) { return f > 0.55 ? "#fff" : "#1d2327"; }
  function mib(b) { return (b / 1048576).toFixed(2) + " MiB"; }
  document.getElementById("pairs").textContent = P;

  // admitted counts per (layer, head) and per token
  var perToken = new Array(N).fill(0), total = 0;
  var table = document.getElementById("heatmap");
  var head = "<tr><th></th>";
  for (var h = 0; h < H; h++) head += "<th>head " + h + "</th>";
  var rows = [head + "</tr>"];
  for (var l = 0; l < L; l++) {
    var row = "<tr><th>layer " + l + "</th>";
    for (var h2 = 0; h2 < H; h2++) {
      var flags = d.admitted[l][h2], count = 0;
      for (var p = 0; p < N; p++) if (flags.charCodeAt(p) === 49) { count++; perToken[p]++; }
      total += count;
      var f = count / N;
      row += '<td data-layer="' + l + '" data-head="' + h2 + '" data-admitted="' + count + '" title="layer ' + l + ", head " + h2 + ": " + count + " of " + N + ' tokens admitted" style="background:' + colour(f) + ";color:" + ink(f) + '">' + f.toFixed(3) + "</td>";
    }
    rows.push(row + "</tr>");
  }
  table.innerHTML = rows.join("");

  var kv = d.kvBytes, share = kv.resident / Math.max(1, kv.fullAttention);
  document.getElementById("memory").innerHTML =
    '<h2>KV memory</h2><div>resident <b id="kv-resident">' + mib(kv.resident) + "</b> (peak " + mib(kv.peak) + ") against <b id=\\"kv-full\\">" + mib(kv.fullAttention) + "</b> under full attention: " +
    '<b id="kv-share">' + (share * 100).toFixed(1) + "%</b></div>" +
    '<div class="bar"><div style="width:' + Math.min(100, share * 100).toFixed(1) + '%"></div></div>' +
    '<div>admitted fraction overall: <b id="admitted-overall">' + (total / (N * P)).toFixed(3) + "</b> of " + N * P + " (layer, KV head, token) entries</div>";

  var legend = document.getElementById("legend");
  legend.innerHTML = "0 pairs " + [0, 0.25, 0.5, 0.75, 1].map(function (f) { return '<i style="background:' + colour(f) + '"></i>'; }).join("") + " all " + P;

  var box = document.getElementById("tokens"), frag = document.createDocumentFragment();
  for (var t = 0; t < N; t++) {
    var s = document.createElement("span"), fr = perToken[t] / P;
    s.textContent = d.tokens[t];
    s.dataset.pos = t;
    s.dataset.count = perToken[t];
    s.style.background = colour(fr);
    s.style.color = ink(fr);
    frag.appendChild(s);
  }
  box.appendChild(frag);

  var selected = null;
  function show(pos) {
    var html = "<h2>Token " + pos + ": <code>" + JSON.stringify(d.tokens[pos]).replace(/</g, "&lt;") + "</code> (id " + d.ids[pos] + ")</h2>" +
      "<p>admitted by " + perToken[pos] + " of " + P + " pairs" + (N - pos <= d.window ? "; still inside the local window at the prompt's end" : "") + '</p><table id="scores"><tr><th></th>';
    for (var h = 0; h < H; h++) html += "<th>head " + h + "</th>";
    html += "</tr>";
    for (var l = 0; l < L; l++) {
      html += "<tr><th>layer " + l + "</th>";
      for (var h3 = 0; h3 < H; h3++) {
        var inn = d.admitted[l][h3].charCodeAt(pos) === 49;
        html += '<td class="' + (inn ? "in" : "out") + '">' + d.scores[l][h3][pos].toFixed(4) + "</td>";
      }
      html += "</tr>";
    }
    document.getElementById("detail").innerHTML = html + "</table><p class=\\"hint\\">bold: score &gt; tau " + d.tau + " (admitted)</p>";
  }
  box.addEventListener("mouseover", function (e) { if (e.target.dataset && e.target.dataset.pos && !selected) show(+e.target.dataset.pos); });
  box.addEventListener("click", function (e) {
    if (!e.target.dataset || !e.target.dataset.pos) return;
    if (selected) selected.classList.remove("sel");
    selected = selected === e.target ? null : e.target;
    if (selected) { selected.classList.add("sel"); show(+selected.dataset.pos); }
  });
})();
`;
