// hamnet report: every number comes from the JSON inlined above; no network is used.
"use strict";
const DATA = JSON.parse(document.getElementById("report-data").textContent);
const SVG_NS = "http://www.w3.org/2000/svg";
const ERROR_COLOURS = {true_positive: "#2ca02c", double_detection: "#9467bd", wrong_label: "#d62728",
  localization: "#ff7f0e", confusion: "#8c564b", background: "#7f7f7f"};
const state = {tiouIndex: 0, video: null, sortKey: "ap", sortDescending: true, showAll: false};
const TABLE_ROWS = 300;  // rows drawn until "show all" (the sort always covers every video)

function el(tag, attrs, parent, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}
function html(tag, attrs, parent, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}
function pct(value, digits) { return value === null || value === undefined ? "n/a" : (100 * value).toFixed(digits === undefined ? 1 : digits); }
function fmt(value) { return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(3))); }
function tiouLabel(t) { return String(Math.round(t * 100) / 100); }
function decodeBytes(text) {
  const raw = atob(text);
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i) / 255;
  return out;
}
function niceTicks(low, high, count, minStep) {
  const span = high - low || 1;
  const step0 = span / count, power = Math.pow(10, Math.floor(Math.log10(step0)));
  const nice = [1, 2, 5, 10].map(m => m * power).find(s => span / s <= count) || power * 10;
  const step = Math.max(nice, minStep || 0);
  const ticks = [];
  for (let v = Math.ceil(low / step) * step; v <= high + 1e-9; v += step) ticks.push(Math.round(v / step) * step);
  return ticks;
}

// --- generic charts -------------------------------------------------------------------
// ticks from 0 (or low) to the first tick at or above the highest value: the axis ends on a tick
function ticksCovering(low, high, count) {
  const ticks = niceTicks(low, Math.max(high, low + 1e-6), count);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  if (ticks[ticks.length - 1] < high) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}
