// Causal diagrams in the page: the DAGitty-style text form and the JSON form, parsed into one
// graph with positions for errors; the service request it stands for; back-door path analysis
// for the drawing; and a layered layout. No DOM here (tests run it under Node).

import { SyntaxErrorAt, lineColumn, parseJson } from './json.js';

export { SyntaxErrorAt };

/**
 * The parsed diagram: `nodes` (every name, in order of appearance, latent ones included),
 * `edges` ([from, to] pairs), `bidirected` ([a, b] pairs written `a <-> b`), `latent` (declared
 * latent names), `treatment`, `outcome`, `adjusted` (lists of names from attributes or the
 * request), and `form` ('text' or 'json').
 */
function emptyGraph(form) {
  return { form, nodes: [], edges: [], bidirected: [], latent: [], treatment: [], outcome: [], adjusted: [] };
}

function addNode(g, seen, name) {
  if (!seen.has(name)) {
    seen.add(name);
    g.nodes.push(name);
  }
}

const ATTRIBUTES = {
  exposure: 'treatment',
  treatment: 'treatment',
  outcome: 'outcome',
  latent: 'latent',
  unobserved: 'latent',
  adjusted: 'adjusted',
};

// Tokens of the text form: names, strings, arrows, brackets, separators.
function tokenize(text) {
  const tokens = [];
  let i = 0;
  const at = (pos) => lineColumn(text, pos);
  const fail = (message, pos) => {
    const { line, column } = at(pos);
    throw new SyntaxErrorAt(message, line, column);
  };
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    const start = i;
    for (const op of ['<->', '->', '<-', '--']) {
      if (text.startsWith(op, i)) {
        tokens.push({ kind: 'op', value: op, pos: start });
        i += op.length;
        break;
      }
    }
    if (i !== start) continue;
    if ('{}[],;='.includes(c)) {
      tokens.push({ kind: c, value: c, pos: start });
      i++;
      continue;
    }
    if (c === '"') {
      i++;
      let value = '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\n') fail('unterminated string (a name in quotes must end on its line)', start);
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      if (i >= text.length) fail('unterminated string', start);
      i++;
      tokens.push({ kind: 'name', value, pos: start, quoted: true });
      continue;
    }
    const m = /^[\p{L}\p{N}_.]+/u.exec(text.slice(i, i + 256));
    if (m) {
      tokens.push({ kind: 'name', value: m[0], pos: start });
      i += m[0].length;
      continue;
    }
    const shown = '<->'.includes(c) ? `'${c}' (arrows are ->, <- and <->)` : `character '${c}'`;
    fail(`unexpected ${shown}`, start);
  }
  tokens.push({ kind: 'end', value: '', pos: text.length });
  return tokens;
}

