// The demo page: the diagram editor and its validation, the SCM panel, and the URL contract
// (`#route=<path>&q=<base64url JSON>`). Every answer comes from isl-service compiled to wasm,
// running in Web Workers (client.js, worker.js); this file only draws.

import { Cancelled, EngineWorker } from './client.js';
import { drawDag, drawHistogram, drawTornado, fmt } from './charts.js';
import * as dag from './dag.js';
import { SyntaxErrorAt, parseJson } from './json.js';

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Errors never escape to the console: anything unexpected is shown on the page.

function showPageError(message) {
  const p = $('page-error');
  p.textContent = `Something went wrong on this page: ${message}`;
  p.hidden = false;
}
window.addEventListener('error', (event) => {
  event.preventDefault();
  showPageError(event.message || String(event.error));
});
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  const r = event.reason;
  showPageError(r && r.message ? r.message : String(r));
});

/** Runs `f`, showing (not throwing) whatever it throws. */
function guard(f) {
  return (...args) => {
    try {
      const r = f(...args);
      if (r && typeof r.catch === 'function') r.catch((e) => showPageError(e && e.message ? e.message : String(e)));
    } catch (e) {
      showPageError(e && e.message ? e.message : String(e));
    }
  };
}

// ---------------------------------------------------------------------------------------------
// base64url of UTF-8 text (the `q` parameter).

