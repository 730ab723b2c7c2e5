// SVG drawings: the causal diagram, the outcome histogram, the tornado chart.

import { edgeKey, layout } from './dag.js';

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function text(parent, x, y, content, attrs = {}) {
  const t = el('text', { x, y, ...attrs }, parent);
  t.textContent = content;
  return t;
}

/** A number for display: four significant digits, exponent form for very large or small. */
export function fmt(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

function clear(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
}

function markers(svg) {
  const defs = el('defs', {}, svg);
  for (const kind of ['plain', 'causal', 'backdoor']) {
    const m = el('marker', { id: `arrow-${kind}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: `arrowhead ${kind}` }, m);
  }
}

/** Where the segment from the centre of a w×h box at (x, y) towards (tx, ty) leaves the box. */
function boxExit(x, y, w, h, tx, ty) {
  const dx = tx - x;
  const dy = ty - y;
  if (dx === 0 && dy === 0) return { x, y };
  const t = Math.min(dx === 0 ? Infinity : w / 2 / Math.abs(dx), dy === 0 ? Infinity : h / 2 / Math.abs(dy));
  return { x: x + dx * t, y: y + dy * t };
}

/**
 * Draws the diagram `g` (from dag.js) into `svg`. `hidden` maps the latent causes behind `<->`
 * to their pairs; `paths` is analysePaths' result (or null); `sets` has `treatment`, `outcome`,
 * `adjusted` (arrays); `onNode(name)` is called when a node is clicked. Returns false (drawing
 * nothing) past `maxNodes`.
 */
export function drawDag(svg, g, hidden, paths, sets, onNode, maxNodes = 400) {
  clear(svg);
  const drawn = g.nodes.length;
  if (drawn > maxNodes) {
    svg.setAttribute('viewBox', '0 0 600 60');
    text(svg, 20, 35, `${drawn} nodes: too many to draw (the validation still runs).`, { class: 'note' });
    return false;
  }
  const skip = new Set(hidden.keys());
  const allEdges = [...g.edges];
  const lay = layout(g.nodes, allEdges, skip);
  const { positions } = lay;
  const size = (n) => ({ w: Math.max(44, 8 * n.length + 22), h: 30 });
  const pad = 30;
  const widest = Math.max(0, ...g.nodes.map((n) => size(n).w));
  svg.setAttribute('viewBox', `${-widest / 2 + 40} -10 ${lay.width + widest} ${lay.height + pad + 20}`);
  markers(svg);

  // Edges on open back-door paths (service graph, latent causes included) and causal edges.
  const openKeys = new Set();
  for (const p of paths ? paths.openBackdoor : []) {
    for (let i = 0; i + 1 < p.nodes.length; i++) {
      const [a, b] = p.forward[i] ? [p.nodes[i], p.nodes[i + 1]] : [p.nodes[i + 1], p.nodes[i]];
      openKeys.add(edgeKey(a, b));
    }
  }
  const causal = paths ? paths.causalEdges : new Set();
  const edgeLayer = el('g', { class: 'edges' }, svg);
  const nodeLayer = el('g', { class: 'nodes' }, svg);

  const curve = (a, b, bend, cls, attrs) => {
    const pa = positions.get(a);
    const pb = positions.get(b);
    const mx = (pa.x + pb.x) / 2;
    const my = (pa.y + pb.y) / 2;
    const len = Math.hypot(pb.x - pa.x, pb.y - pa.y) || 1;
    const cx = mx - ((pb.y - pa.y) / len) * bend;
    const cy = my + ((pb.x - pa.x) / len) * bend;
    const sa = size(a);
    const sb = size(b);
    const s = boxExit(pa.x, pa.y, sa.w + 6, sa.h + 6, cx, cy);
    const e = boxExit(pb.x, pb.y, sb.w + 6, sb.h + 6, cx, cy);
    return el('path', { d: `M ${s.x} ${s.y} Q ${cx} ${cy} ${e.x} ${e.y}`, class: cls, ...attrs }, edgeLayer);
  };

  g.edges.forEach(([a, b], index) => {
    if (!positions.has(a) || !positions.has(b)) return;
    const key = edgeKey(a, b);
    const kind = openKeys.has(key) ? 'backdoor' : causal.has(key) ? 'causal' : 'plain';
    const cls = `edge ${kind === 'backdoor' ? 'backdoor-open' : kind}${lay.reversed.has(key) ? ' cycle' : ''}`;
    if (a === b) {
      const p = positions.get(a);
      const h = size(a).h / 2;
      el('path', { d: `M ${p.x - 8} ${p.y - h} C ${p.x - 30} ${p.y - h - 40} ${p.x + 30} ${p.y - h - 40} ${p.x + 8} ${p.y - h - 2}`, class: cls, 'marker-end': `url(#arrow-${kind})`, 'data-from': a, 'data-to': b }, edgeLayer);
      return;
    }
    // Edges within a layer or across several bend (alternately up and down) around the nodes
    // between their ends.
    const span = Math.abs(positions.get(a).layer - positions.get(b).layer);
    const side = index % 2 === 0 ? 1 : -1;
    const bend = span === 0 ? 40 : span > 1 ? side * (25 + 12 * span) : 0;
    curve(a, b, bend, cls, { 'marker-end': `url(#arrow-${kind})`, 'data-from': a, 'data-to': b });
  });
  for (const [u, [a, b]] of hidden) {
    if (!positions.has(a) || !positions.has(b)) continue;
    const open = openKeys.has(edgeKey(u, a)) && openKeys.has(edgeKey(u, b));
    const kind = open ? 'backdoor' : 'plain';
    curve(a, b, -45, `edge bidirected${open ? ' backdoor-open' : ''}`, {
      'marker-start': `url(#arrow-${kind})`,
      'marker-end': `url(#arrow-${kind})`,
      'data-from': a,
      'data-to': b,
      'data-latent': u,
    });
  }
  for (const n of g.nodes) {
    const p = positions.get(n);
    if (!p) continue;
    const { w, h } = size(n);
    const classes = ['node'];
    if (sets.treatment.includes(n)) classes.push('treatment');
    if (sets.outcome.includes(n)) classes.push('outcome');
    if (sets.adjusted.includes(n)) classes.push('adjusted');
    if (g.latent.includes(n)) classes.push('latent');
    const group = el('g', { class: classes.join(' '), 'data-node': n, transform: `translate(${p.x} ${p.y})` }, nodeLayer);
    el('rect', { x: -w / 2, y: -h / 2, width: w, height: h, rx: 8 }, group);
    text(group, 0, 5, n, { 'text-anchor': 'middle' });
    const title = el('title', {}, group);
    title.textContent = `${n}: click to ${sets.adjusted.includes(n) ? 'stop adjusting for it' : 'adjust for it'}`;
    group.addEventListener('click', () => onNode(n));
  }
  return true;
}

/**
 * Draws a counterfactual's histogram (`hist` from the engine) with its quantiles and mean
 * (`answer`, the response body).
 */
export function drawHistogram(svg, hist, answer) {
  clear(svg);
  const W = 560;
  const H = 230;
  const left = 40;
  const right = 16;
  const top = 16;
  const bottom = 46;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const innerW = W - left - right;
  const innerH = H - top - bottom;
  const peak = Math.max(...hist.counts, 1e-12);
  const span = hist.hi - hist.lo || 1;
  const xOf = (v) => left + ((v - hist.lo) / span) * innerW;
  const bw = innerW / hist.counts.length;
  const bars = el('g', { class: 'bars' }, svg);
  hist.counts.forEach((c, i) => {
    const h = (c / peak) * innerH;
    el('rect', { x: left + i * bw + 0.5, y: top + innerH - h, width: Math.max(0.5, bw - 1), height: h, class: 'bar' }, bars);
  });
  el('line', { x1: left, y1: top + innerH, x2: W - right, y2: top + innerH, class: 'axis' }, svg);
  for (let i = 0; i <= 4; i++) {
    const v = hist.lo + (span * i) / 4;
    const x = xOf(v);
    el('line', { x1: x, y1: top + innerH, x2: x, y2: top + innerH + 4, class: 'axis' }, svg);
    text(svg, x, top + innerH + 16, fmt(v), { 'text-anchor': 'middle', class: 'tick' });
  }
  const marks = el('g', { class: 'marks' }, svg);
  const quantiles = Object.entries(answer.quantiles || {}).sort((a, b) => Number(a[0]) - Number(b[0]));
  quantiles.forEach(([q, v], i) => {
    if (!(v >= hist.lo && v <= hist.hi)) return;
    const x = xOf(v);
    el('line', { x1: x, y1: top, x2: x, y2: top + innerH, class: 'quantile' }, marks);
    text(marks, x + 3, top + 10 + (i % 3) * 11, `q${q}`, { class: 'qlabel' });
  });
  if (answer.mean >= hist.lo && answer.mean <= hist.hi) {
    const x = xOf(answer.mean);
    el('line', { x1: x, y1: top, x2: x, y2: top + innerH, class: 'mean' }, marks);
  }
  const tails = hist.below + hist.above > 0 ? `, ${fmt(100 * (hist.below + hist.above))}% outside the range shown` : '';
  const from = hist.recorded < hist.samplesUsed ? `the first ${hist.recorded.toLocaleString('en')} of ` : '';
  text(svg, left, H - 8, `${answer.outcome}: ${from}${hist.samplesUsed.toLocaleString('en')} samples${tails}. Solid line: mean; dashed: quantiles.`, { class: 'caption' });
}

/** Draws the tornado chart of a sensitivity answer (the response body). */
export function drawTornado(svg, sens, maxRows = 10) {
  clear(svg);
  const drivers = (sens.drivers || []).slice(0, maxRows);
  const W = 560;
  const row = 26;
  const top = 22;
  const labelW = 160;
  const right = 130;
  const H = top + Math.max(1, drivers.length) * row + 34;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  if (drivers.length === 0) {
    text(svg, 10, 40, 'No uncertain input reaches the outcome.', { class: 'note' });
    return;
  }
  let lo = sens.base;
  let hi = sens.base;
  for (const d of drivers) {
    lo = Math.min(lo, d.low, d.high);
    hi = Math.max(hi, d.low, d.high);
  }
  const span = hi - lo || 1;
  const innerW = W - labelW - right;
  const xOf = (v) => labelW + ((v - lo) / span) * innerW;
  text(svg, labelW, 14, 'input at its 5th percentile', { class: 'legend low' });
  text(svg, W - right, 14, 'at its 95th', { class: 'legend high', 'text-anchor': 'end' });
  drivers.forEach((d, i) => {
    const y = top + i * row;
    const g = el('g', { class: 'driver', 'data-input': d.input }, svg);
    text(g, labelW - 8, y + 16, d.input, { 'text-anchor': 'end', class: 'label' });
    const base = xOf(sens.base);
    const seg = (v, cls) => {
      const x = xOf(v);
      el('rect', { x: Math.min(x, base), y: y + 4, width: Math.max(1, Math.abs(x - base)), height: row - 8, class: `bar ${cls}` }, g);
    };
    seg(d.low, 'low');
    seg(d.high, 'high');
    text(g, W - right + 6, y + 16, `±${fmt(d.swing / 2)} · ${(100 * d.variance_share).toFixed(1)}% var`, { class: 'value' });
  });
  const bx = xOf(sens.base);
  el('line', { x1: bx, y1: top - 2, x2: bx, y2: top + drivers.length * row + 2, class: 'base' }, svg);
  text(svg, bx, top + drivers.length * row + 16, `base ${fmt(sens.base)}`, { 'text-anchor': 'middle', class: 'tick' });
}