/** Parses the DAGitty-style text form. Throws SyntaxErrorAt. */
export function parseText(text) {
  const tokens = tokenize(text);
  const g = emptyGraph('text');
  const seen = new Set();
  const marks = { treatment: new Set(), outcome: new Set(), latent: new Set(), adjusted: new Set() };
  let k = 0;
  const peek = () => tokens[k];
  const fail = (message, token = peek()) => {
    const { line, column } = lineColumn(text, token.pos);
    throw new SyntaxErrorAt(message, line, column);
  };
  const found = (t) => (t.kind === 'end' ? 'the end of the text' : t.kind === 'name' ? `'${t.value}'` : `'${t.value}'`);

  // Optional wrapper: `dag { ... }` (DAGitty's own export format).
  let wrapped = false;
  if (peek().kind === 'name' && tokens[k + 1].kind === '{') {
    const kw = peek().value.toLowerCase();
    if (kw === 'dag') {
      wrapped = true;
      k += 2;
    } else if (['pdag', 'mag', 'pag', 'graph', 'digraph'].includes(kw)) {
      fail(`only 'dag { ... }' graphs are supported, not '${peek().value}'`);
    }
  }

  // A group: one name or `{A B C}`.
  const group = () => {
    const t = peek();
    if (t.kind === 'name') {
      k++;
      addNode(g, seen, t.value);
      return [t.value];
    }
    if (t.kind === '{') {
      k++;
      const names = [];
      while (peek().kind === 'name' || peek().kind === ',') {
        if (peek().kind === 'name') {
          names.push(peek().value);
          addNode(g, seen, peek().value);
        }
        k++;
      }
      if (peek().kind !== '}') fail(`expected a node name or '}' in the group, found ${found(peek())}`);
      k++;
      if (names.length === 0) fail('an empty group {} names no nodes', t);
      return names;
    }
    return null;
  };

  const attributes = (names) => {
    const open = peek();
    k++;
    for (;;) {
      const t = peek();
      if (t.kind !== 'name') fail(`expected an attribute (exposure, outcome, latent, adjusted, pos), found ${found(t)}`);
      k++;
      const key = t.value.toLowerCase();
      if (peek().kind === '=') {
        k++;
        if (peek().kind !== 'name') fail(`expected a value after '=', found ${found(peek())}`);
        k++;
        if (key !== 'pos') fail(`attribute '${t.value}' takes no value`, t);
      } else if (key === 'pos') {
        fail("expected '=' after 'pos'");
      } else if (!(key in ATTRIBUTES)) {
        fail(`unknown attribute '${t.value}' (expected exposure, outcome, latent, adjusted or pos)`, t);
      } else {
        for (const n of names) marks[ATTRIBUTES[key]].add(n);
      }
      if (peek().kind === ',') {
        k++;
        continue;
      }
      if (peek().kind === ']') {
        k++;
        return;
      }
      fail(`expected ',' or ']' in the attribute list opened at line ${lineColumn(text, open.pos).line}, found ${found(peek())}`);
    }
  };

  for (;;) {
    const t = peek();
    if (t.kind === 'end') {
      if (wrapped) fail("expected '}' to close 'dag {'");
      break;
    }
    if (t.kind === ';' || t.kind === ',') {
      k++;
      continue;
    }
    if (t.kind === '}' && wrapped) {
      k++;
      wrapped = false;
      if (peek().kind !== 'end') fail(`unexpected ${found(peek())} after the closing '}'`);
      break;
    }
    let left = group();
    if (left === null) {
      if (t.kind === 'op') fail(`expected a node name before '${t.value}'`);
      fail(`expected a node name, found ${found(t)}`);
    }
    if (peek().kind === '[') {
      attributes(left);
      continue;
    }
    while (peek().kind === 'op') {
      const op = peek();
      k++;
      if (op.value === '--') fail("undirected edges '--' have no place in a DAG (use -> or <->)", op);
      const right = group();
      if (right === null) fail(`expected a node name after '${op.value}', found ${found(peek())}`);
      for (const a of left) {
        for (const b of right) {
          if (op.value === '->') g.edges.push([a, b]);
          else if (op.value === '<-') g.edges.push([b, a]);
          else g.bidirected.push([a, b]);
        }
      }
      left = right;
    }
    if (peek().kind === '[') fail('attributes follow a single node declaration, not an edge (write X [exposure] on its own)');
  }
  g.treatment = [...marks.treatment];
  g.outcome = [...marks.outcome];
  g.latent = [...marks.latent];
  g.adjusted = [...marks.adjusted];
  return g;
}

function names(value, where, positions, text, fallbackPos) {
  const bad = (message) => {
    const p = (value && typeof value === 'object' && positions.get(value)) || fallbackPos;
    throw new SyntaxErrorAt(message, p.line, p.column);
  };
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) bad(`${where} must be a node name or a list of names`);
  return value;
}

/**
 * Parses the JSON form: a graph `{"nodes", "edges", "latent"}` or a validation request
 * `{"dag": graph, "treatment", "outcome"}`. Throws SyntaxErrorAt (also for a wrong shape, at the
 * offending object or array).
 */