function lineChart(container, spec) {
  container.innerHTML = "";
  const width = 520, height = 300, m = {l: 52, r: 130, t: 24, b: 40};
  const svg = el("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "font-size": 12}, container);
  el("text", {x: m.l, y: 15, "font-weight": "bold"}, svg, spec.title);
  const xs = spec.series.flatMap(s => s.x), ys = spec.series.flatMap(s => s.y).filter(v => v !== null);
  if (!xs.length || !ys.length) { el("text", {x: m.l, y: 60}, svg, "no data"); return svg; }
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const y0 = spec.ymin !== undefined ? spec.ymin : Math.min(...ys);
  const yticks = ticksCovering(y0, Math.max(...ys), 5);
  const y1 = Math.max(yticks[yticks.length - 1], y0 + 1e-6);
  const sx = v => m.l + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (width - m.l - m.r);
  const sy = v => height - m.b - (v - y0) / (y1 - y0) * (height - m.t - m.b);
  axes(svg, sx, sy, niceTicks(x0, x1, 6, spec.xstep), yticks, spec, width, height, m);
  spec.series.forEach((s, k) => {
    const points = s.x.map((x, i) => [x, s.y[i]]).filter(p => p[1] !== null);
    el("polyline", {points: points.map(p => `${sx(p[0])},${sy(p[1])}`).join(" "), fill: "none",
      stroke: s.colour, "stroke-width": 1.6}, svg);
    for (const [x, y] of points) {
      const dot = el("circle", {cx: sx(x), cy: sy(y), r: 2.5, fill: s.colour}, svg);
      el("title", {}, dot, `${s.name}: ${spec.xlabel} ${fmt(x)} -> ${fmt(y)}`);
    }
    el("rect", {x: width - m.r + 10, y: m.t + 14 * k, width: 10, height: 10, fill: s.colour}, svg);
    el("text", {x: width - m.r + 24, y: m.t + 9 + 14 * k, "font-size": 11}, svg, s.name);
  });
  return svg;
}
function axes(svg, sx, sy, xticks, yticks, spec, width, height, m) {
  el("line", {x1: m.l, y1: height - m.b, x2: width - m.r, y2: height - m.b, stroke: "#333"}, svg);
  el("line", {x1: m.l, y1: m.t, x2: m.l, y2: height - m.b, stroke: "#333"}, svg);
  for (const t of xticks) {
    el("line", {x1: sx(t), x2: sx(t), y1: height - m.b, y2: height - m.b + 4, stroke: "#333"}, svg);
    el("text", {x: sx(t), y: height - m.b + 16, "text-anchor": "middle", "font-size": 11, class: "xtick"}, svg, fmt(t));
  }
  for (const t of yticks) {
    el("line", {x1: m.l, x2: width - m.r, y1: sy(t), y2: sy(t), stroke: "#eee"}, svg);
    el("text", {x: m.l - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 11, class: "ytick"}, svg, fmt(t));
  }
  el("text", {x: (m.l + width - m.r) / 2, y: height - 6, "text-anchor": "middle"}, svg, spec.xlabel);
  el("text", {x: 14, y: (m.t + height - m.b) / 2, transform: `rotate(-90 14 ${(m.t + height - m.b) / 2})`,
    "text-anchor": "middle"}, svg, spec.ylabel);
}
function barChart(container, spec) {
  container.innerHTML = "";
  const bars = spec.bars, width = Math.max(700, 26 * bars.length + 90), height = 300;
  const m = {l: 52, r: 10, t: 24, b: 90};
  const svg = el("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "font-size": 12}, container);
  if (width > 900) svg.style.width = `${width}px`;  // many classes: scroll, keep labels legible
  el("text", {x: m.l, y: 15, "font-weight": "bold"}, svg, spec.title);
  const yticks = ticksCovering(0, Math.max(0, ...bars.map(b => b.value)), 5);
  const top = yticks[yticks.length - 1];
  const sy = v => height - m.b - v / top * (height - m.t - m.b);
  const step = (width - m.l - m.r) / Math.max(bars.length, 1);
  for (const t of yticks) {
    el("line", {x1: m.l, x2: width - m.r, y1: sy(t), y2: sy(t), stroke: "#eee"}, svg);
    el("text", {x: m.l - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 11, class: "ytick"}, svg, fmt(t));
  }
  bars.forEach((b, i) => {
    const x = m.l + i * step + step * 0.1;
    const bar = el("rect", {x: x, y: sy(b.value), width: step * 0.8, height: sy(0) - sy(b.value), fill: b.colour}, svg);
    el("title", {}, bar, `${b.label}: ${b.value.toFixed(1)}`);
    const cx = x + step * 0.4, cy = height - m.b + 8;
    el("text", {x: cx, y: cy, transform: `rotate(-50 ${cx} ${cy})`, "text-anchor": "end", "font-size": 10}, svg, b.label);
  });
  el("line", {x1: m.l, y1: sy(0), x2: width - m.r, y2: sy(0), stroke: "#333"}, svg);
  el("text", {x: 14, y: (m.t + height - m.b) / 2, transform: `rotate(-90 14 ${(m.t + height - m.b) / 2})`,
    "text-anchor": "middle"}, svg, spec.ylabel);
}

// --- sections ----------------------------------------------------------------------------
function drawHeader() {
  document.getElementById("title").textContent = DATA.title;
  drawRunLine();
  const info = DATA.info || {};
  const parts = [`protocol: ${DATA.protocol_title}`];
  if (info.preset) parts.push(`preset ${info.preset}`);
  if (info.subset) parts.push(`subset ${info.subset}`);
  parts.push(`${DATA.videos.length} videos`);
  if (info.checkpoint) parts.push(`checkpoint ${info.checkpoint}`);
  document.getElementById("subtitle").textContent = parts.join(" · ");
  const select = document.getElementById("tiou-select");
  DATA.tiou.forEach((t, i) => html("option", {value: i}, select, tiouLabel(t)));
  const middle = DATA.tiou.findIndex(t => Math.abs(t - 0.5) < 1e-6);
  state.tiouIndex = middle >= 0 ? middle : 0;
  select.value = state.tiouIndex;
  select.addEventListener("change", () => { state.tiouIndex = Number(select.value); refresh(); });
}
function drawRunLine() {
  const run = DATA.run_summary || {}, parts = [];
  if (run.status) parts.push(`status: ${run.status}`);
  if (run.command) parts.push(`command: ${run.command}`);
  if (run.commit) parts.push(`commit ${run.commit.slice(0, 12)}`);
  document.getElementById("run-line").textContent = parts.join(" · ");
}
function drawResults() {
  const r = DATA.result, box = document.getElementById("results-table");
  const table = html("table", {id: "results-main"}, box);
  const head = html("tr", {}, html("thead", {}, table));
  html("th", {}, head, `mAP (%), ${DATA.protocol} protocol, tIoU`);
  r.tiou.forEach(t => html("th", {}, head, tiouLabel(t)));
  html("th", {}, head, "AVG");
  if (r.classification_mAP !== null && r.classification_mAP !== undefined) html("th", {}, head, "classification mAP");
  const row = html("tr", {}, html("tbody", {}, table));
  html("td", {}, row, (DATA.run_summary || {}).method || DATA.run);
  r.mAP.forEach(v => html("td", {}, row, pct(v)));
  html("td", {}, row, pct(r.average_mAP));
  if (r.classification_mAP !== null && r.classification_mAP !== undefined) html("td", {}, row, pct(r.classification_mAP));
  lineChart(document.getElementById("map-chart"), {title: "mAP against tIoU", xlabel: "tIoU", ylabel: "mAP (%)", ymin: 0,
    series: [{name: "mAP", x: r.tiou, y: r.mAP.map(v => 100 * v), colour: "#1f77b4"}]});
}
function drawPerClass() {
  const r = DATA.result, t = state.tiouIndex;
  const names = Object.keys(r.per_class || {});
  const bars = names.map(name => ({label: name, value: 100 * r.per_class[name][t],
    colour: DATA.colours[DATA.classes.indexOf(name)] || "#888"}));
  barChart(document.getElementById("class-chart"), {title: `AP per class at tIoU ${tiouLabel(DATA.tiou[t])}`, ylabel: "AP (%)", bars});
}
function drawTraining() {
  const rows = DATA.metrics;
  const epochs = rows.map(r => r.epoch);
  const lossKeys = [...new Set(rows.flatMap(r => Object.keys(r)))].filter(k => k.startsWith("loss_"));
  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  lineChart(document.getElementById("loss-chart"), {title: "losses per epoch (mean over steps)", xlabel: "epoch", xstep: 1, ylabel: "loss",
    series: lossKeys.map((k, i) => ({name: k.slice(5), x: epochs, y: rows.map(r => k in r ? r[k] : null), colour: palette[i % 10]}))});
  const evals = rows.filter(r => "average_mAP" in r);
  lineChart(document.getElementById("eval-chart"), {title: "evaluations", xlabel: "epoch", xstep: 1, ylabel: "%", ymin: 0,
    series: [
      {name: "average mAP", x: evals.map(r => r.epoch), y: evals.map(r => 100 * r.average_mAP), colour: "#1f77b4"},
      {name: "classification mAP", x: evals.map(r => r.epoch), y: evals.map(r => "classification_mAP" in r ? 100 * r.classification_mAP : null), colour: "#ff7f0e"},
    ]});
}
function drawDiagnosis() {
  const box = document.getElementById("diagnosis-body");
  if (!DATA.diagnosis) { box.textContent = "no diagnosis"; return; }
  const d = DATA.diagnosis.summary, fp = d.false_positive;
  const p = html("p", {}, box);
  p.textContent = `bins: ${d.bins}; tIoU ${d.tiou.map(tiouLabel).join(", ")}; ` +
    `${d.ground_truth.instances_kept} of ${d.ground_truth.instances} instances kept; N-bar ${d.ground_truth.average_instances_per_class.toFixed(2)}; ` +
    `average-mAP_N ${pct(fp.average_mAP_N)} (top ${fp.limit_factor}G), missed ${pct(d.false_negative.missed_fraction)}%`;
  const table = html("table", {id: "error-table"}, box);
  const head = html("tr", {}, table);
  ["error type", "share of top-10G detections (%)", "average-mAP_N gain if removed (points)"].forEach(h => html("th", {}, head, h));
  for (const [name, share] of Object.entries(fp.fractions.avg)) {
    const row = html("tr", {}, table);
    const cell = html("td", {}, row);
    html("span", {}, cell, "■ ").style.color = ERROR_COLOURS[name];  // CSSOM: allowed by the CSP
    cell.appendChild(document.createTextNode(name.replace("_", " ")));
    html("td", {}, row, pct(share));
    html("td", {}, row, name in fp.average_mAP_N_gain ? pct(fp.average_mAP_N_gain[name], 2) : "");
  }
  for (const [stem, uri] of Object.entries(DATA.diagnosis.charts)) html("img", {src: uri, alt: stem.replace("_", " ")}, box);
}

// --- the video browser ---------------------------------------------------------------------
function drawVideoSelect() {
  const select = document.getElementById("video-select");
  const order = DATA.videos.map((v, i) => i).sort((a, b) => DATA.videos[a].n < DATA.videos[b].n ? -1 : 1);
  const fragment = document.createDocumentFragment();
  for (const i of order) html("option", {value: i}, fragment, DATA.videos[i].n);
  select.appendChild(fragment);
  select.addEventListener("change", () => selectVideo(Number(select.value)));
}
function selectVideo(index) {
  state.video = index;
  document.getElementById("video-select").value = index;
  for (const row of document.querySelectorAll("#video-table tbody tr"))
    row.classList.toggle("selected", Number(row.dataset.index) === index);
  drawTimeline();
}
function drawTimeline() {
  const svg = document.getElementById("timeline");
  svg.innerHTML = "";
  if (state.video === null) return;
  const v = DATA.videos[state.video], t = state.tiouIndex, bit = 1 << t;
  const width = 1000, m = {l: 120, r: 20};
  const lanes = packLanes(v.p);
  const rowHeight = 14, gtTop = 10, gtHeight = 22, detTop = gtTop + gtHeight + 16;
  const laneTops = [];
  let y0 = detTop;
  for (const lane of lanes) { laneTops.push(y0); y0 += lane.rows * rowHeight + 4; }
  const sigTop = y0 + 28, sigHeight = 130;
  const height = sigTop + sigHeight + 40;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const end = Math.max(v.d, ...v.p.map(p => p[1]), ...v.g.map(g => g[1]));
  const sx = s => m.l + s / end * (width - m.l - m.r);
  document.getElementById("video-summary").textContent =
    ` ${v.g.length} ground-truth instances, ${v.nd} detections (${v.p.length} best drawn), ` +
    `${v.tp[t]} true positives and ${v.miss[t]} misses at tIoU ${tiouLabel(DATA.tiou[t])}`;
  el("text", {x: m.l - 8, y: gtTop + 15, "text-anchor": "end"}, svg, "ground truth");
  for (const [s, e, c] of v.g) {
    const r = el("rect", {x: sx(s), y: gtTop, width: Math.max(sx(e) - sx(s), 1), height: gtHeight, fill: DATA.colours[c], class: "gt"}, svg);
    el("title", {}, r, `${DATA.classes[c]} [${s.toFixed(1)}, ${e.toFixed(1)}] s`);
    const room = Math.floor((sx(e) - sx(s) - 6) / 7), name = DATA.classes[c];  // ~7 px a letter
    if (room >= 3) el("text", {x: sx(s) + 3, y: gtTop + 15, "font-size": 11, "pointer-events": "none",
      class: "gt-label"}, svg, name.length <= room ? name : `${name.slice(0, room - 1)}…`);
  }
  const scores = v.p.map(p => p[3]), low = Math.min(...scores), high = Math.max(...scores);
  lanes.forEach((lane, k) => {
    el("text", {x: m.l - 8, y: laneTops[k] + 11, "text-anchor": "end", "font-size": 11}, svg, `${DATA.classes[lane.cls]}`);
    for (const [p, row, crowded] of lane.items) {
      const [s, e, c, score, mask] = p, y = laneTops[k] + row * rowHeight, hit = (mask & bit) !== 0;
      const opacity = high > low ? 0.25 + 0.75 * (score - low) / (high - low) : 1;
      const r = el("rect", {x: sx(s), y: y + 1, width: Math.max(sx(e) - sx(s), 1), height: rowHeight - 2,
        fill: DATA.colours[c], "fill-opacity": opacity.toFixed(2), stroke: hit ? "#1a7f1a" : "#c62828",
        "stroke-width": 1.5, "stroke-dasharray": hit ? "" : "4 2", class: hit ? "det tp" : "det fp"}, svg);
      el("title", {}, r, `${DATA.classes[c]} score ${score} [${s}, ${e}] s: ${hit ? "true" : "false"} positive at tIoU ${tiouLabel(DATA.tiou[t])}`);
      if (!crowded && sx(e) - sx(s) > 30) el("text", {x: sx(s) + 3, y: y + 11, "font-size": 10}, svg, score.toPrecision(2));
    }
  });
  drawSignals(svg, v, sx, sigTop, sigHeight, width, m);
  const axisY = sigTop + sigHeight;
  el("line", {x1: m.l, x2: width - m.r, y1: axisY, y2: axisY, stroke: "#333"}, svg);
  for (const tick of niceTicks(0, end, 10)) {
    el("line", {x1: sx(tick), x2: sx(tick), y1: axisY, y2: axisY + 4, stroke: "#333"}, svg);
    el("text", {x: sx(tick), y: axisY + 16, "text-anchor": "middle", "font-size": 11}, svg, fmt(tick));
  }
  el("text", {x: (m.l + width) / 2, y: axisY + 32, "text-anchor": "middle"}, svg,
    "time (s) · detections: fill opacity = score (within the video), solid green edge = true positive, dashed red = false positive");
  attachHover(svg, v, sx, end, width, m, sigTop, axisY);
}
// Detections of one class share a lane; overlapping ones go to separate rows (best first),
// so no bar or score label hides another.
function packLanes(detections) {
  const MAX_ROWS = 8, lanes = new Map();
  const order = detections.slice().sort((a, b) => b[3] - a[3]);
  for (const p of order) {
    if (!lanes.has(p[2])) lanes.set(p[2], {cls: p[2], ends: [], items: []});
    const lane = lanes.get(p[2]);
    let row = lane.ends.findIndex(intervals => intervals.every(([s, e]) => p[1] <= s || p[0] >= e));
    if (row < 0) { row = Math.min(lane.ends.length, MAX_ROWS - 1); if (row === lane.ends.length) lane.ends.push([]); }
    lane.ends[row].push([p[0], p[1]]);
    lane.items.push([p, row, lane.ends[row].length > 1 && row === MAX_ROWS - 1]);
  }
  return [...lanes.values()].map(lane => ({cls: lane.cls, rows: Math.max(lane.ends.length, 1), items: lane.items}));
}
function drawSignals(svg, v, sx, top, height, width, m) {
  const sy = value => top + height - value * height;
  el("text", {x: m.l - 8, y: top + height / 4 + 5, "text-anchor": "end"}, svg, "attention, T-CAS");  // clear of the ticks
  el("rect", {x: m.l, y: top, width: width - m.l - m.r, height: height, fill: "none", stroke: "#ddd", class: "signal-panel"}, svg);
  if (!v.a) { el("text", {x: m.l + 8, y: top + 20}, svg, "no saved T-CAS for this video"); return; }
  for (const tick of [0, 0.5, 1]) {
    el("line", {x1: m.l - 4, x2: m.l, y1: sy(tick), y2: sy(tick), stroke: "#333"}, svg);
    el("text", {x: m.l - 6, y: sy(tick) + 4, "text-anchor": "end", "font-size": 11, class: "sig-tick"}, svg, fmt(tick));
  }
  const thresholds = (DATA.run_summary || {}).thresholds || [];
  for (const level of thresholds) {
    const line = el("line", {x1: m.l, x2: width - m.r, y1: sy(level), y2: sy(level), stroke: "#1f77b4",
      "stroke-opacity": 0.6, "stroke-dasharray": "1 3", class: "threshold"}, svg);
    el("title", {}, line, `localization threshold ${fmt(level)}`);
  }
  v._signals = v._signals || {a: decodeBytes(v.a), c: v.c.map(([c, b]) => [c, decodeBytes(b)])};
  const line = (values, colour, dash) => {
    const pts = Array.from(values, (y, i) => `${sx((i + 0.5) * v.s).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    el("polyline", {points: pts, fill: "none", stroke: colour, "stroke-width": 1.4, "stroke-dasharray": dash || ""}, svg);
  };
  line(v._signals.a, "#000");
  for (const [c, values] of v._signals.c) line(values, DATA.colours[c], "5 2");
  // the legend sits above the panel, in one line, never over the curves
  let x = m.l;
  const legend = (text, colour) => { el("text", {x: x, y: top - 6, "font-size": 11, fill: colour}, svg, text); x += 6 * text.length + 18; };
  legend("— attention", "#000");
  for (const [c] of v._signals.c) legend(`- - T-CAS ${DATA.classes[c]}`, DATA.colours[c]);
  if (thresholds.length) legend(`··· localization thresholds (${thresholds.length})`, "#1f77b4");
  legend("(T-CAS: softmax probability)", "#666");
}
function attachHover(svg, v, sx, end, width, m, top, bottom) {
  const tip = document.getElementById("tooltip");
  const cursor = el("line", {x1: 0, x2: 0, y1: 0, y2: bottom, stroke: "#555", "stroke-dasharray": "2 2", visibility: "hidden"}, svg);
  svg.onmousemove = event => {
    const box = svg.getBoundingClientRect(), scale = width / box.width;
    const x = (event.clientX - box.left) * scale;
    if (x < m.l || x > width - m.r) { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); return; }
    const time = (x - m.l) / (width - m.l - m.r) * end;
    cursor.setAttribute("x1", x); cursor.setAttribute("x2", x); cursor.setAttribute("visibility", "visible");
    const lines = [`t = ${time.toFixed(1)} s`];
    if (v._signals) {
      const i = Math.min(Math.floor(time / v.s), v._signals.a.length - 1);
      if (i >= 0) {
        lines.push(`attention ${v._signals.a[i].toFixed(2)}`);
        for (const [c, values] of v._signals.c) lines.push(`T-CAS ${DATA.classes[c]} ${values[i].toFixed(2)}`);
      }
    }
    tip.textContent = "";
    lines.forEach((text, k) => { if (k) tip.appendChild(document.createElement("br")); tip.appendChild(document.createTextNode(text)); });
    tip.style.display = "block";
    tip.style.left = `${event.clientX - box.left + 12}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
  };
  svg.onmouseleave = () => { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); };
}

// --- the per-video table ---------------------------------------------------------------------
const COLUMNS = [
  {key: "n", title: "video", value: v => v.n},
  {key: "d", title: "duration (s)", value: v => v.d},
  {key: "g", title: "instances", value: v => v.g.length},
  {key: "nd", title: "detections", value: v => v.nd},
  {key: "tp", title: "true positives", value: v => v.tp[state.tiouIndex]},
  {key: "miss", title: "misses", value: v => v.miss[state.tiouIndex]},
  {key: "ap", title: "AP share (mAP points)", value: v => v.ap[state.tiouIndex], show: x => (100 * x).toFixed(3)},
];
function drawVideoTable() {
  const table = document.getElementById("video-table");
  const column = COLUMNS.find(c => c.key === state.sortKey);
  const order = DATA.videos.map((v, i) => i);
  order.sort((a, b) => {
    const x = column.value(DATA.videos[a]), y = column.value(DATA.videos[b]);
    return (x < y ? -1 : x > y ? 1 : 0) * (state.sortDescending ? -1 : 1);
  });
  const arrow = key => key === state.sortKey ? (state.sortDescending ? " ▼" : " ▲") : "";
  const head = "<thead><tr>" + COLUMNS.map(c => `<th data-key="${c.key}">${c.title}${arrow(c.key)}</th>`).join("") + "</tr></thead>";
  const escape = text => String(text).replace(/[&<>"]/g, ch => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[ch]));
  const shown = state.showAll ? order : order.slice(0, TABLE_ROWS);
  const body = shown.map(i => {
    const v = DATA.videos[i], cls = i === state.video ? " class=\"selected\"" : "";
    return `<tr data-index="${i}"${cls}>` + COLUMNS.map(c => `<td>${escape(c.show ? c.show(c.value(v)) : c.value(v))}</td>`).join("") + "</tr>";
  }).join("");
  table.innerHTML = head + "<tbody>" + body + "</tbody>";
  const more = document.getElementById("table-more");
  more.textContent = shown.length < order.length ? `showing the first ${shown.length} of ${order.length} videos ` : "";
  if (shown.length < order.length) {
    const button = html("button", {type: "button", id: "show-all"}, more, "show all");
    button.addEventListener("click", () => { state.showAll = true; drawVideoTable(); });
  }
}
function attachTableEvents() {
  const table = document.getElementById("video-table");
  table.addEventListener("click", event => {
    const th = event.target.closest("th");
    if (th) {
      const key = th.dataset.key;
      state.sortDescending = key === state.sortKey ? !state.sortDescending : key !== "n";
      state.sortKey = key;
      drawVideoTable();
      return;
    }
    const tr = event.target.closest("tbody tr");
    if (tr) selectVideo(Number(tr.dataset.index));
  });
}
function refresh() { drawPerClass(); drawVideoTable(); drawTimeline(); }

drawHeader();
drawResults();
drawTraining();
drawDiagnosis();
drawVideoSelect();
attachTableEvents();
drawPerClass();
drawVideoTable();
if (DATA.videos.length) {
  let first = 0;
  DATA.videos.forEach((v, i) => { if (v.g.length > DATA.videos[first].g.length) first = i; });
  selectVideo(first);
}