export function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(s) {
  try {
    const bin = atob(decodeURIComponent(s).replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function contractLink(route, body) {
  return `#route=${route}&q=${base64url(body)}`;
}

// ---------------------------------------------------------------------------------------------
// Editors: a textarea over a backdrop that marks the error's line and column.

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

function offsetOf(text, line, column) {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) return text.length;
    offset = nl + 1;
  }
  return Math.min(text.length, offset + column - 1);
}

class Editor {
  constructor(textarea, marks, errorBox) {
    this.textarea = textarea;
    this.marks = marks;
    this.errorBox = errorBox;
    textarea.addEventListener('scroll', () => {
      marks.parentElement.scrollTop = textarea.scrollTop;
    });
  }

  clearError() {
    this.errorBox.hidden = true;
    this.errorBox.textContent = '';
    this.marks.innerHTML = '';
    delete this.errorBox.dataset.line;
    delete this.errorBox.dataset.column;
  }

  /** Shows `message` at `line`:`column` under the editor and marks the spot in the text. */
  showError(message, line, column) {
    const text = this.textarea.value;
    this.errorBox.hidden = false;
    this.errorBox.textContent = '';
    this.errorBox.dataset.line = String(line);
    this.errorBox.dataset.column = String(column);
    const where = document.createElement('a');
    where.href = '#';
    where.className = 'where';
    where.textContent = `line ${line}, column ${column}`;
    where.addEventListener('click', (event) => {
      event.preventDefault();
      const at = offsetOf(text, line, column);
      this.textarea.focus();
      this.textarea.setSelectionRange(at, Math.min(text.length, at + 1));
    });
    this.errorBox.append(where, document.createTextNode(`: ${message}`));
    const at = offsetOf(text, line, column);
    const lineStart = text.lastIndexOf('\n', at - 1) + 1;
    let lineEnd = text.indexOf('\n', at);
    if (lineEnd < 0) lineEnd = text.length;
    const marked = at < text.length && text[at] !== '\n' ? escapeHtml(text[at]) : ' ';
    const after = at < text.length && text[at] !== '\n' ? at + 1 : at;
    this.marks.innerHTML =
      escapeHtml(text.slice(0, lineStart)) +
      `<span class="line-error">${escapeHtml(text.slice(lineStart, at))}<mark>${marked}</mark>${escapeHtml(text.slice(after, lineEnd))}</span>` +
      escapeHtml(text.slice(lineEnd)) +
      '\n';
    this.marks.parentElement.scrollTop = this.textarea.scrollTop;
  }
}

function debounce(f, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}

function setOptions(select, names, wanted, withNone) {
  const previous = wanted ?? select.value;
  select.innerHTML = '';
  if (withNone) select.append(new Option('(none)', ''));
  for (const n of names) select.append(new Option(n, n));
  select.value = names.includes(previous) ? previous : withNone ? '' : (names[0] ?? '');
}

function showSets(dd, sets, { clickable = false, onPick = null, truncated = false } = {}) {
  dd.textContent = '';
  if (!sets || sets.length === 0) {
    dd.textContent = 'none';
    return;
  }
  for (const s of sets) {
    const label = `{${s.join(', ')}}`;
    const chip = document.createElement(clickable ? 'button' : 'span');
    chip.className = 'set';
    chip.textContent = s.length === 0 ? '{} (no adjustment needed)' : label;
    chip.dataset.set = JSON.stringify(s);
    if (clickable) {
      chip.type = 'button';
      chip.title = 'adjust for this set in the drawing';
      chip.addEventListener('click', guard(() => onPick(s)));
    }
    dd.append(chip);
  }
  if (truncated) dd.append(document.createTextNode(' (list cut at max_sets)'));
}

// ---------------------------------------------------------------------------------------------
// The page.

const EXAMPLES = {
  frontdoor: dag.FRONT_DOOR_EXAMPLE,
  backdoor: `dag {
  Drug [exposure]
  Recovery [outcome]
  Age -> Drug -> Recovery
  Age -> Severity -> Drug
  Severity -> Recovery
  Age -> Recovery
}`,
  instrument: `dag {
  X [exposure]
  Y [outcome]
  Z -> X -> Y
  X <-> Y
}`,
  mbias: `dag {
  X [exposure]
  Y [outcome]
  A -> M <- B
  A -> X -> Y
  B -> Y
}`,
};

const DEFAULT_MODEL = `{"nodes": [
  {"name": "Price", "noise": {"dist": "normal", "mean": 10, "std": 1}},
  {"name": "Marketing", "noise": {"dist": "uniform", "low": 5, "high": 15}},
  {"name": "Demand",
   "intercept": {"dist": "normal", "mean": 100, "std": 8},
   "parents": {"Price": {"dist": "normal", "mean": -4, "std": 0.8},
               "Marketing": {"dist": "triangular", "low": 0.5, "mode": 1.5, "high": 2}},
   "noise": {"dist": "normal", "mean": 0, "std": 5}},
  {"name": "UnitCost", "noise": {"dist": "lognormal", "mu": 1.6, "sigma": 0.2}},
  {"name": "Profit", "expr": "(Price - UnitCost) * Demand - 10 * Marketing"}
]}`;

const state = {
  causal: null, // worker for the diagram
  mc: null, // worker for Monte Carlo (restarted by Cancel)
  contract: null, // worker for URL-contract requests
  graph: null,
  hidden: new Map(),
  userAdjusted: [],
  validateSeq: 0,
  backdoorSeq: 0,
  contractSeq: 0,
  model: null,
  running: false,
};

function observedNodes(g) {
  return g.nodes.filter((n) => !g.latent.includes(n));
}

function currentSets() {
  const g = state.graph;
  const t = $('treatment').value;
  const o = $('outcome').value;
  const adjusted = [...new Set([...(g ? g.adjusted : []), ...state.userAdjusted])].filter((n) => g && g.nodes.includes(n));
  return { treatment: t ? [t] : [], outcome: o ? [o] : [], adjusted };
}

function redraw() {
  const g = state.graph;
  if (!g) return;
  const sets = currentSets();
  const { dag: serviceDag, hidden } = dag.toServiceDag(g);
  state.hidden = hidden;
  let paths = null;
  const summary = $('paths-summary');
  summary.textContent = '';
  if (sets.treatment.length === 1 && sets.outcome.length === 1) {
    paths = dag.analysePaths(serviceDag, sets.treatment[0], sets.outcome[0], sets.adjusted);
    const shown = (p) =>
      p.nodes
        .map((n, i) => {
          const name = hidden.has(n) ? `U(${hidden.get(n).join(',')})` : n;
          return i === 0 ? name : `${p.forward[i - 1] ? '→' : '←'} ${name}`;
        })
        .join(' ');
    const n = paths.openBackdoor.length;
    const given = sets.adjusted.length ? ` given {${sets.adjusted.join(', ')}}` : '';
    summary.textContent =
      n === 0
        ? `No open back-door path${given}.`
        : `${n}${paths.truncated ? '+' : ''} open back-door path${n === 1 ? '' : 's'}${given}: ${paths.openBackdoor.slice(0, 4).map(shown).join('; ')}${n > 4 ? '; …' : ''}`;
  }
  drawDag($('dag-svg'), g, hidden, paths, sets, guard(toggleAdjusted));
}

function toggleAdjusted(name) {
  const g = state.graph;
  if (!g || g.latent.includes(name)) return;
  if (state.userAdjusted.includes(name)) state.userAdjusted = state.userAdjusted.filter((n) => n !== name);
  else state.userAdjusted = [...state.userAdjusted, name];
  redraw();
  checkAdjustment();
}

async function checkAdjustment() {
  const sets = currentSets();
  const seq = ++state.backdoorSeq;
  const line = $('paths-summary');
  if (!state.graph || sets.adjusted.length === 0 || sets.treatment.length !== 1 || sets.outcome.length !== 1) return;
  const { dag: d } = dag.toServiceDag(state.graph);
  const body = JSON.stringify({ dag: d, treatment: sets.treatment[0], outcome: sets.outcome[0], adjustment: sets.adjusted });
  try {
    const ans = await state.causal.handle('POST', '/v1/causal/backdoor', null, 'application/json', body);
    if (seq !== state.backdoorSeq) return;
    const r = JSON.parse(ans.response.body);
    const verdict = document.createElement('span');
    verdict.id = 'adjustment-verdict';
    verdict.textContent =
      ans.response.status === 200
        ? ` Back-door criterion for {${sets.adjusted.join(', ')}}: ${r.valid ? 'satisfied' : 'not satisfied'}${r.reason ? ` (${r.reason})` : ''}.`
        : ` ${r.error ? r.error.message : ans.response.body}`;
    line.append(verdict);
  } catch (e) {
    if (!(e instanceof Cancelled)) line.append(document.createTextNode(` ${e.message}`));
  }
}

function showValidation(status, body, elapsedMs) {
  const err = $('validation-error');
  $('validation-time').textContent = `Computed in this page in ${elapsedMs.toFixed(1)} ms.`;
  let r;
  try {
    r = JSON.parse(body);
  } catch {
    r = null;
  }
  const fields = ['acyclic', 'cycle', 'identification', 'backdoor-sets', 'frontdoor-sets', 'instruments', 'warnings'];
  if (status !== 200 || !r) {
    err.hidden = false;
    err.textContent = r && r.error ? `${status} ${r.error.code}: ${r.error.message}` : `${status}: ${body}`;
    for (const f of fields) $(f).textContent = '—';
    return;
  }
  err.hidden = true;
  $('acyclic').textContent = r.acyclic ? 'yes' : 'no';
  $('cycle').textContent = r.cycle ? r.cycle.join(' → ') : '—';
  const id = r.identification;
  $('warnings').textContent = r.warnings.length ? r.warnings.join('; ') : '—';
  if (!id) {
    $('identification').textContent = r.acyclic ? 'choose a treatment and an outcome' : 'not with a cycle';
    for (const f of ['backdoor-sets', 'frontdoor-sets', 'instruments']) $(f).textContent = '—';
    return;
  }
  $('identification').textContent = id.identifiable ? `identifiable (${id.strategy === 'backdoor' ? 'back-door adjustment' : 'front-door'})` : 'not identifiable by the back-door or front-door criterion';
  showSets($('backdoor-sets'), id.backdoor_sets, {
    clickable: true,
    truncated: id.truncated,
    onPick: (set) => {
      state.userAdjusted = [...set];
      redraw();
      checkAdjustment();
    },
  });
  showSets($('frontdoor-sets'), id.frontdoor_sets);
  const inst = $('instruments');
  inst.textContent = '';
  if (!id.instruments || id.instruments.length === 0) inst.textContent = 'none';
  for (const i of id.instruments || []) {
    const chip = document.createElement('span');
    chip.className = 'set';
    chip.textContent = i;
    inst.append(chip);
  }
}

async function validate() {
  const g = state.graph;
  if (!g) return;
  const sets = currentSets();
  const req = dag.validateRequest(g, sets.treatment.length ? sets.treatment[0] : null, sets.outcome.length ? sets.outcome[0] : null);
  const body = JSON.stringify(req);
  $('validation-link').href = contractLink('/v1/causal/validate', body);
  const seq = ++state.validateSeq;
  // A validation still running after half a second is for an older text: start over.
  if (state.causal.busyMs() > 500) state.causal.restart();
  try {
    const ans = await state.causal.handle('POST', '/v1/causal/validate', null, 'application/json', body);
    if (seq !== state.validateSeq) return;
    showValidation(ans.response.status, ans.response.body, ans.elapsedMs);
    markReady();
  } catch (e) {
    if (e instanceof Cancelled || seq !== state.validateSeq) return;
    $('validation-error').hidden = false;
    $('validation-error').textContent = e.message;
  }
}

const dagEditor = () => state.dagEditor;

function onDagInput() {
  const text = $('dag-input').value;
  let g;
  try {
    g = dag.parseGraph(text);
  } catch (e) {
    if (e instanceof SyntaxErrorAt) dagEditor().showError(e.message, e.line, e.column);
    else dagEditor().showError(String(e && e.message ? e.message : e), 1, 1);
    return;
  }
  dagEditor().clearError();
  state.graph = g;
  const observed = observedNodes(g);
  setOptions($('treatment'), observed, g.treatment[0] ?? null, true);
  setOptions($('outcome'), observed, g.outcome[0] ?? null, true);
  redraw();
  validate();
  checkAdjustment();
}

// ---------------------------------------------------------------------------------------------
// The SCM panel.

function onModelInput() {
  const text = $('model-input').value;
  const editor = state.modelEditor;
  let parsed;
  try {
    parsed = parseJson(text);
  } catch (e) {
    editor.showError(e.message, e.line ?? 1, e.column ?? 1);
    state.model = null;
    $('run-button').disabled = true;
    return;
  }
  const { value, positions } = parsed;
  const at = (v) => (v && typeof v === 'object' && positions.get(v)) || { line: 1, column: 1 };
  const fail = (message, v) => {
    const p = at(v);
    editor.showError(message, p.line, p.column);
    state.model = null;
    $('run-button').disabled = true;
  };
  if (!value || typeof value !== 'object' || Array.isArray(value)) return fail('expected an object: {"nodes": [...]} or a counterfactual request', value);
  const request = 'model' in value ? value : null;
  const model = request ? request.model : value;
  if (!model || typeof model !== 'object' || !Array.isArray(model.nodes)) return fail('the model needs "nodes": a list of {"name": ...} objects', model);
  const names = [];
  for (const [i, n] of model.nodes.entries()) {
    if (!n || typeof n !== 'object' || typeof n.name !== 'string') return fail(`node ${i + 1} needs a "name"`, n && typeof n === 'object' ? n : model.nodes);
    names.push(n.name);
  }
  editor.clearError();
  state.model = model;
  let outcome = null;
  let node = null;
  if (request) {
    outcome = typeof request.outcome === 'string' ? request.outcome : null;
    const iv = request.intervention && typeof request.intervention === 'object' ? Object.entries(request.intervention) : [];
    if (iv.length > 0) {
      node = iv[0][0];
      $('intervention-value').value = String(iv[0][1]);
    }
    if (typeof request.samples === 'number') $('mc-samples').value = String(request.samples);
    if (typeof request.seed === 'number') $('mc-seed').value = String(request.seed);
    if (typeof request.threshold === 'number') $('mc-threshold').value = String(request.threshold);
  }
  setOptions($('mc-outcome'), names, outcome ?? (names.includes($('mc-outcome').value) ? null : names[names.length - 1]), false);
  setOptions($('intervention-node'), names, node ?? (state.modelLoaded ? null : names.includes('Price') ? 'Price' : null), true);
  state.modelLoaded = true;
  $('run-button').disabled = state.running || !state.mcReady;
}

function mcRequest() {
  const req = { model: state.model, intervention: {}, outcome: $('mc-outcome').value };
  const node = $('intervention-node').value;
  if (node) {
    const v = $('intervention-value').valueAsNumber;
    if (!Number.isFinite(v)) return { error: 'enter a number for the intervention' };
    req.intervention[node] = v;
  }
  const samples = $('mc-samples').value.trim();
  if (samples !== '') {
    if (!/^\d+$/.test(samples)) return { error: 'samples must be a whole number' };
    req.samples = Number(samples);
  }
  const seed = $('mc-seed').value.trim();
  if (seed !== '') {
    if (!/^\d+$/.test(seed)) return { error: 'the seed must be a whole number' };
    req.seed = Number(seed);
  }
  const threshold = $('mc-threshold').valueAsNumber;
  if ($('mc-threshold').value.trim() !== '' && Number.isFinite(threshold)) req.threshold = threshold;
  return { req };
}

function showMcError(message) {
  $('mc-error').hidden = false;
  $('mc-error').textContent = message;
}

function setRunning(running) {
  state.running = running;
  $('run-button').disabled = running || !state.model || !state.mcReady;
  $('cancel-button').disabled = !running;
}

function progressReporter(phase) {
  return ({ done, total }) => {
    const bar = $('mc-progress');
    if (total > 0) {
      bar.value = Math.min(1, done / total);
      $('mc-progress-text').textContent = `${phase}: ${done.toLocaleString('en')} of ${total.toLocaleString('en')} samples`;
    } else {
      bar.removeAttribute('value');
      $('mc-progress-text').textContent = `${phase}: ${done.toLocaleString('en')} model evaluations`;
    }
  };
}

function showCounterfactual(r, histogram, elapsedMs) {
  const parts = [`mean <b>${fmt(r.mean)}</b> ± ${fmt(r.std_error)} (std. error)`, `std ${fmt(r.std)}`];
  if (r.probability_above !== null && r.probability_above !== undefined) parts.push(`P(${escapeHtml(r.outcome)} &gt; ${fmt(Number($('mc-threshold').value))}) = ${fmt(r.probability_above)} (${r.method})`);
  parts.push(`${r.samples_used.toLocaleString('en')} samples, seed ${r.seed}, ${elapsedMs.toFixed(0)} ms in this page`);
  $('mc-summary').innerHTML = parts.join(' · ');
  if (histogram) drawHistogram($('histogram'), histogram, r);
  const table = $('quantiles');
  table.innerHTML = '';
  const entries = Object.entries(r.quantiles).sort((a, b) => Number(a[0]) - Number(b[0]));
  const head = table.insertRow();
  const body = table.insertRow();
  head.insertCell().outerHTML = '<th>quantile</th>';
  body.insertCell().outerHTML = `<th>${escapeHtml(r.outcome)}</th>`;
  for (const [q, v] of entries) {
    head.insertCell().outerHTML = `<th>${escapeHtml(q)}</th>`;
    body.insertCell().textContent = fmt(v);
  }
}

async function runMc() {
  $('mc-error').hidden = true;
  if (!state.model) return;
  const { req, error } = mcRequest();
  if (error) {
    showMcError(error);
    return;
  }
  const body = JSON.stringify(req);
  $('mc-link').href = contractLink('/v1/counterfactual', body);
  setRunning(true);
  $('mc-summary').textContent = '';
  try {
    const cf = await state.mc.runMc('/v1/counterfactual', body, progressReporter('sampling'));
    const r = JSON.parse(cf.response.body);
    if (cf.response.status !== 200) {
      showMcError(r.error ? `${cf.response.status} ${r.error.code}: ${r.error.message}` : `${cf.response.status}: ${cf.response.body}`);
      return;
    }
    showCounterfactual(r, cf.histogram, cf.elapsedMs);
    $('mc-progress').value = 1;
    const sreq = { model: req.model, intervention: req.intervention, outcome: req.outcome };
    if (req.seed !== undefined) sreq.seed = req.seed;
    const sens = await state.mc.runMc('/v1/sensitivity', JSON.stringify(sreq), progressReporter('sensitivity'));
    const s = JSON.parse(sens.response.body);
    if (sens.response.status !== 200) {
      showMcError(s.error ? `sensitivity: ${sens.response.status} ${s.error.code}: ${s.error.message}` : sens.response.body);
      return;
    }
    drawTornado($('tornado'), s);
    $('mc-progress').value = 1;
    $('mc-progress-text').textContent = `done: ${cf.elapsedMs.toFixed(0)} ms sampling, ${sens.elapsedMs.toFixed(0)} ms sensitivity (${s.evaluations.toLocaleString('en')} evaluations)`;
  } catch (e) {
    if (e instanceof Cancelled) {
      $('mc-progress-text').textContent = `cancelled (${$('mc-progress-text').textContent || 'before the first block'})`;
    } else {
      showMcError(e.message);
    }
  } finally {
    setRunning(false);
  }
}

function cancelMc() {
  if (state.running) state.mc.restart();
}

// ---------------------------------------------------------------------------------------------
// The URL contract: #route=<path>&q=<base64url JSON>.

function contractFromHash() {
  const hash = location.hash.replace(/^#/, '');
  if (hash === '') return null;
  let route = null;
  const rest = [];
  for (const part of hash.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key === 'route') {
      try {
        route = decodeURIComponent(part.slice(eq + 1));
      } catch {
        route = part.slice(eq + 1);
      }
    } else if (part !== '') {
      rest.push(part);
    }
  }
  return route === null ? null : { route, query: rest.join('&') };
}

async function runContract(loadIntoEditors) {
  const c = contractFromHash();
  if (!c) return;
  const result = $('result');
  const seq = ++state.contractSeq;
  result.dataset.state = 'pending';
  $('route').textContent = c.route;
  $('status').textContent = '';
  result.textContent = '';
  if (!state.contract) state.contract = new EngineWorker(state.module);
  try {
    const ans = await state.contract.handle('GET', c.route, c.query, null, '');
    if (seq !== state.contractSeq) return;
    $('status').textContent = String(ans.response.status);
    result.textContent = ans.response.body;
    $('result-time').textContent = `(${ans.elapsedMs.toFixed(1)} ms)`;
  } catch (e) {
    if (seq !== state.contractSeq) return;
    $('status').textContent = 'error';
    result.textContent = e.message;
  }
  result.dataset.state = 'done';
  result.dataset.route = c.route;
  result.dataset.query = c.query;
  if (loadIntoEditors) loadRequest(c);
}

/** A shared link's request in the editors, when it is one they show. */
function loadRequest(c) {
  const q = /(?:^|&)q=([^&]*)/.exec(c.query);
  const json = q ? fromBase64url(q[1]) : null;
  if (json === null) return;
  if (c.route === '/v1/causal/validate') {
    try {
      $('dag-input').value = dag.toText(dag.parseJsonGraph(json));
      state.userAdjusted = [];
      onDagInput();
    } catch {
      // Not a graph the editor shows; the result above says what is wrong.
    }
  } else if (c.route === '/v1/counterfactual' || c.route === '/v1/sensitivity') {
    $('model-input').value = json;
    onModelInput();
  }
}

function markReady() {
  if (document.body.dataset.ready === 'yes') return;
  document.body.dataset.ready = 'yes';
  document.body.dataset.readyMs = performance.now().toFixed(1);
  $('engine-state').textContent = `Engine ready in ${performance.now().toFixed(0)} ms: everything below runs in this page.`;
}

async function compile() {
  const url = new URL('./pkg/isl_web_bg.wasm', import.meta.url);
  try {
    return await WebAssembly.compileStreaming(fetch(url));
  } catch {
    const bytes = await (await fetch(url)).arrayBuffer();
    return WebAssembly.compile(bytes);
  }
}

async function main() {
  state.dagEditor = new Editor($('dag-input'), $('dag-marks'), $('dag-error'));
  state.modelEditor = new Editor($('model-input'), $('model-marks'), $('model-error'));
  $('dag-input').value = EXAMPLES.backdoor;
  $('model-input').value = DEFAULT_MODEL;
  state.module = await compile();
  state.causal = new EngineWorker(state.module);
  state.mc = new EngineWorker(state.module);
  const version = await state.causal.ready;
  $('version').textContent = version;

  const dagInput = debounce(guard(onDagInput), 120);
  $('dag-input').addEventListener('input', dagInput);
  $('treatment').addEventListener('change', guard(() => {
    redraw();
    validate();
    checkAdjustment();
  }));
  $('outcome').addEventListener('change', guard(() => {
    redraw();
    validate();
    checkAdjustment();
  }));
  for (const b of document.querySelectorAll('[data-example]')) {
    b.addEventListener('click', guard(() => {
      $('dag-input').value = EXAMPLES[b.dataset.example];
      state.userAdjusted = [];
      onDagInput();
    }));
  }
  $('model-input').addEventListener('input', debounce(guard(onModelInput), 150));
  $('run-button').addEventListener('click', guard(runMc));
  $('cancel-button').addEventListener('click', guard(cancelMc));
  window.addEventListener('hashchange', guard(() => runContract(false)));

  onDagInput();
  onModelInput();
  state.mc.ready.then(() => {
    state.mcReady = true;
    setRunning(state.running);
  }, (e) => showMcError(e.message));
  if (contractFromHash()) await runContract(true);
}

// For automation and measurements: the page's engines, as the page uses them.
window.islDemo = {
  handle: (method, path, query, contentType, body) => state.causal.handle(method, path, query, contentType, body),
  runMc: (path, body) => state.mc.runMc(path, body, () => {}),
};

guard(main)();