export function parseJsonGraph(text) {
  const { value, positions } = parseJson(text);
  const top = { line: 1, column: 1 };
  const at = (v, fallback) => (v && typeof v === 'object' && positions.get(v)) || fallback;
  const bad = (message, v, fallback = top) => {
    const p = at(v, fallback);
    throw new SyntaxErrorAt(message, p.line, p.column);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) bad('expected an object: a graph {"edges": ...} or a request {"dag": ...}', value);
  const g = emptyGraph('json');
  let dag = value;
  if ('dag' in value) {
    dag = value.dag;
    if (dag === null || typeof dag !== 'object' || Array.isArray(dag)) bad('"dag" must be an object with "edges"', dag, at(value, top));
    if (value.treatment !== undefined) g.treatment = names(value.treatment, '"treatment"', positions, text, at(value, top));
    if (value.outcome !== undefined) g.outcome = names(value.outcome, '"outcome"', positions, text, at(value, top));
  }
  const dagPos = at(dag, top);
  const seen = new Set();
  if (dag.nodes !== undefined) {
    for (const n of names(dag.nodes, '"nodes"', positions, text, dagPos)) addNode(g, seen, n);
  }
  if (dag.edges === undefined) bad('the graph needs "edges" (a list of [from, to] pairs)', dag);
  if (!Array.isArray(dag.edges)) bad('"edges" must be a list of [from, to] pairs', dag.edges, dagPos);
  dag.edges.forEach((e, i) => {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string') {
      bad(`edge ${i + 1} must be a pair of node names ["from", "to"]`, e, at(dag.edges, dagPos));
    }
    addNode(g, seen, e[0]);
    addNode(g, seen, e[1]);
    g.edges.push([e[0], e[1]]);
  });
  if (dag.latent !== undefined) {
    g.latent = names(dag.latent, '"latent"', positions, text, dagPos);
    for (const n of g.latent) addNode(g, seen, n);
  }
  for (const key of Object.keys(dag)) {
    if (!['nodes', 'edges', 'latent'].includes(key)) bad(`unknown field "${key}" in the graph (expected nodes, edges, latent)`, dag);
  }
  return g;
}

/** Whether `text` is in the JSON form (its first non-blank character is '{'). */
export function isJsonForm(text) {
  return /^\s*\{/.test(text) && !/^\s*\{[^"\n]*->/.test(text);
}

/** Parses either form. Throws SyntaxErrorAt. */
export function parseGraph(text) {
  return isJsonForm(text) ? parseJsonGraph(text) : parseText(text);
}

/**
 * The service's graph for a parsed diagram: each `a <-> b` becomes a latent common cause named
 * `U_a_b` (primed if taken). Returns `{dag, hidden}`: `hidden` maps those latent names to their
 * pair, for the drawing.
 */
export function toServiceDag(g) {
  const taken = new Set(g.nodes);
  const edges = g.edges.map((e) => [e[0], e[1]]);
  const latent = [...g.latent];
  const hidden = new Map();
  for (const [a, b] of g.bidirected) {
    let name = `U_${a}_${b}`;
    while (taken.has(name)) name += "'";
    taken.add(name);
    hidden.set(name, [a, b]);
    latent.push(name);
    edges.push([name, a], [name, b]);
  }
  const dag = { nodes: [...g.nodes], edges };
  if (latent.length > 0) dag.latent = latent;
  return { dag, hidden };
}

/** The `/v1/causal/validate` request for a diagram with a treatment and an outcome (optional). */
export function validateRequest(g, treatment, outcome) {
  const { dag } = toServiceDag(g);
  const req = { dag };
  if (treatment) req.treatment = treatment;
  if (outcome) req.outcome = outcome;
  return req;
}

/** The diagram in the text form (for loading a JSON request into the editor). */
export function toText(g) {
  const q = (n) => (/^[\p{L}\p{N}_.]+$/u.test(n) && n.toLowerCase() !== 'dag' ? n : JSON.stringify(n));
  const lines = ['dag {'];
  const listed = new Set();
  const attrs = (n) => {
    const a = [];
    if (g.treatment.includes(n)) a.push('exposure');
    if (g.outcome.includes(n)) a.push('outcome');
    if (g.latent.includes(n)) a.push('latent');
    if (g.adjusted.includes(n)) a.push('adjusted');
    return a;
  };
  for (const n of g.nodes) {
    const a = attrs(n);
    if (a.length > 0) {
      lines.push(`  ${q(n)} [${a.join(',')}]`);
      listed.add(n);
    }
  }
  const touched = new Set();
  for (const [a, b] of g.edges) {
    lines.push(`  ${q(a)} -> ${q(b)}`);
    touched.add(a).add(b);
  }
  for (const [a, b] of g.bidirected) {
    lines.push(`  ${q(a)} <-> ${q(b)}`);
    touched.add(a).add(b);
  }
  for (const n of g.nodes) if (!listed.has(n) && !touched.has(n)) lines.push(`  ${q(n)}`);
  lines.push('}');
  return lines.join('\n');
}

/**
 * Paths between treatment `x` and outcome `y` in the service graph (`dag` from toServiceDag),
 * for the drawing: `causalEdges`, the edges on some directed path from `x` to `y`, and
 * `openBackdoor`, the back-door paths (starting with an edge into `x`) that are open given the
 * set `z` — every non-collider outside `z`, every collider in `z` or with a descendant in it.
 * Each path is `{nodes, forward}` (`forward[i]`: the edge between nodes i and i+1 points from i
 * to i+1). The search stops after `budget` steps or `maxPaths` paths (`truncated`).
 */
export function analysePaths(dag, x, y, z, budget = 200000, maxPaths = 500) {
  const parents = new Map();
  const children = new Map();
  const all = new Set(dag.nodes || []);
  for (const [a, b] of dag.edges) all.add(a).add(b);
  for (const n of all) {
    parents.set(n, new Set());
    children.set(n, new Set());
  }
  for (const [a, b] of dag.edges) {
    children.get(a).add(b);
    parents.get(b).add(a);
  }
  const result = { causalEdges: new Set(), openBackdoor: [], truncated: false };
  if (!all.has(x) || !all.has(y) || x === y) return result;
  const reach = (start, next) => {
    const seen = new Set([start]);
    const stack = [start];
    while (stack.length > 0) {
      for (const m of next.get(stack.pop())) {
        if (!seen.has(m)) {
          seen.add(m);
          stack.push(m);
        }
      }
    }
    return seen;
  };
  const descendants = reach(x, children);
  const ancestors = reach(y, parents);
  for (const [a, b] of dag.edges) {
    if (descendants.has(a) && ancestors.has(b) && b !== x && a !== y) result.causalEdges.add(edgeKey(a, b));
  }
  const zset = new Set(z.filter((n) => all.has(n)));
  // Nodes with a descendant in z (z included): a collider among them is open.
  const openColliders = new Set();
  for (const n of zset) for (const m of reach(n, parents)) openColliders.add(m);
  const path = [x];
  const onPath = new Set([x]);
  const forward = [];
  let steps = 0;
  const extend = (node) => {
    const neighbours = [...[...children.get(node)].map((m) => [m, true]), ...[...parents.get(node)].map((m) => [m, false])];
    for (const [next, fwd] of neighbours) {
      if (result.truncated) return;
      if (++steps > budget || result.openBackdoor.length >= maxPaths) {
        result.truncated = true;
        return;
      }
      if (onPath.has(next)) continue;
      if (node === x) {
        if (fwd) continue; // a back-door path starts with an edge into x
      } else {
        const collider = forward[forward.length - 1] && !fwd;
        if (collider ? !openColliders.has(node) : zset.has(node)) continue;
      }
      path.push(next);
      onPath.add(next);
      forward.push(fwd);
      if (next === y) result.openBackdoor.push({ nodes: [...path], forward: [...forward] });
      else extend(next);
      path.pop();
      onPath.delete(next);
      forward.pop();
    }
  };
  extend(x);
  return result;
}

/** The key of the directed edge a -> b in the sets analysePaths returns. */
export function edgeKey(a, b) {
  return `${a}\u0000${b}`;
}

/**
 * A layered layout, left to right: layers by longest path from the sources (edges closing a
 * cycle are reversed for this), order within layers by barycentre sweeps. Nodes in `skip` (the
 * latent causes behind `<->`) are not placed. Returns `{positions: Map(name -> {x, y, layer}),
 * width, height, reversed: Set of "a\u0000b" edge keys reversed to break cycles}`.
 */
export function layout(nodes, edges, skip = new Set(), opts = {}) {
  const dx = opts.dx ?? 150;
  const dy = opts.dy ?? 70;
  const placed = nodes.filter((n) => !skip.has(n));
  const index = new Map(placed.map((n, i) => [n, i]));
  const out = placed.map(() => []);
  const reversed = new Set();
  const kept = edges.filter(([a, b]) => index.has(a) && index.has(b) && a !== b);
  for (const [a, b] of kept) out[index.get(a)].push(index.get(b));
  // Depth-first search: an edge to a node on the stack closes a cycle.
  const state = new Uint8Array(placed.length); // 0 new, 1 on stack, 2 done
  for (let s = 0; s < placed.length; s++) {
    if (state[s]) continue;
    const stack = [[s, 0]];
    state[s] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [v, i] = top;
      if (i < out[v].length) {
        top[1]++;
        const w = out[v][i];
        if (state[w] === 1) reversed.add(`${placed[v]}\u0000${placed[w]}`);
        else if (state[w] === 0) {
          state[w] = 1;
          stack.push([w, 0]);
        }
      } else {
        state[v] = 2;
        stack.pop();
      }
    }
  }
  const succ = placed.map(() => []);
  const pred = placed.map(() => []);
  for (const [a, b] of kept) {
    const [u, v] = reversed.has(`${a}\u0000${b}`) ? [b, a] : [a, b];
    succ[index.get(u)].push(index.get(v));
    pred[index.get(v)].push(index.get(u));
  }
  // Longest-path layering in topological order (Kahn).
  const indeg = pred.map((p) => p.length);
  const layer = new Array(placed.length).fill(0);
  const queue = [];
  indeg.forEach((d, i) => d === 0 && queue.push(i));
  for (let h = 0; h < queue.length; h++) {
    const v = queue[h];
    for (const w of succ[v]) {
      layer[w] = Math.max(layer[w], layer[v] + 1);
      if (--indeg[w] === 0) queue.push(w);
    }
  }
  const layers = [];
  placed.forEach((_, i) => {
    (layers[layer[i]] ||= []).push(i);
  });
  for (let l = 0; l < layers.length; l++) layers[l] ||= [];
  const order = new Float64Array(placed.length);
  const renumber = () => layers.forEach((ls) => ls.forEach((v, i) => (order[v] = i)));
  renumber();
  const sweep = (down) => {
    const range = down ? [...layers.keys()].slice(1) : [...layers.keys()].reverse().slice(1);
    for (const l of range) {
      const key = new Map();
      for (const v of layers[l]) {
        const nb = down ? pred[v] : succ[v];
        key.set(v, nb.length ? nb.reduce((s, w) => s + order[w], 0) / nb.length : order[v]);
      }
      layers[l].sort((a, b) => key.get(a) - key.get(b) || a - b);
      layers[l].forEach((v, i) => (order[v] = i));
    }
  };
  for (let i = 0; i < 4; i++) {
    sweep(true);
    sweep(false);
  }
  const tallest = Math.max(1, ...layers.map((ls) => ls.length));
  const positions = new Map();
  layers.forEach((ls, l) => {
    const offset = ((tallest - ls.length) * dy) / 2;
    ls.forEach((v, i) => positions.set(placed[v], { x: 70 + l * dx, y: 40 + offset + i * dy, layer: l }));
  });
  return { positions, width: 140 + Math.max(0, layers.length - 1) * dx, height: 80 + (tallest - 1) * dy, reversed };
}

/** The front-door example of the page (Pearl's smoking–tar–cancer diagram). */
export const FRONT_DOOR_EXAMPLE = `dag {
  Smoking [exposure]
  Cancer [outcome]
  Smoking -> Tar -> Cancer
  Smoking <-> Cancer
}`;
